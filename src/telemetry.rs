//! Logging: tracing to stderr, `RUST_LOG` filters (default `info`), text or JSON lines.
//! Nothing logs secrets: `Config` keeps them in `SecretString` and logs `Config::summary`.
//!
//! Requests: each is served inside one span, `request` (http/request_id.rs), with its
//! `request_id`, `method` and `route` (the matched pattern, not the raw path) and the
//! `owner` and `upload_id` its handlers record once known; every line logged while
//! serving it carries them (in JSON, under `span`). Each request also ends with one
//! access line at info under the target [`ACCESS`] (http/middleware.rs), so
//! `RUST_LOG=info,r2_broker::access=off` keeps everything else.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of the access lines.
pub const ACCESS: &str = "r2_broker::access";

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests start several apps in one process) is harmless: keep the first.
    let _ = subscriber(filter, json, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer` instead of stderr (tests capture
/// lines with it).
pub fn subscriber<W>(filter: EnvFilter, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if json { Box::new(builder.json().finish()) } else { Box::new(builder.finish()) }
}
