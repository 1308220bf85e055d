//! Logging: tracing to stderr, `RUST_LOG` filters (default `info`), text or JSON lines.
//! Nothing logs secrets: `Config` keeps them in `SecretString` and logs `Config::summary`.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) is harmless: keep the first.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
