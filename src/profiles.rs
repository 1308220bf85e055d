//! Profiles: named rule sets read from TOML (openapi.yaml "Profiles"), content-type matching,
//! the choice of upload method and the multipart part plan. Pure logic, unit tested here.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::limits::{GIB, MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MAX_URL_TTL_SECS, MIB, MIN_PART_SIZE};

/// Sniffing, scanners, variants and webhooks: what happens after `complete`.
pub mod processing;
pub use processing::{JobStep, Processing, ScannerKind, VariantFormat, VariantSpec};
/// Declared content types and the allowed-type patterns that match them.
mod content_type;
pub use content_type::{ContentType, TypePattern};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMethod {
    Put,
    Post,
    Multipart,
}

impl UploadMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Post => "post",
            Self::Multipart => "multipart",
        }
    }

    /// The inverse of [`as_str`](Self::as_str), so the names are written once.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Put, Self::Post, Self::Multipart].into_iter().find(|m| m.as_str() == s)
    }
}

/// Who may read a profile's assets: the owner through signed URLs, or anyone through the
/// public base URL. Also an asset's stored `visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Private, Self::Public].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub max_size: u64,
    pub allowed_content_types: Vec<TypePattern>,
    pub visibility: Visibility,
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub upload_url_ttl: u64,
    pub complete_grace: u64,
    pub download_url_ttl: u64,
    /// Validated segments joined by `/`, no leading or trailing slash.
    pub key_prefix: String,
    pub processing: Processing,
    /// Assets are deleted by the reaper this many seconds after they are recorded.
    pub retention: Option<u64>,
}

/// The TOML shape of one profile; every field optional (openapi.yaml defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileToml {
    max_size: Option<u64>,
    allowed_content_types: Option<Vec<String>>,
    visibility: Option<String>,
    multipart_threshold: Option<u64>,
    part_size: Option<u64>,
    upload_url_ttl: Option<u64>,
    complete_grace: Option<u64>,
    download_url_ttl: Option<u64>,
    key_prefix: Option<String>,
    sniff: Option<bool>,
    scan: Option<Vec<ScannerKind>>,
    variants: Option<BTreeMap<String, u32>>,
    variant_format: Option<VariantFormat>,
    webhook_url: Option<String>,
    webhooks: Option<bool>,
    retention: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesToml {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileToml>,
}

impl Profile {
    fn from_toml(name: &str, t: ProfileToml) -> Result<Self, String> {
        let ctx = |m: String| format!("profile {name:?}: {m}");
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        {
            return Err(ctx("names are 1 to 64 characters of A-Z a-z 0-9 _ -".into()));
        }
        let allowed = t
            .allowed_content_types
            .unwrap_or_else(|| vec!["*/*".into()])
            .iter()
            .map(|p| TypePattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ctx)?;
        let visibility = match t.visibility.as_deref() {
            None => Visibility::Private,
            Some(v) => Visibility::parse(v).ok_or_else(|| ctx(format!("visibility {v:?} is not private or public")))?,
        };
        let key_prefix = t.key_prefix.unwrap_or_else(|| "uploads".into());
        let key_prefix = key_prefix.trim_matches('/').to_owned();
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if key_prefix.len() > 128 || !key_prefix.split('/').all(segment_ok) {
            return Err(ctx("key_prefix: segments of A-Z a-z 0-9 . _ - separated by /, at most 128 bytes".into()));
        }
        let ttl = |v: Option<u64>, default: u64, field: &str| match v.unwrap_or(default) {
            0 => Err(ctx(format!("{field} must be at least 1 second"))),
            s if s > MAX_URL_TTL_SECS => {
                Err(ctx(format!("{field} must be at most {MAX_URL_TTL_SECS} seconds (7 days)")))
            }
            s => Ok(s),
        };
        let part_size = t.part_size.unwrap_or(16 * MIB);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(ctx("part_size must be between 5 MiB and 5 GiB".into()));
        }
        let max_size = t.max_size.unwrap_or(5 * GIB);
        if max_size > MAX_OBJECT_SIZE || max_size > i64::MAX as u64 {
            return Err(ctx("max_size must be at most 5 TiB".into()));
        }
        let restricts_types = !allowed.contains(&TypePattern::Any);
        let processing = processing::ProcessingToml {
            sniff: t.sniff,
            scan: t.scan,
            variants: t.variants,
            variant_format: t.variant_format,
            webhook_url: t.webhook_url,
            webhooks: t.webhooks,
        };
        let processing = Processing::from_toml(processing, restricts_types).map_err(ctx)?;
        if t.retention.is_some_and(|r| r == 0 || r > i64::MAX as u64 / 2) {
            return Err(ctx("retention must be at least 1 second".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            max_size,
            allowed_content_types: allowed,
            visibility,
            multipart_threshold: t.multipart_threshold.unwrap_or(100 * MIB),
            part_size,
            upload_url_ttl: ttl(t.upload_url_ttl, 3600, "upload_url_ttl")?,
            complete_grace: t.complete_grace.unwrap_or(900),
            download_url_ttl: ttl(t.download_url_ttl, 600, "download_url_ttl")?,
            key_prefix,
            processing,
            retention: t.retention,
        })
    }

