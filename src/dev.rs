//! `r2-broker dev` (the `dev` feature): the broker, an embedded S3 store and (unless
//! `DATABASE_URL` is set) a private PostgreSQL in one process, with credentials generated on first run and kept in
//! `<data dir>/dev.json`. Ctrl-C / SIGTERM stops all three; the next run reuses the data.
//!
//! Dev defaults fill only what the environment leaves unset (`S3_PROVIDER=s3`,
//! `BROKER_CORS_ORIGINS=*`, `JWT_SECRET`, `BROKER_CONFIRM_BACKOFF=1`,
//! `BROKER_CONFIRM_BACKOFF_MAX=10`), except the store's address, bucket and keys:
//! those always name the embedded store.
//!
//! The parts (store, cluster, credentials, banner) are the `r2-broker-dev` crate's; this module
//! turns them into [`Settings`] and runs [`Application`].

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{Args, Subcommand};
use r2_broker_dev::banner::Banner;
use r2_broker_dev::data_dir::{self, DevFile, absolute};
use r2_broker_dev::postgres::PrivatePostgres;
use r2_broker_dev::store::EmbeddedStore;
use r2_broker_dev::token;

use crate::Application;
use crate::config::Settings;

const BUCKET: &str = "dev";
const DATABASE: &str = "r2_broker";
const DEFAULT_DATA_DIR: &str = ".r2-broker";

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder for the store's files, the private PostgreSQL and dev.json (credentials)
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: std::path::PathBuf,
    /// Port of the embedded S3 store on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 9000, value_name = "PORT")]
    pub s3_port: u16,
    #[command(subcommand)]
    pub command: Option<DevCommand>,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Print a token signed with the dev JWT secret (or JWT_SECRET when set)
    Token {
        /// The token's `sub`
        #[arg(long, default_value = "dev")]
        owner: String,
        /// Days until it expires
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
        /// Add the admin scope (act for any owner, call /v1/admin/*)
        #[arg(long)]
        admin: bool,
    },
}

pub async fn run(args: &DevArgs, settings: Settings) -> anyhow::Result<()> {
    if let Some(DevCommand::Token { owner, days, admin }) = &args.command {
        let dir = absolute(&args.data_dir)?;
        let file = DevFile::load(&dir)?;
        let secret = settings.jwt_secret()?.or(file.map(|f| f.jwt_secret));
        let secret = secret.with_context(|| {
            format!(
                "no {} yet: run `r2-broker dev` once first (or set JWT_SECRET / JWT_SECRET_FILE)",
                dir.join("dev.json").display()
            )
        })?;
        println!("{}", mint(&settings, &secret, owner, Duration::from_secs(days * 86_400), *admin)?);
        return Ok(());
    }
    crate::telemetry::init(settings.log_format.as_deref().map(str::trim) == Some("json"));
    let t0 = Instant::now();
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    let mut parts = Parts::default();
    let started = tokio::select! {
        r = start(args, settings, &mut parts) => r,
        () = &mut shutdown => Err(anyhow!("interrupted while starting")),
    };
    let (app, banner) = match started {
        Ok(ok) => ok,
        Err(e) => {
            parts.stop().await;
            return Err(e);
        }
    };
    println!("{}", banner.render(t0.elapsed()));
    std::io::stdout().flush()?;

    let handle = app.handle();
    let mut server = tokio::spawn(app.run_until_stopped());
    let ended = tokio::select! {
        () = &mut shutdown => None,
        r = &mut server => Some(r),
    };
    let t_stop = Instant::now();
    tracing::info!("stopping the broker, the store and PostgreSQL");
    let result = match ended {
        Some(r) => r.map_err(anyhow::Error::from).and_then(|r| r.context("the broker stopped")),
        None => {
            handle.stop(true).await;
            server.await.map_err(anyhow::Error::from).and_then(|r| r.map_err(Into::into))
        }
    };
    let _ = fs::remove_file(absolute(&args.data_dir)?.join(RUNNING));
    parts.stop().await;
    tracing::info!(elapsed = ?t_stop.elapsed(), "stopped");
    result
}

