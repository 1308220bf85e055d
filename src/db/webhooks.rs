//! The webhook outbox after the insert (`db::events`): the delivery worker's claim and its
//! three ways of recording an attempt, the admin listing and retries, and the reaper's
//! forgetting of delivered events.
//!
//! A row is *pending* while `next_attempt_at` is set, *delivered* once `delivered_at` is,
//! *failed* (given up) once `failed_at` is. The claim leases pending rows the way the other
//! workers do (src/background.rs): one short statement moves their `next_attempt_at` past
//! the lease (`FOR UPDATE SKIP LOCKED`, so replicas never take the same row), and the POST
//! happens outside any transaction.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Db, DbError};

/// A claimed event: what a delivery needs. `payload` is the stored body as PostgreSQL
/// prints it (`jsonb` → text: the same bytes on every attempt), which is what is signed
/// and sent.
#[derive(Debug, Clone)]
pub struct DueEvent {
    pub owner: String,
    pub id: Uuid,
    pub kind: String,
    pub profile: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Up to $1 due events, leased for $2 seconds, oldest due first.
pub const CLAIM_DUE: &str = "with due as ( \
       select owner, id from webhook_events where next_attempt_at <= now() \
        order by next_attempt_at limit $1 for update skip locked) \
     update webhook_events e set next_attempt_at = now() + $2 * interval '1 second' \
       from due where e.owner = due.owner and e.id = due.id \
     returning e.owner, e.id, e.type, e.profile, e.payload::text as payload, e.attempts";

pub async fn claim_due(db: &Db, batch: i64, lease_secs: f64) -> Result<Vec<DueEvent>, DbError> {
    let rows = db.query(CLAIM_DUE, &[&batch, &lease_secs]).await?;
    rows.iter()
        .map(|r| {
            Ok(DueEvent {
                owner: r.try_get("owner")?,
                id: r.try_get("id")?,
                kind: r.try_get("type")?,
                profile: r.try_get("profile")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// The receiver answered 2xx ($3): delivered, never tried again. Guarded by
/// `delivered_at is null` so a duplicate delivery (at-least-once) keeps the first time.
pub const MARK_DELIVERED: &str = "update webhook_events \
       set delivered_at = now(), next_attempt_at = null, failed_at = null, attempts = attempts + 1, \
           last_status = $3, last_error = null \
     where owner = $1 and id = $2 and delivered_at is null";

pub async fn mark_delivered(db: &Db, owner: &str, id: Uuid, status: i32) -> Result<(), DbError> {
    db.execute(MARK_DELIVERED, &[&owner, &id, &status]).await?;
    Ok(())
}

/// An attempt failed with status $3 (null: no answer) and error $4: the next one in $5
/// seconds, or (when $5 is null: that was the last attempt allowed) given up.
pub const RECORD_FAILURE: &str = "update webhook_events \
       set attempts = attempts + 1, last_status = $3, last_error = $4, \
           next_attempt_at = now() + $5 * interval '1 second', \
           failed_at = case when $5::float8 is null then now() end \
     where owner = $1 and id = $2 and delivered_at is null";

pub async fn record_failure(
    db: &Db,
    owner: &str,
    id: Uuid,
    status: Option<i32>,
    error: &str,
    retry_in_secs: Option<f64>,
) -> Result<(), DbError> {
    db.execute(RECORD_FAILURE, &[&owner, &id, &status, &error, &retry_in_secs]).await?;
    Ok(())
}

/// Nothing to send it to (the profile turned events off, or no endpoint is configured):
/// given up without an attempt, with the reason $3.
pub const GIVE_UP: &str = "update webhook_events \
       set next_attempt_at = null, failed_at = now(), last_status = null, last_error = $3 \
     where owner = $1 and id = $2 and delivered_at is null";

pub async fn give_up(db: &Db, owner: &str, id: Uuid, reason: &str) -> Result<(), DbError> {
    db.execute(GIVE_UP, &[&owner, &id, &reason]).await?;
    Ok(())
}

/// Events due now (the queue-depth gauge); leased rows are not due.
pub const COUNT_DUE: &str = "select count(*) from webhook_events where next_attempt_at <= now()";

pub async fn count_due(db: &Db) -> Result<i64, DbError> {
    Ok(db.query_one(COUNT_DUE, &[]).await?.try_get(0)?)
}

/// An event as the admin endpoints show it (openapi.yaml `WebhookEvent`): the JSON is this
/// struct's serialisation (times to the second; the struct keeps PostgreSQL's µs, which the
/// listing's cursor needs).
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: Uuid,
    pub owner: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub profile: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_time")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_time")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_time")]
    pub failed_at: Option<DateTime<Utc>>,
    /// The body as delivered (`{id, type, timestamp, data}`).
    pub payload: serde_json::Value,
}

fn optional_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::time::serialize(t, s),
        None => s.serialize_none(),
    }
}

macro_rules! event_columns {
    () => {
        "owner, id, type, profile, attempts, last_status, last_error, created_at, next_attempt_at, delivered_at, \
         failed_at, payload"
    };
}

impl EventRow {
    fn from_row(r: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: r.try_get("id")?,
            owner: r.try_get("owner")?,
            kind: r.try_get("type")?,
            profile: r.try_get("profile")?,
            attempts: r.try_get("attempts")?,
            last_status: r.try_get("last_status")?,
            last_error: r.try_get("last_error")?,
            created_at: r.try_get("created_at")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            delivered_at: r.try_get("delivered_at")?,
            failed_at: r.try_get("failed_at")?,
            payload: r.try_get("payload")?,
        })
    }
}

