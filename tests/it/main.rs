//! One integration-test binary (it links once). Every test starts the real application
//! against a fresh PostgreSQL database and its own bucket on s3s-fs; run them with
//! `bash scripts/test.sh`.

mod support;

mod assets;
mod auth;
mod auto_confirm;
mod batch_idempotency;
mod chaos;
mod companion;
mod deadlines;
mod dev_mode;
mod downloads;
mod errors;
mod hostile_input;
mod multipart;
mod ops;
mod post_policy;
mod quota;
mod reaper;
mod request_logs;
mod slow_clients;
mod uploads_put;
