//! Complete: confirm with HeadObject that the store holds exactly what the intent
//! declared, then record the asset and turn the reservation into usage in one statement.
//! The client's `complete` and the confirmer (src/confirm.rs, for uploads nobody
//! completes) both run exactly this. For an intent whose client declared no size (Uppy
//! without `metadata[size]`), any stored size up to the reserved one matches, and the
//! reservation is settled to the stored size.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Status, end_and_clean, expire_if_overdue, load};
use crate::db::assets::AssetRow;
use crate::db::completion::Completion;
use crate::db::uploads::{Multipart, UploadRow};
use crate::error::Error;
use crate::profiles::{UploadMethod, Visibility};
use crate::state::AppState;
use crate::store::ObjectHead;
use crate::store::multipart::StoredPart;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    #[serde(default)]
    pub parts: Option<Vec<ClientPart>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPart {
    pub part_number: i64,
    pub etag: String,
}

pub enum Completed {
    /// First successful complete: 201.
    Created(AssetRow),
    /// Repeated complete of a completed upload: 200, same asset.
    Again(AssetRow),
}

pub async fn complete(state: &AppState, owner: &str, id: Uuid, req: CompleteRequest) -> Result<Completed, Error> {
    let mut up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    expire_if_overdue(state, &mut up).await?;
    match up.status {
        Status::Pending => {}
        Status::Completed => return already_completed(state, owner, id).await,
        Status::Expired => return Err(Error::UploadExpired),
        Status::Aborted => return Err(Error::invalid_state("the upload was aborted")),
        Status::Failed => return Err(Error::invalid_state("the upload failed verification; create a new one")),
    }
    if req.parts.is_some() && up.method != UploadMethod::Multipart {
        return Err(Error::invalid("parts: only for multipart uploads"));
    }
    if let Some(mp) = &up.multipart {
        complete_in_store(state, &up, mp, req.parts.as_deref()).await?;
    }
    let head = state.store.head(&up.key).await?.ok_or_else(|| {
        Error::ObjectMissing("the object is not in the store yet; upload it, then call complete".into())
    })?;
    let mismatches = mismatches(&up, &head);
    if let Some(first) = mismatches.first() {
        state.metrics.verification_failures.with_label_values(&[first.0]).inc();
        let detail = mismatches.iter().map(|m| m.1.as_str()).collect::<Vec<_>>().join("; ");
        tracing::info!(upload_id = %id, %detail, "verification failed");
        if !end_and_clean(state, &up, Status::Failed).await? {
            // A concurrent call ended or completed it first: answer as that call left it.
            return Box::pin(complete(state, owner, id, CompleteRequest::default())).await;
        }
        return Err(Error::VerificationFailed(detail));
    }
    // A profile removed from the configuration since create leaves its assets private,
    // unchecked and without events.
    let profile = state.config.profiles.get(&up.profile);
    if let Some(p) = profile
        && p.processing.sniff
    {
        sniff(state, &up, head.etag.as_deref()).await?;
    }
    let completion = Completion {
        asset_id: Uuid::new_v4(),
        etag: head.etag.as_deref(),
        visibility: profile.map_or(Visibility::Private, |p| p.visibility),
        stored_size: head.size,
        first_step: profile.and_then(|p| p.processing.first_step()),
        ready_event: profile.is_some_and(|p| state.config.processing.webhook_endpoint(p).is_some()),
        retention_secs: profile.and_then(|p| p.retention).map(|r| r as i64),
    };
    match crate::db::completion::complete(&state.db, owner, id, &completion).await? {
        Some(row) => {
            state.metrics.uploads_completed.inc();
            Ok(Completed::Created(row))
        }
        // Lost a race with another complete or an abort: answer as the winner left it.
        None => Box::pin(complete(state, owner, id, CompleteRequest::default())).await,
    }
}

/// The first bytes against the declared type: a mismatch fails the upload (object deleted,
/// reservation released) with `422 verification_failed`.
async fn sniff(state: &AppState, up: &UploadRow, etag: Option<&str>) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let prefix = state.store.read_prefix(&up.key, crate::sniff::PREFIX_LEN, etag).await?;
    state.metrics.sniff_seconds.observe(started.elapsed().as_secs_f64());
    let prefix = prefix.ok_or_else(|| Error::ObjectMissing("the object is no longer in the store".into()))?;
    let essence = crate::profiles::ContentType::parse(&up.content_type).map(|c| c.essence().to_owned());
    let Err(reason) = crate::sniff::check(essence.as_deref().unwrap_or(&up.content_type), &prefix) else {
        return Ok(());
    };
    state.metrics.verification_failures.with_label_values(&["content"]).inc();
    tracing::info!(upload_id = %up.id, %reason, "content sniffing refused the upload");
    end_and_clean(state, up, Status::Failed).await?;
    Err(Error::VerificationFailed(reason))
}

