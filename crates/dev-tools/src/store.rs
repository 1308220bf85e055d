//! An S3-compatible store hosted in-process for `r2-broker dev`.
//!
//! s3s-fs keeps objects as files under `root/<bucket>/` and checks real SigV4 signatures
//! (header-signed and presigned requests, expiry, signed headers, `x-amz-checksum-sha256`),
//! so the URLs the broker hands out are verified exactly as a real store would. s3s-fs has no
//! CORS of its own (OPTIONS answers 501), so a tower-http CORS layer answers browsers first;
//! bucket CORS and lifecycle configuration calls are answered by `bucket_config::DevS3`.
//! Known gaps of s3s-fs 0.14.1 are listed in CONTRIBUTING.md (e.g. a body that fails its
//! checksum is still written; keys are file paths): the broker's own checks must not rely on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, ensure};
use http::{HeaderName, Method, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::service::TowerToHyperService;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower_http::cors::{Any, Cors};

/// How long `stop` lets in-flight requests (e.g. a large upload) finish before cutting them.
const GRACE: Duration = Duration::from_secs(10);

mod bucket_config;

type Service = TowerToHyperService<Cors<S3Service>>;

/// A running store. Dropping it without [`EmbeddedStore::stop`] also shuts the server down,
/// in the background.
#[derive(Debug)]
pub struct EmbeddedStore {
    /// `http://IP:PORT`, the address clients must use *exactly*: the signed `host` is checked,
    /// so a URL presigned for `127.0.0.1:P` is refused when sent to `localhost:P`.
    pub endpoint: String,
    pub bucket: String,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl EmbeddedStore {
    /// Serves s3s-fs over `root` (created if missing) with the bucket folder `root/<bucket>`,
    /// checking signatures against the single key pair, with CORS answered for browsers.
    /// Binds `addr` (port 0 picks a free port) and serves from a spawned task.
    pub async fn start(
        root: &Path,
        bucket: &str,
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        ensure!(is_plain_bucket_name(bucket), "invalid bucket name {bucket:?}: use 3-63 of a-z 0-9 . -");
        // Without a key pair s3s accepts anonymous requests and every auth check passes.
        ensure!(!access_key.is_empty() && !secret_key.is_empty(), "the store needs an access key and a secret key");

        // A bucket is a folder: s3s-fs has no CreateBucket state of its own.
        tokio::fs::create_dir_all(root.join(bucket))
            .await
            .with_context(|| format!("creating the store folder {}", root.join(bucket).display()))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| anyhow!("opening the store folder {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(bucket_config::DevS3::new(fs, root.to_owned()));
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = TowerToHyperService::new(cors(builder.build()));

        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the store to {addr}"))?;
        let local_addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, service, rx));
        tracing::info!(%local_addr, bucket, root = %root.display(), "embedded S3 store listening");
        Ok(Self {
            endpoint: format!("http://{}", reachable(local_addr)),
            bucket: bucket.to_owned(),
            local_addr,
            shutdown,
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections close at
    /// once), cuts whatever is still running after [`GRACE`], and returns when all is done.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        if let Err(e) = self.server.await {
            tracing::warn!("embedded S3 store task ended abnormally: {e}");
        }
    }
}

/// The CORS rule the store's layer applies: exactly the rule README.md gives R2 users ("Bucket
/// CORS"), plus POST for the POST-policy forms an S3 store takes; the browser tests prove that
/// rule is enough. Browsers PUT/POST straight to presigned URLs from the app's origin: the
/// preflight must allow every header the broker signs, and `ETag` must be readable (multipart
/// uploads collect part ETags in the browser).
const CORS_METHODS: [Method; 4] = [Method::GET, Method::PUT, Method::HEAD, Method::POST];
const CORS_HEADERS: [&str; 4] = ["content-type", "if-none-match", "x-amz-meta-upload-id", "x-amz-checksum-sha256"];
const CORS_EXPOSE: [HeaderName; 1] = [header::ETAG];
const CORS_MAX_AGE: Duration = Duration::from_secs(3600);

fn cors(inner: S3Service) -> Cors<S3Service> {
    Cors::new(inner)
        .allow_origin(Any)
        .allow_methods(CORS_METHODS)
        .allow_headers(CORS_HEADERS.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSE)
        .max_age(CORS_MAX_AGE)
}

/// [`cors`] as a bucket CORS rule: what GetBucketCors reports when none was put.
fn effective_cors_rule() -> s3s::dto::CORSRule {
    s3s::dto::CORSRule {
        allowed_headers: Some(CORS_HEADERS.map(String::from).to_vec()),
        allowed_methods: CORS_METHODS.iter().map(|m| m.as_str().to_owned()).collect(),
        allowed_origins: vec!["*".to_owned()],
        expose_headers: Some(vec!["ETag".to_owned()]),
        id: Some("r2-broker-dev".to_owned()),
        max_age_seconds: Some(CORS_MAX_AGE.as_secs() as i32),
    }
}

/// Accept loop; on shutdown (or when the handle is dropped) asks every connection to close
/// gracefully and waits for them, bounded by [`GRACE`].
async fn serve(listener: TcpListener, service: Service, mut shutdown: watch::Receiver<bool>) {
    let builder = ConnBuilder::new(TokioExecutor::new());
    let mut conns = JoinSet::new();
    let for_conns = shutdown.clone();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // As R2 and S3 do: no Nagle. A response written in two pieces (headers,
                    // then a small body, as a ranged GET's) otherwise waits for the client's
                    // delayed ACK, ~40 ms on Linux.
                    let _ = stream.set_nodelay(true);
                    let conn = builder.serve_connection(TokioIo::new(stream), service.clone()).into_owned();
                    let mut stop = for_conns.clone();
                    conns.spawn(async move {
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            res = conn.as_mut() => return log_conn_end(res),
                            () = stopped(&mut stop) => {}
                        }
                        conn.as_mut().graceful_shutdown();
                        log_conn_end(conn.await);
                    });
                }
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning on the error.
                    tracing::warn!("embedded S3 store: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        tracing::warn!("embedded S3 store: requests still running after {GRACE:?}, cutting them");
        conns.shutdown().await;
    }
}