/// What is running, stopped in reverse order of start.
#[derive(Default)]
struct Parts {
    /// An exclusive lock on `<data dir>/.lock`: one `dev` per data dir.
    _lock: Option<fs::File>,
    store: Option<EmbeddedStore>,
    postgres: Option<PrivatePostgres>,
}

impl Parts {
    async fn stop(&mut self) {
        if let Some(store) = self.store.take() {
            store.stop().await;
        }
        if let Some(pg) = self.postgres.take() {
            match tokio::task::spawn_blocking(move || pg.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("stopping the private PostgreSQL: {e:#}"),
                Err(e) => tracing::warn!("stopping the private PostgreSQL: {e}"),
            }
        }
    }
}

async fn start(args: &DevArgs, mut settings: Settings, parts: &mut Parts) -> anyhow::Result<(Application, Banner)> {
    let dir = absolute(&args.data_dir)?;
    fs::create_dir_all(&dir).with_context(|| format!("creating the data dir {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let lock = fs::File::create(dir.join(".lock"))?;
    if lock.try_lock().is_err() {
        bail!("another `r2-broker dev` is running on {}", dir.display());
    }
    parts._lock = Some(lock);
    let (file, created) = match DevFile::load(&dir)? {
        Some(f) => (f, false),
        None => (DevFile::create(&dir)?, true),
    };

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.s3_port));
    let store = EmbeddedStore::start(&dir.join("s3"), BUCKET, addr, &file.s3_access_key_id, &file.s3_secret_access_key)
        .await
        .with_context(|| {
            format!("starting the embedded S3 store (--s3-port {} taken? 0 picks a free port)", addr.port())
        })?;
    let store = parts.store.insert(store);

    let mut pg_note = None;
    if settings.database_url.as_deref().is_none_or(|u| u.trim().is_empty()) {
        let (pg_dir, note) = data_dir::postgres_dir(&dir, &file.instance_id)?;
        let pg = PrivatePostgres::start(&pg_dir, DATABASE)
            .await
            .context("starting the private PostgreSQL (set DATABASE_URL to use an existing server instead)")?;
        settings.database_url = Some(pg.database_url());
        pg_note = Some(format!("{}   private cluster in {}{note}", pg.database_url(), pg_dir.display()));
        parts.postgres = Some(pg);
    }

    let ignored =
        [&settings.s3_endpoint, &settings.s3_bucket, &settings.s3_access_key_id, &settings.s3_secret_access_key];
    if ignored.iter().any(|v| v.is_some()) {
        tracing::warn!("S3_ENDPOINT, S3_BUCKET and the S3 keys are ignored in dev mode: it uses its embedded store");
    }
    settings.s3_endpoint = Some(store.endpoint.clone());
    settings.s3_bucket = Some(store.bucket.clone());
    settings.s3_access_key_id = Some(file.s3_access_key_id.clone());
    settings.s3_secret_access_key = Some(file.s3_secret_access_key.clone());
    settings.s3_provider.get_or_insert_with(|| "s3".into());
    settings.cors_origins.get_or_insert_with(|| "*".into());
    // Uploads nobody completes (Uppy's single PUTs) become assets within seconds.
    settings.confirm_backoff.get_or_insert_with(|| "1".into());
    settings.confirm_backoff_max.get_or_insert_with(|| "10".into());
    // The operator's secret (JWT_SECRET or JWT_SECRET_FILE) when given, else dev.json's.
    let secret = match settings.jwt_secret()? {
        Some(secret) => secret,
        None => settings.jwt_secret.insert(file.jwt_secret.clone()).clone(),
    };

    let token = mint(&settings, &secret, "dev", Duration::from_secs(30 * 86_400), false)?;
    let mut config = settings.validate()?;
    config.dev_pages = true; // the demo page at / and the client at /client/r2-broker.js
    tracing::info!(config = %config.summary(), "starting");
    let listen_host = config.listen.rsplit_once(':').map_or("", |(h, _)| h).to_owned();
    let app = Application::build(config)
        .await
        .context("starting the broker (BROKER_LISTEN taken? set BROKER_LISTEN=127.0.0.1:<port>)")?;
    // For `r2-broker import` run in this folder (`fill_from_running`): the addresses of
    // this run, which change from run to run (free ports).
    let running = Running {
        database_url: settings.database_url.clone().unwrap_or_default(),
        s3_endpoint: store.endpoint.clone(),
        s3_bucket: store.bucket.clone(),
    };
    fs::write(dir.join(RUNNING), serde_json::to_vec_pretty(&running)?)?;
    let host = match listen_host.as_str() {
        "" | "0.0.0.0" | "[::]" => "127.0.0.1",
        h => h,
    };
    let banner = Banner {
        api: format!("http://{host}:{}", app.port()),
        store: store.endpoint.clone(),
        bucket: BUCKET.into(),
        files: dir.join("s3").join(BUCKET),
        database: pg_note.unwrap_or_else(|| "DATABASE_URL (from the environment)".into()),
        data_dir: dir.clone(),
        dir_flag: (args.data_dir != Path::new(DEFAULT_DATA_DIR)).then(|| format!(" --data-dir {}", dir.display())),
        first_run: created,
        token,
    };
    Ok((app, banner))
}

