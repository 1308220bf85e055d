//! PostgreSQL: the pool, migrations, and the one error type of this layer. SQL lives in
//! the submodules, one `pub async fn` per statement with the SQL as a `const` beside it;
//! `ALL_STATEMENTS` lists them so a test can `prepare` each against the migrated schema.

pub mod assets;
pub mod collections;
pub mod completion;
pub mod confirm;
pub mod doctor;
mod error;
pub mod events;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod owners;
pub mod reaper;
pub mod tls;
pub mod uploads;
pub mod webhooks;

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use error::DbError;

use crate::config::{DatabaseUrl, DbSettings, SslMode};

mod embedded {
    refinery::embed_migrations!("sql");
}

/// TCP keepalive on the PostgreSQL sockets: an idle connection to a host that vanished is
/// found dead within about idle + interval × retries (30 s) and dropped by the pool, instead
/// of failing the request that gets it next.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// Data unacknowledged this long (a black-holed network) closes the socket, so a
/// connection given up on does not linger through minutes of retransmissions.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);
/// tokio-postgres' default keepalive idle time, i.e. DATABASE_URL did not set one.
const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// The PostgreSQL pool with its deadlines. Every statement goes through [`Db::run`] (or the
/// one-statement helpers on top of it): pool checkout and the statements share one
/// deadline (`BROKER_DB_TIMEOUT`), and a connection whose call did not finish is closed,
/// never handed out again. The server enforces the same bound per statement
/// (`statement_timeout`, sent in the startup packet: no extra round trip).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    timeout: Duration,
    migration_timeout: Option<Duration>,
    ssl_mode: SslMode,
    /// What the pool connects with, kept so `resized` makes another pool without parsing
    /// DATABASE_URL or loading the TLS roots again.
    connect: (tokio_postgres::Config, tokio_postgres_rustls::MakeRustlsConnect),
}