async fn already_completed(state: &AppState, owner: &str, id: Uuid) -> Result<Completed, Error> {
    match crate::db::assets::get_by_upload(&state.db, owner, id).await? {
        Some(row) => Ok(Completed::Again(row)),
        None => Err(Error::invalid_state("the upload completed but its asset has since been deleted")),
    }
}

/// What differs between the intent and the stored object: `(metric reason, message)`.
fn mismatches(row: &UploadRow, head: &ObjectHead) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if row.size_declared && head.size != row.size {
        out.push(("size", format!("size: declared {} bytes, stored {}", row.size, head.size)));
    }
    // No size declared: anything up to what was reserved (the profile's max_size).
    if !row.size_declared && !(0..=row.size).contains(&head.size) {
        out.push(("size", format!("size: at most {} bytes allowed, stored {}", row.size, head.size)));
    }
    let stored_type = head.content_type.as_deref().unwrap_or("");
    if !stored_type.trim().eq_ignore_ascii_case(row.content_type.trim()) {
        out.push(("content_type", format!("content_type: declared {:?}, stored {stored_type:?}", row.content_type)));
    }
    if head.upload_id.as_deref() != Some(row.id.to_string().as_str()) {
        out.push(("metadata", "upload-id metadata: missing or different".to_owned()));
    }
    if let Some(declared) = &row.checksum_sha256
        && head.checksum_sha256.as_deref() != Some(declared.as_str())
    {
        out.push(("checksum", "checksum_sha256: the store reports a different or no SHA-256".to_owned()));
    }
    out
}

/// Multipart: every planned part must be in the store with its planned size, then the
/// store assembles the object. A missing part keeps the intent pending (409).
async fn complete_in_store(
    state: &AppState,
    up: &UploadRow,
    mp: &Multipart,
    client_parts: Option<&[ClientPart]>,
) -> Result<(), Error> {
    let Some(store_id) = mp.store_upload_id.as_deref() else {
        return Err(Error::invalid_state("the multipart upload was not started in the store; create a new upload"));
    };
    let Some(stored) = state.store.list_parts(&up.key, store_id).await? else {
        // The store no longer knows the upload: a previous complete may have finished it
        // there before failing here. HeadObject decides.
        return Ok(());
    };
    let (size, plan) = (up.size as u64, mp.plan);
    let count = plan.part_count;
    let mut missing = Vec::new();
    let mut wrong_size = Vec::new();
    let mut chosen: Vec<StoredPart> = Vec::with_capacity(count as usize);
    for n in 1..=count {
        match stored.iter().find(|p| p.part_number as u64 == n) {
            None => missing.push(n),
            Some(p) if Some(p.size as u64) != plan.part_len(size, n) => wrong_size.push(n),
            Some(p) => chosen.push(p.clone()),
        }
    }
    if let Some(list) = client_parts {
        check_client_parts(list, &stored, count)?;
    }
    if !missing.is_empty() {
        return Err(Error::ObjectMissing(format!("parts missing in the store: {}", join(&missing)).into()));
    }
    if !wrong_size.is_empty() {
        state.metrics.verification_failures.with_label_values(&["part_size"]).inc();
        end_and_clean(state, up, Status::Failed).await?;
        return Err(Error::VerificationFailed(format!("parts with a size other than planned: {}", join(&wrong_size))));
    }
    state.store.complete_multipart(&up.key, store_id, &chosen).await?;
    Ok(())
}

/// A client's own list must name each planned part once, with the ETag the store has.
fn check_client_parts(list: &[ClientPart], stored: &[StoredPart], count: u64) -> Result<(), Error> {
    let norm = |e: &str| e.trim().trim_matches('"').to_owned();
    let mut seen = std::collections::BTreeSet::new();
    let mut differing = Vec::new();
    for p in list {
        if p.part_number < 1 || p.part_number as u64 > count || !seen.insert(p.part_number) {
            return Err(Error::invalid(format!("parts: part_number {} is out of range or repeated", p.part_number)));
        }
        match stored.iter().find(|s| i64::from(s.part_number) == p.part_number) {
            Some(s) if norm(&s.etag) == norm(&p.etag) => {}
            _ => differing.push(p.part_number as u64),
        }
    }
    if !differing.is_empty() {
        return Err(Error::ObjectMissing(
            format!("parts not in the store with the given etag: {}", join(&differing)).into(),
        ));
    }
    Ok(())
}

fn join(ns: &[u64]) -> String {
    ns.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}