/// Resolves on `stop()` or when the handle is dropped (the channel closes). Returns `()` so no
/// lock guard of the channel is held across the select's handlers.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

fn log_conn_end(res: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = res {
        tracing::debug!("embedded S3 store connection: {e}");
    }
}

/// A wildcard bind address is not something a client can send to: use the loopback address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// The bucket name becomes a folder name: keep it to plain S3 names (no `/`, no `..`).
fn is_plain_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-'])
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
    use aws_sdk_s3::presigning::PresigningConfig;
    use aws_sdk_s3::primitives::ByteStream;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const AK: &str = "AKIDDEV";
    const SK: &str = "devsecret123";
    const ORIGIN: &str = "http://localhost:5173";

    fn client(endpoint: &str, secret: &str) -> aws_sdk_s3::Client {
        client_with(endpoint, AK, secret)
    }

    /// An SDK client as the broker builds one (also for `bucket_config`'s tests).
    pub(super) fn client_with(endpoint: &str, access_key: &str, secret: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("auto"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_signed_s3_with_cors() {
        let root = std::env::temp_dir().join(format!("r2b-store-{}", std::process::id()));
        let t0 = Instant::now();
        let store = EmbeddedStore::start(&root, "dev", "127.0.0.1:0".parse().unwrap(), AK, SK).await.unwrap();
        eprintln!("store start: {:?}", t0.elapsed());
        assert!(root.join("dev").is_dir());
        assert_eq!(store.endpoint, format!("http://{}", store.local_addr()));
        let (s3, http) = (client(&store.endpoint, SK), reqwest::Client::new());
        let url = |key: &str| format!("{}/{}/{key}", store.endpoint, store.bucket);

        // Signed PUT and GET through the SDK.
        s3.put_object()
            .bucket("dev")
            .key("a/hello.txt")
            .content_type("text/plain")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .unwrap();
        let got = s3.get_object().bucket("dev").key("a/hello.txt").send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"hello");

        // Unsigned, and signed with the wrong secret: refused.
        assert_eq!(http.get(url("a/hello.txt")).send().await.unwrap().status(), 403);
        let err = client(&store.endpoint, "wrong-secret")
            .get_object()
            .bucket("dev")
            .key("a/hello.txt")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));

        // CORS preflight for a browser PUT with the headers the broker signs.
        let pre = http
            .request(reqwest::Method::OPTIONS, url("b/up.bin"))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type,if-none-match,x-amz-meta-upload-id")
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "preflight: {}", pre.status());
        assert_eq!(header(&pre, "access-control-allow-origin"), "*");
        assert!(header(&pre, "access-control-allow-methods").contains("PUT"));
        let allowed = header(&pre, "access-control-allow-headers").to_ascii_lowercase();
        for h in ["content-type", "if-none-match", "x-amz-meta-upload-id", "x-amz-checksum-sha256"] {
            assert!(allowed.contains(h), "{h} not in {allowed}");
        }
        assert_eq!(header(&pre, "access-control-max-age"), "3600");

        // A presigned PUT, sent as a browser would (plain HTTP, Origin header).
        let p = s3
            .put_object()
            .bucket("dev")
            .key("b/up.bin")
            .content_type("application/octet-stream")
            .content_length(5)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
            .await
            .unwrap();
        assert!(!p.uri().contains("x-amz-checksum-crc32") && !p.uri().contains("x-amz-sdk-checksum-algorithm"));
        let put = |ct: &str| {
            let mut req = http.put(p.uri()).header("origin", ORIGIN).body("world");
            for (k, v) in p.headers().filter(|(k, _)| !k.eq_ignore_ascii_case("content-length")) {
                req = req.header(k, if k.eq_ignore_ascii_case("content-type") { ct } else { v });
            }
            req.send()
        };
        // The signed content type is enforced: another one is refused.
        assert_eq!(put("text/html").await.unwrap().status(), 403);
        let resp = put("application/octet-stream").await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(!header(&resp, "etag").is_empty());
        assert_eq!(header(&resp, "access-control-allow-origin"), "*");
        assert!(header(&resp, "access-control-expose-headers").to_ascii_lowercase().contains("etag"));
        let got = s3.get_object().bucket("dev").key("b/up.bin").send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"world");

        // stop() lets an in-flight upload finish: half a body sent, stop, then the rest. The idle
        // keep-alive connections of reqwest and the SDK must not hold it up.
        let p = s3
            .put_object()
            .bucket("dev")
            .key("c/slow.bin")
            .content_length(5)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
            .await
            .unwrap();
        let uri: http::Uri = p.uri().parse().unwrap();
        let mut conn = tokio::net::TcpStream::connect(store.local_addr()).await.unwrap();
        let head = format!(
            "PUT {} HTTP/1.1\r\nhost: {}\r\ncontent-length: 5\r\n\r\nwor",
            uri.path_and_query().unwrap(),
            uri.authority().unwrap()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (addr, t0) = (store.local_addr(), Instant::now());
        let stopping = tokio::spawn(store.stop());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after stop");
        conn.write_all(b"ld").await.unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).await.unwrap(); // the server closes after answering
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        stopping.await.unwrap();
        eprintln!("store stop (incl. 200 ms of in-flight upload): {:?}", t0.elapsed());
        assert_eq!(std::fs::read(root.join("dev/c/slow.bin")).unwrap(), b"world");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bucket_names_stay_inside_the_root() {
        assert!(is_plain_bucket_name("dev") && is_plain_bucket_name("my.bucket-1"));
        for bad in ["..", "../x", "a/b", "ab", "Dev", ".abc", "abc-", "a..b"] {
            assert!(!is_plain_bucket_name(bad), "{bad}");
        }
    }
}
