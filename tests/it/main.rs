//! One integration-test binary (it links once). Every test starts the real application
//! against a fresh PostgreSQL database (on the run's shared private cluster) and its own
//! bucket on the in-process s3s-fs store (`support/`); plain `cargo nextest run` runs them.

mod support;

mod assets;
mod auth;
mod auto_confirm;
mod batch_idempotency;
mod chaos;
mod collections;
mod companion;
mod db_tls;
mod deadlines;
mod dev_mode;
mod doctor;
mod doctor_scanners;
mod downloads;
mod errors;
mod hostile_input;
mod import;
mod jwks;
mod lifecycle;
mod multipart;
mod ops;
mod post_policy;
mod quota;
mod reaper;
mod request_logs;
mod scan;
mod secret_files;
mod slow_clients;
mod uploads_put;
mod webhooks;
