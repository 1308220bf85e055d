//! Scanners an asset must pass before it is `ready`: ClamAV's clamd (INSTREAM, the object
//! streamed from a presigned GET, never buffered whole: [`clamd`]) and a generic HTTP
//! validator (POST the presigned GET URL, 2xx passes: [`http_validator`]). The job runner
//! (src/jobs) calls [`Scanners::scan`] and times it; a [`ScanError`] retries the job later,
//! a [`Verdict`] is final.
//!
//! Every scan is bounded by `BROKER_SCAN_TIMEOUT`, the object's transfer included: the
//! HTTP client carries that timeout per request, and the whole scan (connecting to clamd,
//! the GET, the stream, the reply) runs under it once more, so nothing here waits longer.
//! The client follows no redirect: a presigned GET never redirects, and a validator that
//! does could send the object's URL on to a host nobody configured.

mod clamd;
mod http_validator;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::ProcessingConfig;
use crate::profiles::ScannerKind;

/// What a scanner said of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// Flagged: the asset is quarantined with this reason (clamd's signature name, the
    /// validator's answer).
    Flagged(String),
}

/// The scan could not be done (scanner down, timed out, object unreadable): the job is
/// retried later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScanError(pub String);

/// The object to scan.
#[derive(Debug, Clone)]
pub struct ScanTarget<'a> {
    /// A presigned GET URL of the object, valid at least as long as the scan timeout.
    pub url: &'a str,
    pub size: u64,
    /// The ETag `complete` verified: clamd's GET asks for that version only (`If-Match`), so
    /// a verdict is about the bytes that were verified.
    pub etag: Option<&'a str>,
    pub content_type: &'a str,
    pub owner: &'a str,
    pub asset_id: uuid::Uuid,
    pub filename: &'a str,
}

/// The configured scanners, built once per process; clones share them.
#[derive(Clone)]
pub struct Scanners {
    inner: Arc<Inner>,
}

struct Inner {
    clamd: Option<clamd::Clamd>,
    validator: Option<http_validator::HttpValidator>,
    /// The object's GET (for clamd) and the validator's POST.
    http: reqwest::Client,
    timeout: Duration,
}

impl Scanners {
    pub fn new(config: &ProcessingConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.scan_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("r2-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("the scanners' HTTP client")?;
        let validator = config.scan_url.as_deref().map(http_validator::HttpValidator::new).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                clamd: config.clamd.clone().map(clamd::Clamd::new),
                validator,
                http,
                timeout: config.scan_timeout,
            }),
        })
    }

    /// clamd's `VERSION` reply (version, signature database and its date), within `limit`;
    /// `None` when no clamd is configured. For `r2-broker doctor`.
    pub async fn clamd_version(&self, limit: Duration) -> Option<Result<String, String>> {
        let clamd = self.inner.clamd.as_ref()?;
        Some(match tokio::time::timeout(limit, clamd.version()).await {
            Ok(reply) => reply,
            Err(_) => Err(format!("{}: no answer within {limit:?}", clamd.shown())),
        })
    }

    /// Asks scanner `kind` about `target`, within `BROKER_SCAN_TIMEOUT`.
    pub async fn scan(&self, kind: ScannerKind, target: &ScanTarget<'_>) -> Result<Verdict, ScanError> {
        let inner = &*self.inner;
        let work = async {
            match kind {
                ScannerKind::Clamd => match &inner.clamd {
                    Some(clamd) => clamd.scan(&inner.http, target).await,
                    None => Err(ScanError("clamd is not configured (BROKER_CLAMD)".into())),
                },
                ScannerKind::Http => match &inner.validator {
                    Some(validator) => validator.scan(&inner.http, target).await,
                    None => Err(ScanError("the HTTP validator is not configured (BROKER_SCAN_URL)".into())),
                },
            }
        };
        match tokio::time::timeout(inner.timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let who = match kind {
                    ScannerKind::Clamd => inner.clamd.as_ref().map(clamd::Clamd::shown),
                    ScannerKind::Http => inner.validator.as_ref().map(|v| v.shown().to_owned()),
                };
                let who = who.unwrap_or_else(|| kind.as_str().to_owned());
                Err(ScanError(format!("{who}: no verdict within {:?} (BROKER_SCAN_TIMEOUT)", inner.timeout)))
            }
        }
    }
}

/// A reqwest error without its URL (a presigned URL is a credential until it expires) and
/// with its causes, which carry the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer within BROKER_SCAN_TIMEOUT"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the body broke off"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // hyper and reqwest repeat a cause in the next one's text.
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        source = s.source();
    }
    match causes.is_empty() {
        true => what.to_owned(),
        false => format!("{what}: {}", causes.join(": ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job runner spawns scans on the multi-threaded runtime and shares one `Scanners`.
    #[test]
    fn scanners_are_shared_across_threads_and_a_scan_can_be_spawned() {
        fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let scanners = Scanners::new(&ProcessingConfig::default()).unwrap();
        send_sync(&scanners);
        let target = ScanTarget {
            url: "http://127.0.0.1:9/x",
            size: 1,
            etag: None,
            content_type: "text/plain",
            owner: "o",
            asset_id: uuid::Uuid::nil(),
            filename: "f",
        };
        send(&scanners.scan(ScannerKind::Clamd, &target));
    }
}
