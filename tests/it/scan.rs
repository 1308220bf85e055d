//! The scanners against real components: objects in the test's bucket on the
//! signature-checking store, read through presigned GET URLs made by the app's own
//! presigner; a private clamd (`support::clamd`) and a local HTTP validator
//! (`support::validator`). A verdict is asserted where one is due, a `ScanError` (the job
//! is retried) wherever the object, clamd or the validator cannot give an honest one.

use std::time::{Duration, SystemTime};

use r2_broker::config::{ClamdAddress, ProcessingConfig};
use r2_broker::profiles::ScannerKind;
use r2_broker::scan::{ScanError, ScanTarget, Scanners, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::TestApp;
use crate::support::clamd::{self, EICAR, EICAR_SIGNATURE, STREAM_MAX};
use crate::support::validator::{Rule, Validator};

fn scanners(clamd: Option<ClamdAddress>, scan_url: Option<&str>, timeout: Duration) -> Scanners {
    let config = ProcessingConfig {
        clamd,
        scan_url: scan_url.map(str::to_owned),
        scan_timeout: timeout,
        ..ProcessingConfig::default()
    };
    Scanners::new(&config).expect("scanners")
}

fn with_clamd(address: ClamdAddress) -> Scanners {
    scanners(Some(address), None, Duration::from_secs(60))
}

/// Puts `bytes` at `key` and returns a presigned GET URL of it, valid for ten minutes.
async fn stored(app: &TestApp, key: &str, bytes: &[u8]) -> String {
    app.s3.put_object().bucket(&app.bucket).key(key).body(bytes.to_vec().into()).send().await.unwrap();
    presigned(app, key, SystemTime::now())
}

fn presigned(app: &TestApp, key: &str, signed_at: SystemTime) -> String {
    app.state.store.presigner.get_object(key, None, None, Duration::from_secs(600), signed_at).unwrap().url
}

fn target(url: &str, size: u64) -> ScanTarget<'_> {
    ScanTarget {
        url,
        size,
        etag: None,
        content_type: "application/octet-stream",
        owner: "alice",
        asset_id: uuid::Uuid::now_v7(),
        filename: "report.bin",
    }
}

/// Deterministic bytes that match no signature.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn scan_error(outcome: Result<Verdict, ScanError>, case: &str) -> String {
    match outcome {
        Err(ScanError(why)) => why,
        Ok(v) => panic!("{case}: a verdict ({v:?}) where the scan must fail"),
    }
}

#[tokio::test]
async fn clamd_flags_eicar_with_its_signature_name_over_tcp_and_the_unix_socket() {
    // Arrange
    let Some(clamd) = clamd::start().await else { return };
    let app = TestApp::spawn().await;
    let url = stored(&app, "eicar.com", EICAR).await;

    for address in [ClamdAddress::Tcp(clamd.addr.clone()), ClamdAddress::Unix(clamd.socket.clone())] {
        // Act
        let verdict = with_clamd(address.clone()).scan(ScannerKind::Clamd, &target(&url, EICAR.len() as u64)).await;

        // Assert
        assert_eq!(verdict.unwrap(), Verdict::Flagged(EICAR_SIGNATURE.into()), "{address:?}");
    }
}

#[tokio::test]
async fn clamd_passes_a_clean_6_mib_object_and_receives_every_byte_of_it_through_the_stream() {
    // Arrange: two 6 MiB objects differing in their last byte; clamd knows the second one's
    // hash, so flagging it proves the stream delivered all of it, byte for byte, and
    // passing the first proves nothing else matches.
    let clean = noise(6 << 20, 7);
    let mut known = clean.clone();
    *known.last_mut().unwrap() ^= 0xff;
    let Some(clamd) = clamd::start_with(&[("R2Broker.Test.Whole", &known)]).await else { return };
    let app = TestApp::spawn().await;
    let clean_url = stored(&app, "clean.bin", &clean).await;
    let known_url = stored(&app, "known.bin", &known).await;
    let scanners = with_clamd(ClamdAddress::Tcp(clamd.addr.clone()));

    // Act
    let clean_verdict = scanners.scan(ScannerKind::Clamd, &target(&clean_url, clean.len() as u64)).await;
    let known_verdict = scanners.scan(ScannerKind::Clamd, &target(&known_url, known.len() as u64)).await;

    // Assert
    assert_eq!(clean_verdict.unwrap(), Verdict::Clean);
    assert_eq!(known_verdict.unwrap(), Verdict::Flagged(clamd::reported("R2Broker.Test.Whole")));
    let log = clamd.log();
    assert!(log.contains("instream(") && log.contains(": OK"), "clamd scanned a stream and passed it:\n{log}");
}

