//! The deployment's side of the asset lifecycle: where the scanners are, the bounds of the
//! image worker, the webhook endpoint and secret, and where the jobs run.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Settings, bad, number, seconds, secrets};
use crate::profiles::{Profiles, ScannerKind};

/// Where clamd listens (`BROKER_CLAMD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `tcp://host:port`
    Tcp(String),
    /// `unix:/path/to/clamd.ctl`
    Unix(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct ProcessingConfig {
    /// Run the jobs and webhook deliveries in the serving process (`BROKER_JOBS=in-process`,
    /// the default); `false` leaves them to `r2-broker worker`.
    pub jobs_in_process: bool,
    /// Jobs worked on at once by one process.
    pub job_concurrency: usize,
    /// Seconds between two looks at the queue when it was empty.
    pub job_interval: Duration,
    pub clamd: Option<ClamdAddress>,
    /// The generic HTTP validator (`BROKER_SCAN_URL`).
    pub scan_url: Option<String>,
    /// Bound of one scan, the object's transfer included.
    pub scan_timeout: Duration,
    /// Objects larger than this get no variants (and are not downloaded for them).
    pub variant_max_bytes: u64,
    /// Decoded images larger than this many pixels are refused (decompression bombs).
    pub variant_max_pixels: u64,
    /// Bound of one asset's variants, download and upload included.
    pub variant_timeout: Duration,
    pub webhook_url: Option<String>,
    /// `whsec_…` (Standard Webhooks): base64 after the prefix.
    pub webhook_secret: Option<SecretString>,
    /// Bound of one delivery.
    pub webhook_timeout: Duration,
    /// Deliveries tried at most before an event is given up (listed as failed).
    pub webhook_max_attempts: u32,
    /// The wait after the first failed delivery; it doubles per attempt.
    pub webhook_backoff: Duration,
    /// The longest wait between two attempts.
    pub webhook_backoff_max: Duration,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            jobs_in_process: true,
            job_concurrency: 2,
            job_interval: Duration::from_secs(1),
            clamd: None,
            scan_url: None,
            scan_timeout: Duration::from_secs(120),
            variant_max_bytes: 100 << 20,
            variant_max_pixels: 100_000_000,
            variant_timeout: Duration::from_secs(60),
            webhook_url: None,
            webhook_secret: None,
            webhook_timeout: Duration::from_secs(10),
            webhook_max_attempts: 12,
            webhook_backoff: Duration::from_secs(5),
            webhook_backoff_max: Duration::from_secs(3600),
        }
    }
}

impl ProcessingConfig {
    /// Where a profile's events go: its own `webhook_url`, else `BROKER_WEBHOOK_URL`; `None`
    /// when it turned events off or no endpoint is set (its events are then not written).
    pub fn webhook_endpoint<'a>(&'a self, profile: &'a crate::profiles::Profile) -> Option<&'a str> {
        if !profile.processing.webhooks {
            return None;
        }
        profile.processing.webhook_url.as_deref().or(self.webhook_url.as_deref())
    }

    /// Whether any webhook endpoint is configured at all.
    pub fn any_webhook(&self, profiles: &Profiles) -> bool {
        self.webhook_url.is_some() || profiles.iter().any(|p| p.processing.webhook_url.is_some())
    }
}

