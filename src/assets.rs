//! Assets: listing (keyset cursor), reading, deleting, and download URLs with a safe
//! Content-Disposition (RFC 6266 with an RFC 5987 `filename*`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::assets::AssetRow;
use crate::error::Error;
use crate::limits::MAX_URL_TTL_SECS;
use crate::profiles::{ContentType, Visibility};
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct AssetPage {
    /// Each serialises as the API's `Asset`.
    pub items: Vec<AssetRow>,
    pub next_cursor: Option<String>,
}

/// The opaque cursor: the last item's `(created_at in µs, id)`, base64url.
fn encode_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", t.timestamp_micros()))
}

fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (micros, id) = text.split_once('.')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

pub async fn list(
    state: &AppState,
    owner: &str,
    limit: Option<i64>,
    cursor: Option<&str>,
    profile: Option<&str>,
) -> Result<AssetPage, Error> {
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit: must be 1 to 1000"));
    }
    if let Some(p) = profile
        && state.config.profiles.get(p).is_none()
    {
        return Err(Error::invalid(format!("profile: unknown profile {p:?}")));
    }
    let before = match cursor {
        None => (DateTime::<Utc>::MAX_UTC, Uuid::max()),
        Some(c) => decode_cursor(c).ok_or_else(|| Error::invalid("cursor: not a cursor from this API"))?,
    };
    // One extra row tells whether there is a next page.
    let mut rows = crate::db::assets::list(&state.db, owner, before, limit + 1, profile).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    Ok(AssetPage { items: rows, next_cursor })
}

pub async fn get(state: &AppState, owner: &str, id: Uuid) -> Result<AssetRow, Error> {
    crate::db::assets::get(&state.db, owner, id).await?.ok_or(Error::NotFound)
}

