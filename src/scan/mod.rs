//! Scanners an asset must pass before it is `ready`: ClamAV's clamd (INSTREAM, the object
//! streamed from a presigned GET, never buffered whole) and a generic HTTP validator (POST
//! the presigned GET URL, 2xx passes). The job runner (src/jobs) calls [`Scanners::scan`].
//!
//! INTERFACE PLACEHOLDER: the scan helper replaces the body of this module.

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
    pub content_type: &'a str,
    pub owner: &'a str,
    pub asset_id: uuid::Uuid,
    pub filename: &'a str,
}

/// The configured scanners, built once per process.
#[derive(Clone)]
pub struct Scanners {}

impl Scanners {
    pub fn new(_config: &ProcessingConfig) -> anyhow::Result<Self> {
        Ok(Self {})
    }

    pub async fn scan(&self, kind: ScannerKind, _target: &ScanTarget<'_>) -> Result<Verdict, ScanError> {
        Err(ScanError(format!("scanner {} is not built yet", kind.as_str())))
    }
}
