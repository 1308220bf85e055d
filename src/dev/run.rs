//! `r2-broker dev`: the broker, an embedded S3 store and (unless `DATABASE_URL` is set) a
//! private PostgreSQL in one process, with credentials generated on first run and kept in
//! `<data dir>/dev.json`. Ctrl-C / SIGTERM stops all three; the next run reuses the data.
//!
//! Dev defaults fill only what the environment leaves unset (`S3_PROVIDER=s3`,
//! `BROKER_CORS_ORIGINS=*`, `JWT_SECRET`, `BROKER_CONFIRM_BACKOFF=1`,
//! `BROKER_CONFIRM_BACKOFF_MAX=10`), except the store's address, bucket and keys:
//! those always name the embedded store.

use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::banner::Banner;
use super::postgres::PrivatePostgres;
use super::store::EmbeddedStore;
use crate::Application;
use crate::config::Settings;

pub(super) const BUCKET: &str = "dev";
const DATABASE: &str = "r2_broker";
const DEFAULT_DATA_DIR: &str = ".r2-broker";

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder for the store's files, the private PostgreSQL and dev.json (credentials)
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
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

/// `<data dir>/dev.json`, mode 0600.
#[derive(Serialize, Deserialize)]
struct DevFile {
    /// Ties a PostgreSQL cluster kept outside the data dir to this data dir's lifetime.
    instance_id: String,
    s3_access_key_id: String,
    s3_secret_access_key: String,
    jwt_secret: String,
    created_at: String,
}

