//! Test support: a real application (`Application::build`, port 0) against a fresh
//! PostgreSQL database cloned from a migrated template, and a per-test bucket on the
//! signature-checking s3s-fs server that `scripts/test.sh` starts.

pub mod app;
pub mod chaos;
pub mod db;
pub mod multipart;

pub use app::{Call, TestApp, TestOptions};

/// An environment variable `scripts/test.sh` exports; tests cannot run without it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `bash scripts/test.sh` (it starts PostgreSQL and s3s-fs)")
    })
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
