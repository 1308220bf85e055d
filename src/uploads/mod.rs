//! Upload workflows, one file per action: create (intent + reservation + presigned
//! request), parts (multipart URLs and listing), complete (HeadObject verification and the
//! asset), abort; companion maps Uppy's protocol onto them. No actix types here; handlers
//! in `http::uploads` and `http::companion` call these.
//!
//! Ordering rule for ending an intent without an asset (abort, expiry, failed
//! verification): the database transition comes first (conditional on `pending`, so it
//! races safely with `complete`), then the store cleanup, then `cleaned_at`. A store
//! failure in between leaves a row the reaper finishes.

pub mod abort;
pub mod batch;
pub mod companion;
pub mod complete;
pub mod create;
pub mod parts;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use crate::db::uploads::Status;
use crate::db::uploads::UploadRow;
use crate::error::Error;
use crate::profiles::UploadMethod;
use crate::state::AppState;

/// The answer to a create: everything the client needs to send the bytes.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UploadIntent {
    pub upload_id: Uuid,
    pub key: String,
    pub method: UploadMethod,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub fields: Option<BTreeMap<String, String>>,
    pub part_size: Option<i64>,
    pub part_count: Option<i64>,
    pub expires_at: String,
}

/// `GET /v1/uploads/{id}`.
#[derive(Debug, Serialize)]
pub struct UploadStatus {
    pub upload_id: Uuid,
    pub status: Status,
    pub method: UploadMethod,
    pub key: String,
    pub size: i64,
    #[serde(serialize_with = "crate::time::serialize")]
    pub expires_at: DateTime<Utc>,
    pub asset_id: Option<Uuid>,
}

/// Past `expires_at + complete_grace` while still pending.
fn overdue(up: &UploadRow, now: DateTime<Utc>) -> bool {
    up.status == Status::Pending && now > up.complete_by
}

/// The caller's intent, or `None` (another owner's ids look exactly like unknown ones).
pub(crate) async fn load(state: &AppState, owner: &str, id: Uuid) -> Result<Option<UploadRow>, Error> {
    Ok(crate::db::uploads::get(&state.db, owner, id).await?)
}

/// Ends a pending intent with `status` (aborted, expired, failed): releases the
/// reservation, then removes whatever the store holds for it. Returns false when the
/// intent was no longer pending (a concurrent call ended or completed it).
pub(crate) async fn end_and_clean(state: &AppState, up: &UploadRow, status: Status) -> Result<bool, Error> {
    let events = state.config.event_profiles();
    let ended = crate::db::uploads::end_pending(&state.db, up.owner.as_str(), up.id, status, &events).await?;
    if ended {
        state.metrics.uploads_ended.with_label_values(&[status.as_str()]).inc();
        clean_store(state, up).await?;
    }
    Ok(ended)
}

/// Removes the object and any multipart upload of an ended intent, then records that.
/// Idempotent: the reaper and repeated aborts call it again after a store failure.
pub(crate) async fn clean_store(state: &AppState, row: &UploadRow) -> Result<(), Error> {
    if let Some(mp) = row.store_upload_id() {
        state.store.abort_multipart(&row.key, mp).await?;
    }
    state.store.delete(&row.key).await?;
    crate::db::uploads::mark_cleaned(&state.db, row.owner.as_str(), row.id).await?;
    Ok(())
}

/// Applies lazy expiry: an intent past its deadline is expired (quota released, object
/// removed) by whichever call sees it first. Returns the possibly updated status.
pub(crate) async fn expire_if_overdue(state: &AppState, up: &mut UploadRow) -> Result<(), Error> {
    if overdue(up, Utc::now()) {
        end_and_clean(state, up, Status::Expired).await?;
        // Whether we or a concurrent call ended it, re-read what it is now.
        if let Some(fresh) = load(state, up.owner.as_str(), up.id).await? {
            *up = fresh;
        }
    }
    Ok(())
}

pub async fn status(state: &AppState, owner: &str, id: Uuid) -> Result<UploadStatus, Error> {
    let mut up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    expire_if_overdue(state, &mut up).await?;
    Ok(UploadStatus {
        upload_id: up.id,
        status: up.status,
        method: up.method,
        key: up.key,
        size: up.size,
        expires_at: up.expires_at,
        asset_id: up.asset_id,
    })
}
