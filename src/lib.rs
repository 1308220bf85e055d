//! r2-broker: presigned direct-to-store uploads with JWT auth, atomic quotas and
//! HeadObject-verified asset records. File bytes never pass through this process.
//!
//! Layers, one noun per file across them: `http` (routes, extractors, handlers, and the
//! only module that knows actix) → workflows (`uploads`, `assets`, `usage`, `idempotency`,
//! `reaper`, `confirm`) → `db` (all SQL) and `store` (S3) → `config`. `error` (the one
//! error type) and the small value modules are leaves everyone may use; nothing points
//! back up (`scripts/module-graph.py` checks). `main.rs` only parses the command line;
//! `Application::build` is what both `main` and the tests start.

/// An asset's lifecycle state and its recorded image variants.
pub mod asset_state;
/// Content checks and the verified records of uploaded objects.
pub mod assets;
/// JWT verification, the `Caller` and acting for another owner.
pub mod auth;
/// What the background workers share: the loop of passes, leased batches of rows.
mod background;
/// `r2-broker healthcheck`: the container health probe (plain HTTP over std).
pub mod cli_healthcheck;
/// Collections: named groups of assets with their own limits.
pub mod collections;
/// Settings from flags / environment, validated into `Config`.
pub mod config;
/// Background confirmation of uploads whose client never calls `complete` (Uppy, dead phones).
pub mod confirm;
/// PostgreSQL pool, migrations, SQL statements.
pub mod db;
/// `r2-broker dev`: an embedded S3 store and a private PostgreSQL (the `dev` feature).
#[cfg(feature = "dev")]
pub mod dev;
/// `r2-broker doctor`: checks a deployment (database, bucket, CORS, lifecycle, clock).
pub mod doctor;
/// The one error type (openapi.yaml's table), framework-free.
pub mod error;
/// The events webhooks report, and their bodies.
pub mod events;
/// Routes, extractor configuration, handlers, middleware.
pub mod http;
/// `Idempotency-Key`: claim, replay, wait or refuse, and keep the answer.
pub mod idempotency;
/// The one spelling of an id the API accepts (paths and bodies).
pub mod ids;
/// `r2-broker import`: a folder or a JSONL export becomes assets, through the upload path.
pub mod import;
/// The asset job worker: scans and image variants between `complete` and `ready`.
pub mod jobs;
/// Object key construction.
pub mod keys;
/// The S3 / R2 limits (sizes, part counts, key length, URL lifetime).
pub mod limits;
/// Giving freed memory back to the kernel after bursts.
pub mod memory;
/// Prometheus metrics.
pub mod metrics;
/// The owner newtype rows carry.
pub mod owner;
/// Keyset pagination and its opaque cursor.
pub mod pages;
/// Profiles, content-type rules, multipart plans.
pub mod profiles;
/// Background cleanup: expiry, store cleanup, old idempotency keys.
pub mod reaper;
/// Scanners an asset must pass (clamd, an HTTP validator).
pub mod scan;
/// Content sniffing: an upload's first bytes against its declared type.
pub mod sniff;
/// Shared application state.
pub mod state;
/// The object store (SDK calls, presigning, POST policies).
pub mod store;
/// Logging setup.
pub mod telemetry;
/// RFC 3339 helpers.
pub mod time;
/// Upload workflows: create, parts, complete, abort.
pub mod uploads;
/// Usage and quotas.
pub mod usage;
/// Image variants: bounded decode, orientation, resize, encode.
pub mod variants;
/// Signed webhook delivery (Standard Webhooks), retries, and the admin side of the outbox.
pub mod webhooks;

use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::state::AppState;

pub struct Application {
    server: Server,
    port: u16,
    state: AppState,
}

