//! `Settings`: the raw input, one optional string per environment variable and flag.

use std::path::PathBuf;

use clap::Args;

/// The raw settings, as given by flags or environment variables. All optional here so tests
/// can build one with `Settings { .., ..Default::default() }`; `validate` applies defaults.
/// No `Debug`: it holds secrets in the clear.
#[derive(Clone, Default, Args)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "BROKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// PostgreSQL connection URL (required); migrations run at start
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding DATABASE_URL (a mounted secret; one trailing newline is dropped)
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "PATH")]
    pub database_url_file: Option<PathBuf>,
    /// S3 endpoint, e.g. https://<account>.r2.cloudflarestorage.com (required)
    #[arg(long, env = "S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Bucket for all objects (required)
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// Signing region [default: auto]
    #[arg(long, env = "S3_REGION")]
    pub s3_region: Option<String>,
    /// Store access key id (required)
    #[arg(long, env = "S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// File holding S3_ACCESS_KEY_ID
    #[arg(long, env = "S3_ACCESS_KEY_ID_FILE", value_name = "PATH")]
    pub s3_access_key_id_file: Option<PathBuf>,
    /// Store secret access key (required)
    #[arg(long, env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// File holding S3_SECRET_ACCESS_KEY
    #[arg(long, env = "S3_SECRET_ACCESS_KEY_FILE", value_name = "PATH")]
    pub s3_secret_access_key_file: Option<PathBuf>,
    /// `r2` or `s3`: what the store supports (`r2` has no POST policy) [default: r2]
    #[arg(long, env = "S3_PROVIDER")]
    pub s3_provider: Option<String>,
    /// Public URL of the bucket, used for download URLs of `public` profiles
    #[arg(long, env = "S3_PUBLIC_BASE_URL", value_name = "URL")]
    pub s3_public_base_url: Option<String>,
    /// HS256 shared secret (at least 32 bytes)
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File holding JWT_SECRET
    #[arg(long, env = "JWT_SECRET_FILE", value_name = "PATH")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM public key for RS256 / ES256 / EdDSA tokens
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// When set, tokens must carry this `iss`
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// When set, tokens must carry this `aud`
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// JWKS URL of the identity provider whose tokens carry JWT_ISSUER (required with it);
    /// keys are looked up by `kid`
    #[arg(long, env = "JWT_JWKS_URL", value_name = "URL")]
    pub jwt_jwks_url: Option<String>,
    /// More JWKS providers: `iss=<issuer>,jwks=<url>[,aud=<audience>]` entries separated
    /// by `;` or newlines
    #[arg(long, env = "JWT_ISSUERS", value_name = "ENTRIES")]
    pub jwt_issuers: Option<String>,
    /// Claim naming the owner (a string, 1 to 255 bytes) [default: sub]
    #[arg(long, env = "JWT_OWNER_CLAIM", value_name = "CLAIM")]
    pub jwt_owner_claim: Option<String>,
    /// Comma-separated claims holding scopes (a space-separated string or an array)
    /// [default: scope,scp,scopes]
    #[arg(long, env = "JWT_SCOPE_CLAIM", value_name = "CLAIMS")]
    pub jwt_scope_claim: Option<String>,
    /// Least seconds between two JWKS fetches caused by unknown kids [default: 30]
    #[arg(long, env = "JWT_JWKS_COOLDOWN", value_name = "SECS")]
    pub jwt_jwks_cooldown: Option<String>,
    /// Seconds one JWKS fetch may take [default: 5]
    #[arg(long, env = "BROKER_JWKS_TIMEOUT", value_name = "SECS")]
    pub jwks_timeout: Option<String>,
    /// Scope that may act for any owner and call /v1/admin/* [default: broker:admin]
    #[arg(long, env = "BROKER_ADMIN_SCOPE")]
    pub admin_scope: Option<String>,
    /// Path of the profiles TOML file (a built-in `default` profile always exists)
    #[arg(long, env = "BROKER_PROFILES", value_name = "PATH")]
    pub profiles: Option<PathBuf>,
    /// Byte quota of an owner with none set [default: 10737418240]
    #[arg(long, env = "BROKER_DEFAULT_QUOTA_BYTES", value_name = "BYTES")]
    pub default_quota_bytes: Option<String>,
    /// Object quota of an owner with none set [default: 100000]
    #[arg(long, env = "BROKER_DEFAULT_QUOTA_OBJECTS", value_name = "N")]
    pub default_quota_objects: Option<String>,
    /// PostgreSQL connections, shared out between the HTTP workers [default: 4 per CPU core, at least 8]
    #[arg(long, env = "BROKER_DB_POOL_SIZE", value_name = "N")]
    pub db_pool_size: Option<String>,
    /// Seconds one database call may take, pool checkout included (also the server-side
    /// statement_timeout); past it the request answers 503 [default: 3]
    #[arg(long, env = "BROKER_DB_TIMEOUT", value_name = "SECS")]
    pub db_timeout: Option<String>,
    /// Seconds the migrations at start may take, waiting for another replica's included;
    /// 0: no bound [default: 300]
    #[arg(long, env = "BROKER_MIGRATION_TIMEOUT", value_name = "SECS")]
    pub migration_timeout: Option<String>,
    /// Seconds one store call may take, its retry included (each attempt gets half) [default: 5]
    #[arg(long, env = "BROKER_STORE_TIMEOUT", value_name = "SECS")]
    pub store_timeout: Option<String>,
    /// Seconds CompleteMultipartUpload may take (the store assembles the parts) [default: 60]
    #[arg(long, env = "BROKER_STORE_COMPLETE_TIMEOUT", value_name = "SECS")]
    pub store_complete_timeout: Option<String>,
    /// HTTP worker threads [default: one per CPU core]
    #[arg(long, env = "BROKER_WORKERS", value_name = "N")]
    pub workers: Option<String>,
    /// Comma-separated origins allowed by CORS on the API, or `*` [default: none]
    #[arg(long, env = "BROKER_CORS_ORIGINS", value_name = "ORIGINS")]
    pub cors_origins: Option<String>,
    /// Requests per second allowed per owner; unset or 0 disables rate limiting
    #[arg(long, env = "BROKER_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub rate_limit_per_second: Option<String>,
    /// Burst allowed above the per-second rate [default: 2 x the rate]
    #[arg(long, env = "BROKER_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<String>,
    /// Seconds between two passes of the background reaper; 0 disables it [default: 60]
    #[arg(long, env = "BROKER_REAPER_INTERVAL", value_name = "SECS")]
    pub reaper_interval: Option<String>,
    /// Seconds between two passes of the background confirmer, which HEADs pending put/post
    /// uploads and confirms those whose object appeared (fractions allowed); 0 disables it [default: 1]
    #[arg(long, env = "BROKER_CONFIRM_INTERVAL", value_name = "SECS")]
    pub confirm_interval: Option<String>,
    /// Seconds after create of the confirmer's first check of an upload; later checks wait
    /// as long as the upload is old (doubling) [default: 2; dev mode: 1]
    #[arg(long, env = "BROKER_CONFIRM_BACKOFF", value_name = "SECS")]
    pub confirm_backoff: Option<String>,
    /// Longest wait between two checks of one upload, in seconds [default: 300; dev mode: 10]
    #[arg(long, env = "BROKER_CONFIRM_BACKOFF_MAX", value_name = "SECS")]
    pub confirm_backoff_max: Option<String>,
    /// Log format: `text` or `json` (filter with RUST_LOG) [default: text]
    #[arg(long, env = "BROKER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Seconds a client has to send a request body once its headers arrived; a slower
    /// body is answered 408 and its connection closed [default: 10]
    #[arg(long, env = "BROKER_BODY_TIMEOUT", value_name = "SECS")]
    pub body_timeout: Option<String>,
    /// Open client connections at most, all workers together; a connection past it is
    /// answered 503 + Retry-After and closed [default: 25000, capped at 90% of what the
    /// open-files limit leaves]
    #[arg(long, env = "BROKER_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,
    /// `in-process`: the serving process also runs the asset jobs (scans, variants) and the
    /// webhook deliveries; `off`: `r2-broker worker` runs them [default: in-process]
    #[arg(long, env = "BROKER_JOBS", value_name = "WHERE")]
    pub jobs: Option<String>,
    /// Asset jobs worked on at once by one process [default: 2]
    #[arg(long, env = "BROKER_JOB_CONCURRENCY", value_name = "N")]
    pub job_concurrency: Option<String>,
    /// Seconds between two looks at an empty job queue (fractions allowed) [default: 1]
    #[arg(long, env = "BROKER_JOB_INTERVAL", value_name = "SECS")]
    pub job_interval: Option<String>,
    /// ClamAV's clamd, for profiles with `scan = ["clamd"]`: tcp://HOST:PORT or unix:/PATH
    #[arg(long, env = "BROKER_CLAMD", value_name = "ADDR")]
    pub clamd: Option<String>,
    /// HTTP validator for profiles with `scan = ["http"]`: POSTed each asset's presigned GET
    /// URL; 2xx passes
    #[arg(long, env = "BROKER_SCAN_URL", value_name = "URL")]
    pub scan_url: Option<String>,
    /// Seconds one scan may take, the object's transfer included [default: 120]
    #[arg(long, env = "BROKER_SCAN_TIMEOUT", value_name = "SECS")]
    pub scan_timeout: Option<String>,
    /// Largest object that gets image variants, in bytes [default: 104857600]
    #[arg(long, env = "BROKER_VARIANT_MAX_BYTES", value_name = "BYTES")]
    pub variant_max_bytes: Option<String>,
    /// Largest decoded image, in pixels (decompression bombs) [default: 100000000]
    #[arg(long, env = "BROKER_VARIANT_MAX_PIXELS", value_name = "N")]
    pub variant_max_pixels: Option<String>,
    /// Seconds one asset's variants may take [default: 60]
    #[arg(long, env = "BROKER_VARIANT_TIMEOUT", value_name = "SECS")]
    pub variant_timeout: Option<String>,
    /// Where events go (profiles may name their own `webhook_url`)
    #[arg(long, env = "BROKER_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Standard Webhooks signing secret, `whsec_` + base64 (required with a webhook URL)
    #[arg(long, env = "BROKER_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// File holding BROKER_WEBHOOK_SECRET
    #[arg(long, env = "BROKER_WEBHOOK_SECRET_FILE", value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Seconds one webhook delivery may take [default: 10]
    #[arg(long, env = "BROKER_WEBHOOK_TIMEOUT", value_name = "SECS")]
    pub webhook_timeout: Option<String>,
    /// Deliveries of one event at most before it is listed as failed [default: 12]
    #[arg(long, env = "BROKER_WEBHOOK_MAX_ATTEMPTS", value_name = "N")]
    pub webhook_max_attempts: Option<String>,
    /// Seconds before the second delivery attempt; the wait doubles per attempt [default: 5]
    #[arg(long, env = "BROKER_WEBHOOK_BACKOFF", value_name = "SECS")]
    pub webhook_backoff: Option<String>,
    /// Longest wait between two delivery attempts, in seconds [default: 3600]
    #[arg(long, env = "BROKER_WEBHOOK_BACKOFF_MAX", value_name = "SECS")]
    pub webhook_backoff_max: Option<String>,
}
