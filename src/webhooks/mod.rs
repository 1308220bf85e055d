//! Signed webhook delivery (docs/webhooks.md): the events the outbox holds (`events`,
//! `db::events`) are POSTed to the profile's endpoint (or `BROKER_WEBHOOK_URL`), signed in
//! the Standard Webhooks format, retried with exponential backoff, and given up after
//! `BROKER_WEBHOOK_MAX_ATTEMPTS`; admins list and retry what was given up.
//!
//! Delivery is at least once: an event is marked delivered only after its receiver
//! answered 2xx, so a worker that dies between the POST and that update (or a database
//! that fails then) makes the event come back when its lease ends, and it is sent again
//! with the same `webhook-id`. Receivers deduplicate by that id. Events are not ordered,
//! not even one owner's: a retried event arrives after later ones; receivers order by the
//! body's `timestamp`.

mod admin;
mod deliver;
mod sign;

pub use admin::{FailedPage, Retried, list_failed, retry, retry_failed};
pub use deliver::{DeliveryReport, deliver_once, run_forever};
pub use sign::Signer;
