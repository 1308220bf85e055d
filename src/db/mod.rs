//! PostgreSQL: the pool, migrations, and the one error type of this layer. SQL lives in
//! the submodules, one `pub async fn` per statement with the SQL as a `const` beside it;
//! `ALL_STATEMENTS` lists them so a test can `prepare` each against the migrated schema.

pub mod assets;
pub mod idempotency;
pub mod owners;
pub mod reaper;
pub mod uploads;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;

pub use deadpool_postgres::Pool as DbPool;

mod embedded {
    refinery::embed_migrations!("sql");
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migrations: {0}")]
    Migration(#[from] refinery::Error),
}

impl DbError {
    /// True when the database could not be reached or the outcome is unknown: the caller
    /// answers 503 and the client retries. Everything else is a bug (500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(deadpool_postgres::PoolError::Backend(e)) => is_connection_error(e),
            Self::Pool(deadpool_postgres::PoolError::Timeout(_) | deadpool_postgres::PoolError::Closed) => true,
            Self::Pool(_) => false,
            Self::Postgres(e) => is_connection_error(e),
            Self::Migration(_) => false,
        }
    }
}

fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08: connection exception; 57P0x: shutdown / cannot connect now; 53: out of
        // resources; 40001/40P01: serialization failure / deadlock (safe to retry).
        return code.starts_with("08")
            || code.starts_with("57P")
            || code.starts_with("53")
            || code == "40001"
            || code == "40P01";
    }
    // No database error: an I/O error or a timeout talking to the server.
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) || e.to_string().contains("timed out")
}

/// Builds a pool of at most `max_size` connections. Connections are made lazily, so a
/// database that is down at start makes `/readyz` fail rather than the process.
pub fn pool(config: &crate::config::Config, max_size: usize) -> anyhow::Result<Pool> {
    let mut pg: tokio_postgres::Config = config.database_url.expose_secret().parse()?;
    pg.connect_timeout(Duration::from_secs(3));
    pg.keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("r2-broker");
    }
    // `Fast` recycling skips a round trip per checkout; a dead connection fails its query,
    // which is classified as unavailable (503) and dropped by the pool.
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(3)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()?)
}

/// Runs the embedded migrations (`sql/`). Several replicas may start at once: an advisory
/// lock makes them take turns, and refinery skips what is already applied.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    const LOCK: i64 = 0x7232_6272_6f6b_6572; // "r2broker"
    let mut client = pool.get().await?;
    client.execute("select pg_advisory_lock($1)", &[&LOCK]).await?;
    let result = embedded::migrations::runner().run_async(&mut **client).await;
    client.execute("select pg_advisory_unlock($1)", &[&LOCK]).await?;
    result?;
    Ok(())
}

/// Every statement the broker runs, for the test that prepares each against the schema.
pub const ALL_STATEMENTS: &[&str] = &[
    owners::ENSURE_OWNER,
    owners::GET_USAGE,
    owners::SET_QUOTA,
    uploads::RESERVE_AND_INSERT,
    uploads::GET_UPLOAD,
    uploads::END_PENDING,
    uploads::COMPLETE,
    uploads::SET_MULTIPART_ID,
    uploads::MARK_CLEANED,
    assets::GET_ASSET,
    assets::GET_ASSET_BY_UPLOAD,
    assets::GET_ASSETS,
    assets::LIST_NEWEST,
    assets::LIST_NEWEST_IN_PROFILE,
    assets::DELETE_ASSET,
    reaper::EXPIRE_DUE,
    reaper::CLAIM_TO_CLEAN,
    reaper::SET_CLEANED,
    reaper::FORGET_KEYS,
    idempotency::BEGIN,
    idempotency::GET,
    idempotency::FINISH,
    idempotency::DISCARD,
];
