//! The asset job queue's statements (src/jobs): claim due jobs under a lease, move a job to
//! its next step, retry it later, and settle the asset — `ready`, `quarantined` or
//! `rejected` — in the same transaction that removes the job and writes the event.
//!
//! A claim is one short statement (`FOR UPDATE SKIP LOCKED`) that moves `run_after` past a
//! lease and counts the attempt, so replicas never run one job at once, no transaction stays
//! open across scans or image work, and a worker that dies leaves jobs that come due again
//! when their lease ends — each such death counted, so a job that kills its worker every time
//! is given up on rather than retried forever.

use tokio_postgres::types::Json;
use uuid::Uuid;

use super::assets::{AssetRow, asset_columns, release_used};
use super::{Db, DbError};
use crate::asset_state::{AssetState, Variant};
use crate::events::{Event, EventType};
use crate::profiles::JobStep;

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub owner: String,
    pub asset_id: Uuid,
    pub step: JobStep,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Up to $1 due jobs, leased for $2 seconds.
pub const CLAIM_JOBS: &str = "with due as ( \
       select owner, asset_id from asset_jobs where run_after <= now() \
        order by run_after limit $1 for update skip locked) \
     update asset_jobs j set run_after = now() + $2 * interval '1 second', attempts = j.attempts + 1 \
       from due where j.owner = due.owner and j.asset_id = due.asset_id \
     returning j.owner, j.asset_id, j.step, j.attempts";

pub async fn claim(db: &Db, batch: i64, lease_secs: f64) -> Result<Vec<Job>, DbError> {
    let rows = db.query(CLAIM_JOBS, &[&batch, &lease_secs]).await?;
    rows.iter()
        .map(|r| {
            let step: &str = r.try_get(2)?;
            Ok(Job {
                owner: r.try_get(0)?,
                asset_id: r.try_get(1)?,
                step: JobStep::parse(step)
                    .ok_or_else(|| DbError::Unexpected { column: "step", value: step.to_owned() })?,
                attempts: r.try_get(3)?,
            })
        })
        .collect()
}

/// Jobs due now (the `jobs_due` gauge).
pub const COUNT_DUE: &str = "select count(*) from asset_jobs where run_after <= now()";

pub async fn count_due(db: &Db) -> Result<i64, DbError> {
    Ok(db.query_one(COUNT_DUE, &[]).await?.try_get(0)?)
}

/// The step after a finished one, its attempts counted afresh: this run is the next step's
/// first. `run_after` stays: the worker goes straight on with the next step under the
/// claim's lease, and no other worker may take the job meanwhile (should this one die, the
/// job comes due when the lease ends).
pub const ADVANCE: &str = "update asset_jobs set step = $3, attempts = 1, last_error = null \
     where owner = $1 and asset_id = $2";

pub async fn advance(db: &Db, owner: &str, asset_id: Uuid, next: JobStep) -> Result<(), DbError> {
    db.execute(ADVANCE, &[&owner, &asset_id, &next.as_str()]).await?;
    Ok(())
}

/// A failed attempt: due again after $3 seconds, with what went wrong.
pub const RETRY: &str = "update asset_jobs set run_after = now() + $3 * interval '1 second', last_error = $4 \
     where owner = $1 and asset_id = $2";

pub async fn retry(db: &Db, owner: &str, asset_id: Uuid, after_secs: f64, error: &str) -> Result<(), DbError> {
    db.execute(RETRY, &[&owner, &asset_id, &after_secs, &error]).await?;
    Ok(())
}

/// A job whose asset is gone or no longer processing (deleted meanwhile).
pub const DROP_JOB: &str = "delete from asset_jobs where owner = $1 and asset_id = $2";

pub async fn drop_job(db: &Db, owner: &str, asset_id: Uuid) -> Result<(), DbError> {
    db.execute(DROP_JOB, &[&owner, &asset_id]).await?;
    Ok(())
}

/// `ready` (with its variants, `$5`, when made) or `quarantined`: the job goes, the asset
/// takes its state. Only from `processing`, so a settled or deleted asset is left alone.
pub const SETTLE: &str = concat!(
    "with job as (delete from asset_jobs where owner = $1 and asset_id = $2), \
     settled as ( \
       update assets set state = $3, state_reason = $4, variants = coalesce($5, variants) \
        where owner = $1 and id = $2 and state = 'processing' returning *) \
     select ",
    asset_columns!(),
    " from settled"
);

/// `rejected`: as [`SETTLE`], and the asset's usage is released (its object was deleted
/// first: see jobs::reject).
pub const REJECT: &str = concat!(
    "with job as (delete from asset_jobs where owner = $1 and asset_id = $2), \
     settled as ( \
       update assets set state = 'rejected', state_reason = $3 \
        where owner = $1 and id = $2 and state = 'processing' returning *), ",
    release_used!("settled", "true"),
    " select ",
    asset_columns!(),
    " from settled"
);

/// How a job ends for its asset.
pub enum Outcome<'a> {
    Ready(Option<&'a [Variant]>),
    Quarantined(&'a str),
    Rejected(&'a str),
}

/// Settles the asset and, when `event` (its profile's events go somewhere), writes the
/// matching event in the same transaction. `None`: the asset was no longer processing.
pub async fn settle(
    db: &Db,
    owner: &str,
    asset_id: Uuid,
    outcome: Outcome<'_>,
    event: bool,
) -> Result<Option<AssetRow>, DbError> {
    db.run(async |conn| {
        let tx = conn.transaction().await?;
        let row = match &outcome {
            Outcome::Ready(variants) => {
                let stmt = tx.prepare_cached(SETTLE).await?;
                let variants = variants.map(Json);
                let state = AssetState::Ready.as_str();
                tx.query_opt(&stmt, &[&owner, &asset_id, &state, &None::<&str>, &variants]).await?
            }
            Outcome::Quarantined(reason) => {
                let stmt = tx.prepare_cached(SETTLE).await?;
                let state = AssetState::Quarantined.as_str();
                tx.query_opt(&stmt, &[&owner, &asset_id, &state, reason, &None::<Json<&[Variant]>>]).await?
            }
            Outcome::Rejected(reason) => {
                let stmt = tx.prepare_cached(REJECT).await?;
                tx.query_opt(&stmt, &[&owner, &asset_id, reason]).await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let asset = AssetRow::from_row(&row)?;
        if event {
            let kind = match outcome {
                Outcome::Ready(_) => EventType::AssetReady,
                Outcome::Quarantined(_) => EventType::AssetQuarantined,
                Outcome::Rejected(_) => EventType::AssetRejected,
            };
            super::events::insert(&tx, owner, &asset.profile, &Event::new(kind, &asset)).await?;
        }
        tx.commit().await?;
        Ok(Some(asset))
    })
    .await
}
