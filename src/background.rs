//! What the background workers (the reaper's store cleanup, the confirmer) share: the loop
//! of passes, and working through rows in leased batches.
//!
//! A leased batch is claimed in one short statement that moves the rows' lease forward
//! (`FOR UPDATE SKIP LOCKED` inside it, so two replicas never claim the same row), then
//! each row is worked on outside any transaction, a few at a time, each within a bound.
//! The lease covers the whole batch, so no other replica takes a row still being worked
//! on. A worker that dies mid-batch leaves its rows leased; they come due again when the
//! lease runs out. A row left alone after a failure waits out its lease too: that is its
//! backoff, which needs no statement (so it holds when the database is what failed) and
//! keeps a failing row from being re-claimed by the next batch of the same pass.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use crate::db::{Db, DbError};
use crate::error::Error;

/// The loop of a background worker: every `every`, one `pass`; a failed one is logged as
/// `"<what> pass failed"` and the next tries again.
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

/// How one pass goes through leased rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batches {
    /// Rows per claim.
    pub size: i64,
    /// Rows worked on at once within a batch.
    pub concurrency: usize,
    /// Bounds one pass, so a backlog is worked off over several passes.
    pub max: usize,
    /// The longest the work on one row may take.
    pub bound: Duration,
}

/// What became of one claimed row.
#[derive(Debug)]
pub(crate) enum Item<O> {
    /// The work finished with this outcome.
    Done(O),
    /// The work did not finish within [`Batches::bound`].
    TimedOut,
    /// Not tried: a dependency was found unavailable earlier in the pass, and each try
    /// would only wait out its timeout again.
    Skipped,
}

/// What one row's outcome means for the rest of the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handled, whatever the outcome.
    Handled,
    /// The work failed on this row; when every row of a batch fails, the pass ends (the
    /// next batch would most likely fail the same way).
    Failed,
    /// The store (or database) did not answer: the pass ends, and rows not yet tried are
    /// skipped.
    Unavailable,
}

impl Batches {
    /// Seconds a claim holds its rows: every round of the batch at its bound, plus the
    /// claim itself.
    pub fn lease_secs(&self, db: &Db) -> f64 {
        let rounds = (self.size as usize).div_ceil(self.concurrency) as u32;
        (self.bound * rounds + db.timeout()).as_secs_f64()
    }

    /// Claims batches with `claim(size, lease_secs)`, runs `work` on each row and hands
    /// every row's [`Item`] to `record`, until a claim comes back short, the pass has run
    /// `max` of them, or `judge` ends it (a timeout counts as [`Verdict::Unavailable`]).
    pub async fn run<T, O, CF, WF>(
        &self,
        db: &Db,
        mut claim: impl FnMut(i64, f64) -> CF,
        work: impl Fn(T) -> WF,
        judge: impl Fn(&O) -> Verdict,
        mut record: impl FnMut(Item<O>),
    ) -> Result<(), DbError>
    where
        CF: Future<Output = Result<Vec<T>, DbError>>,
        WF: Future<Output = O>,
    {
        let lease = self.lease_secs(db);
        let down = AtomicBool::new(false);
        for _ in 0..self.max {
            let rows = claim(self.size, lease).await?;
            let claimed = rows.len() as i64;
            let items: Vec<Item<O>> = futures_util::stream::iter(rows)
                .map(|row| {
                    let (work, judge, down) = (&work, &judge, &down);
                    async move {
                        if down.load(Ordering::Relaxed) {
                            return Item::Skipped;
                        }
                        let item = match tokio::time::timeout(self.bound, work(row)).await {
                            Ok(o) => Item::Done(o),
                            Err(_) => Item::TimedOut,
                        };
                        if matches!(&item, Item::TimedOut)
                            || matches!(&item, Item::Done(o) if judge(o) == Verdict::Unavailable)
                        {
                            down.store(true, Ordering::Relaxed);
                        }
                        item
                    }
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let handled = items.iter().any(|i| matches!(i, Item::Done(o) if judge(o) == Verdict::Handled));
            items.into_iter().for_each(&mut record);
            if claimed < self.size || down.load(Ordering::Relaxed) || !handled {
                break;
            }
        }
        Ok(())
    }
}
