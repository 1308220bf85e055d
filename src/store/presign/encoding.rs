//! SigV4 text forms and input checks for the presigner: the signing time stamp, header
//! value canonicalisation and the checks on keys, header values and expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// `YYYYMMDD`
    pub(crate) date: [u8; 8],
    /// `YYYYMMDD'T'HHMMSS'Z'`
    pub(crate) date_time: [u8; 16],
}

impl Stamp {
    pub(crate) fn new(now: SystemTime) -> Result<Self, PresignError> {
        let secs = now.duration_since(UNIX_EPOCH).map_err(|_| PresignError::InvalidTime)?.as_secs();
        let day = secs / 86_400;
        let (y, m, d) = civil_from_days(day);
        if y > 9999 {
            return Err(PresignError::InvalidTime);
        }
        let tod = secs % 86_400;
        let mut date = [0u8; 8];
        put_digits(&mut date[0..4], y);
        put_digits(&mut date[4..6], m);
        put_digits(&mut date[6..8], d);
        let mut date_time = [0u8; 16];
        date_time[..8].copy_from_slice(&date);
        date_time[8] = b'T';
        put_digits(&mut date_time[9..11], tod / 3600);
        put_digits(&mut date_time[11..13], tod / 60 % 60);
        put_digits(&mut date_time[13..15], tod % 60);
        date_time[15] = b'Z';
        Ok(Stamp { secs, day, date, date_time })
    }

    pub(crate) fn date(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.date).expect("ASCII")
    }

    pub(crate) fn date_time(&self) -> &str {
        std::str::from_utf8(&self.date_time).expect("ASCII")
    }
}

/// Writes `n` as exactly `out.len()` decimal digits (zero-padded).
fn put_digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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
