//! Create an upload intent: validate in openapi.yaml's order, reserve quota and insert the
//! intent in one statement, hand back a presigned request.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::UploadIntent;
use crate::auth::Caller;
use crate::db::uploads::{NewUpload, Reservation, Status};
use crate::error::Error;
use crate::keys::object_key;
use crate::limits::MAX_SINGLE_UPLOAD;
use crate::profiles::{ContentType, PartPlan, Profile, UploadMethod};
use crate::state::AppState;

/// `metadata` is at most 2,048 bytes as compact JSON (openapi.yaml).
pub const MAX_METADATA_JSON: usize = 2048;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub method: Option<UploadMethod>,
    #[serde(default)]
    pub checksum_sha256: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub owner: Option<String>,
}

/// A request that passed every check but the quota.
pub struct Spec<'p> {
    owner: String,
    profile: &'p Profile,
    method: UploadMethod,
    filename: String,
    content_type: ContentType,
    size: i64,
    checksum_sha256: Option<String>,
    metadata: serde_json::Value,
    plan: Option<PartPlan>,
    /// False: `size` is only the most that may be stored (uploads::companion).
    size_declared: bool,
}

impl Spec<'_> {
    /// The client declared no size: `size` is reserved as an upper bound, the presigned PUT
    /// signs no `content-length`, and confirmation settles to the stored size.
    pub(crate) fn size_undeclared(mut self) -> Self {
        self.size_declared = false;
        self
    }

    /// Replaces the profile's part plan (Uppy slices files itself; uploads::companion).
    pub(crate) fn with_plan(mut self, plan: PartPlan) -> Self {
        self.plan = Some(plan);
        self
    }
}

impl CreateUploadRequest {
    /// The checks the schema states (lengths, formats, minimums): a batch refuses the whole
    /// request when one item fails them, as it does for a wrong field type.
    pub fn check_shape(&self) -> Result<(), Error> {
        if self.filename.is_empty() || self.filename.len() > 255 {
            return Err(Error::invalid("filename: must be 1 to 255 bytes"));
        }
        ContentType::parse(&self.content_type).map_err(Error::invalid)?;
        if self.size < 0 {
            return Err(Error::invalid("size: must be an integer >= 0"));
        }
        if self.profile.as_deref() == Some("") {
            return Err(Error::invalid("profile: must not be empty"));
        }
        if let Some(c) = &self.checksum_sha256
            && !matches!(STANDARD.decode(c), Ok(d) if d.len() == 32 && STANDARD.encode(&d) == *c)
        {
            return Err(Error::invalid("checksum_sha256: must be the base64 of a 32-byte SHA-256 digest"));
        }
        if let Some(o) = &self.owner {
            crate::owner::check(o)?;
        }
        Ok(())
    }
}

/// The checks in openapi.yaml's order: shape and profile (400), acting for another owner (403),
/// size (413), type (415), what the method or the store cannot do (400). The quota comes
/// last, in `reserve`.
pub fn validate<'s>(state: &'s AppState, caller: &Caller, req: CreateUploadRequest) -> Result<Spec<'s>, Error> {
    req.check_shape()?;
    check_rules(state, caller, req)
}

/// `validate` after `check_shape` passed (a batch checks every item's shape first).
pub fn check_rules<'s>(state: &'s AppState, caller: &Caller, req: CreateUploadRequest) -> Result<Spec<'s>, Error> {
    let content_type = ContentType::parse(&req.content_type).map_err(Error::invalid)?;
    let profile_name = req.profile.as_deref().unwrap_or("default");
    let profile = state
        .config
        .profiles
        .get(profile_name)
        .ok_or_else(|| Error::invalid(format!("profile: unknown profile {profile_name:?}")))?;
    let metadata = serde_json::to_value(req.metadata.unwrap_or_default()).map_err(anyhow::Error::from)?;
    if metadata.to_string().len() > MAX_METADATA_JSON {
        return Err(Error::invalid("metadata: at most 2048 bytes as compact JSON"));
    }
    let owner = caller.owner_for(req.owner.as_deref())?;
    // A profile's max_size is at most 5 TiB (profiles.rs), so this also covers S3's cap.
    if req.size as u64 > profile.max_size {
        return Err(Error::FileTooLarge { max: profile.max_size });
    }
    if !profile.allows(&content_type) {
        return Err(Error::UnsupportedContentType(req.content_type));
    }
    // A declared checksum can only be checked by the store on a single PUT: without a
    // method, it picks `put` up to the single-request limit whatever the profile's
    // multipart threshold (the client cannot know the threshold).
    let method = req.method.unwrap_or_else(|| match req.checksum_sha256 {
        Some(_) if req.size as u64 <= MAX_SINGLE_UPLOAD => UploadMethod::Put,
        _ => profile.default_method(req.size as u64),
    });
    let checksum_sha256 = match (req.checksum_sha256, method) {
        (Some(_), UploadMethod::Multipart) => {
            return Err(Error::invalid("checksum_sha256: not accepted with method multipart"));
        }
        // A POST policy cannot make the store check a SHA-256 (S3 only verifies checksums
        // sent as headers), so complete could never match: refuse it now.
        (Some(_), UploadMethod::Post) => {
            return Err(Error::invalid("checksum_sha256: not accepted with method post; use method put"));
        }
        (c, _) => c,
    };
    if method != UploadMethod::Multipart && req.size as u64 > MAX_SINGLE_UPLOAD {
        return Err(Error::MethodNotSupported(
            format!("method {}: a single request uploads at most 5 GiB; use method multipart", method.as_str()).into(),
        ));
    }
    if method == UploadMethod::Post && !state.store.supports_post_policy() {
        return Err(Error::MethodNotSupported(
            "method post (POST policy) is not supported by this store (Cloudflare R2); use method put".into(),
        ));
    }
    let plan = match method {
        UploadMethod::Multipart => Some(PartPlan::new(req.size as u64, profile.part_size).map_err(Error::invalid)?),
        _ => None,
    };
    Ok(Spec {
        owner,
        profile,
        method,
        filename: req.filename,
        content_type,
        size: req.size,
        checksum_sha256,
        metadata,
        plan,
        size_declared: true,
    })
}

