//! Test support: a real application (`Application::build`, port 0) against a fresh
//! PostgreSQL database cloned from a migrated template, and a per-test bucket on the
//! signature-checking store. Both services come from the dev tools (`r2-broker-dev`) and
//! start on first use, so `cargo nextest run` (or `cargo test`) needs nothing else: the store
//! in-process ([`store`]), PostgreSQL shared by the run's processes ([`db`]).

pub mod app;
pub mod chaos;
pub mod clamd;
pub mod db;
pub mod multipart;
pub mod receiver;
pub mod store;
pub mod validator;

pub use app::{Call, TestApp, TestOptions};
pub use store::store;

/// The `id` of an asset (or any JSON object with one).
pub fn id_of(asset: &serde_json::Value) -> &str {
    asset["id"].as_str().expect("an id")
}

pub fn parse_time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}
