//! What a developer (and the test suite) needs on one machine to run r2-broker, in-process.
//!
//! - [`store`]: an S3-compatible store (s3s-fs over a local folder) with real SigV4 checks and
//!   CORS, so browsers can upload to presigned URLs exactly as they would to R2.
//! - [`postgres`]: a private, throwaway PostgreSQL cluster (trust auth, 127.0.0.1, private
//!   socket folder) run from the machine's PostgreSQL binaries: owned by one process
//!   ([`postgres::PrivatePostgres`]) or shared by many test processes ([`postgres::shared`]).
//! - [`data_dir`]: the credentials `r2-broker dev` keeps in `<data dir>/dev.json`, and where its
//!   cluster lives.
//! - [`token`]: HS256 tokens signed with the dev secret.
//! - [`banner`]: what `r2-broker dev` prints once it is up.
//!
//! This crate knows nothing of the broker (it does not depend on it): the broker's `dev`
//! feature turns these parts into its settings. None of it is meant for production: the
//! store keeps objects as plain files and the cluster runs with `fsync=off`.

pub mod banner;
pub mod data_dir;
pub mod postgres;
pub mod store;
pub mod token;
