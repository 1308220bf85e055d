//! The Companion protocol that `@uppy/aws-s3` 4.x/5.x speaks in `endpoint` mode, mapped
//! onto the upload workflows: every route is a create, parts, complete or abort underneath,
//! with the same rules, quota reservation and HeadObject verification. Only the shapes
//! differ (handlers in `http::companion`).
//!
//! Decisions (README "Uppy"):
//! - **Profile**: `metadata[profile]` (any Uppy meta field reaches us as metadata), else
//!   `default`. `name`, `type`, `size` and `profile` are the protocol's and ours; every
//!   other meta field is stored as the asset's metadata.
//! - **Size**: the protocol sends none. `metadata[size]` is taken when present (one line on
//!   the client, [`SIZE_HINT`]); a single PUT is then signed with that exact
//!   `content-length`. Without it a single PUT reserves the profile's `max_size` (at most
//!   5 GiB), is signed without `content-length`, and confirmation accepts any stored size up
//!   to it and settles the reservation to the stored size. Multipart needs the size to
//!   plan (and sign) its parts, so without it `POST /s3/multipart` is a 400 telling the
//!   line to add.
//! - **Parts**: Uppy slices the file itself, with `getChunkSize`'s default (size / 10,000,
//!   at least 5 MiB): the plan is made the same way ([`uppy_part_size`]), since each part
//!   URL is signed with its exact size. A custom `getChunkSize` is not supported.
//! - **`uploadId`** is our `upload_id` (the store's UploadId may contain `/` and stays in
//!   PostgreSQL); it alone names the upload, looked up among the caller's own. The `key`
//!   query Uppy sends back is accepted and ignored: every call uses the key recorded with
//!   the upload, so a tampered key can point nowhere else. Another owner's `uploadId` is
//!   404, like any unknown id.
//! - **No callback after a single PUT**: the confirmer (src/confirm.rs) turns it into an
//!   asset once the object is there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::complete::{CompleteRequest, Completed};
use super::create::{self, CreateUploadRequest};
use super::{Status, load, parts};
use crate::auth::Caller;
use crate::db::assets::AssetRow;
use crate::error::Error;
use crate::limits::{MAX_PARTS, MAX_SINGLE_UPLOAD, MIN_PART_SIZE};
use crate::profiles::{PartPlan, UploadMethod};
use crate::state::AppState;

/// The client line that sends the file size (as `metadata[size]`).
pub const SIZE_HINT: &str = "uppy.on('file-added', f => uppy.setFileMeta(f.id, { size: f.size }))";

/// Meta fields that are not the app's own: the filename and type (sent again as meta by
/// Uppy), and the two the broker reads.
const PROTOCOL_META: [&str; 4] = ["name", "type", "size", "profile"];

/// Request headers a browser sets itself and a script may not (`setRequestHeader` refuses
/// them): never handed to Uppy.
const BROWSER_HEADERS: [&str; 2] = ["content-length", "host"];

/// A file as the protocol describes it: `filename`, `type` and Uppy's meta fields (the
/// body of `POST /s3/multipart`; `GET /s3/params` has them in its query).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UppyFile {
    pub filename: String,
    #[serde(rename = "type", default)]
    pub content_type: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `GET /s3/params`: the single PUT Uppy sends. `fields` is always empty (that is a PUT);
/// `key` and `uploadId` are extra, for apps that read them.
#[derive(Debug, Serialize)]
pub struct UploadParameters {
    pub method: &'static str,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    /// Seconds the URL stays valid (Uppy uses it as the PUT's timeout).
    pub expires: u64,
    pub key: String,
    #[serde(rename = "uploadId")]
    pub upload_id: Uuid,
}

/// `POST /s3/multipart`.
#[derive(Debug, Serialize)]
pub struct MultipartStarted {
    #[serde(rename = "uploadId")]
    pub upload_id: Uuid,
    pub key: String,
}

/// `GET /s3/multipart/{uploadId}/{partNumber}`.
#[derive(Debug, Serialize)]
pub struct SignedPart {
    pub url: String,
    pub expires: u64,
}

