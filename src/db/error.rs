//! `DbError`: what a database call can fail with, and which failures mean "the database is
//! unavailable, retry later" (503) rather than a bug (500).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {}", pool_text(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {}", with_cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migrations: {0}")]
    Migration(#[from] refinery::Error),
    /// The call (pool checkout included) did not finish within its deadline; its
    /// connection was closed, so whatever it was doing is rolled back or already done.
    #[error("database: no answer within {0:?}")]
    Timeout(Duration),
    /// A row holds a value the broker never writes (a hand edit, or a newer version's
    /// value): refused rather than guessed, so the request fails as a logged 500.
    #[error("database: unexpected {column} {value:?} in a row")]
    Unexpected { column: &'static str, value: String },
}

/// tokio-postgres' text leaves out the cause ("db error", "error performing TLS handshake"):
/// added, so the line start fails with (a TLS or pg_hba refusal) says why.
fn with_cause(e: &tokio_postgres::Error) -> String {
    std::error::Error::source(e).map_or_else(|| e.to_string(), |cause| format!("{e}: {cause}"))
}

fn pool_text(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => format!("cannot connect: {}", with_cause(e)),
        other => other.to_string(),
    }
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
            Self::Migration(_) | Self::Unexpected { .. } => false,
            Self::Timeout(_) => true,
        }
    }

    /// The server answered (with an error): the connection is in a known state and can
    /// serve the next call.
    pub(super) fn server_answered(&self) -> bool {
        matches!(self, Self::Postgres(e) if e.as_db_error().is_some())
    }
}

/// The one boundary between a database failure and the API's answer.
impl From<DbError> for crate::error::Error {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() { Self::unavailable(e) } else { Self::Internal(e.into()) }
    }
}

fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08: connection exception; 57P0x: shutdown / cannot connect now; 57014: canceled
        // (our `statement_timeout`); 53: out of resources; 40001/40P01: serialization
        // failure / deadlock (safe to retry).
        return code.starts_with("08")
            || code.starts_with("57P")
            || code == "57014"
            || code.starts_with("53")
            || code == "40001"
            || code == "40P01";
    }
    // No database error: an I/O error or a timeout talking to the server.
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) || e.to_string().contains("timed out")
}