/// Failed events older than the cursor `($1, $2)` = (`failed_at`, `id`), newest first, at
/// most $3 (the `webhook_events_failed` index's order).
pub const LIST_FAILED: &str = concat!(
    "select ",
    event_columns!(),
    " from webhook_events where failed_at is not null and (failed_at, id) < ($1, $2) \
     order by failed_at desc, id desc limit $3"
);

pub async fn list_failed(db: &Db, before: (DateTime<Utc>, Uuid), limit: i64) -> Result<Vec<EventRow>, DbError> {
    let rows = db.query(LIST_FAILED, &[&before.0, &before.1, &limit]).await?;
    rows.iter().map(EventRow::from_row).collect()
}

pub const GET_EVENT: &str = concat!("select ", event_columns!(), " from webhook_events where owner = $1 and id = $2");

pub async fn get(db: &Db, owner: &str, id: Uuid) -> Result<Option<EventRow>, DbError> {
    db.query_opt(GET_EVENT, &[&owner, &id]).await?.as_ref().map(EventRow::from_row).transpose()
}

/// A failed (or still pending) event made due now with a fresh count of attempts; `None`
/// when there is no such undelivered event.
pub const RETRY: &str = concat!(
    "update webhook_events set failed_at = null, attempts = 0, next_attempt_at = now() \
     where owner = $1 and id = $2 and delivered_at is null returning ",
    event_columns!()
);

pub async fn retry(db: &Db, owner: &str, id: Uuid) -> Result<Option<EventRow>, DbError> {
    db.query_opt(RETRY, &[&owner, &id]).await?.as_ref().map(EventRow::from_row).transpose()
}

/// Up to $1 failed events made due now, oldest failure first; returns how many.
pub const RETRY_FAILED: &str = "with failed as ( \
       select owner, id from webhook_events where failed_at is not null \
        order by failed_at limit $1 for update skip locked), \
     retried as ( \
       update webhook_events e set failed_at = null, attempts = 0, next_attempt_at = now() \
         from failed where e.owner = failed.owner and e.id = failed.id returning 1) \
     select count(*) from retried";

pub async fn retry_failed(db: &Db, limit: i64) -> Result<i64, DbError> {
    Ok(db.query_one(RETRY_FAILED, &[&limit]).await?.try_get(0)?)
}

/// Whether any failed event is left (after a bounded `retry_failed`).
pub const ANY_FAILED: &str = "select exists (select 1 from webhook_events where failed_at is not null)";

pub async fn any_failed(db: &Db) -> Result<bool, DbError> {
    Ok(db.query_one(ANY_FAILED, &[]).await?.try_get(0)?)
}

/// Forgets up to $1 events delivered more than 7 days ago (the reaper's chore): receivers
/// deduplicate by id within that window at most.
pub const FORGET_DELIVERED: &str = "delete from webhook_events where ctid in ( \
       select ctid from webhook_events where delivered_at < now() - interval '7 days' limit $1)";

pub async fn forget_delivered(db: &Db, batch: i64) -> Result<i64, DbError> {
    Ok(db.execute(FORGET_DELIVERED, &[&batch]).await? as i64)
}