/// One element of `GET /s3/multipart/{uploadId}`.
#[derive(Debug, Serialize)]
pub struct UppyPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u64,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// `POST /s3/multipart/{uploadId}/complete`: Companion's `location` and `key`, plus our
/// asset (Uppy hands the whole body to the app as `response.body`).
#[derive(Debug, Serialize)]
pub struct CompletedUpload {
    pub location: String,
    pub key: String,
    #[serde(rename = "uploadId")]
    pub upload_id: Uuid,
    pub asset_id: Uuid,
    pub asset: AssetRow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteMultipartRequest {
    pub parts: Vec<CompletedPart>,
}

/// A part as Uppy sends it back (5.x quotes the ETag, 6.x does not: both compare equal).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletedPart {
    #[serde(rename = "PartNumber")]
    pub part_number: i64,
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// The part size `@uppy/aws-s3` 5.x slices a file into (its default `getChunkSize`,
/// `ceil(size / 10,000)`, raised to 5 MiB). It never needs more than 10,000 parts.
pub fn uppy_part_size(size: u64) -> u64 {
    size.div_ceil(MAX_PARTS).max(MIN_PART_SIZE)
}

/// The create request for `file` (size still 0) and the size from `metadata[size]`.
fn to_request(file: UppyFile, method: UploadMethod) -> Result<(CreateUploadRequest, Option<i64>), Error> {
    let UppyFile { filename, content_type, mut metadata } = file;
    let size = match metadata.get("size") {
        None => None,
        // Decimal digits only (what `String(file.size)` gives): no sign, no spaces.
        Some(s) if (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<i64>().ok(),
        Some(_) => {
            return Err(Error::invalid(format!(
                "metadata[size]: must be the file size in bytes (1 to 18 digits), as set by {SIZE_HINT}"
            )));
        }
    };
    let profile = metadata.get("profile").cloned();
    metadata.retain(|k, _| !PROTOCOL_META.contains(&k.as_str()));
    // Uppy falls back to this itself; an empty type cannot be signed.
    let content_type = if content_type.is_empty() { "application/octet-stream".to_owned() } else { content_type };
    let req = CreateUploadRequest {
        filename,
        content_type,
        size: 0,
        profile,
        method: Some(method),
        checksum_sha256: None,
        metadata: (!metadata.is_empty()).then_some(metadata),
        collection: None,
        owner: None,
    };
    Ok((req, size))
}

/// Whole seconds from now until `expires_at`.
fn seconds_until(expires_at: &chrono::DateTime<chrono::Utc>) -> u64 {
    (*expires_at - crate::time::now_secs()).num_seconds().max(0) as u64
}

/// Headers minus those a browser refuses to be given.
fn for_browser(headers: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    headers.into_iter().filter(|(n, _)| !BROWSER_HEADERS.contains(&n.as_str())).collect()
}

/// `GET /s3/params`: a `put` intent, with or without a declared size.
pub async fn params(state: &AppState, caller: &Caller, file: UppyFile) -> Result<UploadParameters, Error> {
    let (mut req, size) = to_request(file, UploadMethod::Put)?;
    let spec = match size {
        Some(n) => {
            req.size = n;
            create::validate(state, caller, req)?
        }
        None => {
            let name = req.profile.as_deref().unwrap_or("default");
            let profile = state
                .config
                .profiles
                .get(name)
                .ok_or_else(|| Error::invalid(format!("profile: unknown profile {name:?}")))?;
            req.size = profile.max_size.min(MAX_SINGLE_UPLOAD) as i64;
            create::validate(state, caller, req)?.size_undeclared()
        }
    };
    let intent = create::reserve(state, spec).await?;
    let expires_at = chrono::DateTime::parse_from_rfc3339(&intent.expires_at).map_err(anyhow::Error::from)?;
    Ok(UploadParameters {
        method: "PUT",
        url: intent.url.ok_or_else(|| anyhow::anyhow!("a put intent without a URL"))?,
        headers: for_browser(intent.headers.unwrap_or_default()),
        fields: BTreeMap::new(),
        expires: seconds_until(&expires_at.to_utc()),
        key: intent.key,
        upload_id: intent.upload_id,
    })
}

/// `POST /s3/multipart`: a `multipart` intent planned the way Uppy slices the file.
pub async fn create_multipart(state: &AppState, caller: &Caller, file: UppyFile) -> Result<MultipartStarted, Error> {
    let (mut req, size) = to_request(file, UploadMethod::Multipart)?;
    req.size = size.ok_or_else(|| {
        Error::invalid(format!(
            "metadata[size]: a multipart upload needs the file size to plan its parts; add this line to the \
             Uppy setup: {SIZE_HINT}"
        ))
    })?;
    let size = req.size as u64;
    let spec = create::validate(state, caller, req)?;
    let plan = PartPlan::new(size, uppy_part_size(size)).map_err(Error::invalid)?;
    let intent = create::reserve(state, spec.with_plan(plan)).await?;
    Ok(MultipartStarted { upload_id: intent.upload_id, key: intent.key })
}

/// `GET /s3/multipart/{uploadId}/{partNumber}`: the part's URL, signed with its planned size.
pub async fn sign_part(state: &AppState, owner: &str, id: Uuid, part_number: i64) -> Result<SignedPart, Error> {
    let up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    let (up, plan, store_id) = parts::pending(state, up).await?;
    let signed = parts::sign(state, &up, plan, &store_id, vec![part_number])?;
    let part = signed.parts.into_iter().next().ok_or_else(|| anyhow::anyhow!("one part signed"))?;
    debug_assert!(for_browser(part.headers).is_empty(), "a part URL signs nothing a script sends");
    Ok(SignedPart { url: part.url, expires: seconds_until(&up.expires_at) })
}

/// `GET /s3/multipart/{uploadId}`: the parts the store has. For an upload already
/// completed (a complete whose answer was lost), every planned part: Uppy then skips to
/// complete, which answers with the asset.
pub async fn list_parts(state: &AppState, owner: &str, id: Uuid) -> Result<Vec<UppyPart>, Error> {
    let up = load(state, owner, id).await?.ok_or(Error::NotFound)?;
    if let (Status::Completed, Some(mp)) = (up.status, &up.multipart) {
        let (plan, size) = (mp.plan, up.size as u64);
        return Ok((1..=plan.part_count)
            .map(|n| UppyPart { part_number: n, size: plan.part_len(size, n).unwrap_or(0), etag: String::new() })
            .collect());
    }
    let (up, plan, store_id) = parts::pending(state, up).await?;
    let listing = parts::listing(state, &up, plan, &store_id).await?;
    Ok(listing
        .parts
        .into_iter()
        .map(|p| UppyPart { part_number: p.part_number as u64, size: p.size.max(0) as u64, etag: p.etag })
        .collect())
}

/// `POST /s3/multipart/{uploadId}/complete`. Uppy's part list is checked for shape only:
/// the store's own listing is authoritative (every planned part there with its planned
/// size, as for any `complete`). Comparing Uppy's ETags with the listing would refuse every
/// upload on a store that lists none (s3s-fs, the dev mode's store), and a part uploaded
/// twice is the store's latest either way.
pub async fn complete(
    state: &AppState,
    owner: &str,
    id: Uuid,
    req: CompleteMultipartRequest,
) -> Result<CompletedUpload, Error> {
    // An unknown id is 404 before anything in the body is looked at.
    load(state, owner, id).await?.ok_or(Error::NotFound)?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &req.parts {
        if !(1..=MAX_PARTS as i64).contains(&p.part_number) || !seen.insert(p.part_number) {
            return Err(Error::invalid(format!("parts: PartNumber {} is out of range or repeated", p.part_number)));
        }
    }
    let asset = match super::complete::complete(state, owner, id, CompleteRequest::default()).await? {
        Completed::Created(a) | Completed::Again(a) => a,
    };
    Ok(CompletedUpload {
        location: crate::assets::location(state, &asset),
        key: asset.key.clone(),
        upload_id: id,
        asset_id: asset.id,
        asset,
    })
}

/// `DELETE /s3/multipart/{uploadId}`: abort, idempotent (an unknown id changes nothing).
pub async fn abort(state: &AppState, owner: &str, id: Uuid) -> Result<(), Error> {
    super::abort::abort(state, owner, id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_OBJECT_SIZE, MIB};

    /// Uppy 5's `MultipartUploader#initChunks` with the default `getChunkSize`: chunk =
    /// max(ceil(size / 10,000), 5 MiB); parts at 0, chunk, 2·chunk … the last one shorter.
    fn uppy_chunks(size: u64) -> Vec<u64> {
        let chunk = size.div_ceil(MAX_PARTS).max(MIN_PART_SIZE);
        let mut out = Vec::new();
        let mut offset = 0;
        while offset < size {
            out.push((offset + chunk).min(size) - offset);
            offset += chunk;
        }
        out
    }

    #[test]
    fn the_part_plan_is_the_way_uppy_slices_the_file() {
        for size in [1, 5 * MIB, 5 * MIB + 1, 12 * MIB, 100 * MIB + 7, 52_428_800_000, MAX_OBJECT_SIZE] {
            let plan = PartPlan::new(size, uppy_part_size(size)).unwrap();
            let ours: Vec<u64> = (1..=plan.part_count).map(|n| plan.part_len(size, n).unwrap()).collect();
            assert_eq!(ours, uppy_chunks(size), "size {size}");
            assert!(plan.part_count <= MAX_PARTS);
        }
    }

    #[test]
    fn protocol_meta_fields_are_read_and_not_stored() {
        let metadata =
            [("name", "a.jpg"), ("type", "image/jpeg"), ("size", "12"), ("profile", "photos"), ("album", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let file = UppyFile { filename: "a.jpg".into(), content_type: String::new(), metadata };
        let (req, size) = to_request(file, UploadMethod::Put).unwrap();
        assert_eq!(size, Some(12));
        assert_eq!(req.profile.as_deref(), Some("photos"));
        assert_eq!(req.content_type, "application/octet-stream");
        assert_eq!(req.metadata.unwrap().into_iter().collect::<Vec<_>>(), [("album".to_owned(), "x".to_owned())]);
        for bad in ["-1", "+1", " 1", "1.5", "ten", "", "1234567890123456789"] {
            let metadata = [("size".to_owned(), bad.to_owned())].into_iter().collect();
            let file = UppyFile { filename: "a".into(), content_type: "a/b".into(), metadata };
            assert!(to_request(file, UploadMethod::Put).is_err(), "{bad:?}");
        }
    }
}
