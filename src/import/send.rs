//! One item through the upload path a client takes: hash, skip if already imported, the
//! create rules and quota reservation, the bytes PUT to the presigned URL(s) over plain
//! HTTP, then `complete` (HeadObject verification, the asset, usage).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::content_type::{HEAD_LEN, detect};
use super::items::{Body, Item};
use super::{Ctx, Outcome};
use crate::error::Error;
use crate::profiles::UploadMethod;
use crate::uploads::complete::CompleteRequest;
use crate::uploads::create::CreateUploadRequest;
use crate::uploads::parts::{MAX_PARTS_PER_CALL, PresignPartsRequest};

/// Read size while hashing and streaming a file.
const CHUNK: usize = 1 << 20;

/// Every PUT gets this long plus a second per MiB (1 MiB/s at least).
const PUT_BASE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn process(ctx: &Ctx, item: Item) -> Outcome {
    match send(ctx, item).await {
        Ok(o) => o,
        Err(reason) => Outcome::Failed(reason),
    }
}

/// The first bytes, the size and the SHA-256 (base64) of a body.
struct Digest {
    head: Vec<u8>,
    size: u64,
    sha256: String,
}

async fn send(ctx: &Ctx, item: Item) -> Result<Outcome, String> {
    let digest = match &item.body {
        Body::Bytes(b) => Digest {
            head: b[..b.len().min(HEAD_LEN)].to_vec(),
            size: b.len() as u64,
            sha256: STANDARD.encode(Sha256::digest(b)),
        },
        Body::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(|e| format!("hashing: {e}"))?
                .map_err(|e| format!("cannot read: {e}"))?
        }
    };
    let content_type = item.content_type.clone().unwrap_or_else(|| detect(&item.filename, &digest.head));
    let mut source: serde_json::Map<String, serde_json::Value> =
        item.source.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    source.insert("source_sha256".into(), digest.sha256.clone().into());
    let source = serde_json::Value::Object(source);
    if crate::db::imports::find_imported(&ctx.state.db, &ctx.caller.owner, &source)
        .await
        .map_err(|e| reason(&e.into()))?
        .is_some()
    {
        return Ok(Outcome::Skipped { bytes: digest.size });
    }
    let mut metadata: BTreeMap<String, String> = item.metadata.clone();
    metadata.extend(item.source.clone());
    metadata.insert("source_sha256".into(), digest.sha256.clone());

    // A declared checksum needs a single PUT (create refuses it with multipart), so the
    // method follows the profile's threshold here rather than create's checksum rule.
    let profile = ctx.options.profile.clone().unwrap_or_else(|| "default".into());
    let threshold = ctx.state.config.profiles.get(&profile).map_or(u64::MAX, |p| p.multipart_threshold);
    let method = if digest.size > threshold { UploadMethod::Multipart } else { UploadMethod::Put };
    let req = CreateUploadRequest {
        filename: item.filename.clone(),
        content_type,
        size: i64::try_from(digest.size).map_err(|_| "too large".to_owned())?,
        profile: Some(profile),
        method: Some(method),
        checksum_sha256: (method == UploadMethod::Put).then(|| digest.sha256.clone()),
        metadata: Some(metadata),
        owner: None,
        collection: ctx.options.collection.map(crate::ids::Id::from),
    };
    let spec = crate::uploads::create::validate(&ctx.state, &ctx.caller, req).map_err(|e| reason(&e))?;
    if ctx.options.dry_run {
        return Ok(Outcome::Planned { bytes: digest.size });
    }
    let intent = crate::uploads::create::reserve(&ctx.state, spec).await.map_err(|e| reason(&e))?;
    let id = intent.upload_id;
    ctx.in_flight.lock().expect("not poisoned").insert(id);
    let sent = match (method, intent.url.as_deref()) {
        (UploadMethod::Multipart, _) => send_parts(ctx, id, &item.body).await,
        (_, Some(url)) => send_put(ctx, url, intent.headers.unwrap_or_default(), &item.body, digest.size).await,
        (_, None) => Err("the intent has no URL".to_owned()),
    };
    let done = match sent {
        Ok(()) => crate::uploads::complete::complete(&ctx.state, &ctx.caller.owner, id, CompleteRequest::default())
            .await
            .map_err(|e| reason(&e)),
        Err(e) => Err(e),
    };
    if done.is_err() {
        // Give the reservation back now rather than at expiry (best effort: the reaper
        // expires what this cannot end).
        if let Err(e) = crate::uploads::abort::abort(&ctx.state, &ctx.caller.owner, id).await {
            tracing::warn!(upload_id = %id, error = %e, "could not abort a failed import");
        }
    }
    ctx.in_flight.lock().expect("not poisoned").remove(&id);
    done.map(|_| Outcome::Imported { bytes: digest.size })
}

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let (mut head, mut size) = (Vec::new(), 0u64);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < HEAD_LEN {
            head.extend_from_slice(&buf[..n.min(HEAD_LEN - head.len())]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Digest { head, size, sha256: STANDARD.encode(hasher.finalize()) })
}

