//! The reaper: expires pending intents past their deadline (releasing quota), removes what
//! the store still holds for ended intents (objects written but never completed,
//! multipart uploads), and forgets idempotency keys after 24 hours. It runs in the
//! background every `BROKER_REAPER_INTERVAL` seconds and once as `r2-broker reap`; several
//! replicas may run it at once (the statements use `FOR UPDATE SKIP LOCKED`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::state::AppState;

const BATCH: i64 = 100;
/// Bounds one pass, so a huge backlog is worked off over several passes.
const MAX_BATCHES: usize = 50;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub expired: i64,
    pub cleaned: i64,
    pub clean_failures: i64,
    pub keys_forgotten: u64,
}

/// One pass over everything due.
pub async fn run_once(state: &AppState) -> Result<Report, Error> {
    let mut report = Report::default();
    for _ in 0..MAX_BATCHES {
        let n = crate::db::reaper::expire_due(&state.db, BATCH).await?;
        report.expired += n;
        if n < BATCH {
            break;
        }
    }
    // Once the store is found unavailable, the rest of the pass leaves it alone: each call
    // would wait out the store timeout while the batch's rows stay locked.
    let store_down = AtomicBool::new(false);
    // One row's cleanup: at most two store calls, with some slack.
    let idle_bound = state.config.s3.timeout * 2 + state.db.timeout();
    for _ in 0..MAX_BATCHES {
        let (cleaned, failed) = crate::db::reaper::clean_batch(&state.db, BATCH, idle_bound, |row| {
            let store_down = &store_down;
            async move {
                if store_down.load(Ordering::Relaxed) {
                    return false;
                }
                let mut result = Ok(());
                if let Some(mp) = row.store_upload_id() {
                    result = state.store.abort_multipart(&row.key, mp).await;
                }
                if result.is_ok() {
                    result = state.store.delete(&row.key).await;
                }
                if result.as_ref().is_err_and(crate::store::StoreError::is_unavailable) {
                    store_down.store(true, Ordering::Relaxed);
                }
                result.is_ok()
            }
        })
        .await?;
        report.cleaned += cleaned;
        report.clean_failures += failed;
        // Stop when the batch was short, or when nothing could be cleaned (store down).
        if cleaned + failed < BATCH || cleaned == 0 {
            break;
        }
    }
    for _ in 0..MAX_BATCHES {
        let n = crate::db::reaper::forget_keys(&state.db, 1000).await?;
        report.keys_forgotten += n;
        if n < 1000 {
            break;
        }
    }
    let m = &state.metrics.reaper_actions;
    m.with_label_values(&["expired"]).inc_by(report.expired as u64);
    m.with_label_values(&["cleaned"]).inc_by(report.cleaned as u64);
    m.with_label_values(&["clean_failed"]).inc_by(report.clean_failures as u64);
    m.with_label_values(&["keys_forgotten"]).inc_by(report.keys_forgotten);
    state.metrics.uploads_ended.with_label_values(&["expired"]).inc_by(report.expired as u64);
    if report != Report::default() {
        tracing::info!(?report, "reaper pass");
    }
    Ok(report)
}

/// The background loop; errors are logged and the next pass tries again. Each pass also
/// trims the rate limiter's table (a housekeeping chore on the same schedule).
pub async fn run_forever(state: AppState, every: Duration) {
    let state = &state;
    repeat_passes("reaper", every, move || async move {
        let result = run_once(state).await;
        if let Some(limiter) = &state.limiter {
            limiter.retain_recent();
        }
        result
    })
    .await
}

/// The loop of a background worker (this reaper's, and the confirmer's): every `every`, one
/// `pass`; a failed one is logged as `"<what> pass failed"` and the next tries again.
pub(crate) async fn repeat_passes<R, F, Fut>(what: &'static str, every: Duration, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<R, Error>>,
{
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = pass().await {
            tracing::warn!(error = ?e, "{what} pass failed");
        }
    }
}
