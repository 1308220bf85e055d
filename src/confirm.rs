//! The confirmer: uploads become verified assets even when the client never calls
//! `complete`. Uppy sends no callback after a single PUT, and a phone may die between its
//! PUT and its `complete`; so pending `put`/`post` intents are checked with HeadObject on a
//! schedule that backs off (`next_check_at`, sql/V4): the first check
//! `BROKER_CONFIRM_BACKOFF` after create, then each one waiting as long as the intent is
//! old (about 1, 2, 4, 8 … × the base), at most `BROKER_CONFIRM_BACKOFF_MAX`, the last one
//! just before `complete_by`.
//!
//! A check *is* a `complete` (uploads::complete): the same verification, the same asset
//! and quota statement, the same lazy expiry and races, so a later `complete` from the
//! client answers 200 with the same asset. Its outcomes:
//! - object there and matching: the asset is recorded (`confirmed`);
//! - object there but different (size, type, upload-id metadata, checksum): the upload
//!   fails verification, its object is deleted and its reservation released (`failed`);
//! - no object yet: the next check is scheduled (`not_yet`); after the last one the reaper
//!   expires the intent at `complete_by` and releases its quota, as for any intent;
//! - past `complete_by`: expired on the spot (`expired`).
//!
//! Multipart intents are not checked: their parts become an object only through
//! CompleteMultipartUpload, which the client's `complete` asks for (the reaper aborts
//! abandoned ones).
//!
//! Several replicas may run it: intents are claimed in leased batches (src/background.rs,
//! db/confirm.rs), each check runs under a deadline within the lease, and every database
//! and store call has its own deadline.

use std::time::Duration;

use uuid::Uuid;

use crate::background::{Batches, Item, Verdict};
use crate::error::Error;
use crate::state::AppState;
use crate::uploads::complete::{self, CompleteRequest, Completed};

/// Claims of 32, 8 checks in flight at once, at most 20 claims a pass; each check within
/// the time of HeadObject, then at most two store calls to clean up, and a few database
/// calls.
fn batches(state: &AppState) -> Batches {
    Batches { size: 32, concurrency: 8, max: 20, bound: state.config.s3.timeout * 3 + state.db.timeout() * 4 }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub confirmed: u64,
    pub not_yet: u64,
    pub failed: u64,
    pub expired: u64,
    /// Completed, aborted or ended by someone else meanwhile.
    pub done_elsewhere: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Confirmed,
    NotYet,
    Failed,
    Expired,
    DoneElsewhere,
    /// `unavailable`: the store or database did not answer; the lease is the backoff.
    Error {
        unavailable: bool,
    },
    /// Not checked: the store was found unavailable earlier in this pass.
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::NotYet => "not_yet",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::DoneElsewhere => "done_elsewhere",
            Self::Error { .. } | Self::Skipped => "error",
        }
    }
}

impl Report {
    fn add(&mut self, o: Outcome) {
        let n = match o {
            Outcome::Confirmed => &mut self.confirmed,
            Outcome::NotYet => &mut self.not_yet,
            Outcome::Failed => &mut self.failed,
            Outcome::Expired => &mut self.expired,
            Outcome::DoneElsewhere => &mut self.done_elsewhere,
            Outcome::Error { .. } => &mut self.errors,
            Outcome::Skipped => return,
        };
        *n += 1;
    }
}

/// One pass over the intents due for a check.
pub async fn run_once(state: &AppState) -> Result<Report, Error> {
    let mut report = Report::default();
    let record = |item: Item<Outcome>| {
        let o = match item {
            Item::Done(o) => o,
            Item::TimedOut => Outcome::Error { unavailable: true },
            Item::Skipped => Outcome::Skipped,
        };
        report.add(o);
        state.metrics.confirm_checks.with_label_values(&[o.label()]).inc();
    };
    let claim = |size, lease| crate::db::confirm::claim_due(&state.db, size, lease);
    let work = |(owner, id)| check(state, owner, id);
    let judge = |o: &Outcome| match o {
        Outcome::Error { unavailable: true } => Verdict::Unavailable,
        Outcome::Error { unavailable: false } => Verdict::Failed,
        _ => Verdict::Handled,
    };
    batches(state).run(&state.db, claim, work, judge, record).await?;
    if report.confirmed + report.failed + report.expired + report.errors > 0 {
        tracing::info!(?report, "confirmer pass");
    }
    Ok(report)
}

/// One check (dropping it midway, at the bound, is safe: each step of `complete` is one
/// atomic statement or an idempotent store call, in the order the reaper can finish,
/// uploads/mod.rs), then the next one scheduled unless the store or database is down (the
/// lease is the backoff then).
async fn check(state: &AppState, owner: String, id: Uuid) -> Outcome {
    let outcome = match complete::complete(state, &owner, id, CompleteRequest::default()).await {
        Ok(Completed::Created(asset)) => {
            tracing::info!(upload_id = %id, asset_id = %asset.id, "upload confirmed without complete");
            Outcome::Confirmed
        }
        Ok(Completed::Again(_)) | Err(Error::NotFound | Error::InvalidState(_)) => Outcome::DoneElsewhere,
        Err(Error::ObjectMissing(_)) => Outcome::NotYet,
        Err(Error::VerificationFailed(_)) => Outcome::Failed,
        Err(Error::UploadExpired) => Outcome::Expired,
        Err(e) => {
            tracing::warn!(upload_id = %id, error = ?e, "confirmer check failed");
            Outcome::Error { unavailable: matches!(e, Error::Unavailable { .. }) }
        }
    };
    if matches!(outcome, Outcome::NotYet | Outcome::Error { unavailable: false }) {
        let (base, max) = (state.config.confirm_backoff.as_secs_f64(), state.config.confirm_backoff_max.as_secs_f64());
        if let Err(e) = crate::db::confirm::reschedule(&state.db, &owner, id, base, max).await {
            // The lease runs out and the intent comes due again.
            tracing::warn!(upload_id = %id, error = %e, "could not schedule the next check");
        }
    }
    outcome
}

/// The background loop; errors are logged and the next pass tries again.
pub async fn run_forever(state: AppState, every: Duration) {
    crate::background::repeat_passes("confirmer", every, || run_once(&state)).await
}
