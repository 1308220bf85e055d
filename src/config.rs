//! Configuration: every setting is an environment variable (the README's Configuration table) with a
//! flag of the same meaning, documented in `r2-broker --help`. `Settings` is the raw input;
//! `Settings::validate` turns it into a typed `Config` or an error naming the variable, so a
//! bad deployment fails at start rather than on the first request.

use secrecy::{ExposeSecret, SecretString};

use crate::profiles::Profiles;

mod database_url;
mod jwt;
mod processing;
mod secrets;
mod settings;
pub use database_url::{DatabaseUrl, RootCerts, SslMode};
pub use jwt::{JwksIssuer, JwtConfig, JwtKey};
pub use processing::{ClamdAddress, ProcessingConfig};
pub use settings::Settings;

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

fn bad(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { variable, reason: reason.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    R2,
    S3,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// Scheme and authority, no trailing slash; the host presigned URLs are signed for.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub provider: Provider,
    /// No trailing slash.
    pub public_base_url: Option<String>,
    /// Bound of one store call, retry included (`BROKER_STORE_TIMEOUT`).
    pub timeout: std::time::Duration,
    /// Bound of CompleteMultipartUpload (`BROKER_STORE_COMPLETE_TIMEOUT`).
    pub complete_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// What the database pool needs (`db::pool`), and nothing else of the configuration.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: SecretString,
    /// Connections at most, all workers together (`BROKER_DB_POOL_SIZE`).
    pub pool_size: usize,
    /// Bound of one database call, pool checkout included (`BROKER_DB_TIMEOUT`).
    pub timeout: std::time::Duration,
    /// Bound of the migrations at start; `None`: unbounded (`BROKER_MIGRATION_TIMEOUT=0`).
    pub migration_timeout: Option<std::time::Duration>,
}

/// A test harness hands `db::pool` the whole `Config`; the pool reads only its part.
impl AsRef<DbSettings> for Config {
    fn as_ref(&self) -> &DbSettings {
        &self.db
    }
}

impl AsRef<DbSettings> for DbSettings {
    fn as_ref(&self) -> &DbSettings {
        self
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub db: DbSettings,
    pub s3: S3Config,
    pub jwt: JwtConfig,
    pub profiles: Profiles,
    pub default_quota_bytes: i64,
    pub default_quota_objects: i64,
    pub workers: usize,
    pub cors_origins: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    /// `None` disables the background reaper (it can still run as `r2-broker reap`).
    pub reaper_interval: Option<std::time::Duration>,
    /// `None` disables the background confirmer (`BROKER_CONFIRM_INTERVAL=0`).
    pub confirm_interval: Option<std::time::Duration>,
    /// Wait before the first check of a new upload, and the least wait between checks.
    pub confirm_backoff: std::time::Duration,
    /// Longest wait between two checks of one upload.
    pub confirm_backoff_max: std::time::Duration,
    pub log_json: bool,
    /// How long a request body may take to arrive (`BROKER_BODY_TIMEOUT`).
    pub body_timeout: std::time::Duration,
    /// Client connections at most, all workers together (`BROKER_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Sniffing's scanners, the image worker's bounds, webhooks, where jobs run.
    pub processing: ProcessingConfig,
    /// Serve the demo page at `/` and the JS client at `/client/r2-broker.js`: set by
    /// `r2-broker dev` only (no variable or flag), never by `serve`.
    pub dev_pages: bool,
}

fn required(value: &Option<String>, variable: &'static str) -> Result<String, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(bad(variable, "is required")),
    }
}

fn number<T: std::str::FromStr>(value: &Option<String>, variable: &'static str, default: T) -> Result<T, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| bad(variable, format!("{v:?} is not a valid number"))),
    }
}

