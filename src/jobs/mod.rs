//! The asset job worker: what happens to an asset between `complete` and `ready`
//! (openapi.yaml "Asset lifecycle"). A profile with scanners or variants gets one job per
//! asset (`asset_jobs`, written by `complete` in its own statement); the worker claims due
//! jobs in leased batches (src/background.rs), runs the job's step — the scanners, then the
//! image variants — and settles the asset: `ready`, `quarantined` (a scanner flagged it) or
//! `rejected` (its content cannot be what it claims: the object is deleted, its usage
//! released). The settling, the job's removal and the event are one transaction.
//!
//! Bytes flow store → worker → store through a presigned GET (the scanners) or the SDK (the
//! variants); never through an HTTP handler. The worker runs in the serving process by
//! default and in `r2-broker worker` when `BROKER_JOBS=off` keeps it out of the API.

mod steps;

use std::time::{Duration, Instant};

use crate::background::{Batches, Item, Verdict, repeat_passes};
use crate::db::jobs::{Job, Outcome};
use crate::error::Error;
use crate::scan::Scanners;
use crate::state::AppState;
use steps::StepResult;

/// Attempts of one step before it is given up on: a scan that never succeeds quarantines
/// the asset (fail closed), variants that are never made leave it `ready` without them.
/// With the backoff below that is about two and a half hours of retries.
pub const MAX_ATTEMPTS: i32 = 12;
const BACKOFF_SECS: f64 = 5.0;
const BACKOFF_MAX_SECS: f64 = 3600.0;

/// What became of the jobs one pass claimed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub ready: u64,
    pub quarantined: u64,
    pub rejected: u64,
    /// Failed this time, due again later.
    pub retried: u64,
    /// The asset was deleted (or settled elsewhere) meanwhile.
    pub gone: u64,
    /// Not finished within the job's bound or not tried (the store or database went away).
    pub unfinished: u64,
}

/// The job worker of one process: the state and the scanners it built once.
#[derive(Clone)]
pub struct Worker {
    state: AppState,
    scanners: Scanners,
    /// Image decodes at once, `BROKER_JOB_CONCURRENCY`. A permit is held by the blocking
    /// task itself, so a decode that outlived its timeout (it cannot be cancelled) still
    /// counts, and retries wait instead of piling up decodes beyond the memory bound.
    decodes: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How one job ended, for the report.
#[derive(Debug)]
enum Ended {
    Settled(&'static str),
    Retried,
    Gone,
}

impl Worker {
    pub fn new(state: AppState) -> anyhow::Result<Self> {
        let scanners = Scanners::new(&state.config.processing)?;
        let decodes = std::sync::Arc::new(tokio::sync::Semaphore::new(state.config.processing.job_concurrency));
        Ok(Self { state, scanners, decodes })
    }

    fn batches(&self) -> Batches {
        let p = &self.state.config.processing;
        Batches {
            size: (p.job_concurrency * 2) as i64,
            concurrency: p.job_concurrency,
            max: 16,
            // Every scanner, then the variants, each within its own bound, and the store
            // and database calls around them.
            bound: p.scan_timeout * 2 + p.variant_timeout + Duration::from_secs(30),
        }
    }

    /// One pass: claims due jobs until none is left (or the pass's bound) and works them.
    pub async fn run_once(&self) -> Result<Report, Error> {
        let db = &self.state.db;
        if let Ok(due) = crate::db::jobs::count_due(db).await {
            self.state.metrics.jobs_due.set(due);
        }
        let mut report = Report::default();
        self.batches()
            .run(
                db,
                |size, lease| crate::db::jobs::claim(db, size, lease),
                |job| self.work(job),
                |outcome: &Result<Ended, Error>| match outcome {
                    Ok(_) => Verdict::Handled,
                    Err(Error::Unavailable { .. }) => Verdict::Unavailable,
                    Err(_) => Verdict::Failed,
                },
                |item| match item {
                    Item::Done(Ok(Ended::Settled("ready"))) => report.ready += 1,
                    Item::Done(Ok(Ended::Settled("quarantined"))) => report.quarantined += 1,
                    Item::Done(Ok(Ended::Settled(_))) => report.rejected += 1,
                    Item::Done(Ok(Ended::Retried)) => report.retried += 1,
                    Item::Done(Ok(Ended::Gone)) => report.gone += 1,
                    Item::Done(Err(e)) => {
                        tracing::warn!(error = ?e, "asset job failed; it is due again when its lease ends");
                        report.unfinished += 1;
                    }
                    Item::TimedOut | Item::Skipped => report.unfinished += 1,
                },
            )
            .await?;
        Ok(report)
    }

