//! Building blocks of `r2-broker dev`: everything a developer needs on one machine, in-process.
//!
//! - [`store`]: an S3-compatible store (s3s-fs over a local folder) with real SigV4 checks and
//!   CORS, so browsers can upload to presigned URLs exactly as they would to R2.
//! - [`run`]: `r2-broker dev` itself: starts the three, prints how to use them, stops them.
//! - [`pages`]: what only dev mode serves over HTTP: the JS client at `/client/r2-broker.js`
//!   and a demo page at `/` that uploads with it.
//! - [`postgres`]: a private, throwaway PostgreSQL cluster (trust auth, 127.0.0.1, private
//!   socket folder) run from the machine's PostgreSQL binaries, stopped with the process.
//!
//! Neither is meant for production: the store keeps objects as plain files and the cluster
//! runs with `fsync=off`.

mod banner;
pub mod pages;
pub mod postgres;
pub mod run;
pub mod store;
