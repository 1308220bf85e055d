//! `r2-broker import`: files an app already has (a media folder, base64 rows of a database
//! exported as JSONL) become assets through exactly the path a client's upload takes — the
//! create rules and the quota reservation, the bytes PUT to presigned URLs over plain HTTP
//! (multipart above the profile's threshold), `complete`'s HeadObject verification — only
//! the caller is this process instead of the HTTP API. The bytes never pass through the
//! service.
//!
//! Re-running is safe: an asset keeps its source and SHA-256 in its metadata, and a source
//! already imported with the same bytes is skipped (`db::imports`), so an interrupted import
//! resumes where it stopped. `docs/import.md` is the operator's page.

pub mod cli;
mod content_type;
mod items;
mod progress;
mod send;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use uuid::Uuid;

pub use content_type::detect as detect_content_type;
pub use progress::ProgressMode;

use crate::auth::Caller;
use crate::state::AppState;

/// What to import.
#[derive(Debug, Clone)]
pub enum Source {
    /// Every regular file under the folder; the relative path is the filename.
    Dir(PathBuf),
    /// One JSON object per line (`docs/import.md`).
    Jsonl(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub owner: String,
    /// `None`: the `default` profile.
    pub profile: Option<String>,
    /// One of the owner's collections: its limits hold too, and the assets are listed in it.
    pub collection: Option<uuid::Uuid>,
    /// Items in flight at once (at least 1).
    pub concurrency: usize,
    /// Check everything (rules, types, sizes, quota room), write nothing.
    pub dry_run: bool,
    pub progress: ProgressMode,
}

impl Options {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            profile: None,
            collection: None,
            concurrency: 5,
            dry_run: false,
            progress: ProgressMode::Off,
        }
    }
}

/// An item that did not become an asset, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The relative path, or `<file>:<line>`.
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub imported: u64,
    pub imported_bytes: u64,
    /// Already imported (same owner, source and SHA-256).
    pub skipped: u64,
    pub skipped_bytes: u64,
    pub failed: Vec<Failure>,
    /// Symbolic links and other entries that are not regular files (folders only).
    pub ignored: u64,
    pub dry_run: bool,
    /// Dry run: what would be imported.
    pub planned: u64,
    pub planned_bytes: u64,
    /// Dry run: the planned files do not fit the owner's remaining quota.
    pub quota_shortfall: Option<String>,
    /// Stopped by the interrupt future before every item was done.
    pub interrupted: bool,
    pub elapsed: Duration,
}

impl Report {
    /// Nothing failed, nothing was left out.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.quota_shortfall.is_none() && !self.interrupted
    }
}

/// What each item task shares.
struct Ctx {
    state: AppState,
    caller: Caller,
    options: Options,
    http: reqwest::Client,
    progress: progress::Progress,
    /// Intents reserved and not yet completed or aborted: aborted if the run is interrupted.
    in_flight: Mutex<HashSet<Uuid>>,
}

enum Outcome {
    Imported { bytes: u64 },
    Skipped { bytes: u64 },
    Planned { bytes: u64 },
    Failed(String),
}

/// After an interrupt, how long the items in flight may take to finish.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// How long aborting the intents still in flight after that may take in all.
const ABORT_DEADLINE: Duration = Duration::from_secs(10);

