//! The admin side of the outbox: the events given up (newest first, keyset cursor), and
//! retrying them — one, or all of them in bounded steps. A retry makes the event due now
//! with a fresh count of attempts; the worker sends it with its original id and body.

use serde::Serialize;
use uuid::Uuid;

use crate::db::webhooks::EventRow;
use crate::error::Error;
use crate::state::AppState;

/// Events made due per `retry_failed` call.
const RETRY_BATCH: i64 = 1000;

/// A page of failed events, newest failed first (each serialises as the API's
/// `WebhookEvent`); the cursor is the last item's `(failed_at, id)`.
pub type FailedPage = crate::pages::Page<EventRow>;

pub async fn list_failed(state: &AppState, limit: Option<i64>, cursor: Option<&str>) -> Result<FailedPage, Error> {
    let limit = crate::pages::limit(limit)?;
    let before = crate::pages::before(cursor)?;
    let items = crate::db::webhooks::list_failed(&state.db, before, limit + 1).await?;
    // Listed rows are failed ones: `failed_at` is set (the epoch would only end the walk).
    Ok(crate::pages::page(items, limit, |r| (r.failed_at.unwrap_or_default(), r.id)))
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
