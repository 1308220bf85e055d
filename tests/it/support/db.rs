//! A fresh database per test: the first test migrates a template database (named after a
//! hash of `sql/`, so a changed migration gets a new template) under an advisory lock; each
//! test then clones it with `CREATE DATABASE … TEMPLATE`, which takes milliseconds.
//!
//! The server: `R2B_TEST_DATABASE_URL` when set (an admin URL whose user can CREATE DATABASE),
//! else one private cluster in `<target>/tmp/r2b-postgres` shared by every test process of a
//! run (`r2_broker_dev::postgres::shared`): the first process to need it starts it, under a
//! file lock; each process then holds a lease on it until it exits, and a detached watchdog
//! stops it [`IDLE`] after the last lease went. The cluster (and its templates) stay on disk
//! for the next run: delete the folder to start over.

use std::sync::OnceLock;
use std::time::Duration;

use sha2::Digest;
use tokio_postgres::NoTls;

/// How long the shared server outlives the last test process: long enough to keep it
/// between the runs of an edit-compile-test loop.
const IDLE: Duration = Duration::from_secs(120);

/// The admin URL of the test server (blocking: call it off the test's runtime when it may
/// start the server).
fn admin_url() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let url = SERVER.get_or_init(|| {
        if let Some(url) = std::env::var("R2B_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
            return Ok(url);
        }
        let dir = r2_broker_dev::postgres::shared::dir_for(
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("r2b-postgres"),
        );
        // The lease lives as long as the process: leaked on purpose.
        let lease = r2_broker_dev::postgres::shared::acquire(&dir, IDLE).map_err(|e| format!("{e:#}"))?;
        Ok(Box::leak(Box::new(lease)).url.clone())
    });
    url.clone().unwrap_or_else(|e| panic!("the test PostgreSQL did not start (or set R2B_TEST_DATABASE_URL): {e}"))
}

fn template_name() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut hash = sha2::Sha256::new();
    for f in files {
        hash.update(std::fs::read(&f).unwrap());
    }
    format!("r2b_tpl_{}", &hex::encode(hash.finalize())[..12])
}

fn with_db(url: &str, db: &str) -> String {
    let mut cfg: tokio_postgres::Config = url.parse().unwrap();
    cfg.dbname(db);
    // Rebuild a URL: tests only use host/port/user (trust auth) or a developer's URL.
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    let password = cfg.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    client
}

/// Creates `t_<uuid>` from the migrated template and returns its URL.
pub async fn fresh_database() -> (String, String) {
    let admin_url =
        tokio::task::spawn_blocking(admin_url).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let admin = connect(&admin_url).await;
    let template = template_name();
    admin.execute("select pg_advisory_lock(7262)", &[]).await.unwrap();
    let exists = admin.query_opt("select 1 from pg_database where datname = $1", &[&template]).await.unwrap().is_some();
    if !exists {
        admin.execute(&format!("create database {template}"), &[]).await.unwrap();
        let settings = r2_broker::config::Settings {
            database_url: Some(with_db(&admin_url, &template)),
            ..super::app::base_settings("unused")
        };
        let config = settings.validate().unwrap();
        let pool = r2_broker::db::pool(&config, 2).unwrap();
        r2_broker::db::migrate(&pool).await.unwrap();
        pool.close();
        // A template must have no open connections when cloned.
        admin
            .execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                &[&template],
            )
            .await
            .unwrap();
    }
    admin.execute("select pg_advisory_unlock(7262)", &[]).await.unwrap();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    admin.execute(&format!("create database {name} template {template}"), &[]).await.unwrap();
    (with_db(&admin_url, &name), name)
}

/// Drops a test database (from `Drop`, so on its own thread and runtime).
pub fn drop_database(name: String) {
    let admin_url = admin_url();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let admin = connect(&admin_url).await;
            let _ = admin.execute(&format!("drop database if exists {name} with (force)"), &[]).await;
        });
    })
    .join();
}

pub async fn client(url: &str) -> tokio_postgres::Client {
    connect(url).await
}
