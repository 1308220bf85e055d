//! The `r2-broker import` command line: settings from the environment (and, in a folder
//! where `r2-broker dev` runs, the dev mode's for what the environment leaves unset), the
//! run with Ctrl-C handling, the final report and the exit code: 0 all done, 1 anything
//! failed or left out, 2 a usage or configuration error, 130 interrupted.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Options, ProgressMode, Report, Source};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: ImportSource,
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Every regular file under PATH (recursively; symbolic links and hidden entries are
    /// skipped); the relative path is the filename and `source_path` in the metadata
    Dir {
        path: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// One JSON object per line: `filename`, `content_type`, `data_base64` or `path`
    /// (relative to FILE's folder), optional `metadata` and `id`
    Jsonl {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
pub struct Common {
    /// The owner the assets belong to (their quota is charged)
    #[arg(long)]
    pub owner: String,
    /// The profile whose rules apply (default: `default`)
    #[arg(long)]
    pub profile: Option<String>,
    /// One of the owner's collections (its id): its limits hold too, and the assets are
    /// listed in it
    #[arg(long, value_name = "ID")]
    pub collection: Option<uuid::Uuid>,
    /// Files uploaded at once
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Check everything (rules, types, sizes, quota room) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The `r2-broker dev` data dir whose settings fill what the environment leaves unset
    #[arg(long, value_name = "DIR", default_value = ".r2-broker")]
    pub dev_data_dir: PathBuf,
}

const USAGE_ERROR: u8 = 2;
const INTERRUPTED: u8 = 130;
/// Failures listed in the report; the count says how many more there were.
const LISTED_FAILURES: usize = 50;

pub async fn run(args: &ImportArgs, mut settings: Settings) -> ExitCode {
    let (source, common) = match &args.source {
        ImportSource::Dir { path, common } => (Source::Dir(path.clone()), common),
        ImportSource::Jsonl { file, common } => (Source::Jsonl(file.clone()), common),
    };
    #[cfg(feature = "dev")]
    if let Err(e) = crate::dev::fill_from_running(&common.dev_data_dir, &mut settings) {
        eprintln!("r2-broker import: {e:#}");
        return ExitCode::from(USAGE_ERROR);
    }
    let config = match settings.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("r2-broker import: configuration error: {e}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    // Warnings only unless RUST_LOG says otherwise: the report is the output.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(crate::telemetry::subscriber(
        filter,
        config.log_json,
        std::io::stderr,
    ));
    if let Some(p) = &common.profile
        && config.profiles.get(p).is_none()
    {
        eprintln!("r2-broker import: --profile: unknown profile {p:?} (known: {})", config.profiles.names().join(", "));
        return ExitCode::from(USAGE_ERROR);
    }
    let state = match crate::build_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("r2-broker import: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        owner: common.owner.clone(),
        profile: common.profile.clone(),
        collection: common.collection,
        concurrency: common.concurrency.into(),
        dry_run: common.dry_run,
        progress: ProgressMode::for_stderr(),
    };
    let report = match super::run(state, source, options, crate::shutdown_signal()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("r2-broker import: {e:#}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    print!("{}", render(&report));
    if report.interrupted {
        ExitCode::from(INTERRUPTED)
    } else if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The final report, for people (and greppable: one `key: value` per line on top).
pub fn render(r: &Report) -> String {
    const MIB: f64 = (1 << 20) as f64;
    let mut out = String::new();
    let secs = r.elapsed.as_secs_f64().max(0.001);
    if r.dry_run {
        let _ = writeln!(out, "dry run: nothing was written");
        let _ = writeln!(out, "would import: {} files, {} bytes", r.planned, r.planned_bytes);
    } else {
        let _ = writeln!(out, "imported: {} files, {} bytes", r.imported, r.imported_bytes);
    }
    let _ = writeln!(out, "skipped: {} files already imported, {} bytes", r.skipped, r.skipped_bytes);
    let _ = writeln!(out, "failed: {}", r.failed.len());
    if r.ignored > 0 {
        let _ = writeln!(out, "ignored: {} symbolic links or other non-regular files", r.ignored);
    }
    let moved = (r.imported_bytes + r.planned_bytes) as f64 / MIB;
    let files = (r.imported + r.planned + r.skipped + r.failed.len() as u64) as f64;
    let _ = writeln!(out, "elapsed: {secs:.2} s, {:.1} files/s, {:.2} MiB/s", files / secs, moved / secs);
    if let Some(q) = &r.quota_shortfall {
        let _ = writeln!(out, "quota: {q}");
    }
    if r.interrupted {
        let _ = writeln!(out, "interrupted: run the same command again to import the rest");
    }
    for f in r.failed.iter().take(LISTED_FAILURES) {
        let _ = writeln!(out, "  FAILED {}: {}", f.source, f.reason);
    }
    if r.failed.len() > LISTED_FAILURES {
        let _ = writeln!(out, "  … and {} more", r.failed.len() - LISTED_FAILURES);
    }
    out
}