/// Builds a pool of at most `max_size` connections. Connections are made lazily, so a
/// database that is down at start makes `/readyz` fail rather than the process.
pub fn pool(settings: &impl AsRef<DbSettings>, max_size: usize) -> anyhow::Result<Db> {
    let settings = settings.as_ref();
    let timeout = settings.timeout;
    // sslmode / sslrootcert are read as libpq reads them (tokio-postgres knows neither
    // verify-ca/verify-full nor sslrootcert); the TLS checks are rustls' (`tls`).
    let url = DatabaseUrl::parse(settings.url.expose_secret()).map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let tls = tls::connector(&url).map_err(|e| anyhow::anyhow!("DATABASE_URL: {e:#}"))?;
    let (mut pg, ssl_mode) = (url.config, url.ssl_mode);
    // What DATABASE_URL sets itself (connect_timeout, keepalives*, tcp_user_timeout,
    // options) is kept.
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(timeout);
    }
    if pg.get_keepalives() {
        if pg.get_keepalives_idle() == DEFAULT_KEEPALIVE_IDLE {
            pg.keepalives_idle(KEEPALIVE_IDLE);
        }
        if pg.get_keepalives_interval().is_none() {
            pg.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if pg.get_keepalives_retries().is_none() {
            pg.keepalives_retries(KEEPALIVE_RETRIES);
        }
    }
    if pg.get_tcp_user_timeout().is_none() {
        pg.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    let options = with_statement_timeout(pg.get_options(), timeout);
    pg.options(options);
    if pg.get_application_name().is_none() {
        pg.application_name("r2-broker");
    }
    let pool = build_pool(&pg, &tls, timeout, max_size)?;
    Ok(Db { pool, timeout, migration_timeout: settings.migration_timeout, ssl_mode, connect: (pg, tls) })
}

fn build_pool(
    pg: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    timeout: Duration,
    max_size: usize,
) -> anyhow::Result<Pool> {
    // `Fast` recycling skips a round trip per checkout; a dead connection fails its query,
    // which is classified as unavailable (503) and dropped (see `Conn`).
    let manager =
        Manager::from_config(pg.clone(), tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()?)
}

/// The startup `options` with `-c statement_timeout=<ms>` added, unless they set one.
fn with_statement_timeout(options: Option<&str>, timeout: Duration) -> String {
    let ours = format!("-c statement_timeout={}", timeout.as_millis().max(1));
    match options.map(str::trim) {
        None | Some("") => ours,
        Some(theirs) if theirs.contains("statement_timeout") => theirs.to_owned(),
        Some(theirs) => format!("{theirs} {ours}"),
    }
}

impl Db {
    /// Another pool of at most `max_size` connections to the same server, with the same
    /// settings (an HTTP worker's own share, `AppState::for_worker`).
    pub fn resized(&self, max_size: usize) -> anyhow::Result<Db> {
        let (pg, tls) = &self.connect;
        Ok(Db { pool: build_pool(pg, tls, self.timeout, max_size)?, ..self.clone() })
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pool's counts: connections open, idle, callers waiting (tests check that a
    /// timed-out connection is gone).
    pub fn status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    pub fn close(&self) {
        self.pool.close();
    }

    /// The `statement_timeout` a pooled connection runs with (set at connect time), for
    /// checks that the server-side bound is in force.
    pub async fn statement_timeout(&self) -> Result<String, DbError> {
        self.run(async |c| Ok(c.query_one("show statement_timeout", &[]).await?.try_get(0)?)).await
    }

    /// DATABASE_URL's `sslmode` (`prefer` when it has none).
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// A pooled connection's TLS version (`TLSv1.3`); `None`: not encrypted (`prefer`, plain).
    pub async fn session_tls(&self) -> Result<Option<String>, DbError> {
        let sql = "select version from pg_stat_ssl where pid = pg_backend_pid() and ssl";
        self.run(async |c| Ok(c.query_opt(sql, &[]).await?.map(|row| row.try_get(0)).transpose()?)).await
    }

    /// `select 1` under the deadline, for `/readyz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(async |c| Ok(c.simple_query("select 1").await.map(drop)?)).await
    }

    /// Runs `work` on a pooled connection; checkout and `work` share one deadline. On
    /// timeout (or any other way the call does not finish, such as a cancelled request) the
    /// connection is closed instead of going back to the pool: a connection stuck on a
    /// frozen server would make the next request wait too. PostgreSQL rolls back an
    /// unfinished transaction when its connection goes.
    pub(crate) async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.bounded(async {
            let mut conn = Conn(Some(self.pool.get().await.map_err(DbError::from)?));
            let result = work(&mut conn).await;
            if result.as_ref().map_or_else(DbError::server_answered, |_| true) {
                conn.release();
            }
            result
        })
        .await
    }

    /// A connection under the deadline, for `migrate`, which bounds its statements itself.
    async fn checkout(&self) -> Result<Conn, DbError> {
        self.bounded(async { self.pool.get().await.map(|o| Conn(Some(o))) }).await
    }

    /// `fut` within the deadline of one call.
    async fn bounded<T, E: Into<DbError>>(&self, fut: impl Future<Output = Result<T, E>>) -> Result<T, DbError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(DbError::Timeout(self.timeout)),
        }
    }

    /// One prepared (and cached) statement, under the deadline.
    pub(crate) async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, DbError> {
        self.run(async |c| {
            let stmt = c.prepare_cached(sql).await?;
            Ok(c.query(&stmt, params).await?)
        })
        .await
    }

    pub(crate) async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, DbError> {
        self.run(async |c| {
            let stmt = c.prepare_cached(sql).await?;
            Ok(c.query_opt(&stmt, params).await?)
        })
        .await
    }

    pub(crate) async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, DbError> {
        self.run(async |c| {
            let stmt = c.prepare_cached(sql).await?;
            Ok(c.query_one(&stmt, params).await?)
        })
        .await
    }

    pub(crate) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, DbError> {
        self.run(async |c| {
            let stmt = c.prepare_cached(sql).await?;
            Ok(c.execute(&stmt, params).await?)
        })
        .await
    }
}

/// A checked-out connection that goes back to the pool only through [`Conn::release`].
/// Dropped any other way (a deadline passed, the request was cancelled, an I/O error) it is
/// taken out of the pool and closed.
pub(crate) struct Conn(Option<Object>);

impl Conn {
    pub(crate) fn release(mut self) {
        drop(self.0.take()); // an `Object` dropped normally returns to its pool
    }
}

impl Deref for Conn {
    type Target = deadpool_postgres::Client;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("a connection until released")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("a connection until released")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            // Detached from the pool (its slot frees up); dropping the client aborts its
            // connection task, which closes the socket.
            drop(Object::take(object));
        }
    }
}

/// The advisory lock replicas take turns on to migrate ("r2broker").
pub const MIGRATION_LOCK: i64 = 0x7232_6272_6f6b_6572;