    pub fn allows(&self, ct: &ContentType) -> bool {
        self.allowed_content_types.iter().any(|p| p.matches(ct))
    }

    /// The method used when the client names none.
    pub fn default_method(&self, size: u64) -> UploadMethod {
        if size > self.multipart_threshold { UploadMethod::Multipart } else { UploadMethod::Put }
    }
}

#[derive(Debug, Clone)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Only the built-in `default` profile.
    pub fn builtin() -> Self {
        Self::from_toml("").expect("the built-in default profile is valid")
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let parsed: ProfilesToml = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_name = BTreeMap::new();
        by_name.insert("default".to_owned(), Profile::from_toml("default", ProfileToml::default())?);
        for (name, t) in parsed.profiles {
            by_name.insert(name.clone(), Profile::from_toml(&name, t)?);
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }

    /// A public URL cannot force `attachment`, so a public profile must not accept any type
    /// a browser would render as a document or run (openapi.yaml "Assets").
    pub fn check_public_profiles(&self) -> Result<(), String> {
        for p in self.iter().filter(|p| p.visibility == Visibility::Public) {
            if p.allowed_content_types.iter().any(TypePattern::may_match_active) {
                return Err(format!(
                    "profile {:?} is public but its allowed_content_types may match active types \
                     (HTML, SVG, XML, JavaScript); list exact, non-active types only",
                    p.name
                ));
            }
        }
        Ok(())
    }
}

/// The multipart plan: every part `part_size` bytes except the last (R2 requires equal parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub part_size: u64,
    pub part_count: u64,
}

impl PartPlan {
    /// `preferred` is raised to `ceil(size / 10,000)` rounded up to a whole MiB when needed.
    pub fn new(size: u64, preferred: u64) -> Result<Self, String> {
        if size == 0 {
            return Err("size: a multipart upload needs at least 1 byte; use method put".into());
        }
        if size > MAX_OBJECT_SIZE {
            return Err(format!("size: at most {MAX_OBJECT_SIZE} bytes (5 TiB) can be uploaded"));
        }
        let mut part_size = preferred.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        if size.div_ceil(part_size) > MAX_PARTS {
            part_size = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        }
        if part_size > MAX_PART_SIZE {
            return Err("size: cannot be split into at most 10,000 parts of at most 5 GiB".into());
        }
        Ok(Self { part_size, part_count: size.div_ceil(part_size) })
    }

    /// The exact size of part `n` (1-based), or None when out of range.
    pub fn part_len(&self, size: u64, n: u64) -> Option<u64> {
        if n == 0 || n > self.part_count {
            return None;
        }
        Some(if n < self.part_count { self.part_size } else { size - self.part_size * (self.part_count - 1) })
    }
}

#[cfg(test)]
mod tests;