pub(super) fn validate(s: &Settings, profiles: &Profiles) -> Result<ProcessingConfig, ConfigError> {
    let d = ProcessingConfig::default();
    let jobs_in_process = match s.jobs.as_deref().map(str::trim) {
        None | Some("") | Some("in-process") => true,
        Some("off") => false,
        Some(other) => return Err(bad("BROKER_JOBS", format!("{other:?} is not `in-process` or `off`"))),
    };
    let job_concurrency = number(&s.job_concurrency, "BROKER_JOB_CONCURRENCY", d.job_concurrency)?;
    if !(1..=256).contains(&job_concurrency) {
        return Err(bad("BROKER_JOB_CONCURRENCY", "must be 1 to 256"));
    }
    let clamd = match s.clamd.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(clamd_address(v)?),
    };
    let scan_url = match s.scan_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.starts_with("https://") || v.starts_with("http://") => Some(v.to_owned()),
        Some(_) => return Err(bad("BROKER_SCAN_URL", "must start with http:// or https://")),
    };
    for p in profiles.iter() {
        for kind in &p.processing.scan {
            let (missing, variable) = match kind {
                ScannerKind::Clamd => (clamd.is_none(), "BROKER_CLAMD"),
                ScannerKind::Http => (scan_url.is_none(), "BROKER_SCAN_URL"),
            };
            if missing {
                return Err(bad(variable, format!("is required: profile {:?} scans with {}", p.name, kind.as_str())));
            }
        }
    }
    let webhook_url = match s.webhook_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.starts_with("https://") || v.starts_with("http://") => Some(v.to_owned()),
        Some(_) => return Err(bad("BROKER_WEBHOOK_URL", "must start with http:// or https://")),
    };
    let secret = secrets::secret(
        &s.webhook_secret,
        &s.webhook_secret_file,
        "BROKER_WEBHOOK_SECRET",
        "BROKER_WEBHOOK_SECRET_FILE",
    )?;
    if let Some(secret) = &secret {
        check_webhook_secret(secret)?;
    }
    let config = ProcessingConfig {
        jobs_in_process,
        job_concurrency,
        job_interval: seconds(&s.job_interval, "BROKER_JOB_INTERVAL", 1.0, 0.05..=3600.0)?,
        clamd,
        scan_url,
        scan_timeout: seconds(&s.scan_timeout, "BROKER_SCAN_TIMEOUT", 120.0, 1.0..=3600.0)?,
        variant_max_bytes: number(&s.variant_max_bytes, "BROKER_VARIANT_MAX_BYTES", d.variant_max_bytes)?,
        variant_max_pixels: number(&s.variant_max_pixels, "BROKER_VARIANT_MAX_PIXELS", d.variant_max_pixels)?,
        variant_timeout: seconds(&s.variant_timeout, "BROKER_VARIANT_TIMEOUT", 60.0, 1.0..=3600.0)?,
        webhook_url,
        webhook_secret: secret.map(SecretString::from),
        webhook_timeout: seconds(&s.webhook_timeout, "BROKER_WEBHOOK_TIMEOUT", 10.0, 0.1..=300.0)?,
        webhook_max_attempts: number(&s.webhook_max_attempts, "BROKER_WEBHOOK_MAX_ATTEMPTS", d.webhook_max_attempts)?
            .max(1),
        webhook_backoff: seconds(&s.webhook_backoff, "BROKER_WEBHOOK_BACKOFF", 5.0, 0.01..=86_400.0)?,
        webhook_backoff_max: seconds(&s.webhook_backoff_max, "BROKER_WEBHOOK_BACKOFF_MAX", 3600.0, 0.01..=604_800.0)?,
    };
    if config.any_webhook(profiles) && config.webhook_secret.is_none() {
        return Err(bad("BROKER_WEBHOOK_SECRET", "is required when a webhook URL is set (whsec_ and base64)"));
    }
    Ok(config)
}

fn clamd_address(v: &str) -> Result<ClamdAddress, ConfigError> {
    if let Some(hostport) = v.strip_prefix("tcp://") {
        let hostport = hostport.trim_end_matches('/');
        if hostport.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
            return Err(bad("BROKER_CLAMD", "tcp://HOST:PORT, e.g. tcp://127.0.0.1:3310"));
        }
        return Ok(ClamdAddress::Tcp(hostport.to_owned()));
    }
    if let Some(path) = v.strip_prefix("unix:")
        && !path.is_empty()
    {
        return Ok(ClamdAddress::Unix(path.into()));
    }
    Err(bad("BROKER_CLAMD", "must be tcp://HOST:PORT or unix:/path/to/clamd.ctl"))
}

/// Standard Webhooks secrets: `whsec_` and the base64 of 24 to 64 random bytes.
fn check_webhook_secret(secret: &str) -> Result<(), ConfigError> {
    use base64::Engine;
    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(bytes) if (24..=64).contains(&bytes.len()) => Ok(()),
        _ => Err(bad("BROKER_WEBHOOK_SECRET", "must be whsec_ followed by the base64 of 24 to 64 random bytes")),
    }
}
