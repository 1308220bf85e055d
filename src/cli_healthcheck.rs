//! `r2-broker healthcheck`: one plain HTTP/1.1 GET (by default of `/readyz` on the address
//! in `BROKER_LISTEN`), exit 0 on a 2xx answer and 1 otherwise. It is the Docker image's
//! `HEALTHCHECK`, so the image needs no curl; it reads no other setting, so it runs in a
//! container whose configuration is otherwise only in the server's environment.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to GET (http only) [default: http://<BROKER_LISTEN>/readyz, a wildcard address
    /// becoming loopback]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    pub timeout: u64,
}

/// Runs the check; `listen` is `BROKER_LISTEN` (or its flag) when set.
pub fn run(args: &HealthcheckArgs, listen: Option<&str>) -> ExitCode {
    let url = args.url.clone().unwrap_or_else(|| default_url(listen.unwrap_or("127.0.0.1:8080")));
    match check(&url, Duration::from_secs(args.timeout.max(1))) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {url}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `http://<listen>/readyz`, with `0.0.0.0` / `[::]` (or no host) replaced by loopback.
pub fn default_url(listen: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "8080"));
    let host = match host {
        "" | "0.0.0.0" | "*" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    };
    format!("http://{host}:{port}/readyz")
}

/// The status code of `GET url`, within `timeout` overall.
pub fn check(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let deadline = Instant::now() + timeout;
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("only http:// URLs are supported"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if authority.is_empty() || authority.contains('@') {
        bail!("not a URL like http://host:port/path");
    }
    let addr = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_owned()
    };
    let addrs: Vec<_> = addr.to_socket_addrs().with_context(|| format!("resolving {addr}"))?.collect();
    let mut last = anyhow!("{addr} resolved to no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(stream) => return get(stream, authority, path, deadline),
            Err(e) => last = anyhow!("connecting to {a}: {e}"),
        }
    }
    Err(last)
}

fn get(mut stream: TcpStream, host: &str, path: &str, deadline: Instant) -> anyhow::Result<u16> {
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left()))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: r2-broker-healthcheck\r\n\
         accept: */*\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).context("sending the request")?;
    // Only the status line matters: read until its end (or the answer ends).
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') {
        stream.set_read_timeout(Some(left()))?;
        let n = stream.read(&mut buf).context("reading the answer")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    // "HTTP/1.1 200 OK"
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => bail!("not an HTTP answer: {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn default_url_uses_loopback_for_wildcards() {
        assert_eq!(default_url("0.0.0.0:8080"), "http://127.0.0.1:8080/readyz");
        assert_eq!(default_url("[::]:9090"), "http://[::1]:9090/readyz");
        assert_eq!(default_url("127.0.0.1:8081"), "http://127.0.0.1:8081/readyz");
        assert_eq!(default_url("broker.internal:80"), "http://broker.internal:80/readyz");
    }

    /// A one-shot server sending `answer`; returns its URL and the request it saw.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/readyz", listener.local_addr().unwrap());
        let seen = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        (url, seen)
    }

    #[test]
    fn reads_the_status_code() {
        let (url, seen) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(check(&url, Duration::from_secs(3)).unwrap(), 200);
        let req = seen.join().unwrap();
        assert!(req.starts_with("GET /readyz HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nhost: 127.0.0.1:"), "{req}");

        let (url, _) = serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(check(&url, Duration::from_secs(3)).unwrap(), 503);
        let (url, _) = serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(run(&HealthcheckArgs { url: Some(url), timeout: 3 }, None), ExitCode::FAILURE);
        let (url, _) = serve_once("HTTP/1.0 204 No Content\r\n\r\n");
        assert_eq!(run(&HealthcheckArgs { url: Some(url), timeout: 3 }, None), ExitCode::SUCCESS);
    }

    #[test]
    fn fails_on_no_server_garbage_or_silence() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(check(&format!("http://127.0.0.1:{port}/readyz"), Duration::from_secs(3)).is_err());
        let (url, _) = serve_once("SSH-2.0-OpenSSH\r\n");
        assert!(check(&url, Duration::from_secs(3)).is_err());
        assert!(check("https://127.0.0.1/readyz", Duration::from_secs(3)).is_err());

        // Accepts but never answers: gives up at the timeout.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/readyz", listener.local_addr().unwrap());
        let t0 = Instant::now();
        let err = check(&url, Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2), "{err:#}");
        drop(listener);
    }
}