/// Reserves quota, records the intent and returns the presigned request.
pub async fn reserve(state: &AppState, spec: Spec<'_>) -> Result<UploadIntent, Error> {
    let id = Uuid::new_v4();
    let id_text = id.to_string();
    let key = object_key(&spec.profile.key_prefix, &spec.owner, id, &spec.filename);
    let now = crate::time::now_secs();
    let ttl = Duration::from_secs(spec.profile.upload_url_ttl);
    let expires_at = now + ttl;
    let complete_by = expires_at + Duration::from_secs(spec.profile.complete_grace);
    let signed_at = SystemTime::from(now);
    let size = spec.size as u64;
    let ct = spec.content_type.as_str();

    // Presigning is pure computation: do it before reserving, so a failure here cannot
    // leave a reservation behind.
    let (url, headers, fields) = match spec.method {
        UploadMethod::Put => {
            let p = state.store.presigner.put_object(
                &key,
                ct,
                spec.size_declared.then_some(size),
                &id_text,
                spec.checksum_sha256.as_deref(),
                ttl,
                signed_at,
            )?;
            (Some(p.url), Some(p.headers.into_iter().collect()), None)
        }
        UploadMethod::Post => {
            let p = crate::store::post_policy::post_policy(
                &state.store.presigner,
                &key,
                ct,
                size,
                &id_text,
                ttl,
                signed_at,
            )?;
            (Some(p.url), None, Some(p.fields.into_iter().collect()))
        }
        UploadMethod::Multipart => (None, None, None),
    };

    let new = NewUpload {
        owner: &spec.owner,
        id,
        profile: &spec.profile.name,
        method: spec.method,
        key: &key,
        filename: &spec.filename,
        content_type: ct,
        size: spec.size,
        checksum_sha256: spec.checksum_sha256.as_deref(),
        metadata: &spec.metadata,
        plan: spec.plan,
        expires_at,
        complete_by,
        size_declared: spec.size_declared,
        // Single-request uploads are confirmed by the confirmer too, should the client
        // never call complete (src/confirm.rs); multipart needs the client's complete.
        next_check_at: (spec.method != UploadMethod::Multipart).then(|| now + state.config.confirm_backoff),
    };
    let reservation = crate::db::uploads::reserve_and_insert(
        &state.db,
        &new,
        state.config.default_quota_bytes,
        state.config.default_quota_objects,
    )
    .await?;
    if reservation == Reservation::Refused {
        return Err(Error::QuotaExceeded("the owner's byte or object quota would be exceeded"));
    }
    if spec.method == UploadMethod::Multipart {
        start_multipart(state, &spec.owner, id, &key, ct).await?;
    }
    state.metrics.intents_created.with_label_values(&[spec.method.as_str()]).inc();
    state.metrics.bytes_reserved.inc_by(size);
    Ok(UploadIntent {
        upload_id: id,
        key,
        method: spec.method,
        url,
        headers,
        fields,
        part_size: spec.plan.map(|p| p.part_size as i64),
        part_count: spec.plan.map(|p| p.part_count as i64),
        expires_at: crate::time::rfc3339(&expires_at),
    })
}

/// CreateMultipartUpload after the reservation (a refused quota costs no store call). If
/// the store or the database fails here, the intent is ended so its quota comes back; if
/// even that fails, it stays pending without a store upload and expires normally.
async fn start_multipart(state: &AppState, owner: &str, id: Uuid, key: &str, ct: &str) -> Result<(), Error> {
    let release = |e: Error| async move {
        if let Err(end) = crate::db::uploads::end_pending(&state.db, owner, id, Status::Failed, &[]).await {
            tracing::warn!(upload_id = %id, error = %end, "could not release the reservation of a failed multipart start");
        }
        e
    };
    let store_id = match state.store.create_multipart(key, ct, &id.to_string()).await {
        Ok(s) => s,
        Err(e) => return Err(release(e.into()).await),
    };
    if let Err(e) = crate::db::uploads::set_multipart_id(&state.db, owner, id, &store_id).await {
        let _ = state.store.abort_multipart(key, &store_id).await;
        return Err(release(e.into()).await);
    }
    Ok(())
}

pub async fn create(state: &AppState, caller: &Caller, req: CreateUploadRequest) -> Result<UploadIntent, Error> {
    let spec = validate(state, caller, req)?;
    reserve(state, spec).await
}
