//! One integration-test binary (it links once). Every test starts the real application
//! against a fresh PostgreSQL database and its own bucket on s3s-fs; run them with
//! `bash scripts/test.sh`.

mod support;

mod assets;
mod auth;
mod chaos;
mod errors;
mod ops;
mod quota;
mod uploads_put;
