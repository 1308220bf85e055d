//! The webhook outbox's writes: an event is inserted on the connection (or transaction)
//! that changes the state it reports, so it exists exactly when the change committed.
//! Delivery reads and updates these rows (`db::webhooks`).

use tokio_postgres::GenericClient;

use super::DbError;
use crate::events::Event;

pub const INSERT_EVENT: &str =
    "insert into webhook_events (owner, id, type, profile, payload) values ($1, $2, $3, $4, $5)";

pub async fn insert(c: &impl GenericClient, owner: &str, profile: &str, event: &Event) -> Result<(), DbError> {
    let payload = tokio_postgres::types::Json(event);
    c.execute(INSERT_EVENT, &[&owner, &event.id, &event.kind.as_str(), &profile, &payload]).await?;
    Ok(())
}