    /// Runs passes for ever, every `every` when the queue was empty.
    pub async fn run_forever(self, every: Duration) {
        repeat_passes("job worker", every, || self.run_once()).await;
    }

    /// One job: its step, then the next ones at once, until the asset is settled or a step
    /// must wait for a retry.
    async fn work(&self, job: Job) -> Result<Ended, Error> {
        let state = &self.state;
        let Some(asset) = crate::db::assets::get(&state.db, &job.owner, job.asset_id).await? else {
            crate::db::jobs::drop_job(&state.db, &job.owner, job.asset_id).await?;
            return Ok(Ended::Gone);
        };
        if asset.state != crate::asset_state::AssetState::Processing {
            crate::db::jobs::drop_job(&state.db, &job.owner, job.asset_id).await?;
            return Ok(Ended::Gone);
        }
        let Some(profile) = state.config.profiles.get(&asset.profile) else {
            // The profile left the configuration: nothing is known to check any more.
            return self.settle(&asset, Outcome::Ready(None), "ready", false).await;
        };
        let event = state.config.processing.webhook_endpoint(profile).is_some();
        let mut step = job.step;
        let mut attempts = job.attempts;
        loop {
            let started = Instant::now();
            let result = steps::run(state, &self.scanners, &self.decodes, step, &asset, profile).await;
            state.metrics.job_seconds.with_label_values(&[step.as_str()]).observe(started.elapsed().as_secs_f64());
            let outcome = match &result {
                StepResult::Passed(_) => "done",
                StepResult::Flagged(_) => "quarantined",
                StepResult::Refused(_) => "rejected",
                StepResult::Failed(_) if attempts >= MAX_ATTEMPTS => "gave_up",
                StepResult::Failed(_) => "retry",
            };
            state.metrics.job_outcomes.with_label_values(&[step.as_str(), outcome]).inc();
            return match result {
                StepResult::Passed(variants) => match profile.processing.step_after(step) {
                    Some(next) => {
                        crate::db::jobs::advance(&state.db, asset.owner.as_str(), asset.id, next).await?;
                        (step, attempts) = (next, 1);
                        continue;
                    }
                    None => self.settle(&asset, Outcome::Ready(variants.as_deref()), "ready", event).await,
                },
                StepResult::Flagged(reason) => {
                    self.settle(&asset, Outcome::Quarantined(&reason), "quarantined", event).await
                }
                StepResult::Refused(reason) => {
                    // The object goes first: a failure here leaves the asset processing and
                    // the job due again, never a rejected record whose object stays.
                    state.store.delete(&asset.key).await?;
                    self.settle(&asset, Outcome::Rejected(&reason), "rejected", event).await
                }
                StepResult::Failed(error) if attempts >= MAX_ATTEMPTS => {
                    tracing::warn!(asset_id = %asset.id, step = step.as_str(), %error, "asset job gave up");
                    match step {
                        crate::profiles::JobStep::Scan => {
                            let reason = format!("could not be scanned after {attempts} attempts: {error}");
                            self.settle(&asset, Outcome::Quarantined(&reason), "quarantined", event).await
                        }
                        crate::profiles::JobStep::Variants => {
                            self.settle(&asset, Outcome::Ready(None), "ready", event).await
                        }
                    }
                }
                StepResult::Failed(error) => {
                    tracing::info!(asset_id = %asset.id, step = step.as_str(), %error, attempts, "asset job step failed; retrying later");
                    let wait = (BACKOFF_SECS * 2f64.powi(attempts - 1)).min(BACKOFF_MAX_SECS);
                    crate::db::jobs::retry(&state.db, asset.owner.as_str(), asset.id, wait, &error).await?;
                    Ok(Ended::Retried)
                }
            };
        }
    }

    async fn settle(
        &self,
        asset: &crate::db::assets::AssetRow,
        outcome: Outcome<'_>,
        label: &'static str,
        event: bool,
    ) -> Result<Ended, Error> {
        let made = match &outcome {
            Outcome::Ready(Some(v)) => v.to_vec(),
            _ => Vec::new(),
        };
        match crate::db::jobs::settle(&self.state.db, asset.owner.as_str(), asset.id, outcome, event).await? {
            Some(_) => Ok(Ended::Settled(label)),
            None => {
                // Deleted while its variants were being made: they go too. (Settled by another
                // worker whose lease this one outlived: those are its variants too — same keys.)
                if crate::db::assets::get(&self.state.db, asset.owner.as_str(), asset.id).await?.is_none() {
                    for v in made {
                        self.state.store.delete(&v.key).await?;
                    }
                }
                Ok(Ended::Gone)
            }
        }
    }
}
