//! PostgreSQL: reachable, the TLS the connection really uses, migrations current.

use secrecy::ExposeSecret;

use super::Finding;
use crate::config::{Config, DatabaseUrl, SslMode};
use crate::db::{self, doctor as queries};

const REACHABLE: &str = "database";
const TLS: &str = "database TLS";
const MIGRATIONS: &str = "migrations";

pub async fn check(config: &Config) -> Vec<Finding> {
    let db = match db::pool(&config.db, 1) {
        Ok(db) => db,
        Err(e) => {
            return vec![
                Finding::failed(REACHABLE, format!("DATABASE_URL is not usable: {e:#}"), "fix DATABASE_URL"),
                Finding::skipped(TLS, "no database connection"),
                Finding::skipped(MIGRATIONS, "no database connection"),
            ];
        }
    };
    let findings = match queries::connection_info(&db).await {
        Err(e) => vec![
            Finding::failed(
                REACHABLE,
                format!("cannot reach PostgreSQL within BROKER_DB_TIMEOUT ({:?}): {e}", db.timeout()),
                "check DATABASE_URL (host, port, user, password, database) and that the server \
                 accepts connections from here (firewall, allow list, sslmode)",
            ),
            Finding::skipped(TLS, "no database connection"),
            Finding::skipped(MIGRATIONS, "no database connection"),
        ],
        Ok(info) => {
            let version = info.server_version.split(" on ").next().unwrap_or(&info.server_version).to_owned();
            vec![
                Finding::ok(REACHABLE, format!("reachable, {version}")),
                tls(config, info.tls.as_deref()),
                migrations(&db).await,
            ]
        }
    };
    db.close();
    findings
}

/// Encrypted and verified is ok; encrypted without checking who answers, or plain text to
/// another machine, is a warning (plain text to the same machine or a Unix socket is fine).
fn tls(config: &Config, tls: Option<&str>) -> Finding {
    let url = DatabaseUrl::parse(config.db.url.expose_secret()).ok();
    let mode = url.as_ref().map_or(SslMode::Prefer, |u| u.ssl_mode);
    if let Some(version) = tls {
        return match mode {
            SslMode::VerifyFull => Finding::ok(TLS, format!("encrypted ({version}), sslmode={mode}")),
            _ => Finding::warning(
                TLS,
                format!("encrypted ({version}), but sslmode={mode} does not check the server's name"),
                "use sslmode=verify-full (with sslrootcert=<provider CA file> when the provider's \
                 CA is not in the system's roots)",
            ),
        };
    }
    let hosts: Vec<String> = url
        .map(|u| {
            u.config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let local = !hosts.is_empty()
        && hosts.iter().all(|h| h.starts_with('/') || matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1"));
    if local {
        Finding::ok(TLS, format!("plain text, to a local server ({}), sslmode={mode}", hosts.join(", ")))
    } else {
        Finding::warning(
            TLS,
            format!(
                "the connection is NOT encrypted (sslmode={mode}): passwords and data cross the network in plain text"
            ),
            "add sslmode=verify-full to DATABASE_URL; managed PostgreSQL providers give a URL with it",
        )
    }
}

async fn migrations(db: &db::Db) -> Finding {
    let state = match queries::migration_state(db).await {
        Ok(s) => s,
        Err(e) => return Finding::failed(MIGRATIONS, format!("cannot read the migration history: {e}"), RUN_MIGRATE),
    };
    let (pending, unknown) = (state.pending(), state.unknown());
    let list = |v: &[i32]| v.iter().map(|n| format!("V{n}")).collect::<Vec<_>>().join(", ");
    if !unknown.is_empty() {
        return Finding::failed(
            MIGRATIONS,
            format!(
                "the database has migrations this binary does not know ({}): a newer r2-broker ran",
                list(&unknown)
            ),
            "run the r2-broker version that migrated this database (or a newer one)",
        );
    }
    if pending.is_empty() {
        Finding::ok(MIGRATIONS, format!("current: all {} applied", state.embedded.len()))
    } else {
        Finding::warning(
            MIGRATIONS,
            format!("{} of {} not applied yet ({})", pending.len(), state.embedded.len(), list(&pending)),
            RUN_MIGRATE,
        )
    }
}

const RUN_MIGRATE: &str =
    "run `r2-broker migrate` with this environment (`r2-broker serve` also applies them at start)";
