//! Keyset pagination, newest first by `(created_at, id)`, with an opaque cursor: what the
//! asset and collection listings share.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The opaque cursor: the last item's `(created_at in µs, id)`, base64url.
pub fn encode_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", t.timestamp_micros()))
}

pub fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (micros, id) = text.split_once('.')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

/// A page's size: 50 unless asked, 1 to 1000.
pub fn limit(limit: Option<i64>) -> Result<i64, Error> {
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit: must be 1 to 1000"));
    }
    Ok(limit)
}

/// Where a page starts: past every row for the first page (one statement per filter).
pub fn before(cursor: Option<&str>) -> Result<(DateTime<Utc>, Uuid), Error> {
    match cursor {
        None => Ok((DateTime::<Utc>::MAX_UTC, Uuid::max())),
        Some(c) => decode_cursor(c).ok_or_else(|| Error::invalid("cursor: not a cursor from this API")),
    }
}

/// `rows` were fetched with `limit + 1`: the extra row only tells that there is a next page.
pub fn page<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> Page<T> {
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            let (t, id) = key(r);
            encode_cursor(t, id)
        })
    } else {
        None
    };
    Page { items: rows, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(t, id)), Some((t, id)));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("12.notauuid")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
