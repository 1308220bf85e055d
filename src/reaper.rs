//! The reaper: expires pending intents past their deadline (releasing quota), removes what
//! the store still holds for ended intents (objects written but never completed,
//! multipart uploads), deletes assets past their profile's retention and goes on with
//! collection purges cut short, forgets idempotency keys after 24 hours and delivered
//! webhook events after 7 days. It runs in the background every `BROKER_REAPER_INTERVAL` seconds and once as `r2-broker reap`; several
//! replicas may run it at once (the statements use `FOR UPDATE SKIP LOCKED`, and the rows
//! being cleaned are leased: src/background.rs). Its times are compared in SQL (`now()`),
//! so tests move rows' deadlines into the past rather than wait.

use std::time::Duration;

use futures_util::StreamExt;

use crate::background::{Batches, Item, Verdict};
use crate::db::uploads::UploadRow;
use crate::error::Error;
use crate::state::AppState;

/// Expiry statements per pass, and intents each expires.
const BATCH: i64 = 100;
/// Bounds one pass, so a huge backlog is worked off over several passes.
const MAX_BATCHES: usize = 50;

/// Store cleanup: claims of 32 rows, 8 cleaned at once, at most 50 claims a pass; one row
/// is at most two store calls and marking it cleaned. (Smaller claims than expiry's: the
/// lease, which covers a whole claim, is also the wait before a failed row is retried.)
fn cleanup(state: &AppState) -> Batches {
    Batches { size: 32, concurrency: 8, max: MAX_BATCHES, bound: state.config.s3.timeout * 2 + state.db.timeout() }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub expired: i64,
    pub cleaned: i64,
    pub clean_failures: i64,
    pub keys_forgotten: u64,
    /// Webhook events delivered more than 7 days ago, deleted.
    pub webhooks_forgotten: i64,
    /// Assets past their retention, deleted (objects, records, usage).
    pub retention_deleted: u64,
    pub retention_failures: u64,
    /// Collection purges worked on (finished or not), and those that failed this pass.
    pub purges: u64,
    pub purge_failures: u64,
}

/// One pass over everything due.
pub async fn run_once(state: &AppState) -> Result<Report, Error> {
    let mut report = Report::default();
    let events = state.config.event_profiles();
    for _ in 0..MAX_BATCHES {
        let n = crate::db::reaper::expire_due(&state.db, BATCH, &events).await?;
        report.expired += n;
        if n < BATCH {
            break;
        }
    }
    // The workflows' own cleanup, on leased rows. A failed row keeps its lease: see
    // src/background.rs for why the lease is the backoff.
    let record = |item: Item<Result<(), Error>>| match item {
        Item::Done(Ok(())) => report.cleaned += 1,
        Item::Done(Err(_)) | Item::TimedOut | Item::Skipped => report.clean_failures += 1,
    };
    let claim = |size, lease| crate::db::reaper::claim_to_clean(&state.db, size, lease);
    let clean = |row: UploadRow| async move {
        let result = crate::uploads::clean_store(state, &row).await;
        if let Err(e) = &result {
            tracing::warn!(upload_id = %row.id, error = ?e, "reaper cleanup failed");
        }
        result
    };
    let judge = |r: &Result<(), Error>| match r {
        Ok(()) => Verdict::Handled,
        Err(Error::Unavailable { .. }) => Verdict::Unavailable,
        Err(_) => Verdict::Failed,
    };
    cleanup(state).run(&state.db, claim, clean, judge, record).await?;
    // Each of these fails on its own (a store outage, a purge racing an upload): logged, and
    // the rest of the pass goes on; the next pass tries again.
    if let Err(e) = retention(state, &mut report).await {
        tracing::warn!(error = ?e, "retention deletions stopped for this pass");
    }
    for (owner, id) in crate::db::collections::purging(&state.db, 10).await? {
        match crate::collections::purge_some(state, &owner, id, crate::collections::PURGE_BUDGET).await {
            Ok(_) => report.purges += 1,
            Err(e) => {
                tracing::warn!(collection = %id, error = ?e, "a collection purge stopped for this pass");
                report.purge_failures += 1;
            }
        }
    }
    for _ in 0..MAX_BATCHES {
        let n = crate::db::reaper::forget_keys(&state.db, 1000).await?;
        report.keys_forgotten += n;
        if n < 1000 {
            break;
        }
    }
    for _ in 0..MAX_BATCHES {
        let n = crate::db::webhooks::forget_delivered(&state.db, 1000).await?;
        report.webhooks_forgotten += n;
        if n < 1000 {
            break;
        }
    }
    let m = &state.metrics.reaper_actions;
    m.with_label_values(&["expired"]).inc_by(report.expired as u64);
    m.with_label_values(&["cleaned"]).inc_by(report.cleaned as u64);
    m.with_label_values(&["clean_failed"]).inc_by(report.clean_failures as u64);
    m.with_label_values(&["keys_forgotten"]).inc_by(report.keys_forgotten);
    m.with_label_values(&["webhooks_forgotten"]).inc_by(report.webhooks_forgotten as u64);
    m.with_label_values(&["retention_deleted"]).inc_by(report.retention_deleted);
    m.with_label_values(&["retention_failed"]).inc_by(report.retention_failures);
    m.with_label_values(&["purges"]).inc_by(report.purges);
    m.with_label_values(&["purge_failed"]).inc_by(report.purge_failures);
    state.metrics.uploads_ended.with_label_values(&["expired"]).inc_by(report.expired as u64);
    if report != Report::default() {
        tracing::info!(?report, "reaper pass");
    }
    Ok(report)
}

/// Assets past their profile's retention go as `DELETE /v1/assets/{id}` takes them (objects
/// first, then the record, usage and `asset.deleted`), in bounded batches, 8 at once. A
/// store outage ends the pass (503-like: the next pass goes on); another failure is logged
/// and the asset is tried again next pass.
async fn retention(state: &AppState, report: &mut Report) -> Result<(), Error> {
    for _ in 0..10 {
        let due = crate::db::assets::expired(&state.db, BATCH).await?;
        let n = due.len() as i64;
        let results: Vec<Result<(), Error>> = futures_util::stream::iter(due)
            .map(|(owner, id)| async move { crate::assets::delete(state, &owner, id).await })
            .buffer_unordered(8)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(()) => report.retention_deleted += 1,
                Err(e @ Error::Unavailable { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = ?e, "deleting an asset past its retention failed");
                    report.retention_failures += 1;
                }
            }
        }
        if n < BATCH || report.retention_failures > 0 {
            break;
        }
    }
    Ok(())
}

/// The background loop; errors are logged and the next pass tries again. Each pass also
/// trims the rate limiter's table (a housekeeping chore on the same schedule).
pub async fn run_forever(state: AppState, every: Duration) {
    let state = &state;
    crate::background::repeat_passes("reaper", every, move || async move {
        let result = run_once(state).await;
        if let Some(limiter) = &state.limiter {
            limiter.retain_recent();
        }
        result
    })
    .await
}