/// `<data dir>/running.json`: where the running `r2-broker dev` serves, removed when it stops.
const RUNNING: &str = "running.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Running {
    database_url: String,
    s3_endpoint: String,
    s3_bucket: String,
}

/// For one-shot commands (`r2-broker import`) run in a folder where `r2-broker dev` runs:
/// fills what `settings` leaves unset (database, store address, bucket and keys, JWT secret)
/// from the running dev mode. Returns whether it did; `Ok(false)` when `data_dir` holds no
/// dev.json. A dev.json whose dev mode is not running is an error only when the settings
/// lack the database or the store.
pub fn fill_from_running(data_dir: &Path, settings: &mut Settings) -> anyhow::Result<bool> {
    let dir = absolute(data_dir)?;
    let Some(file) = DevFile::load(&dir)? else { return Ok(false) };
    // `dev` holds an exclusive lock on `.lock` while it runs.
    let running = match fs::File::open(dir.join(".lock")) {
        Ok(lock) => lock.try_lock().is_err(),
        Err(_) => false,
    };
    let unset = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    let need_db = unset(&settings.database_url) && settings.database_url_file.is_none();
    // The store is the dev mode's only when the environment names none: its keys and bucket
    // belong to its endpoint.
    let need_store = unset(&settings.s3_endpoint);
    if !running {
        ensure!(
            !need_db && !need_store,
            "{} exists but `r2-broker dev` is not running there: start it, or set DATABASE_URL and the S3_* settings",
            dir.join("dev.json").display()
        );
        return Ok(false);
    }
    let path = dir.join(RUNNING);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let run: Running = serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    if need_db {
        settings.database_url = Some(run.database_url);
    }
    if need_store {
        settings.s3_endpoint = Some(run.s3_endpoint);
        settings.s3_bucket = Some(run.s3_bucket);
        settings.s3_access_key_id = Some(file.s3_access_key_id);
        settings.s3_secret_access_key = Some(file.s3_secret_access_key);
        settings.s3_access_key_id_file = None;
        settings.s3_secret_access_key_file = None;
        settings.s3_provider.get_or_insert_with(|| "s3".into());
    }
    if settings.jwt_secret()?.is_none() {
        settings.jwt_secret = Some(file.jwt_secret);
    }
    Ok(true)
}

