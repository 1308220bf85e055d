//! Multipart parts: presigned part URLs (each signed with its exact size, refreshable until
//! the intent expires) and the listing a client resumes from.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Status, expire_if_overdue, load};
use crate::db::uploads::UploadRow;
use crate::error::Error;
use crate::profiles::PartPlan;
use crate::state::AppState;

pub const MAX_PARTS_PER_CALL: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignPartsRequest {
    pub part_numbers: Vec<i64>,
}

#[derive(Debug, Serialize)]
pub struct PartUrl {
    pub part_number: i64,
    pub url: String,
    pub size: u64,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct PartUrls {
    pub parts: Vec<PartUrl>,
    pub expires_at: String,
}

#[derive(Debug, Serialize)]
pub struct ListedPart {
    pub part_number: i32,
    pub size: i64,
    pub etag: String,
}

#[derive(Debug, Serialize)]
pub struct PartsListing {
    pub parts: Vec<ListedPart>,
    pub part_size: i64,
    pub part_count: i32,
}

/// A pending multipart intent of the caller, or the matching 404/409/410.
async fn pending_multipart(state: &AppState, owner: &str, id: Uuid) -> Result<(UploadRow, PartPlan, String), Error> {
    let up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    pending(state, up).await
}

/// `up` if it is a pending multipart upload, with its part plan and the store's UploadId;
/// else the matching 409/410 (applying lazy expiry first).
pub(crate) async fn pending(state: &AppState, mut up: UploadRow) -> Result<(UploadRow, PartPlan, String), Error> {
    expire_if_overdue(state, &mut up).await?;
    let Some(mp) = up.multipart.clone() else {
        return Err(Error::invalid_state("not a multipart upload"));
    };
    match up.status {
        Status::Pending => {}
        Status::Expired => return Err(Error::UploadExpired),
        other => return Err(Error::invalid_state(format!("the upload is {}", other.as_str()))),
    }
    let store_id = mp.store_upload_id.ok_or_else(|| {
        Error::invalid_state("the multipart upload was not started in the store; create a new upload")
    })?;
    Ok((up, mp.plan, store_id))
}

pub async fn presign(state: &AppState, owner: &str, id: Uuid, req: PresignPartsRequest) -> Result<PartUrls, Error> {
    if req.part_numbers.is_empty() || req.part_numbers.len() > MAX_PARTS_PER_CALL {
        return Err(Error::invalid("part_numbers: 1 to 1000 part numbers per call"));
    }
    let (up, plan, store_id) = pending_multipart(state, owner, id).await?;
    sign(state, &up, plan, &store_id, req.part_numbers)
}

/// Part URLs for a pending multipart upload (from [`pending`]), each signed with its exact
/// size and valid until the intent's `expires_at`.
pub(crate) fn sign(
    state: &AppState,
    up: &UploadRow,
    plan: PartPlan,
    store_id: &str,
    part_numbers: Vec<i64>,
) -> Result<PartUrls, Error> {
    let mut seen = std::collections::BTreeSet::new();
    for &n in &part_numbers {
        if n < 1 || n as u64 > plan.part_count || !seen.insert(n) {
            return Err(Error::invalid(format!("part_numbers: {n} is repeated or outside 1..={}", plan.part_count)));
        }
    }
    let now = crate::time::now_secs();
    let remaining = (up.expires_at - now).num_seconds();
    if remaining < 1 {
        return Err(Error::UploadExpired);
    }
    let ttl = Duration::from_secs(remaining as u64);
    let signed_at = SystemTime::from(now);
    let size = up.size as u64;
    let mut parts = Vec::with_capacity(part_numbers.len());
    for n in part_numbers {
        let len = plan.part_len(size, n as u64).unwrap_or(0);
        let p = state.store.presigner.upload_part(&up.key, store_id, n as u32, len, ttl, signed_at)?;
        parts.push(PartUrl { part_number: n, url: p.url, size: len, headers: p.headers.into_iter().collect() });
    }
    Ok(PartUrls { parts, expires_at: crate::time::rfc3339(&up.expires_at) })
}

pub async fn list(state: &AppState, owner: &str, id: Uuid) -> Result<PartsListing, Error> {
    let (up, plan, store_id) = pending_multipart(state, owner, id).await?;
    listing(state, &up, plan, &store_id).await
}

/// What the store holds for a pending multipart upload (from [`pending`]).
pub(crate) async fn listing(
    state: &AppState,
    up: &UploadRow,
    plan: PartPlan,
    store_id: &str,
) -> Result<PartsListing, Error> {
    let stored = state.store.list_parts(&up.key, store_id).await?.unwrap_or_default();
    Ok(PartsListing {
        parts: stored
            .into_iter()
            .filter(|p| p.part_number >= 1 && p.part_number as u64 <= plan.part_count)
            .map(|p| ListedPart { part_number: p.part_number, size: p.size, etag: p.etag })
            .collect(),
        part_size: plan.part_size as i64,
        part_count: plan.part_count as i32,
    })
}
