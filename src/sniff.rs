//! Content sniffing: do an upload's first bytes match the type it declared? `complete` reads
//! [`PREFIX_LEN`] bytes with one ranged GET and refuses a mismatch (`422
//! verification_failed`), so an HTML page declared `image/png` never becomes an asset served
//! inline as a PNG. Magic numbers come from the `infer` crate; markup (which has none) is
//! recognised by the WHATWG MIME Sniffing Standard's HTML patterns, and text by the absence
//! of its binary bytes. Pure: unit tested here.

/// How many leading bytes are read: enough for every signature `infer` knows (tar's is at
/// 257, ISO-BMFF brands within the first box).
pub const PREFIX_LEN: u64 = 4096;

/// `Err(reason)` when `prefix` (the object's first bytes) contradicts `declared` (a
/// lowercased `type/subtype` essence).
pub fn check(declared: &str, prefix: &[u8]) -> Result<(), String> {
    let declared = canonical(declared);
    let markup = markup(prefix);
    if declared.starts_with("text/") && !is_markup_type(&declared) {
        // Text is whatever has none of text's binary bytes; an HTML page is text too, and a
        // text/plain download is never rendered as a page.
        if let Some(found) = binary_type(prefix) {
            return Err(format!("content is {found}, declared {declared}"));
        }
        return Ok(());
    }
    let detected = infer::get(prefix).map(|t| canonical(t.mime_type()));
    let markup_found = markup.map(str::to_owned).or_else(|| detected.clone().filter(|d| is_markup_type(d)));
    if let Some(found) = markup_found {
        if !is_markup_type(&declared) {
            return Err(format!("content is {found}, declared {declared}"));
        }
        return Ok(());
    }
    if declared == "application/octet-stream" || !infer::is_mime_supported(&declared) {
        // A type nothing here recognises (application/octet-stream, application/json, …):
        // nothing to contradict beyond markup, checked above.
        return Ok(());
    }
    match detected {
        _ if prefix.is_empty() => Err(format!("the object is empty, declared {declared}")),
        Some(found) if compatible(&found, &declared) => Ok(()),
        Some(found) => Err(format!("content is {found}, declared {declared}")),
        None => Err(format!("content is not recognisable as {declared}")),
    }
}

/// Aliases browsers and apps send, mapped to the name `infer` reports.
fn canonical(essence: &str) -> String {
    let e = essence.trim().to_ascii_lowercase();
    let same = match e.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" => "image/png",
        "image/x-icon" => "image/vnd.microsoft.icon",
        "image/heic" | "image/heic-sequence" | "image/heif-sequence" => "image/heif",
        "audio/mp3" | "audio/x-mp3" | "audio/mpeg3" => "audio/mpeg",
        "audio/wav" | "audio/wave" | "audio/vnd.wave" => "audio/x-wav",
        "audio/flac" => "audio/x-flac",
        "audio/x-m4a" | "audio/mp4" => "audio/m4a",
        "audio/x-aac" => "audio/aac",
        "application/x-zip-compressed" => "application/zip",
        "application/x-gzip" => "application/gzip",
        "application/xml" => "text/xml",
        _ => return e,
    };
    same.to_owned()
}

/// Containers whose members `infer` may name differently from the declared type: an MP4
/// with an audio brand, a DOCX that is a ZIP, an Opus file in Ogg.
const FAMILIES: [&[&str]; 5] = [
    &["video/mp4", "audio/m4a", "video/x-m4v", "video/quicktime", "video/3gpp", "audio/aac"],
    &["audio/ogg", "audio/opus", "video/ogg", "application/ogg"],
    &["video/webm", "audio/webm", "video/x-matroska"],
    &[
        "application/zip",
        "application/epub+zip",
        "application/java",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ],
    &["application/x-ole-storage", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"],
];

fn compatible(found: &str, declared: &str) -> bool {
    found == declared || FAMILIES.iter().any(|f| f.contains(&found) && f.contains(&declared))
}

fn is_markup_type(essence: &str) -> bool {
    matches!(essence, "text/html" | "text/xml" | "image/svg+xml" | "application/xhtml+xml") || essence.ends_with("+xml")
}

/// What `infer` finds in bytes declared as text, when it is not text at all: a known
/// binary format, or bytes text never has (WHATWG "binary data byte").
fn binary_type(prefix: &[u8]) -> Option<String> {
    if let Some(t) = infer::get(prefix)
        && !matches!(t.matcher_type(), infer::MatcherType::Text)
    {
        return Some(t.mime_type().to_owned());
    }
    let binary = |b: &u8| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F);
    // A UTF-16 or UTF-8 byte order mark starts text whatever follows.
    let bom = prefix.starts_with(&[0xFE, 0xFF]) || prefix.starts_with(&[0xFF, 0xFE]);
    (!bom && prefix.iter().any(binary)).then(|| "application/octet-stream (binary bytes)".to_owned())
}

/// The WHATWG MIME Sniffing Standard's "identifying a resource with an unknown MIME type":
/// after leading whitespace, one of these tags followed by a space or `>` is HTML; `<?xml`
/// is XML; `<svg` is SVG (which runs scripts when rendered).
fn markup(prefix: &[u8]) -> Option<&'static str> {
    let bom = [0xEF, 0xBB, 0xBF];
    let rest = prefix.strip_prefix(&bom[..]).unwrap_or(prefix);
    let start = rest.iter().position(|b| !matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | b' '))?;
    let rest = &rest[start..];
    const HTML: [&str; 17] = [
        "<!doctype html",
        "<html",
        "<head",
        "<script",
        "<iframe",
        "<h1",
        "<div",
        "<font",
        "<table",
        "<a",
        "<style",
        "<title",
        "<b",
        "<body",
        "<br",
        "<p",
        "<!--",
    ];
    let starts = |tag: &str| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag.as_bytes())
            && (tag == "<!--" || matches!(rest[tag.len()], b' ' | b'>' | b'\t' | b'\n' | b'\r' | 0x0C))
    };
    if HTML.iter().any(|t| starts(t)) {
        return Some("text/html");
    }
    if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"<svg") {
        return Some("image/svg+xml");
    }
    rest.starts_with(b"<?xml").then_some("text/xml")
}

#[cfg(test)]
mod tests;