pub async fn run(args: &DevArgs, settings: Settings) -> anyhow::Result<()> {
    if let Some(DevCommand::Token { owner, days, admin }) = &args.command {
        let dir = absolute(&args.data_dir)?;
        let file = DevFile::load(&dir)?;
        let secret = settings.jwt_secret.clone().filter(|s| !s.is_empty()).or(file.map(|f| f.jwt_secret));
        let secret = secret.with_context(|| {
            format!("no {} yet: run `r2-broker dev` once first (or set JWT_SECRET)", dir.join("dev.json").display())
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
        let (pg_dir, note) = postgres_dir(&dir, &file.instance_id)?;
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
    let secret = settings.jwt_secret.get_or_insert_with(|| file.jwt_secret.clone()).clone();

    let token = mint(&settings, &secret, "dev", Duration::from_secs(30 * 86_400), false)?;
    let mut config = settings.validate()?;
    config.dev_pages = true; // the demo page at / and the client at /client/r2-broker.js
    tracing::info!(config = %config.summary(), "starting");
    let listen_host = config.listen.rsplit_once(':').map_or("", |(h, _)| h).to_owned();
    let app = Application::build(config)
        .await
        .context("starting the broker (BROKER_LISTEN taken? set BROKER_LISTEN=127.0.0.1:<port>)")?;
    let host = match listen_host.as_str() {
        "" | "0.0.0.0" | "[::]" => "127.0.0.1",
        h => h,
    };
    let banner = Banner {
        api: format!("http://{host}:{}", app.port()),
        store: store.endpoint.clone(),
        files: dir.join("s3").join(BUCKET),
        database: pg_note.unwrap_or_else(|| "DATABASE_URL (from the environment)".into()),
        data_dir: dir.clone(),
        dir_flag: (args.data_dir != Path::new(DEFAULT_DATA_DIR)).then(|| format!(" --data-dir {}", dir.display())),
        first_run: created,
        token,
    };
    Ok((app, banner))
}

impl DevFile {
    fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join("dev.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged: fix it, or delete the data dir to start over", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        Ok(Some(file))
    }

    fn create(dir: &Path) -> anyhow::Result<Self> {
        let hex = || uuid::Uuid::new_v4().simple().to_string(); // 122 random bits each
        let file = Self {
            instance_id: uuid::Uuid::new_v4().to_string(),
            s3_access_key_id: format!("R2BDEV{}", hex()[..14].to_ascii_uppercase()),
            s3_secret_access_key: (hex() + &hex())[..40].to_owned(),
            jwt_secret: hex() + &hex(),
            created_at: crate::time::rfc3339(&chrono::Utc::now()),
        };
        // Written whole, then renamed: a crash never leaves half a file.
        let (path, tmp) = (dir.join("dev.json"), dir.join(".dev.json.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(file)
    }
}

/// An HS256 token for `owner`, with `iss` / `aud` when the broker requires them.
fn mint(settings: &Settings, secret: &str, owner: &str, ttl: Duration, admin: bool) -> anyhow::Result<String> {
    ensure!(crate::owner::is_valid(owner), "--owner must be 1 to 255 bytes, without U+0000");
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({"sub": owner, "iat": now, "exp": now + i64::try_from(ttl.as_secs())?});
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    if let Some(iss) = nonempty(&settings.jwt_issuer) {
        claims["iss"] = iss.into();
    }
    if let Some(aud) = nonempty(&settings.jwt_audience) {
        claims["aud"] = aud.into();
    }
    if admin {
        claims["scope"] = nonempty(&settings.admin_scope).unwrap_or_else(|| "broker:admin".into()).into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?)
}

/// Where the private cluster lives: `<data dir>/postgres`, unless we are root (PostgreSQL then
/// runs as `postgres`) and that user cannot reach it, e.g. a checkout under /root (0700). Then
/// a folder under /var/tmp named after the data dir's path, reused while dev.json lives.
fn postgres_dir(data_dir: &Path, instance: &str) -> anyhow::Result<(PathBuf, String)> {
    let local = data_dir.join("postgres");
    let world_traversable = |d: &Path| d.ancestors().all(|a| fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0));
    let euid = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if local.join("data/PG_VERSION").exists() || euid != Some(0) || world_traversable(data_dir) {
        return Ok((local, String::new()));
    }
    let hash = hex::encode(&sha2::Sha256::digest(data_dir.as_os_str().as_bytes())[..8]);
    let base = Path::new("/var/tmp");
    let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
    let dir = base.join(format!("r2-broker-pg-{hash}"));
    let marker = dir.join("instance");
    match fs::symlink_metadata(&dir) {
        Ok(m) => {
            ensure!(m.is_dir() && m.uid() == 0, "{} exists and is not ours: remove it", dir.display());
            if fs::read_to_string(&marker).unwrap_or_default().trim() != instance {
                // Left by an earlier data dir at this path that was deleted since: start over.
                tracing::info!(dir = %dir.display(), "removing the PostgreSQL cluster of a deleted data dir");
                fs::remove_dir_all(&dir)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    if !dir.exists() {
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        fs::write(&marker, instance)?;
    }
    let note = format!(
        "\n              (not in the data dir: the `postgres` user, as which PostgreSQL runs, cannot enter\n              \
         {}; this cluster is reused while its dev.json lives)",
        data_dir.display()
    );
    Ok((dir, note))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        bail!("--data-dir must not be empty");
    }
    Ok(std::path::absolute(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_file_is_private_and_minted_tokens_verify() {
        let dir = std::env::temp_dir().join(format!("r2b-devfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(DevFile::load(&dir).unwrap().is_none());
        let created = DevFile::create(&dir).unwrap();
        assert_eq!(fs::metadata(dir.join("dev.json")).unwrap().mode() & 0o777, 0o600);
        let loaded = DevFile::load(&dir).unwrap().unwrap();
        assert_eq!((loaded.jwt_secret.len(), loaded.s3_secret_access_key.len()), (64, 40));
        assert_eq!(loaded.jwt_secret, created.jwt_secret);
        assert_ne!(DevFile::create(&dir).unwrap().jwt_secret, created.jwt_secret); // random
        fs::remove_dir_all(&dir).unwrap();

        let settings = Settings {
            jwt_issuer: Some("https://issuer.example".into()),
            jwt_audience: Some("uploads".into()),
            ..Default::default()
        };
        let jwt = crate::config::JwtConfig {
            hmac: Some(crate::config::JwtKey::hs256(loaded.jwt_secret.as_bytes())),
            public: None,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            admin_scope: "broker:admin".into(),
        };
        let verifier = crate::auth::Verifier::new(&jwt);
        let ttl = Duration::from_secs(60);
        let caller = verifier.verify(&mint(&settings, &loaded.jwt_secret, "alice", ttl, true).unwrap()).unwrap();
        assert_eq!((caller.owner.as_str(), caller.admin), ("alice", true));
        let caller = verifier.verify(&mint(&settings, &loaded.jwt_secret, "dev", ttl, false).unwrap()).unwrap();
        assert_eq!((caller.owner.as_str(), caller.admin), ("dev", false));
        assert!(verifier.verify(&mint(&Settings::default(), &loaded.jwt_secret, "dev", ttl, false).unwrap()).is_err());
        assert!(mint(&settings, &loaded.jwt_secret, "", ttl, false).is_err());
    }
}
