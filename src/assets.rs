//! Assets: listing (keyset cursor), reading, deleting, and download URLs with a safe
//! Content-Disposition (RFC 6266 with an RFC 5987 `filename*`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::asset_state::AssetState;
use crate::db::assets::AssetRow;
use crate::error::Error;
use crate::limits::MAX_URL_TTL_SECS;
use crate::profiles::{ContentType, Visibility};
use crate::state::AppState;

/// A page of assets (each serialises as the API's `Asset`).
pub type AssetPage = crate::pages::Page<AssetRow>;

/// What a listing is narrowed to.
#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    pub profile: Option<&'a str>,
    pub state: Option<AssetState>,
    pub collection: Option<Uuid>,
}

pub async fn list(
    state: &AppState,
    owner: &str,
    limit: Option<i64>,
    cursor: Option<&str>,
    filter: ListFilter<'_>,
) -> Result<AssetPage, Error> {
    let limit = crate::pages::limit(limit)?;
    if let Some(p) = filter.profile
        && state.config.profiles.get(p).is_none()
    {
        return Err(Error::invalid(format!("profile: unknown profile {p:?}")));
    }
    let before = crate::pages::before(cursor)?;
    let query = crate::db::assets::Listing {
        before,
        limit: limit + 1,
        profile: filter.profile,
        state: filter.state,
        collection: filter.collection,
    };
    let rows = crate::db::assets::list(&state.db, owner, &query).await?;
    Ok(crate::pages::page(rows, limit, |r| (r.created_at, r.id)))
}

pub async fn get(state: &AppState, owner: &str, id: Uuid) -> Result<AssetRow, Error> {
    crate::db::assets::get(&state.db, owner, id).await?.ok_or(Error::NotFound)
}

/// Deletes the objects first (the original and its variants), then the record (and its
/// usage, unless a rejection released it already) with the `asset.deleted` event. A store
/// failure leaves the record in place and a retry finishes; the reverse order could orphan
/// an object forever.
pub async fn delete(state: &AppState, owner: &str, id: Uuid) -> Result<(), Error> {
    let Some(row) = crate::db::assets::get(&state.db, owner, id).await? else { return Ok(()) };
    for variant in &row.variants {
        state.store.delete(&variant.key).await?;
    }
    state.store.delete(&row.key).await?;
    let event =
        state.config.profiles.get(&row.profile).is_some_and(|p| state.config.processing.webhook_endpoint(p).is_some());
    let deleted = crate::db::assets::delete(&state.db, owner, id, event).await?;
    // Its job settled it `ready` between the read above and the delete: the variants it
    // recorded meanwhile go too (the record is gone; nothing else would find them).
    for variant in deleted.iter().flat_map(|d| &d.variants).filter(|v| !row.variants.contains(v)) {
        if let Err(e) = state.store.delete(&variant.key).await {
            tracing::warn!(key = %variant.key, error = %e, "a variant of a deleted asset is left in the store");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    Inline,
    Attachment,
}

#[derive(Debug, Serialize)]
pub struct DownloadUrl {
    pub url: String,
    pub expires_at: Option<String>,
}

/// RFC 5987 `attr-char`: everything else in `filename*` is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Whether a character is shown as itself: not a control (Cc), not a format character
/// (Cf: the bidi overrides U+202A–202E and U+2066–2069 that turn `gpj.exe` around, zero-width
/// characters, soft hyphens), not a line or paragraph separator, not unassigned.
fn is_shown(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    !matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Unassigned
            | G::PrivateUse
            | G::Surrogate
    )
}

/// `inline|attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`.
/// Characters that are not shown as themselves are dropped first (extension spoofing); the
/// fallback keeps printable ASCII except `"`, `\` and `%` (some browsers decode it);
/// control characters cannot reach the header in either form, so no header injection.
pub fn content_disposition(disposition: Disposition, filename: &str) -> String {
    let kind = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let shown: String = filename.chars().filter(|c| is_shown(*c)).collect();
    let filename = if shown.is_empty() { "download" } else { shown.as_str() };
    let fallback: String = filename
        .chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%') { c } else { '_' })
        .collect();
    let encoded = utf8_percent_encode(filename, ATTR_CHAR);
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Path segments of a public URL: RFC 3986 unreserved characters stay, the rest is encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn public_url(base: &str, key: &str) -> String {
    let mut url = String::with_capacity(base.len() + key.len() + 8);
    url.push_str(base);
    for segment in key.split('/') {
        url.push('/');
        url.extend(utf8_percent_encode(segment, PATH_SEGMENT));
    }
    url
}

/// Where an asset lives: its public URL (a public profile with `S3_PUBLIC_BASE_URL`), else
/// its object URL in the store without a signature (the Companion protocol's `location`,
/// what Uppy itself reports for a single PUT).
pub fn location(state: &AppState, asset: &AssetRow) -> String {
    match &state.config.s3.public_base_url {
        Some(base) if asset.visibility == Visibility::Public => public_url(base, &asset.key),
        _ => public_url(state.store.presigner.bucket_url(), &asset.key),
    }
}

/// Only a `ready` asset has download URLs: a `processing` one has not passed its checks
/// yet, a `quarantined` one was flagged, a `rejected` one has no object.
fn check_ready(row: &AssetRow) -> Result<(), Error> {
    match row.state {
        AssetState::Ready => Ok(()),
        AssetState::Processing => {
            Err(Error::invalid_state("the asset is still processing; try again when it is ready"))
        }
        AssetState::Quarantined => Err(Error::invalid_state("the asset is quarantined: a scanner flagged it")),
        AssetState::Rejected => Err(Error::invalid_state("the asset was rejected; its object is gone")),
    }
}

/// The object a download serves: the original, or one of its variants.
struct Served<'a> {
    key: &'a str,
    content_type: &'a str,
}

fn served<'a>(row: &'a AssetRow, variant: Option<&str>) -> Result<Served<'a>, Error> {
    match variant {
        None => Ok(Served { key: &row.key, content_type: &row.content_type }),
        Some(name) => match row.variants.iter().find(|v| v.name == name) {
            Some(v) => Ok(Served { key: &v.key, content_type: &v.content_type }),
            None => {
                let names: Vec<&str> = row.variants.iter().map(|v| v.name.as_str()).collect();
                Err(Error::invalid(format!(
                    "variant: the asset has no variant {name:?} (it has: {})",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                )))
            }
        },
    }
}