#[tokio::test]
async fn an_object_past_clamds_stream_limit_is_an_error_that_gives_clamds_reason() {
    // Arrange
    let Some(clamd) = clamd::start().await else { return };
    let app = TestApp::spawn().await;
    let big = noise(STREAM_MAX as usize + (1 << 20), 3);
    let url = stored(&app, "big.bin", &big).await;

    // Act
    let outcome = with_clamd(ClamdAddress::Tcp(clamd.addr.clone()))
        .scan(ScannerKind::Clamd, &target(&url, big.len() as u64))
        .await;

    // Assert
    let why = scan_error(outcome, "past StreamMaxLength");
    assert!(why.contains("size limit exceeded"), "{why}");
}

#[tokio::test]
async fn a_clamd_that_is_down_is_a_scan_error() {
    // Arrange: a port and a socket path nothing listens on.
    let app = TestApp::spawn().await;
    let url = stored(&app, "a.txt", b"hello").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = std::env::temp_dir().join(format!("r2b-no-clamd-{}.sock", uuid::Uuid::new_v4().simple()));

    for address in [ClamdAddress::Tcp(format!("127.0.0.1:{port}")), ClamdAddress::Unix(gone)] {
        // Act
        let outcome = with_clamd(address.clone()).scan(ScannerKind::Clamd, &target(&url, 5)).await;

        // Assert
        let why = scan_error(outcome, "clamd down");
        assert!(why.starts_with("clamd (") && why.contains("cannot connect"), "{address:?}: {why}");
    }
}

#[tokio::test]
async fn an_expired_url_or_an_object_of_another_size_is_a_scan_error_not_a_verdict() {
    // Arrange
    let Some(clamd) = clamd::start().await else { return };
    let app = TestApp::spawn().await;
    let bytes = noise(100_000, 11);
    let url = stored(&app, "obj.bin", &bytes).await;
    let expired = presigned(&app, "obj.bin", SystemTime::now() - Duration::from_secs(3600));
    let scanners = with_clamd(ClamdAddress::Tcp(clamd.addr.clone()));
    let size = bytes.len() as u64;

    // Act / Assert
    let why = scan_error(scanners.scan(ScannerKind::Clamd, &target(&expired, size)).await, "expired");
    assert!(why.contains("HTTP 403"), "{why}");
    assert!(!why.contains("X-Amz-Signature"), "errors never carry the presigned URL: {why}");
    for claimed in [size + 1, size - 1] {
        let why = scan_error(scanners.scan(ScannerKind::Clamd, &target(&url, claimed)).await, "size");
        assert!(why.contains(&format!("the object is {size} bytes")), "{why}");
    }
}

/// An HTTP server that serves `body` with `content-length: declared` (or chunked when None),
/// then closes: a body that breaks off, or that says nothing of its length.
async fn object_server(body: Vec<u8>, declared: Option<usize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/obj", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let mut answer = match declared {
                Some(n) => format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n").into_bytes(),
                None => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec(),
            };
            match declared {
                Some(_) => answer.extend_from_slice(&body),
                None => {
                    answer.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    answer.extend_from_slice(&body);
                    answer.extend_from_slice(b"\r\n0\r\n\r\n");
                }
            }
            let _ = conn.write_all(&answer).await;
            let _ = conn.shutdown().await;
        }
    });
    url
}

#[tokio::test]
async fn a_stream_that_breaks_off_or_runs_short_or_long_never_passes() {
    // Arrange
    let Some(clamd) = clamd::start().await else { return };
    let scanners = with_clamd(ClamdAddress::Tcp(clamd.addr.clone()));
    let body = noise(200_000, 5);
    let cut = object_server(body[..100_000].to_vec(), Some(body.len())).await;
    let unsized_url = object_server(body.clone(), None).await;

    // Act / Assert
    let why = scan_error(scanners.scan(ScannerKind::Clamd, &target(&cut, 200_000)).await, "cut");
    assert!(why.contains("reading the object after"), "{why}");
    let why = scan_error(scanners.scan(ScannerKind::Clamd, &target(&unsized_url, 300_000)).await, "short");
    assert!(why.contains("ended after 200000 of the asset's 300000 bytes"), "{why}");
    let why = scan_error(scanners.scan(ScannerKind::Clamd, &target(&unsized_url, 150_000)).await, "long");
    assert!(why.contains("longer than the asset's 150000 bytes"), "{why}");
}

#[tokio::test]
async fn a_store_that_stops_answering_ends_the_scan_at_the_timeout() {
    // Arrange: the app's presigned URLs go through a proxy that then holds every connection.
    let app = TestApp::spawn_with(crate::support::TestOptions { s3_proxy: true, ..Default::default() }).await;
    let url = stored(&app, "a.txt", b"hello").await;
    app.s3_proxy.as_ref().unwrap().freeze();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let scanners = scanners(Some(ClamdAddress::Tcp(format!("127.0.0.1:{port}"))), None, Duration::from_secs(1));

    // Act
    let outcome = scanners.scan(ScannerKind::Clamd, &target(&url, 5)).await;

    // Assert
    let why = scan_error(outcome, "frozen store");
    assert!(why.contains("BROKER_SCAN_TIMEOUT"), "{why}");
}

