//! Test support: a real application (`Application::build`, port 0) against a fresh
//! PostgreSQL database cloned from a migrated template, and a per-test bucket on the
//! signature-checking store. Both services come from the dev tools (`r2-broker-dev`) and
//! start on first use, so `cargo nextest run` (or `cargo test`) needs nothing else: the store
//! in-process ([`store`]), PostgreSQL shared by the run's processes ([`db`]).

pub mod app;
pub mod chaos;
pub mod db;
pub mod multipart;
pub mod store;

pub use app::{Call, TestApp, TestOptions};
pub use store::store;

/// What `scripts/test.sh` used to export, now from the in-process store. Prefer [`store()`];
/// this keeps callers of the old names working.
pub fn env(name: &str) -> String {
    let store = store();
    match name {
        "R2B_TEST_S3_ENDPOINT" => store.endpoint.clone(),
        "R2B_TEST_S3_ACCESS_KEY" => store.access_key.clone(),
        "R2B_TEST_S3_SECRET_KEY" => store.secret_key.clone(),
        _ => panic!("no test setting {name}"),
    }
}

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
