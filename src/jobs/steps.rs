//! The job steps: the profile's scanners, then its image variants. Each says what it found;
//! the worker (mod.rs) settles the asset or schedules a retry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use crate::asset_state::Variant;
use crate::db::assets::AssetRow;
use crate::profiles::{ContentType, JobStep, Profile, VariantFormat};
use crate::scan::{ScanTarget, Scanners, Verdict};
use crate::state::AppState;

/// What one step found.
#[derive(Debug)]
pub(super) enum StepResult {
    /// Passed; the variants made, when the step made any.
    Passed(Option<Vec<Variant>>),
    /// A scanner flagged the content: quarantine.
    Flagged(String),
    /// The content cannot be what it claims (an image that cannot be decoded within the
    /// bounds): reject.
    Refused(String),
    /// The step could not be done now (scanner or store down, a timeout): retry later.
    Failed(String),
}

pub(super) async fn run(
    state: &AppState,
    scanners: &Scanners,
    decodes: &Arc<Semaphore>,
    step: JobStep,
    asset: &AssetRow,
    profile: &Profile,
) -> StepResult {
    match step {
        JobStep::Scan => scan(state, scanners, asset, profile).await,
        JobStep::Variants => variants(state, decodes, asset, profile).await,
    }
}

/// Every scanner in order, each streaming the object from a presigned GET.
async fn scan(state: &AppState, scanners: &Scanners, asset: &AssetRow, profile: &Profile) -> StepResult {
    // The URL outlives the scan's bound, so a slow scan never fails on an expired URL.
    let ttl = state.config.processing.scan_timeout + Duration::from_secs(60);
    let url = match state.store.presigner.get_object(&asset.key, None, None, ttl, SystemTime::now()) {
        Ok(signed) => signed.url,
        Err(e) => return StepResult::Failed(format!("presigning the scan's GET: {e}")),
    };
    for &kind in &profile.processing.scan {
        let target = ScanTarget {
            url: &url,
            size: asset.size as u64,
            etag: asset.etag.as_deref(),
            content_type: &asset.content_type,
            owner: asset.owner.as_str(),
            asset_id: asset.id,
            filename: &asset.filename,
        };
        match scanners.scan(kind, &target).await {
            Ok(Verdict::Clean) => {}
            Ok(Verdict::Flagged(reason)) => return StepResult::Flagged(format!("{}: {reason}", kind.as_str())),
            Err(e) => return StepResult::Failed(format!("{}: {e}", kind.as_str())),
        }
    }
    StepResult::Passed(None)
}

/// The profile's variants of an image asset, written next to the original. An asset that
/// is not an image this worker decodes, or larger than `BROKER_VARIANT_MAX_BYTES`, passes
/// without variants.
async fn variants(state: &AppState, decodes: &Arc<Semaphore>, asset: &AssetRow, profile: &Profile) -> StepResult {
    let config = &state.config.processing;
    let essence = ContentType::parse(&asset.content_type).map(|c| c.essence().to_owned()).unwrap_or_default();
    if profile.processing.variants.is_empty() || !crate::variants::supports(&essence) {
        return StepResult::Passed(None);
    }
    if asset.size as u64 > config.variant_max_bytes {
        tracing::info!(asset_id = %asset.id, size = asset.size, "no variants: larger than BROKER_VARIANT_MAX_BYTES");
        return StepResult::Passed(None);
    }
    let bytes = match tokio::time::timeout(
        config.variant_timeout,
        state.store.read_all(&asset.key, config.variant_max_bytes, asset.etag.as_deref()),
    )
    .await
    {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => {
            return StepResult::Refused("the object is no longer in the store as it was verified".into());
        }
        Ok(Err(e)) => return StepResult::Failed(e.to_string()),
        Err(_) => return StepResult::Failed("reading the original timed out".into()),
    };
    let specs = profile.processing.variants.clone();
    let format = profile.processing.variant_format;
    let limits = crate::variants::Limits { max_pixels: config.variant_max_pixels, ..Default::default() };
    // CPU-bound: on a blocking thread, so the runtime (and the API beside it) keeps going;
    // the permit goes with it (see `Worker::decodes`). Waiting for one is within the bound.
    let work = async {
        let permit = decodes.clone().acquire_owned().await.expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::variants::render(&bytes, &specs, format, &limits)
        })
        .await
    };
    let rendered = match tokio::time::timeout(config.variant_timeout, work).await {
        Ok(Ok(Ok(rendered))) => rendered,
        Ok(Ok(Err(crate::variants::VariantError::Unsupported(why)))) => {
            tracing::info!(asset_id = %asset.id, %why, "no variants: not an image this worker decodes");
            return StepResult::Passed(None);
        }
        Ok(Ok(Err(crate::variants::VariantError::Refused(why)))) => return StepResult::Refused(why),
        Ok(Err(join)) => return StepResult::Failed(format!("the image worker failed: {join}")),
        Err(_) => return StepResult::Failed(format!("variants took longer than {:?}", config.variant_timeout)),
    };
    let mut made = Vec::with_capacity(rendered.len());
    for r in rendered {
        let key = variant_key(&asset.key, &r.name, format);
        let size = r.bytes.len() as u64;
        if let Err(e) = state.store.write(&key, r.bytes, r.content_type).await {
            return StepResult::Failed(e.to_string());
        }
        made.push(Variant {
            name: r.name,
            key,
            content_type: r.content_type.to_owned(),
            width: r.width,
            height: r.height,
            size,
        });
    }
    StepResult::Passed(Some(made))
}

/// `<original's folder>/~<name>.<ext>`: beside the original, under its upload's folder
/// (deleted with it). Sanitised filenames never contain `~`, so no upload can collide.
pub fn variant_key(original: &str, name: &str, format: VariantFormat) -> String {
    let folder = original.rsplit_once('/').map_or("", |(f, _)| f);
    let ext = match format {
        VariantFormat::Jpeg => "jpg",
        VariantFormat::Webp => "webp",
    };
    format!("{folder}/~{name}.{ext}")
}