#[tokio::test]
async fn the_validator_gets_the_asset_and_a_url_that_works_and_its_2xx_passes() {
    // Arrange
    let app = TestApp::spawn().await;
    let url = stored(&app, "pic.png", b"not really a png").await;
    let validator = Validator::start(Rule::Pass).await;
    let scanners = scanners(None, Some(&validator.url), Duration::from_secs(30));
    let t = target(&url, 16);

    // Act
    let verdict = scanners.scan(ScannerKind::Http, &t).await;

    // Assert
    assert_eq!(verdict.unwrap(), Verdict::Clean);
    let seen = validator.seen();
    assert_eq!(seen.len(), 1);
    let asset = &seen[0].body["asset"];
    assert_eq!(seen[0].body["url"], url);
    assert_eq!(asset["id"], t.asset_id.to_string());
    assert_eq!((&asset["owner"], &asset["filename"]), (&"alice".into(), &"report.bin".into()));
    assert_eq!((&asset["content_type"], &asset["size"]), (&"application/octet-stream".into(), &16.into()));
    assert_eq!(seen[0].fetched, Some((200, b"not really a png".to_vec())), "the validator read the object");
}

#[tokio::test]
async fn a_validators_4xx_flags_with_its_reason_and_5xx_408_429_and_hangs_are_scan_errors() {
    // Arrange
    let app = TestApp::spawn().await;
    let url = stored(&app, "a.txt", b"hello").await;
    let validator = Validator::start(Rule::Pass).await;
    let scanners = scanners(None, Some(&validator.url), Duration::from_secs(2));
    let t = target(&url, 5);
    let answer = |status: u16, body: &str| Rule::Answer { status, body: body.into() };

    // Act / Assert: rejections
    for (rule, reason) in [
        (answer(422, r#"{"reason":"explicit content","score":0.98}"#), "explicit content"),
        (answer(403, r#"{"message":"owner is banned"}"#), "owner is banned"),
        (answer(451, "<h1>Unavailable\n for legal reasons</h1>"), "<h1>Unavailable for legal reasons</h1>"),
        (answer(400, ""), "rejected by the validator (HTTP 400)"),
    ] {
        validator.set(rule);
        assert_eq!(scanners.scan(ScannerKind::Http, &t).await.unwrap(), Verdict::Flagged(reason.into()));
    }

    // Act / Assert: no verdict, the job is retried
    for (rule, expect) in [
        (Rule::Fail, "HTTP 500"),
        (answer(503, "busy"), "HTTP 503"),
        (answer(408, ""), "HTTP 408"),
        (answer(429, r#"{"reason":"slow down"}"#), "HTTP 429"),
        (Rule::Hang, "BROKER_SCAN_TIMEOUT"),
    ] {
        validator.set(rule);
        let why = scan_error(scanners.scan(ScannerKind::Http, &t).await, expect);
        assert!(why.starts_with("validator http://127.0.0.1:") && why.contains(expect), "{why}");
    }
}

#[tokio::test]
async fn a_validator_redirect_is_a_scan_error_and_is_not_followed() {
    // Arrange: the validator redirects to another one, which must never hear of the asset.
    let app = TestApp::spawn().await;
    let url = stored(&app, "a.txt", b"hello").await;
    let elsewhere = Validator::start(Rule::Pass).await;
    let validator = Validator::start(Rule::Redirect(elsewhere.url.clone())).await;
    let scanners = scanners(None, Some(&validator.url), Duration::from_secs(10));

    // Act
    let outcome = scanners.scan(ScannerKind::Http, &target(&url, 5)).await;

    // Assert
    let why = scan_error(outcome, "redirect");
    assert!(why.contains("HTTP 302") && why.contains("redirect"), "{why}");
    assert_eq!(validator.seen().len(), 1);
    assert_eq!(elsewhere.seen().len(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_scanner_that_is_not_configured_is_a_scan_error() {
    let scanners = scanners(None, None, Duration::from_secs(5));
    let t = target("http://127.0.0.1:9/x", 1);
    let why = scan_error(scanners.scan(ScannerKind::Clamd, &t).await, "no clamd");
    assert!(why.contains("BROKER_CLAMD"), "{why}");
    let why = scan_error(scanners.scan(ScannerKind::Http, &t).await, "no validator");
    assert!(why.contains("BROKER_SCAN_URL"), "{why}");
}
