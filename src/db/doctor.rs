//! What `r2-broker doctor` asks PostgreSQL: the server version, whether this connection
//! uses TLS, and which migrations are applied compared with the ones built in.

use super::{Db, DbError};

/// The version string and this session's TLS, from `pg_stat_ssl` (what the connection
/// really uses, whatever `sslmode` asked for).
pub const CONNECTION_INFO: &str = "select version(), s.ssl, s.version \
     from pg_stat_ssl s where s.pid = pg_backend_pid()";

/// refinery's history table (its default name) is absent before the first migration.
pub const HISTORY_EXISTS: &str = "select to_regclass('refinery_schema_history') is not null";
pub const APPLIED_MIGRATIONS: &str = "select version from refinery_schema_history order by version";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// `PostgreSQL 17.2 on x86_64-pc-linux-gnu, …`
    pub server_version: String,
    /// `Some("TLSv1.3")` over TLS, `None` in plain text.
    pub tls: Option<String>,
}

pub async fn connection_info(db: &Db) -> Result<ConnectionInfo, DbError> {
    let row = db.query_one(CONNECTION_INFO, &[]).await?;
    let ssl: bool = row.try_get(1)?;
    let tls: Option<String> = row.try_get(2)?;
    Ok(ConnectionInfo { server_version: row.try_get(0)?, tls: if ssl { tls.or(Some("TLS".into())) } else { None } })
}

/// Applied and built-in migration versions, both sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub applied: Vec<i32>,
    pub embedded: Vec<i32>,
}

impl MigrationState {
    /// Built in but not applied: `r2-broker migrate` applies them.
    pub fn pending(&self) -> Vec<i32> {
        self.embedded.iter().copied().filter(|v| !self.applied.contains(v)).collect()
    }

    /// Applied but unknown to this binary: the database was migrated by a newer version.
    pub fn unknown(&self) -> Vec<i32> {
        self.applied.iter().copied().filter(|v| !self.embedded.contains(v)).collect()
    }
}

pub async fn migration_state(db: &Db) -> Result<MigrationState, DbError> {
    let mut embedded: Vec<i32> =
        super::embedded::migrations::runner().get_migrations().iter().map(|m| m.version()).collect();
    embedded.sort_unstable();
    // The table is looked up first: a statement naming a missing table does not prepare.
    let exists: bool = db.query_one(HISTORY_EXISTS, &[]).await?.try_get(0)?;
    let applied = if exists {
        let rows = db.query(APPLIED_MIGRATIONS, &[]).await?;
        rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<i32>, _>>()?
    } else {
        Vec::new()
    };
    Ok(MigrationState { applied, embedded })
}

#[cfg(test)]
mod tests {
    use super::MigrationState;

    #[test]
    fn pending_and_unknown_versions_are_the_two_differences() {
        let s = MigrationState { applied: vec![1, 2, 9], embedded: vec![1, 2, 3, 4] };
        assert_eq!(s.pending(), vec![3, 4]);
        assert_eq!(s.unknown(), vec![9]);
    }
}
