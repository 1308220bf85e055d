//! ClamAV's clamd over INSTREAM: the object comes from its presigned GET and goes to clamd
//! chunk by chunk as it arrives (one chunk in memory at a time, the GET's body read only as
//! fast as clamd takes it), so an object of any size costs the same memory.
//!
//! The protocol (clamd(8)) is written out here rather than taken from `clamav-client`:
//! that crate's `scan_stream` returns the write error when clamd stops reading — which is
//! how clamd answers an object past its `StreamMaxLength` — and drops clamd's reply with
//! the connection, so "INSTREAM size limit exceeded" would reach the operator as "Broken
//! pipe". Here a failed write still reads what clamd said. The rest is a few lines:
//! `zINSTREAM\0`, then frames of a 4-byte big-endian length and that many bytes, a zero
//! length to end; clamd answers `stream: OK`, `stream: <signature> FOUND` or `<why> ERROR`,
//! NUL-terminated.
//!
//! A GET that fails or delivers other than `size` bytes never gets the zero length: clamd
//! gives no verdict on a partial object, and the scan is an error (retried), not a pass.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ScanError, ScanTarget, Verdict, describe};
use crate::config::ClamdAddress;

/// The largest frame sent: a body chunk larger than this is split.
const FRAME: usize = 64 * 1024;
/// clamd's replies are one short line; anything longer is cut here.
const REPLY_MAX: usize = 4096;
/// After a failed write, how long clamd may take to be heard (its reply, if it sent one, is
/// already on the way: it wrote it before it closed).
const LAST_WORD: Duration = Duration::from_secs(2);

pub(super) struct Clamd {
    address: ClamdAddress,
}

/// Why streaming stopped: the object side (no verdict is asked for) or clamd's side (it
/// may have said why).
enum Stop {
    Object(String),
    Clamd(std::io::Error),
}

impl Clamd {
    pub(super) fn new(address: ClamdAddress) -> Self {
        Self { address }
    }

    /// `zVERSION`: clamd's version and signature database date (for `r2-broker doctor`).
    pub(super) async fn version(&self) -> Result<String, String> {
        let cannot = |e: std::io::Error| format!("{}: cannot connect: {e}", self.shown());
        let reply = match &self.address {
            ClamdAddress::Tcp(hostport) => {
                let conn = tokio::net::TcpStream::connect(hostport.as_str()).await.map_err(cannot)?;
                ask(conn, b"zVERSION\0").await
            }
            #[cfg(unix)]
            ClamdAddress::Unix(path) => {
                let conn = tokio::net::UnixStream::connect(path).await.map_err(cannot)?;
                ask(conn, b"zVERSION\0").await
            }
            #[cfg(not(unix))]
            ClamdAddress::Unix(_) => return Err("unix sockets need a unix system".into()),
        };
        reply.map_err(|e| format!("{}: {e}", self.shown()))
    }

    pub(super) async fn scan(&self, http: &reqwest::Client, target: &ScanTarget<'_>) -> Result<Verdict, ScanError> {
        self.try_scan(http, target).await.map_err(|why| ScanError(format!("{}: {why}", self.shown())))
    }

    /// How errors name this clamd.
    pub(super) fn shown(&self) -> String {
        match &self.address {
            ClamdAddress::Tcp(hostport) => format!("clamd (tcp://{hostport})"),
            ClamdAddress::Unix(path) => format!("clamd (unix:{})", path.display()),
        }
    }

    async fn try_scan(&self, http: &reqwest::Client, target: &ScanTarget<'_>) -> Result<Verdict, String> {
        // The GET first: a store that refuses it holds none of clamd's few connections.
        let mut get = http.get(target.url);
        if let Some(etag) = target.etag {
            get = get.header("if-match", etag);
        }
        let object = get.send().await.map_err(|e| format!("GET of the object: {}", describe(&e)))?;
        let status = object.status();
        if status.as_u16() == 412 {
            // Replaced since `complete` verified it: whatever is there now was never checked.
            return Ok(Verdict::Flagged("the object changed after it was verified".into()));
        }
        if !status.is_success() {
            return Err(format!("GET of the object answered HTTP {}", status.as_u16()));
        }
        if let Some(length) = object.content_length()
            && length != target.size
        {
            return Err(format!("the object is {length} bytes, the asset {}", target.size));
        }
        let cannot = |e: std::io::Error| format!("cannot connect: {e}");
        match &self.address {
            ClamdAddress::Tcp(hostport) => {
                let conn = tokio::net::TcpStream::connect(hostport.as_str()).await.map_err(cannot)?;
                instream(conn, object, target.size).await
            }
            #[cfg(unix)]
            ClamdAddress::Unix(path) => {
                let conn = tokio::net::UnixStream::connect(path).await.map_err(cannot)?;
                instream(conn, object, target.size).await
            }
            #[cfg(not(unix))]
            ClamdAddress::Unix(_) => Err("unix sockets need a unix system".into()),
        }
    }
}

/// One command, one reply.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S, command: &[u8]) -> Result<String, String> {
    conn.write_all(command).await.map_err(|e| format!("sending {:?}: {e}", String::from_utf8_lossy(command)))?;
    read_reply(&mut conn).await.map_err(|e| format!("reading the reply: {e}"))
}

