//! Content types as declared, which of them browsers only display (served `inline`) or
//! would run (never public), and the allowed-type patterns of a profile.

/// A content type as declared: the string is kept verbatim (it is what gets signed and
/// stored); matching uses the lowercased `type/subtype` essence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    raw: String,
    essence: String,
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ContentType {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > 255 {
            return Err("content_type must be 1 to 255 bytes");
        }
        // Visible ASCII and spaces only: the value goes into a signed HTTP header.
        if !raw.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) || raw.starts_with(' ') || raw.ends_with(' ') {
            return Err("content_type must be printable ASCII without surrounding spaces");
        }
        let essence = raw.split(';').next().unwrap_or_default().trim();
        let (ty, sub) = essence.split_once('/').ok_or("content_type must look like type/subtype")?;
        if !is_token(ty) || !is_token(sub) || ty == "*" || sub == "*" {
            return Err("content_type must look like type/subtype");
        }
        Ok(Self { raw: raw.to_owned(), essence: essence.to_ascii_lowercase() })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn essence(&self) -> &str {
        &self.essence
    }

    /// Types a browser would execute or render as a document (public profiles must not
    /// accept them: a public URL cannot force `attachment`).
    pub fn is_active(&self) -> bool {
        is_active_essence(&self.essence)
    }

    /// Types a browser only displays or plays, never runs: the only ones served `inline`.
    /// An allow-list, because a deny-list misses types browsers render as documents or
    /// scripts (`text/xsl`, `text/ecmascript`, `multipart/x-mixed-replace`, …).
    pub fn is_passive(&self) -> bool {
        let (ty, sub) = self.essence.split_once('/').unwrap_or_default();
        match ty {
            "audio" | "video" => true,
            "image" => PASSIVE_IMAGES.contains(&sub),
            _ => matches!(self.essence.as_str(), "application/pdf" | "text/plain"),
        }
    }
}

/// Raster image formats (no SVG: it runs scripts).
const PASSIVE_IMAGES: [&str; 14] = [
    "apng",
    "avif",
    "bmp",
    "gif",
    "heic",
    "heif",
    "jpeg",
    "jpg",
    "jxl",
    "png",
    "tiff",
    "vnd.microsoft.icon",
    "webp",
    "x-icon",
];

fn is_active_essence(essence: &str) -> bool {
    let sub = essence.split_once('/').map_or("", |(_, s)| s);
    matches!(
        essence,
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/javascript"
            | "application/javascript"
            | "application/ecmascript"
    ) || sub == "xml"
        || sub.ends_with("+xml")
}

/// An allowed-type pattern: `*/*`, `type/*` or an exact `type/subtype`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    Any,
    Type(String),
    Exact(String),
}

impl TypePattern {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "*/*" {
            return Ok(Self::Any);
        }
        if let Some(ty) = lower.strip_suffix("/*")
            && is_token(ty)
        {
            return Ok(Self::Type(ty.to_owned()));
        }
        let ct = ContentType::parse(&lower).map_err(|_| format!("{s:?} is not type/subtype, type/* or */*"))?;
        if ct.essence() != lower {
            return Err(format!("{s:?}: patterns take no parameters"));
        }
        Ok(Self::Exact(lower))
    }

    pub(super) fn matches(&self, ct: &ContentType) -> bool {
        match self {
            Self::Any => true,
            Self::Type(ty) => ct.essence().split_once('/').is_some_and(|(t, _)| t == ty),
            Self::Exact(e) => ct.essence() == e,
        }
    }

    /// Whether some active type could match (a wildcard always can: `x/foo+xml`).
    pub(super) fn may_match_active(&self) -> bool {
        match self {
            Self::Any | Self::Type(_) => true,
            Self::Exact(e) => is_active_essence(e),
        }
    }
}