impl Application {
    /// Connects, migrates, binds (port 0 picks a free port) and prepares the server; the
    /// server runs when `run_until_stopped` is awaited.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state = build_state(config).await?;
        let app_state = state.clone();
        let (per_worker, live) = connection_limits(&state.config);
        let server = HttpServer::new(move || app(app_state.for_worker()))
            .workers(state.config.workers)
            // A connection opened past `BROKER_MAX_CONNECTIONS` is still accepted, then
            // answered 503 and closed (`shed_over_limit`): a flood gets answers, not a stalled
            // accept queue. Only past `max_connections` (what the descriptors allow, with
            // headroom for those answers) does a worker stop accepting; new connections then
            // wait in the backlog.
            .on_connect(move |_, ext| live.opened(ext))
            .max_connections(per_worker)
            .backlog(2048)
            // Headers must arrive within 5 s of connecting, an idle keep-alive connection
            // closes after 5 s, and a client gets 1 s to take a response before we drop it.
            // Bodies have their own bound (`BROKER_BODY_TIMEOUT`, http/json.rs).
            .client_request_timeout(Duration::from_secs(5))
            .keep_alive(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            // `bind`, not `listen(std::net::TcpListener)`: only a socket actix creates itself
            // gets `backlog` (std listens with 128, and the kernel drops SYNs past it).
            .bind(&state.config.listen)
            .map_err(|e| anyhow::anyhow!("BROKER_LISTEN: cannot listen on {}: {e}", state.config.listen))?;
        let port =
            server.addrs().first().map(|a| a.port()).ok_or_else(|| anyhow::anyhow!("BROKER_LISTEN: no address"))?;
        let server = server.disable_signals().run();
        Ok(Self { server, port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the server gracefully (in-flight requests finish).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs the server and the background tasks (memory trimming, the reaper and the
    /// confirmer when their intervals are set) until the server stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let config = &self.state.config;
        let mut tasks = vec![tokio::spawn(memory::trim_forever(Duration::from_secs(10)))];
        if let Some(every) = config.reaper_interval {
            tasks.push(tokio::spawn(reaper::run_forever(self.state.clone(), every)));
        }
        if let Some(every) = config.confirm_interval {
            tasks.push(tokio::spawn(confirm::run_forever(self.state.clone(), every)));
        }
        if config.processing.jobs_in_process {
            tasks.extend(spawn_workers(&self.state).map_err(std::io::Error::other)?);
        }
        let result = self.server.await;
        for task in tasks {
            task.abort();
        }
        result
    }
}

/// Descriptors kept for everything but client connections: database and store
/// connections, the listener, files, logs.
const RESERVED_FDS: u64 = 256;

/// Per worker, what actix may hold (`max_connections`), and the counter that sheds
/// connections past `BROKER_MAX_CONNECTIONS`. The soft open-files limit is raised to the
/// hard one first (10 000s of idle keep-alive clients are normal behind a load balancer);
/// the descriptors left after `RESERVED_FDS` and the pool are the room for client
/// connections. `BROKER_MAX_CONNECTIONS` is capped at 90% of it: the rest is headroom for
/// connections being answered 503, so that a flood does not stop the accept loop.
fn connection_limits(config: &Config) -> (usize, http::shedding::LiveConnections) {
    let workers = config.workers as u64;
    let fds = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = fds.saturating_sub(RESERVED_FDS + config.db.pool_size as u64).max(2 * workers);
    let limit = (config.max_connections as u64).min(room - room / 10);
    if limit < config.max_connections as u64 {
        tracing::warn!(
            max_connections = config.max_connections,
            open_files_limit = fds,
            "BROKER_MAX_CONNECTIONS capped to {limit} by the open-files limit"
        );
    }
    ((room / workers).max(1) as usize, http::shedding::LiveConnections::new(limit as usize))
}

/// Pool, migrations, store client and state: everything but the listener. Used by
/// `serve` and by the one-shot subcommands (`migrate`, `reap`).
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let pool = db::pool(&config.db, config.db.pool_size)?;
    db::migrate(&pool).await.map_err(|e| anyhow::anyhow!("DATABASE_URL: migrations failed: {e}"))?;
    let store = store::Store::new(&config.s3)?;
    AppState::new(config, pool, store).await
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        // `accept` is safelisted, but listed anyway: Uppy sends it on every call.
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" { cors.allow_any_origin().send_wildcard() } else { cors.allowed_origin(origin) };
    }
    cors
}

/// The application: routes plus middleware. `request_id` is outermost so every response,
/// errors from the other middleware included, carries `x-request-id`.
fn app(
    state: AppState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let origins = state.config.cors_origins.clone();
    let dev_pages = state.config.dev_pages;
    App::new()
        .app_data(web::Data::new(state))
        .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
        .wrap(from_fn(http::shedding::shed_over_limit))
        .wrap(from_fn(http::middleware::observe))
        .wrap(from_fn(http::request_id::middleware))
        .configure(http::routes)
        .configure(|cfg| {
            if dev_pages {
                http::dev_pages::routes(cfg)
            }
        })
        .default_service(web::to(http::not_found))
}

/// The asset job worker and the webhook deliveries: in the serving process
/// (`BROKER_JOBS=in-process`) or in `r2-broker worker`.
fn spawn_workers(state: &AppState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let every = state.config.processing.job_interval;
    let jobs = jobs::Worker::new(state.clone())?;
    Ok(vec![tokio::spawn(jobs.run_forever(every)), tokio::spawn(webhooks::run_forever(state.clone(), every))])
}

/// `r2-broker worker`: the asset jobs and webhook deliveries without the API (run it
/// beside `serve` with `BROKER_JOBS=off` there, so image work never slows the signing API),
/// plus `/healthz`, `/readyz` and `/metrics` on `BROKER_LISTEN`. Runs until SIGINT/SIGTERM.
pub async fn work(config: Config) -> anyhow::Result<()> {
    let state = build_state(config).await?;
    let tasks = spawn_workers(&state)?;
    let ops_state = state.clone();
    let server =
        HttpServer::new(move || App::new().app_data(web::Data::new(ops_state.clone())).configure(http::ops_routes))
            .workers(1)
            .disable_signals()
            .bind(&state.config.listen)
            .map_err(|e| anyhow::anyhow!("BROKER_LISTEN: cannot listen on {}: {e}", state.config.listen))?;
    let port = server.addrs().first().map_or(0, |a| a.port());
    let server = server.run();
    let handle = server.handle();
    tracing::info!(port, "r2-broker worker running (asset jobs, webhook deliveries)");
    let running = tokio::spawn(server);
    shutdown_signal().await;
    tracing::info!("shutting down");
    for task in tasks {
        task.abort();
    }
    handle.stop(true).await;
    running.await??;
    Ok(())
}

/// `r2-broker serve`: runs until SIGINT/SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "r2-broker listening");
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.stop(true).await;
    server.await??;
    Ok(())
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