async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    object: reqwest::Response,
    size: u64,
) -> Result<Verdict, String> {
    match send(&mut conn, object, size).await {
        Ok(()) => {}
        Err(Stop::Object(why)) => return Err(why),
        Err(Stop::Clamd(e)) => {
            // clamd closes mid-stream when it refuses (size limit): its reply says why.
            let said = tokio::time::timeout(LAST_WORD, read_reply(&mut conn)).await;
            return match said {
                Ok(Ok(reply)) if !reply.is_empty() => verdict(&reply),
                _ => Err(format!("sending the object: {e}")),
            };
        }
    }
    let reply = read_reply(&mut conn).await.map_err(|e| format!("reading the verdict: {e}"))?;
    verdict(&reply)
}

/// INSTREAM with the object's body, counted against `size`.
async fn send<S: AsyncWrite + Unpin>(conn: &mut S, mut object: reqwest::Response, size: u64) -> Result<(), Stop> {
    conn.write_all(b"zINSTREAM\0").await.map_err(Stop::Clamd)?;
    // Length and bytes in one write: two small writes per frame would wait on each other
    // (Nagle and delayed ACKs).
    let mut frame = Vec::with_capacity(4 + FRAME);
    let mut sent: u64 = 0;
    loop {
        let chunk = match object.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(Stop::Object(format!("reading the object after {sent} bytes: {}", describe(&e)))),
        };
        sent += chunk.len() as u64;
        if sent > size {
            return Err(Stop::Object(format!("the object is longer than the asset's {size} bytes")));
        }
        for part in chunk.chunks(FRAME) {
            frame.clear();
            // A part is at most FRAME (64 KiB) long: the cast is exact.
            frame.extend_from_slice(&(part.len() as u32).to_be_bytes());
            frame.extend_from_slice(part);
            conn.write_all(&frame).await.map_err(Stop::Clamd)?;
        }
    }
    if sent != size {
        return Err(Stop::Object(format!("the object ended after {sent} of the asset's {size} bytes")));
    }
    conn.write_all(&[0; 4]).await.map_err(Stop::Clamd)?;
    conn.flush().await.map_err(Stop::Clamd)
}

/// clamd's reply: up to the NUL (or the end of the connection), trimmed.
async fn read_reply<S: AsyncRead + Unpin>(conn: &mut S) -> std::io::Result<String> {
    let mut reply = Vec::with_capacity(64);
    let mut buf = [0u8; 512];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if let Some(end) = reply.iter().position(|&b| b == 0) {
            reply.truncate(end);
            break;
        }
        if reply.len() >= REPLY_MAX {
            reply.truncate(REPLY_MAX);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}

/// The verdict in clamd's reply, or why there is none.
fn verdict(reply: &str) -> Result<Verdict, String> {
    let said = reply.strip_prefix("stream:").map_or(reply, str::trim);
    if said == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = said.strip_suffix(" FOUND") {
        return Ok(Verdict::Flagged(signature_name(name.trim()).to_owned()));
    }
    if let Some(why) = said.strip_suffix("ERROR") {
        let why = why.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
        return Err(format!("clamd refused the scan: {why}"));
    }
    if reply.is_empty() {
        return Err("clamd closed the connection without a verdict".into());
    }
    Err(format!("clamd's reply is not understood: {reply:?}"))
}

/// The signature's name without the `(hash:size)` that `ExtendedDetectionInfo` appends.
fn signature_name(found: &str) -> &str {
    let Some(open) = found.strip_suffix(')').and_then(|s| s.rfind('(')) else { return found };
    let detail = &found[open + 1..found.len() - 1];
    let extended = detail.split_once(':').is_some_and(|(hash, size)| {
        !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()) && size.bytes().all(|b| b.is_ascii_digit())
    });
    if extended && open > 0 { &found[..open] } else { found }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_replies_become_verdicts_or_errors() {
        assert_eq!(verdict("stream: OK"), Ok(Verdict::Clean));
        assert_eq!(verdict("stream: Win.Test.EICAR_HDB-1 FOUND"), Ok(Verdict::Flagged("Win.Test.EICAR_HDB-1".into())));
        assert_eq!(
            verdict("stream: Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND"),
            Ok(Verdict::Flagged("Eicar-Signature".into()))
        );
        assert_eq!(
            verdict("INSTREAM size limit exceeded. ERROR"),
            Err("clamd refused the scan: INSTREAM size limit exceeded".into())
        );
        assert_eq!(
            verdict("stream: Can't allocate memory ERROR"),
            Err("clamd refused the scan: Can't allocate memory".into())
        );
        assert_eq!(verdict(""), Err("clamd closed the connection without a verdict".into()));
        assert!(verdict("UNKNOWN COMMAND").unwrap_err().contains("not understood"));
    }

    #[test]
    fn only_the_extended_detection_suffix_is_cut_from_a_signature_name() {
        assert_eq!(signature_name("Eicar-Signature(44d88612:68)"), "Eicar-Signature");
        assert_eq!(signature_name("Odd.Name(beta)"), "Odd.Name(beta)");
        assert_eq!(signature_name("(abc:1)"), "(abc:1)");
        assert_eq!(signature_name("Plain.Name"), "Plain.Name");
    }
}
