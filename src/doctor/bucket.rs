//! The bucket with these credentials (HeadBucket), and the clock against the store's.

use std::time::{Duration, SystemTime};

use super::Finding;
use crate::config::{Config, Provider};
use crate::store::Store;

const BUCKET: &str = "bucket";
const CLOCK: &str = "clock";

/// Past this, worth fixing (NTP); presigned URLs still work.
const CLOCK_WARN: Duration = Duration::from_secs(60);
/// SigV4 refuses a request signed more than 15 minutes away from the store's clock.
const CLOCK_FAIL: Duration = Duration::from_secs(15 * 60);

pub async fn reachable(config: &Config, store: &Store) -> Finding {
    let Err(e) = store.head_bucket().await else {
        return Finding::ok(BUCKET, format!("{} answers HeadBucket with these credentials", store.bucket()));
    };
    let (detail, fix) = match e.status {
        Some(403) => (
            "the store refuses these credentials for this bucket (403)",
            match config.s3.provider {
                Provider::R2 => {
                    "check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: an R2 API token with Object Read & \
                     Write on this bucket (the token's S3 credentials, not its API token value)"
                }
                Provider::S3 => {
                    "check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and that their IAM policy allows \
                     s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject on this bucket"
                }
            },
        ),
        Some(404) => ("there is no such bucket at this endpoint (404)", "check S3_BUCKET and S3_ENDPOINT"),
        Some(301 | 400) => (
            "the store refuses the request as addressed (wrong region or endpoint)",
            "check S3_REGION (`auto` for R2) and S3_ENDPOINT",
        ),
        Some(_) => ("the store answered with an error", "check S3_ENDPOINT; retry if the store has an outage"),
        None => (
            "the store did not answer within BROKER_STORE_TIMEOUT",
            "check S3_ENDPOINT (scheme, host, port) and that this machine can reach it",
        ),
    };
    Finding::failed(BUCKET, format!("{detail}: {e}"), fix)
}

/// Any answer of the store carries its `Date`: an unsigned request is enough.
pub async fn clock(config: &Config, http: &reqwest::Client) -> Finding {
    let before = SystemTime::now();
    let resp = match http.get(format!("{}/", config.s3.endpoint)).send().await {
        Ok(r) => r,
        Err(e) => return Finding::cannot_check(CLOCK, format!("the store did not answer: {}", without_url(&e))),
    };
    let after = SystemTime::now();
    let Some(date) = resp.headers().get(http::header::DATE).and_then(|v| v.to_str().ok()) else {
        return Finding::cannot_check(CLOCK, "the store's answer has no Date header");
    };
    let Ok(theirs) = chrono::DateTime::parse_from_rfc2822(date) else {
        return Finding::cannot_check(CLOCK, format!("the store's Date {date:?} does not parse"));
    };
    let ours = before + after.duration_since(before).unwrap_or_default() / 2;
    let ours = chrono::DateTime::<chrono::Utc>::from(ours);
    let skew = (theirs.with_timezone(&chrono::Utc) - ours).num_milliseconds();
    let abs = Duration::from_millis(skew.unsigned_abs());
    let direction = if skew > 0 { "behind" } else { "ahead of" };
    // `Date` has whole seconds: a second either way is no skew at all.
    let detail = if abs < Duration::from_secs(2) {
        return Finding::ok(CLOCK, "within a second of the store's clock");
    } else {
        format!("this machine's clock is {}s {direction} the store's", abs.as_secs())
    };
    let fix = "synchronise this machine's clock (NTP: systemd-timesyncd, chrony)";
    if abs > CLOCK_FAIL {
        Finding::failed(CLOCK, format!("{detail}: past SigV4's 15 minutes, the store refuses every URL"), fix)
    } else if abs > CLOCK_WARN {
        Finding::warning(CLOCK, format!("{detail}: URLs still work (SigV4 allows 15 minutes)"), fix)
    } else {
        Finding::ok(CLOCK, detail)
    }
}

/// A reqwest error without the URL (which may hold a signature).
pub(super) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer within BROKER_STORE_TIMEOUT"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut why = String::new();
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() { kind.to_owned() } else { format!("{kind} ({why})") }
}