/// Imports `source` for `options.owner` until done or until `interrupt` resolves (Ctrl-C in
/// the CLI; `std::future::pending()` otherwise). On an interrupt no further item starts, the
/// items in flight get 30 s to finish (so a resumed run rarely finds half-done work); those
/// still running then are stopped and their intents aborted (within 10 s; the reaper
/// expires any left). The report says `interrupted`. `Err` only when the source cannot be
/// opened or the owner is not valid.
pub async fn run(
    state: AppState,
    source: Source,
    options: Options,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<Report> {
    crate::owner::check(&options.owner).map_err(|e| anyhow::anyhow!("--owner: {e}"))?;
    let started = Instant::now();
    let mut report = Report { dry_run: options.dry_run, ..Default::default() };
    let (items, total): (Box<dyn Iterator<Item = Result<items::Item, Failure>> + Send>, _) = match &source {
        Source::Dir(path) => {
            anyhow::ensure!(path.is_dir(), "{} is not a folder", path.display());
            let (items, ignored) = items::dir(path);
            report.ignored = ignored;
            let bytes = items
                .iter()
                .filter_map(|i| match i {
                    Ok(items::Item { body: items::Body::File(p), .. }) => p.metadata().ok().map(|m| m.len()),
                    _ => None,
                })
                .sum();
            let total = Some((items.len() as u64, bytes));
            (Box::new(items.into_iter()), total)
        }
        Source::Jsonl(path) => {
            let lines = items::Jsonl::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            (Box::new(lines), None)
        }
    };
    let http = reqwest::Client::builder()
        .connect_timeout(state.config.s3.timeout)
        .build()
        .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
    let ctx = Arc::new(Ctx {
        caller: Caller { owner: options.owner.clone(), admin: false },
        progress: progress::Progress::new(options.progress, total),
        options: options.clone(),
        state,
        http,
        in_flight: Mutex::new(HashSet::new()),
    });

    // Set on an interrupt: the items not started yet are left for the next run.
    let stopping = Arc::new(AtomicBool::new(false));
    let items = {
        let stopping = stopping.clone();
        items.take_while(move |_| !stopping.load(Ordering::Relaxed))
    };
    // Boxed, not pinned on the stack: dropping it must really end the items in flight.
    let mut work = Box::pin(
        futures_util::stream::iter(items)
            .map(|item| {
                let ctx = ctx.clone();
                async move {
                    match item {
                        Ok(item) => {
                            let label = item.label.clone();
                            (label, send::process(&ctx, item).await)
                        }
                        Err(f) => (f.source, Outcome::Failed(f.reason)),
                    }
                }
            })
            .buffer_unordered(options.concurrency.max(1)),
    );
    tokio::pin!(interrupt);
    let mut drain_deadline = None;
    loop {
        let next = tokio::select! {
            next = work.next() => next,
            () = &mut interrupt, if !report.interrupted => {
                report.interrupted = true;
                stopping.store(true, Ordering::Relaxed);
                drain_deadline = Some(Box::pin(tokio::time::sleep(DRAIN_DEADLINE)));
                if options.progress != ProgressMode::Off {
                    eprintln!("interrupted: finishing the files in flight (at most {} s)", DRAIN_DEADLINE.as_secs());
                }
                continue;
            }
            () = async { drain_deadline.as_mut().expect("guarded").await }, if drain_deadline.is_some() => break,
        };
        let Some((label, outcome)) = next else { break };
        match outcome {
            Outcome::Imported { bytes } => {
                report.imported += 1;
                report.imported_bytes += bytes;
            }
            Outcome::Skipped { bytes } => {
                report.skipped += 1;
                report.skipped_bytes += bytes;
                ctx.progress.add_bytes(bytes);
            }
            Outcome::Planned { bytes } => {
                report.planned += 1;
                report.planned_bytes += bytes;
                ctx.progress.add_bytes(bytes);
            }
            Outcome::Failed(reason) => report.failed.push(Failure { source: label, reason }),
        }
        ctx.progress.file_done();
    }
    // Stops whatever is still in flight (past the drain deadline) before its intents are
    // aborted.
    drop(work);
    ctx.progress.finish();
    if report.interrupted {
        abort_in_flight(&ctx).await;
    }
    if report.dry_run && !report.interrupted {
        report.quota_shortfall = quota_shortfall(&ctx, &report).await?;
    }
    report.failed.sort_by(|a, b| a.source.cmp(&b.source));
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn abort_in_flight(ctx: &Ctx) {
    let ids: Vec<Uuid> = ctx.in_flight.lock().expect("not poisoned").drain().collect();
    let aborts = futures_util::future::join_all(
        ids.iter().map(|&id| crate::uploads::abort::abort(&ctx.state, &ctx.caller.owner, id)),
    );
    match tokio::time::timeout(ABORT_DEADLINE, aborts).await {
        Ok(results) => {
            for (id, r) in ids.iter().zip(results) {
                if let Err(e) = r {
                    tracing::warn!(upload_id = %id, error = %e, "could not abort an interrupted import; it expires");
                }
            }
        }
        Err(_) => tracing::warn!("aborting the interrupted imports timed out; the reaper expires them"),
    }
}

/// Dry run: do the planned files fit what the owner has left (quota − used − reserved)?
async fn quota_shortfall(ctx: &Ctx, report: &Report) -> anyhow::Result<Option<String>> {
    let usage = crate::usage::get(&ctx.state, ctx.caller.owner.clone())
        .await
        .map_err(|e| anyhow::anyhow!("reading the owner's usage: {}", send::reason(&e)))?;
    let room_bytes = (usage.quota_bytes - usage.used_bytes - usage.reserved_bytes).max(0) as u64;
    let room_objects = (usage.quota_objects - usage.object_count - usage.reserved_objects).max(0) as u64;
    Ok((report.planned_bytes > room_bytes || report.planned > room_objects).then(|| {
        format!(
            "the owner's quota has room for {room_bytes} bytes and {room_objects} objects; \
             this import needs {} bytes and {} objects",
            report.planned_bytes, report.planned
        )
    }))
}
