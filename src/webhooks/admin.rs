//! The admin side of the outbox: the events given up (newest first, keyset cursor), and
//! retrying them — one, or all of them in bounded steps. A retry makes the event due now
//! with a fresh count of attempts; the worker sends it with its original id and body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::webhooks::EventRow;
use crate::error::Error;
use crate::state::AppState;

/// Events made due per `retry_failed` call.
const RETRY_BATCH: i64 = 1000;

#[derive(Debug, Serialize)]
pub struct FailedPage {
    /// Each serialises as the API's `WebhookEvent`.
    pub items: Vec<EventRow>,
    pub next_cursor: Option<String>,
}

/// The opaque cursor: the last item's `(failed_at in µs, id)`, base64url (as assets').
fn encode_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", t.timestamp_micros()))
}

fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (micros, id) = text.split_once('.')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

pub async fn list_failed(state: &AppState, limit: Option<i64>, cursor: Option<&str>) -> Result<FailedPage, Error> {
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit: must be 1 to 1000"));
    }
    let before = match cursor {
        None => (DateTime::<Utc>::MAX_UTC, Uuid::max()),
        Some(c) => decode_cursor(c).ok_or_else(|| Error::invalid("cursor: not a cursor from this API"))?,
    };
    // One extra row tells whether there is a next page.
    let mut items = crate::db::webhooks::list_failed(&state.db, before, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().and_then(|r| Some(encode_cursor(r.failed_at?, r.id)))
    } else {
        None
    };
    Ok(FailedPage { items, next_cursor })
}

/// Makes one undelivered event due now: a failed one, or one still pending (its next
/// attempt comes now instead of after its backoff). Unknown: 404; delivered: 409.
pub async fn retry(state: &AppState, owner: &str, id: Uuid) -> Result<EventRow, Error> {
    if !crate::owner::is_valid(owner) {
        return Err(Error::NotFound);
    }
    if let Some(row) = crate::db::webhooks::retry(&state.db, owner, id).await? {
        tracing::info!(event_id = %id, owner, "webhook event retried by an admin");
        return Ok(row);
    }
    match crate::db::webhooks::get(&state.db, owner, id).await? {
        None => Err(Error::NotFound),
        Some(_) => Err(Error::invalid_state("the event was already delivered")),
    }
}

#[derive(Debug, Serialize)]
pub struct Retried {
    /// Failed events made due now.
    pub retried: i64,
    /// Failed events are left (more than one call's bound): call again.
    pub more: bool,
}

/// Makes up to 1,000 failed events due now.
pub async fn retry_failed(state: &AppState) -> Result<Retried, Error> {
    let retried = crate::db::webhooks::retry_failed(&state.db, RETRY_BATCH).await?;
    let more = retried == RETRY_BATCH && crate::db::webhooks::any_failed(&state.db).await?;
    if retried > 0 {
        tracing::info!(retried, "failed webhook events retried by an admin");
    }
    Ok(Retried { retried, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = DateTime::from_timestamp_micros(1_795_371_362_412_345).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(t, id)), Some((t, id)));
        for bad in ["", "!!", "bm90IGEgY3Vyc29y", &URL_SAFE_NO_PAD.encode("12.not-a-uuid")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
