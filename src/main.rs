//! The command line: parse, set up logging, hand over to the library.

use clap::{Parser, Subcommand};
use r2_broker::config::Settings;

/// r2-broker: presigned direct-to-R2/S3 uploads with JWT auth, atomic quotas and
/// HeadObject-verified asset records. Every option is also an environment variable.
#[derive(Parser)]
#[command(name = "r2-broker", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default)
    Serve,
    /// Run the asset jobs (scans, image variants) and webhook deliveries without the API
    ///
    /// With the same settings as `serve`; set BROKER_JOBS=off on the serving replicas so they
    /// leave this work to workers. Serves /healthz, /readyz and /metrics on BROKER_LISTEN.
    Worker,
    /// Run the database migrations and exit
    Migrate,
    /// Run one confirmer pass (uploads whose object appeared) and one reaper pass (expire
    /// intents, clean the store, forget old idempotency keys), then exit
    Reap,
    /// Check this deployment (database, bucket, CORS, lifecycle, clock, scanners) and say what to fix
    ///
    /// With the same settings as `serve`: PostgreSQL (reachable, TLS in use, migrations), the
    /// bucket with these credentials, a presigned PUT/HEAD/GET/DELETE round trip of a probe
    /// object, the clock against the store's, the bucket's CORS and lifecycle rules. Exit 0
    /// when nothing failed (warnings allowed), 1 otherwise.
    Doctor,
    /// Run the broker with an embedded S3 store and a private PostgreSQL, for development
    #[cfg(feature = "dev")]
    Dev(r2_broker::dev::DevArgs),
    /// Import files an app already has (a folder, a JSONL export) as assets of an owner
    ///
    /// With the same settings as `serve` (or, in a folder where `r2-broker dev` runs, its
    /// settings): every file goes through the upload rules, the owner's quota, the store and
    /// the HeadObject check. Re-running skips what is already imported. Exit 0 when all is
    /// done, 1 when anything failed, 2 on a usage error.
    Import(r2_broker::import::cli::ImportArgs),
    /// GET /readyz (or --url) and exit 0 on 2xx, 1 otherwise (the container HEALTHCHECK)
    Healthcheck(r2_broker::cli_healthcheck::HealthcheckArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `healthcheck` needs no configuration and `dev` builds its own: both before `validate`.
    match &cli.command {
        Some(Command::Healthcheck(args)) => {
            return r2_broker::cli_healthcheck::run(args, cli.settings.listen.as_deref());
        }
        #[cfg(feature = "dev")]
        Some(Command::Dev(args)) => {
            return match r2_broker::dev::run(args, cli.settings.clone()).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("r2-broker dev: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Some(Command::Import(args)) => return r2_broker::import::cli::run(args, cli.settings.clone()).await,
        _ => {}
    }
    let config = match cli.settings.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("r2-broker: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::Doctor) = cli.command {
        // A report for people: no log lines in between (RUST_LOG still turns them on).
        let findings = r2_broker::doctor::run(&config).await;
        print!("{}", r2_broker::doctor::render(&config, &findings));
        return if r2_broker::doctor::any_failed(&findings) {
            std::process::ExitCode::FAILURE
        } else {
            std::process::ExitCode::SUCCESS
        };
    }
    r2_broker::telemetry::init(config.log_json);
    tracing::info!(config = %config.summary(), "starting");
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => r2_broker::serve(config).await,
        Command::Worker => r2_broker::work(config).await,
        Command::Migrate => r2_broker::build_state(config).await.map(|_| tracing::info!("migrations applied")),
        #[cfg(feature = "dev")]
        Command::Dev(_) => unreachable!("handled before validate"),
        Command::Healthcheck(_) | Command::Import(_) => unreachable!("handled before validate"),
        Command::Doctor => unreachable!("handled before logging starts"),
        Command::Reap => match r2_broker::build_state(config).await {
            // Confirm first: an upload whose object appeared becomes an asset rather than
            // being expired by the reaper in the same pass.
            Ok(state) => match r2_broker::confirm::run_once(&state).await {
                Ok(confirmed) => {
                    println!("{confirmed:?}");
                    r2_broker::reaper::run_once(&state)
                        .await
                        .map(|report| println!("{report:?}"))
                        .map_err(|e| anyhow::anyhow!("reaper pass failed: {e:?}"))
                }
                Err(e) => Err(anyhow::anyhow!("confirmer pass failed: {e:?}")),
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "r2-broker failed");
            eprintln!("r2-broker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
