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

use crate::db::uploads::UploadRow;
use crate::error::Error;
use crate::profiles::UploadMethod;
use crate::state::AppState;

/// Upload status as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Completed,
    Aborted,
    Expired,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "pending" => Self::Pending,
            "completed" => Self::Completed,
            "aborted" => Self::Aborted,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            other => return Err(anyhow::anyhow!("unknown upload status {other:?} in the database").into()),
        })
    }
}

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
    pub method: String,
    pub key: String,
    pub size: i64,
    #[serde(serialize_with = "crate::time::serialize")]
    pub expires_at: DateTime<Utc>,
    pub asset_id: Option<Uuid>,
}

/// A loaded intent with its parsed status.
pub(crate) struct Upload {
    pub row: UploadRow,
    pub status: Status,
}

impl Upload {
    pub fn method(&self) -> UploadMethod {
        UploadMethod::parse(&self.row.method).unwrap_or(UploadMethod::Put)
    }

    /// Past `expires_at + complete_grace` while still pending.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Pending && now > self.row.complete_by
    }
}

/// The caller's intent, or `None` (another owner's ids look exactly like unknown ones).
pub(crate) async fn load(state: &AppState, owner: &str, id: Uuid) -> Result<Option<Upload>, Error> {
    match crate::db::uploads::get(&state.db, owner, id).await? {
        None => Ok(None),
        Some(row) => Ok(Some(Upload { status: Status::parse(&row.status)?, row })),
    }
}

/// Ends a pending intent with `status` (aborted, expired, failed): releases the
/// reservation, then removes whatever the store holds for it. Returns false when the
/// intent was no longer pending (a concurrent call ended or completed it).
pub(crate) async fn end_and_clean(state: &AppState, up: &Upload, status: Status) -> Result<bool, Error> {
    let ended = crate::db::uploads::end_pending(&state.db, &up.row.owner, up.row.id, status.as_str()).await?;
    if ended {
        state.metrics.uploads_ended.with_label_values(&[status.as_str()]).inc();
        clean_store(state, &up.row).await?;
    }
    Ok(ended)
}

/// Removes the object and any multipart upload of an ended intent, then records that.
/// Idempotent: the reaper and repeated aborts call it again after a store failure.
pub(crate) async fn clean_store(state: &AppState, row: &UploadRow) -> Result<(), Error> {
    if let Some(mp) = &row.multipart_upload_id {
        state.store.abort_multipart(&row.key, mp).await?;
    }
    state.store.delete(&row.key).await?;
    crate::db::uploads::mark_cleaned(&state.db, &row.owner, row.id).await?;
    Ok(())
}

/// Applies lazy expiry: an intent past its deadline is expired (quota released, object
/// removed) by whichever call sees it first. Returns the possibly updated status.
pub(crate) async fn expire_if_overdue(state: &AppState, up: &mut Upload) -> Result<(), Error> {
    if up.overdue(Utc::now()) {
        end_and_clean(state, up, Status::Expired).await?;
        // Whether we or a concurrent call ended it, re-read what it is now.
        if let Some(fresh) = load(state, &up.row.owner, up.row.id).await? {
            *up = fresh;
        }
    }
    Ok(())
}

pub async fn status(state: &AppState, owner: &str, id: Uuid) -> Result<UploadStatus, Error> {
    let mut up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    expire_if_overdue(state, &mut up).await?;
    Ok(UploadStatus {
        upload_id: up.row.id,
        status: up.status,
        method: up.row.method.clone(),
        key: up.row.key.clone(),
        size: up.row.size,
        expires_at: up.row.expires_at,
        asset_id: up.row.asset_id,
    })
}
