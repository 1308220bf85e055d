//! SigV4 text forms and input checks for the presigner: the signing time stamp, header
//! value canonicalisation and the checks on keys, header values and expiry.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike};

use sha2::{Digest, Sha256};

use super::{MAX_EXPIRES_IN, PresignError};
use crate::limits::MAX_KEY_LEN;

/// The signing time, truncated to the second, in the two SigV4 text forms.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    /// Seconds since the Unix epoch.
    pub(crate) secs: u64,
    /// Days since the Unix epoch (the signing-key cache key).
    pub(crate) day: u64,
    /// `YYYYMMDD'T'HHMMSS'Z'`; its first 8 bytes are the `YYYYMMDD` date. Kept inline (no
    /// allocation): a stamp is made for every presigned URL.
    date_time: [u8; 16],
}

impl Stamp {
    pub(crate) fn new(now: SystemTime) -> Result<Self, PresignError> {
        let secs = now.duration_since(UNIX_EPOCH).map_err(|_| PresignError::InvalidTime)?.as_secs();
        let t =
            i64::try_from(secs).ok().and_then(|s| DateTime::from_timestamp(s, 0)).ok_or(PresignError::InvalidTime)?;
        // SigV4 dates have exactly four year digits.
        if t.year() > 9999 {
            return Err(PresignError::InvalidTime);
        }
        let mut date_time = [0u8; 16];
        write!(&mut date_time[..], "{}", t.format("%Y%m%dT%H%M%SZ")).map_err(|_| PresignError::InvalidTime)?;
        Ok(Stamp { secs, day: secs / 86_400, date_time })
    }

    /// `YYYYMMDD`
    pub(crate) fn date(&self) -> &str {
        &self.date_time()[..8]
    }

    pub(crate) fn date_time(&self) -> &str {
        // chrono wrote ASCII digits, `T` and `Z` only.
        std::str::from_utf8(&self.date_time).expect("ASCII")
    }
}

pub(crate) fn is_visible_ascii_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A header value a client can send and a server will canonicalise like we do:
/// non-empty, visible ASCII and spaces only (no tabs, controls or non-ASCII bytes).
pub(crate) fn check_header_value(name: &'static str, v: &str) -> Result<(), PresignError> {
    if v.trim_matches(' ').is_empty() || !v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(PresignError::InvalidHeaderValue(name));
    }
    Ok(())
}

pub(crate) fn check_expiry(expires_in: Duration) -> Result<u64, PresignError> {
    if expires_in < Duration::from_secs(1) || expires_in > MAX_EXPIRES_IN {
        return Err(PresignError::InvalidExpiry);
    }
    Ok(expires_in.as_secs())
}

/// Object keys as S3 path segments: 1..=1024 bytes, no leading `/`, and no `.` or `..`
/// segment (browsers and HTTP libraries resolve dot segments before sending, which
/// would change the signed path).
pub(crate) fn check_key(key: &str) -> Result<(), PresignError> {
    if key.is_empty() {
        return Err(PresignError::InvalidKey("empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(PresignError::InvalidKey("longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(PresignError::InvalidKey("starts with '/'"));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err(PresignError::InvalidKey("has a '.' or '..' segment"));
    }
    Ok(())
}

/// A query value: a string (percent-encoded) or a number.
#[derive(Clone, Copy)]
pub(crate) enum QueryValue<'a> {
    Str(&'a str),
    Num(u64),
}

/// A value as it goes into the canonical request: aws-sigv4 trims spaces at both ends
/// and collapses runs of spaces into one (S3 does the same on its side).
pub(crate) fn hash_header_value(h: &mut Sha256, v: &str) {
    let v = v.trim_matches(' ');
    if !v.contains("  ") {
        h.update(v.as_bytes());
        return;
    }
    let mut prev_space = false;
    for part in v.split(' ') {
        if part.is_empty() {
            continue;
        }
        if prev_space {
            h.update(b" ");
        }
        h.update(part.as_bytes());
        prev_space = true;
    }
}