/// Deletes the object first, then the record (and its usage). A store failure leaves both
/// in place and a retry finishes; the reverse order could orphan an object forever.
pub async fn delete(state: &AppState, owner: &str, id: Uuid) -> Result<(), Error> {
    let Some(row) = crate::db::assets::get(&state.db, owner, id).await? else { return Ok(()) };
    state.store.delete(&row.key).await?;
    crate::db::assets::delete(&state.db, owner, id).await?;
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

fn download_url(
    state: &AppState,
    row: &AssetRow,
    disposition: Disposition,
    expires_in: Option<u64>,
    now: DateTime<Utc>,
) -> Result<DownloadUrl, Error> {
    let profile = state.config.profiles.get(&row.profile).or_else(|| state.config.profiles.get("default"));
    if row.visibility == Visibility::Public
        && let Some(base) = &state.config.s3.public_base_url
    {
        return Ok(DownloadUrl { url: public_url(base, &row.key), expires_at: None });
    }
    let ttl = expires_in.unwrap_or_else(|| profile.map_or(600, |p| p.download_url_ttl));
    // Only passive types (raster images, audio, video, PDF, plain text) are ever inline:
    // anything else could run in the bucket's origin.
    let passive = ContentType::parse(&row.content_type).is_ok_and(|c| c.is_passive());
    let disposition = if passive { disposition } else { Disposition::Attachment };
    let cd = content_disposition(disposition, &row.filename);
    let signed = state.store.presigner.get_object(
        &row.key,
        Some(&row.content_type),
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

pub async fn download(
    state: &AppState,
    owner: &str,
    id: Uuid,
    disposition: Option<Disposition>,
    expires_in: Option<i64>,
) -> Result<DownloadUrl, Error> {
    let expires_in = check_expires_in(expires_in)?;
    let row = crate::db::assets::get(&state.db, owner, id).await?.ok_or(Error::NotFound)?;
    download_url(state, &row, disposition.unwrap_or(Disposition::Inline), expires_in, crate::time::now_secs())
}

pub const MAX_DOWNLOAD_BATCH: usize = 1000;

/// Gallery download URLs; ids the caller may not read are simply absent.
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
        out.insert(row.id, download_url(state, &row, disposition, expires_in, now)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_rfc6266_with_rfc5987_filename() {
        assert_eq!(
            content_disposition(Disposition::Inline, "IMG_0001.HEIC"),
            "inline; filename=\"IMG_0001.HEIC\"; filename*=UTF-8''IMG_0001.HEIC"
        );
        assert_eq!(
            content_disposition(Disposition::Attachment, "résumé 2024.pdf"),
            "attachment; filename=\"r_sum_ 2024.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf"
        );
    }

    #[test]
    fn content_disposition_cannot_be_injected() {
        let cd = content_disposition(Disposition::Inline, "a\"; filename=evil.html\r\nSet-Cookie: x=1\\%41.txt");
        assert!(!cd.contains('\r') && !cd.contains('\n'), "{cd}");
        let quoted = cd.split('"').nth(1).unwrap();
        // CR and LF are controls: dropped before either form is built.
        assert_eq!(quoted, "a_; filename=evil.htmlSet-Cookie: x=1__41.txt");
        assert_eq!(cd.matches('"').count(), 2, "{cd}");
        assert!(cd.ends_with("filename*=UTF-8''a%22%3B%20filename%3Devil.htmlSet-Cookie%3A%20x%3D1%5C%2541.txt"));
    }

    #[test]
    fn format_controls_are_dropped_from_filenames() {
        // U+202E (right-to-left override) would show "invoice\u{202E}fdp.exe" as "invoiceexe.pdf".
        let cd = content_disposition(Disposition::Attachment, "invoice\u{202E}fdp.exe");
        assert_eq!(cd, "attachment; filename=\"invoicefdp.exe\"; filename*=UTF-8''invoicefdp.exe");
        for c in ['\u{200B}', '\u{200E}', '\u{2066}', '\u{2069}', '\u{FEFF}', '\u{00AD}', '\u{2028}', '\u{1}'] {
            let cd = content_disposition(Disposition::Inline, &format!("a{c}b.png"));
            assert_eq!(cd, "inline; filename=\"ab.png\"; filename*=UTF-8''ab.png", "{:?}", c);
        }
        // Letters of any script stay.
        assert!(content_disposition(Disposition::Inline, "שלום.png").ends_with("%D7%A9%D7%9C%D7%95%D7%9D.png"));
        assert!(content_disposition(Disposition::Inline, "\u{202E}").contains("filename=\"download\""));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(t, id)), Some((t, id)));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("12.notauuid")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn public_urls_percent_encode_each_segment() {
        assert_eq!(
            public_url("https://cdn.example.com", "photos/a~2Fb/id/my file+1.jpg"),
            "https://cdn.example.com/photos/a~2Fb/id/my%20file%2B1.jpg"
        );
    }

    /// Decodes an RFC 5987 `filename*` value.
    fn percent_decode(v: &str) -> String {
        percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned()
    }

    proptest::proptest! {
        /// Any filename: the header has no control character, exactly one quoted fallback,
        /// and `filename*` decodes back to the name minus the characters not shown.
        #[test]
        fn any_filename_gives_a_safe_header_that_round_trips(
            name in proptest::string::string_regex("(?s).{1,100}").unwrap(),
            inline in proptest::bool::ANY,
        ) {
            let d = if inline { Disposition::Inline } else { Disposition::Attachment };
            let cd = content_disposition(d, &name);
            proptest::prop_assert!(cd.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{}", cd);
            proptest::prop_assert_eq!(cd.matches('"').count(), 2);
            let (_, encoded) = cd.split_once("filename*=UTF-8''").unwrap();
            let shown: String = name.chars().filter(|c| is_shown(*c)).collect();
            let want = if shown.is_empty() { "download".to_owned() } else { shown };
            proptest::prop_assert_eq!(percent_decode(encoded), want);
            proptest::prop_assert!(actix_web::http::header::HeaderValue::from_str(&cd).is_ok());
        }
    }
}