/// The error as the API would answer it (code and message), with the cause for 5xx.
pub(super) fn reason(e: &Error) -> String {
    match e {
        Error::Unavailable { source, .. } => format!("{}: {e}: {source:#}", e.code()),
        Error::Internal(source) => format!("{}: {source:#}", e.code()),
        _ => format!("{}: {e}", e.code()),
    }
}

fn put_timeout(len: u64) -> Duration {
    PUT_BASE_TIMEOUT + Duration::from_secs(len.div_ceil(1 << 20))
}

/// A single PUT, the file streamed (never whole in memory), with the headers the intent
/// says to send.
async fn send_put(
    ctx: &Ctx,
    url: &str,
    headers: BTreeMap<String, String>,
    body: &Body,
    size: u64,
) -> Result<(), String> {
    let body = match body {
        Body::Bytes(b) => {
            ctx.progress.add_bytes(size);
            reqwest::Body::from(b.clone())
        }
        Body::File(path) => {
            let file = tokio::fs::File::open(path).await.map_err(|e| format!("cannot read: {e}"))?;
            let progress = ctx.progress.clone();
            let stream = futures_util::stream::try_unfold(file, move |mut file| {
                let progress = progress.clone();
                async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut buf = vec![0; CHUNK];
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(None);
                    }
                    buf.truncate(n);
                    progress.add_bytes(n as u64);
                    Ok(Some((buf, file)))
                }
            });
            reqwest::Body::wrap_stream(stream)
        }
    };
    let mut req = ctx.http.put(url).timeout(put_timeout(size)).header(reqwest::header::CONTENT_LENGTH, size);
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v);
        }
    }
    check(req.body(body).send().await).await.map(|_| ())
}

/// A store answer: 2xx, or the failure with the start of the store's error body.
async fn check(res: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, String> {
    // Without the URL: it is presigned, and the report and logs must not carry a signature.
    let res = res.map_err(|e| format!("sending to the store: {}", e.without_url()))?;
    if res.status().is_success() {
        return Ok(res);
    }
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    Err(format!("the store answered {status}: {}", text.chars().take(300).collect::<String>()))
}

/// Multipart: part URLs presigned through the parts workflow (at most 1,000 per call), each
/// part read into memory alone and PUT. `complete` gets no part list: it lists the parts in
/// the store and checks each planned part's size itself (a client's list only adds an ETag
/// comparison, which s3s-fs cannot do: its ListParts carries no ETags).
async fn send_parts(ctx: &Ctx, id: Uuid, body: &Body) -> Result<(), String> {
    let owner = &ctx.caller.owner;
    let listing = crate::uploads::parts::list(&ctx.state, owner, id).await.map_err(|e| reason(&e))?;
    let (part_size, count) = (listing.part_size as u64, listing.part_count as i64);
    let mut file = match body {
        Body::File(path) => Some(tokio::fs::File::open(path).await.map_err(|e| format!("cannot read: {e}"))?),
        Body::Bytes(_) => None,
    };
    for first in (1..=count).step_by(MAX_PARTS_PER_CALL) {
        let numbers: Vec<i64> = (first..=count.min(first + MAX_PARTS_PER_CALL as i64 - 1)).collect();
        let urls = crate::uploads::parts::presign(&ctx.state, owner, id, PresignPartsRequest { part_numbers: numbers })
            .await
            .map_err(|e| reason(&e))?;
        for part in urls.parts {
            let offset = (part.part_number as u64 - 1) * part_size;
            let bytes = match (body, file.as_mut()) {
                (Body::Bytes(b), _) => b[offset as usize..(offset + part.size) as usize].to_vec(),
                (Body::File(_), Some(f)) => read_at(f, offset, part.size)
                    .await
                    .map_err(|e| format!("cannot read part {}: {e}", part.part_number))?,
                (Body::File(_), None) => unreachable!("opened above"),
            };
            let mut req = ctx.http.put(&part.url).timeout(put_timeout(part.size));
            for (k, v) in &part.headers {
                req = req.header(k, v);
            }
            check(req.body(bytes).send().await).await.map_err(|e| format!("part {}: {e}", part.part_number))?;
            ctx.progress.add_bytes(part.size);
        }
    }
    Ok(())
}

async fn read_at(file: &mut tokio::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0; len as usize];
    file.read_exact(&mut buf).await?;
    Ok(buf)
}