/// Runs the embedded migrations (`sql/`). Several replicas may start at once: an advisory
/// lock makes them take turns, and refinery skips what is already applied.
///
/// Migrations get their own bound (`BROKER_MIGRATION_TIMEOUT`, none when 0) instead of the
/// per-call deadline: a migration may legitimately rebuild a big table, and waiting for
/// another replica's migrations is part of it. The session's `statement_timeout` becomes
/// that bound too, so the server gives up on a lock wait or a statement when we do; the
/// connection is closed afterwards, never pooled with that setting. On timeout PostgreSQL
/// rolls back the migration in progress and releases the lock with the connection.
pub async fn migrate(db: &Db) -> Result<(), DbError> {
    let mut conn = db.checkout().await?;
    let server_bound = db.migration_timeout.map_or(0, |b| b.as_millis().max(1));
    let work = async {
        conn.batch_execute(&format!("set statement_timeout = {server_bound}")).await?;
        conn.execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let result = embedded::migrations::runner().run_async(&mut ***conn).await;
        conn.execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        result?;
        Ok(())
    };
    match db.migration_timeout {
        None => work.await,
        Some(bound) => tokio::time::timeout(bound, work).await.unwrap_or(Err(DbError::Timeout(bound))),
    }
    // `conn` drops here without `release`: closed.
}

/// Every statement the broker runs, for the test that prepares each against the schema.
pub const ALL_STATEMENTS: &[&str] = &[
    owners::ENSURE_OWNER,
    owners::GET_USAGE,
    owners::SET_QUOTA,
    uploads::RESERVE_AND_INSERT,
    uploads::GET_UPLOAD,
    uploads::END_PENDING,
    completion::COMPLETE,
    events::INSERT_EVENT,
    collections::INSERT_COLLECTION,
    collections::GET_COLLECTION,
    collections::LIST_COLLECTIONS,
    collections::UPDATE_COLLECTION,
    collections::RESERVE_IN_COLLECTION,
    collections::START_PURGE,
    collections::DELETE_EMPTY,
    collections::PENDING_UPLOADS,
    collections::PURGING,
    assets::EXPIRED,
    collections::ASSETS_IN,
    jobs::CLAIM_JOBS,
    jobs::COUNT_DUE,
    jobs::ADVANCE,
    jobs::RETRY,
    jobs::DROP_JOB,
    jobs::SETTLE,
    jobs::REJECT,
    uploads::SET_MULTIPART_ID,
    uploads::MARK_CLEANED,
    assets::GET_ASSET,
    assets::GET_ASSET_BY_UPLOAD,
    assets::GET_ASSETS,
    assets::LIST_NEWEST,
    assets::LIST_NEWEST_IN_PROFILE,
    assets::LIST_NEWEST_IN_COLLECTION,
    assets::LIST_NEWEST_FILTERED,
    assets::DELETE_ASSET,
    reaper::EXPIRE_DUE,
    reaper::CLAIM_TO_CLEAN,
    reaper::FORGET_KEYS,
    confirm::CLAIM_DUE,
    confirm::RESCHEDULE,
    idempotency::BEGIN,
    idempotency::GET,
    idempotency::FINISH,
    idempotency::DISCARD,
    imports::FIND_IMPORTED,
    doctor::CONNECTION_INFO,
    doctor::HISTORY_EXISTS,
    doctor::APPLIED_MIGRATIONS,
    webhooks::CLAIM_DUE,
    webhooks::MARK_DELIVERED,
    webhooks::RECORD_FAILURE,
    webhooks::GIVE_UP,
    webhooks::COUNT_DUE,
    webhooks::LIST_FAILED,
    webhooks::GET_EVENT,
    webhooks::RETRY,
    webhooks::RETRY_FAILED,
    webhooks::ANY_FAILED,
    webhooks::FORGET_DELIVERED,
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::with_statement_timeout;

    #[test]
    fn statement_timeout_goes_into_the_startup_options_unless_the_url_sets_one() {
        let t = Duration::from_millis(1500);
        assert_eq!(with_statement_timeout(None, t), "-c statement_timeout=1500");
        assert_eq!(with_statement_timeout(Some(" "), t), "-c statement_timeout=1500");
        assert_eq!(
            with_statement_timeout(Some("-c search_path=app"), t),
            "-c search_path=app -c statement_timeout=1500"
        );
        assert_eq!(with_statement_timeout(Some("-c statement_timeout=0"), t), "-c statement_timeout=0");
    }
}