/// A number of seconds (fractions allowed) within `range`.
fn seconds(
    value: &Option<String>,
    variable: &'static str,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<std::time::Duration, ConfigError> {
    let secs = number(value, variable, default)?;
    if !range.contains(&secs) {
        return Err(bad(variable, format!("must be {} to {} seconds", range.start(), range.end())));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `scheme://authority` with no path, query or trailing slash.
fn base_url(value: &str, variable: &'static str) -> Result<String, ConfigError> {
    let v = value.trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| bad(variable, "must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(bad(variable, "must be a URL like https://host[:port]"));
    }
    Ok(v.to_owned())
}

impl Settings {
    /// The HS256 secret from `JWT_SECRET` or `JWT_SECRET_FILE`, for `r2-broker dev`, which
    /// mints tokens with it (or with its own when neither is set).
    pub fn jwt_secret(&self) -> Result<Option<String>, ConfigError> {
        secrets::secret(&self.jwt_secret, &self.jwt_secret_file, "JWT_SECRET", "JWT_SECRET_FILE")
    }

    pub fn validate(&self) -> Result<Config, ConfigError> {
        let listen = self.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
        if !listen.contains(':') {
            return Err(bad("BROKER_LISTEN", "must be HOST:PORT"));
        }
        let database_url =
            secrets::secret(&self.database_url, &self.database_url_file, "DATABASE_URL", "DATABASE_URL_FILE")?;
        let database_url = required(&database_url, "DATABASE_URL")?;
        DatabaseUrl::parse(&database_url).map_err(|reason| bad("DATABASE_URL", reason))?;

        let endpoint = base_url(&required(&self.s3_endpoint, "S3_ENDPOINT")?, "S3_ENDPOINT")?;
        if endpoint.strip_prefix("https://").or(endpoint.strip_prefix("http://")).is_some_and(|r| r.contains('/')) {
            return Err(bad("S3_ENDPOINT", "must not have a path (the bucket is S3_BUCKET)"));
        }
        let bucket = required(&self.s3_bucket, "S3_BUCKET")?;
        if !(3..=63).contains(&bucket.len())
            || !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad("S3_BUCKET", "must be 3 to 63 characters of a-z 0-9 . -"));
        }
        let provider = match self.s3_provider.as_deref().map(str::trim) {
            None | Some("") | Some("r2") => Provider::R2,
            Some("s3") => Provider::S3,
            Some(other) => return Err(bad("S3_PROVIDER", format!("{other:?} is not `r2` or `s3`"))),
        };
        let public_base_url = match self.s3_public_base_url.as_deref() {
            None | Some("") => None,
            Some(v) => Some(base_url(v, "S3_PUBLIC_BASE_URL")?),
        };
        let store_timeout = seconds(&self.store_timeout, "BROKER_STORE_TIMEOUT", 5.0, 0.1..=600.0)?;
        let complete_timeout =
            seconds(&self.store_complete_timeout, "BROKER_STORE_COMPLETE_TIMEOUT", 60.0, 0.1..=3600.0)?;
        let s3 = S3Config {
            endpoint,
            bucket,
            region: self.s3_region.clone().filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "auto".into()),
            access_key_id: required(
                &secrets::secret(
                    &self.s3_access_key_id,
                    &self.s3_access_key_id_file,
                    "S3_ACCESS_KEY_ID",
                    "S3_ACCESS_KEY_ID_FILE",
                )?,
                "S3_ACCESS_KEY_ID",
            )?,
            secret_access_key: required(
                &secrets::secret(
                    &self.s3_secret_access_key,
                    &self.s3_secret_access_key_file,
                    "S3_SECRET_ACCESS_KEY",
                    "S3_SECRET_ACCESS_KEY_FILE",
                )?,
                "S3_SECRET_ACCESS_KEY",
            )?
            .into(),
            provider,
            public_base_url,
            timeout: store_timeout,
            complete_timeout,
        };

        let jwt = jwt::validate(self)?;

        let profiles = match &self.profiles {
            None => Profiles::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad("BROKER_PROFILES", format!("cannot read {}: {e}", path.display())))?;
                Profiles::from_toml(&text).map_err(|e| bad("BROKER_PROFILES", e))?
            }
        };
        if s3.public_base_url.is_some() || profiles.iter().any(|p| p.visibility == crate::profiles::Visibility::Public)
        {
            profiles.check_public_profiles().map_err(|e| bad("BROKER_PROFILES", e))?;
        }

        let processing = processing::validate(self, &profiles)?;

        let default_quota_bytes = number(&self.default_quota_bytes, "BROKER_DEFAULT_QUOTA_BYTES", 10_737_418_240i64)?;
        let default_quota_objects = number(&self.default_quota_objects, "BROKER_DEFAULT_QUOTA_OBJECTS", 100_000i64)?;
        if default_quota_bytes < 0 {
            return Err(bad("BROKER_DEFAULT_QUOTA_BYTES", "must be >= 0"));
        }
        if default_quota_objects < 0 {
            return Err(bad("BROKER_DEFAULT_QUOTA_OBJECTS", "must be >= 0"));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let db_pool_size = number(&self.db_pool_size, "BROKER_DB_POOL_SIZE", (cores * 4).max(8))?;
        if db_pool_size == 0 {
            return Err(bad("BROKER_DB_POOL_SIZE", "must be at least 1"));
        }
        let db_timeout = seconds(&self.db_timeout, "BROKER_DB_TIMEOUT", 3.0, 0.1..=600.0)?;
        let migration_timeout = seconds(&self.migration_timeout, "BROKER_MIGRATION_TIMEOUT", 300.0, 0.0..=86_400.0)?;
        let workers = number(&self.workers, "BROKER_WORKERS", cores)?;
        if workers == 0 {
            return Err(bad("BROKER_WORKERS", "must be at least 1"));
        }
        let cors_origins = self
            .cors_origins
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>();
        for o in &cors_origins {
            if o != "*" {
                base_url(o, "BROKER_CORS_ORIGINS")?;
            }
        }
        let per_second = number(&self.rate_limit_per_second, "BROKER_RATE_LIMIT_PER_SECOND", 0u32)?;
        let rate_limit = (per_second > 0)
            .then(|| {
                number(&self.rate_limit_burst, "BROKER_RATE_LIMIT_BURST", per_second.saturating_mul(2))
                    .map(|burst| RateLimit { per_second, burst: burst.max(1) })
            })
            .transpose()?;
        let reaper_secs = number(&self.reaper_interval, "BROKER_REAPER_INTERVAL", 60u64)?;
        let confirm_interval = seconds(&self.confirm_interval, "BROKER_CONFIRM_INTERVAL", 1.0, 0.0..=3600.0)?;
        let confirm_backoff = seconds(&self.confirm_backoff, "BROKER_CONFIRM_BACKOFF", 2.0, 0.1..=3600.0)?;
        let confirm_backoff_max =
            seconds(&self.confirm_backoff_max, "BROKER_CONFIRM_BACKOFF_MAX", 300.0, 0.1..=86_400.0)?;
        if confirm_backoff_max < confirm_backoff {
            return Err(bad("BROKER_CONFIRM_BACKOFF_MAX", "must be at least BROKER_CONFIRM_BACKOFF"));
        }
        let body_secs = number(&self.body_timeout, "BROKER_BODY_TIMEOUT", 10u64)?;
        if !(1..=3600).contains(&body_secs) {
            return Err(bad("BROKER_BODY_TIMEOUT", "must be 1 to 3600 seconds"));
        }
        let max_connections = number(&self.max_connections, "BROKER_MAX_CONNECTIONS", 25_000usize)?;
        if max_connections < workers {
            return Err(bad("BROKER_MAX_CONNECTIONS", "must be at least one per worker"));
        }
        let log_json = match self.log_format.as_deref().map(str::trim) {
            None | Some("") | Some("text") => false,
            Some("json") => true,
            Some(other) => return Err(bad("BROKER_LOG_FORMAT", format!("{other:?} is not `text` or `json`"))),
        };

        Ok(Config {
            listen,
            db: DbSettings {
                url: database_url.into(),
                pool_size: db_pool_size,
                timeout: db_timeout,
                migration_timeout: (!migration_timeout.is_zero()).then_some(migration_timeout),
            },
            s3,
            jwt,
            profiles,
            default_quota_bytes,
            default_quota_objects,
            workers,
            cors_origins,
            rate_limit,
            reaper_interval: (reaper_secs > 0).then(|| std::time::Duration::from_secs(reaper_secs)),
            confirm_interval: (!confirm_interval.is_zero()).then_some(confirm_interval),
            confirm_backoff,
            confirm_backoff_max,
            log_json,
            body_timeout: std::time::Duration::from_secs(body_secs),
            max_connections,
            processing,
            dev_pages: false,
        })
    }
}

impl Config {
    /// The profiles whose events are written (an endpoint is configured for them).
    pub fn event_profiles(&self) -> Vec<&str> {
        self.profiles
            .iter()
            .filter(|p| self.processing.webhook_endpoint(p).is_some())
            .map(|p| p.name.as_str())
            .collect()
    }

    /// A one-line description for the start-up log: no secrets, no password.
    pub fn summary(&self) -> String {
        let db = self
            .db
            .url
            .expose_secret()
            .parse::<tokio_postgres::Config>()
            .map(|c| {
                let hosts = c.get_hosts().iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(",");
                format!("{hosts}/{}", c.get_dbname().unwrap_or("?"))
            })
            .unwrap_or_default();
        format!(
            "listen={} db={} s3={} bucket={} provider={:?} profiles={} jwt={}{}{}",
            self.listen,
            db,
            self.s3.endpoint,
            self.s3.bucket,
            self.s3.provider,
            self.profiles.names().join(","),
            if self.jwt.hmac.is_some() { "hs256" } else { "" },
            if self.jwt.public.is_some() { "+public-key" } else { "" },
            self.jwt.jwks.iter().map(|j| format!("+jwks({})", j.issuer)).collect::<String>(),
        )
    }
}

#[cfg(test)]
mod tests;