/// An HS256 token for `owner`, with `iss` / `aud` when the broker requires them.
fn mint(settings: &Settings, secret: &str, owner: &str, ttl: Duration, admin: bool) -> anyhow::Result<String> {
    ensure!(crate::owner::is_valid(owner), "--owner must be 1 to 255 bytes, without U+0000");
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let to = token::Audience {
        issuer: nonempty(&settings.jwt_issuer),
        audience: nonempty(&settings.jwt_audience),
        admin_scope: nonempty(&settings.admin_scope).unwrap_or_else(|| "broker:admin".into()),
    };
    token::mint(secret, owner, ttl, admin, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_dev_mode_fills_only_what_the_environment_leaves_unset() {
        let dir = std::env::temp_dir().join(format!("r2b-devfill-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).unwrap();
        let file = DevFile::create(&dir).unwrap();
        let running = Running {
            database_url: "postgres://postgres@127.0.0.1:5999/r2_broker".into(),
            s3_endpoint: "http://127.0.0.1:9999".into(),
            s3_bucket: "dev".into(),
        };
        fs::write(dir.join(RUNNING), serde_json::to_vec(&running).unwrap()).unwrap();

        // Not running (nobody holds the lock): an error when the settings lack the database
        let err = fill_from_running(&dir, &mut Settings::default()).unwrap_err();
        assert!(err.to_string().contains("is not running"), "{err}");
        let mut complete = Settings {
            database_url: Some("postgres://elsewhere/db".into()),
            s3_endpoint: Some("https://r2.example".into()),
            ..Default::default()
        };
        assert!(!fill_from_running(&dir, &mut complete).unwrap());

        // Running: unset values come from it, set ones stay
        let lock = fs::File::create(dir.join(".lock")).unwrap();
        lock.try_lock().unwrap();
        let mut settings = Settings { database_url: Some("postgres://mine/db".into()), ..Default::default() };
        assert!(fill_from_running(&dir, &mut settings).unwrap());
        assert_eq!(settings.database_url.as_deref(), Some("postgres://mine/db"));
        assert_eq!(settings.s3_endpoint.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(settings.s3_access_key_id.as_deref(), Some(file.s3_access_key_id.as_str()));
        assert_eq!(settings.jwt_secret.as_deref(), Some(file.jwt_secret.as_str()));
        assert!(!fill_from_running(&dir.join("none"), &mut Settings::default()).unwrap(), "no dev.json");
        drop(lock);
        let _ = fs::remove_dir_all(&dir);
    }

    /// dev.json and its random secret are tested in the dev-tools crate.
    #[tokio::test]
    async fn minted_tokens_verify() {
        let secret = uuid::Uuid::new_v4().simple().to_string().repeat(2);
        let settings = Settings {
            jwt_issuer: Some("https://issuer.example".into()),
            jwt_audience: Some("uploads".into()),
            ..Default::default()
        };
        let jwt = crate::config::JwtConfig {
            hmac: Some(crate::config::JwtKey::hs256(secret.as_bytes())),
            public: None,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            admin_scope: "broker:admin".into(),
            owner_claim: "sub".into(),
            scope_claims: vec!["scope".into()],
            ..Default::default()
        };
        let verifier = crate::auth::Verifier::new(&jwt);
        let ttl = Duration::from_secs(60);
        let caller = verifier.verify(&mint(&settings, &secret, "alice", ttl, true).unwrap()).await.unwrap();
        assert_eq!((caller.owner.as_str(), caller.admin), ("alice", true));
        let caller = verifier.verify(&mint(&settings, &secret, "dev", ttl, false).unwrap()).await.unwrap();
        assert_eq!((caller.owner.as_str(), caller.admin), ("dev", false));
        assert!(verifier.verify(&mint(&Settings::default(), &secret, "dev", ttl, false).unwrap()).await.is_err());
        assert!(mint(&settings, &secret, "", ttl, false).is_err());
    }
}
