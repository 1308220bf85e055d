//! `AppState`: everything a request needs, built once and shared (cheap to clone).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Verifier;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL pool: quotas, intents, assets.
    pub db: Db,
    /// The object store: HeadObject/DeleteObject/multipart calls and the presigner.
    pub store: Store,
    /// JWT verification: static keys parsed once at start, JWKS keys cached and refreshed.
    pub verifier: Arc<Verifier>,
    /// Validated configuration, profiles included.
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Per-owner request rate limit (charged by `http::caller::rate_limit`, trimmed by the
    /// reaper); `None` when disabled.
    pub limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl AppState {
    /// Async: the JWKS providers' keys are fetched once here (`Verifier::start`).
    pub async fn new(config: Config, db: Db, store: Store) -> anyhow::Result<Self> {
        let verifier = Verifier::new(&config.jwt);
        verifier.start().await?;
        let limiter = config.rate_limit.map(|rl| {
            let per_second = NonZeroU32::new(rl.per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(rl.burst).unwrap_or(per_second);
            Arc::new(RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)))
        });
        Ok(Self {
            db,
            store,
            verifier: Arc::new(verifier),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()?),
            limiter,
        })
    }

    /// The state one actix worker serves with: the same everything, but its own share of
    /// the database connections. A tokio-postgres connection is a task on the runtime that
    /// opened it; each worker is a single-threaded runtime, so a pool shared across workers
    /// (or opened by `main`'s runtime for the migrations) hands every query to another
    /// thread and back — a wake-up and a context switch each way. Per-worker pools keep
    /// a request and its connection on one thread.
    pub fn for_worker(&self) -> Self {
        let size = self.config.db.pool_size.div_ceil(self.config.workers).max(1);
        let db = self.db.resized(size).expect("the shared pool was built from the same settings");
        Self { db, ..self.clone() }
    }
}
