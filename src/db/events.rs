//! The webhook outbox's writes: an event is inserted on the connection (or transaction)
//! that changes the state it reports, so it exists exactly when the change committed.
//! Delivery reads and updates these rows (`db::webhooks`).

use deadpool_postgres::GenericClient;

use super::DbError;
use crate::events::Event;

pub const INSERT_EVENT: &str =
    "insert into webhook_events (owner, id, type, profile, payload) values ($1, $2, $3, $4, $5)";

pub async fn insert(c: &impl GenericClient, owner: &str, profile: &str, event: &Event) -> Result<(), DbError> {
    let payload = tokio_postgres::types::Json(event);
    let stmt = c.prepare_cached(INSERT_EVENT).await?;
    c.execute(&stmt, &[&owner, &event.id, &event.kind.as_str(), &profile, &payload]).await?;
    Ok(())
}

/// A CTE (`expired_events`) that writes an `upload.expired` event for each row of the CTE
/// `ended` whose profile is in the `text[]` parameter named by `$profiles`. Built in SQL
/// because the reaper expires intents in set-based batches; the body has the shape of
/// [`crate::events::Event`] with an upload as `data` (openapi.yaml "Webhooks"). `ended` must
/// return `owner, id, profile, key, filename, content_type, size, metadata, created_at,
/// expires_at`.
macro_rules! expired_events {
    ($profiles:literal) => {
        concat!(
            "expired_events as ( \
               insert into webhook_events (owner, id, type, profile, payload) \
               select e.owner, e.ev, 'upload.expired', e.profile, jsonb_build_object( \
                        'id', e.ev, 'type', 'upload.expired', \
                        'timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                        'data', jsonb_build_object( \
                          'upload_id', e.id, 'owner', e.owner, 'profile', e.profile, 'key', e.key, \
                          'filename', e.filename, 'content_type', e.content_type, 'size', e.size, \
                          'metadata', e.metadata, \
                          'created_at', to_char(e.created_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                          'expires_at', to_char(e.expires_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))) \
                 from (select ended.*, gen_random_uuid() as ev from ended) e \
                where e.profile = any(",
            $profiles,
            "::text[]))"
        )
    };
}
pub(super) use expired_events;