fn download_url(
    state: &AppState,
    row: &AssetRow,
    variant: Option<&str>,
    disposition: Disposition,
    expires_in: Option<u64>,
    now: DateTime<Utc>,
) -> Result<DownloadUrl, Error> {
    check_ready(row)?;
    let Served { key, content_type } = served(row, variant)?;
    let profile = state.config.profiles.get(&row.profile).or_else(|| state.config.profiles.get("default"));
    if row.visibility == Visibility::Public
        && let Some(base) = &state.config.s3.public_base_url
    {
        return Ok(DownloadUrl { url: public_url(base, key), expires_at: None });
    }
    let ttl = expires_in.unwrap_or_else(|| profile.map_or(600, |p| p.download_url_ttl));
    // Only passive types (raster images, audio, video, PDF, plain text) are ever inline:
    // anything else could run in the bucket's origin.
    let passive = ContentType::parse(content_type).is_ok_and(|c| c.is_passive());
    let disposition = if passive { disposition } else { Disposition::Attachment };
    let cd = content_disposition(disposition, &row.filename);
    let signed = state.store.presigner.get_object(
        key,
        Some(content_type),
        Some(&cd),
        Duration::from_secs(ttl),
        SystemTime::from(now),
    )?;
    Ok(DownloadUrl { url: signed.url, expires_at: Some(crate::time::rfc3339(&(now + Duration::from_secs(ttl)))) })
}

fn check_expires_in(expires_in: Option<i64>) -> Result<Option<u64>, Error> {
    match expires_in {
        None => Ok(None),
        Some(s) if (1..=MAX_URL_TTL_SECS as i64).contains(&s) => Ok(Some(s as u64)),
        Some(_) => Err(Error::invalid(format!("expires_in: must be 1 to {MAX_URL_TTL_SECS} seconds"))),
    }
}

/// What a download URL is asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownloadOptions<'a> {
    pub disposition: Option<Disposition>,
    pub expires_in: Option<i64>,
    /// One of the asset's image variants instead of the original.
    pub variant: Option<&'a str>,
}

pub async fn download(state: &AppState, owner: &str, id: Uuid, o: DownloadOptions<'_>) -> Result<DownloadUrl, Error> {
    let expires_in = check_expires_in(o.expires_in)?;
    let row = crate::db::assets::get(&state.db, owner, id).await?.ok_or(Error::NotFound)?;
    let disposition = o.disposition.unwrap_or(Disposition::Inline);
    download_url(state, &row, o.variant, disposition, expires_in, crate::time::now_secs())
}

pub const MAX_DOWNLOAD_BATCH: usize = 1000;

/// Gallery download URLs; ids the caller may not read, and assets that are not `ready`, are
/// simply absent.
pub async fn download_many(
    state: &AppState,
    owner: &str,
    ids: &[Uuid],
    disposition: Option<Disposition>,
    expires_in: Option<i64>,
) -> Result<BTreeMap<Uuid, DownloadUrl>, Error> {
    if ids.is_empty() || ids.len() > MAX_DOWNLOAD_BATCH {
        return Err(Error::invalid("ids: 1 to 1000 asset ids"));
    }
    let expires_in = check_expires_in(expires_in)?;
    let now = crate::time::now_secs();
    let disposition = disposition.unwrap_or(Disposition::Inline);
    let mut out = BTreeMap::new();
    for row in crate::db::assets::get_many(&state.db, owner, ids).await? {
        if row.state == AssetState::Ready {
            out.insert(row.id, download_url(state, &row, None, disposition, expires_in, now)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
