//! What happens to a profile's uploads after `complete` verified them (openapi.yaml
//! "Asset lifecycle"): content sniffing in `complete`, then the jobs — scanners, image
//! variants — and the webhook the events go to. Parsed from the profile's TOML here.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A scanner a profile's assets must pass before they are `ready`. Where it is (the clamd
/// address, the validator's URL) is deployment configuration (`BROKER_CLAMD`,
/// `BROKER_SCAN_URL`); the profile only says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScannerKind {
    /// ClamAV's clamd, INSTREAM.
    Clamd,
    /// The generic HTTP validator: POST the presigned GET URL, 2xx passes.
    Http,
}

impl ScannerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clamd => "clamd",
            Self::Http => "http",
        }
    }
}

/// The encoding of a profile's image variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantFormat {
    #[default]
    Jpeg,
    Webp,
}

/// One image variant: fits within `size` × `size` pixels (aspect ratio kept, never enlarged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    /// 1 to 32 characters of a-z 0-9 _ - (it is a query parameter and part of a key).
    pub name: String,
    pub size: u32,
}

/// The largest variant edge, in pixels.
pub const MAX_VARIANT_SIZE: u32 = 4096;

#[derive(Debug, Clone, Default)]
pub struct Processing {
    /// Check the first bytes against the declared type in `complete`.
    pub sniff: bool,
    /// Scanners to pass, in order; empty: none.
    pub scan: Vec<ScannerKind>,
    /// Variants of image assets, smallest first.
    pub variants: Vec<VariantSpec>,
    pub variant_format: VariantFormat,
    /// Where this profile's events go; `None`: `BROKER_WEBHOOK_URL` (if set).
    pub webhook_url: Option<String>,
    /// `false` turns events off for this profile even when `BROKER_WEBHOOK_URL` is set.
    pub webhooks: bool,
}

impl Processing {
    /// Whether assets need a job before they are `ready`.
    pub fn has_jobs(&self) -> bool {
        !self.scan.is_empty() || !self.variants.is_empty()
    }

    /// The first job step, if any.
    pub fn first_step(&self) -> Option<JobStep> {
        if !self.scan.is_empty() {
            Some(JobStep::Scan)
        } else if !self.variants.is_empty() {
            Some(JobStep::Variants)
        } else {
            None
        }
    }

    /// The step after `step`, if any.
    pub fn step_after(&self, step: JobStep) -> Option<JobStep> {
        match step {
            JobStep::Scan if !self.variants.is_empty() => Some(JobStep::Variants),
            _ => None,
        }
    }
}

/// A job's step (the `asset_jobs.step` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStep {
    Scan,
    Variants,
}

impl JobStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Variants => "variants",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Scan, Self::Variants].into_iter().find(|v| v.as_str() == s)
    }
}

/// The profile table's fields for this (read by `ProfileToml`, which denies unknown fields).
#[derive(Debug, Default)]
pub(super) struct ProcessingToml {
    pub sniff: Option<bool>,
    pub scan: Option<Vec<ScannerKind>>,
    pub variants: Option<BTreeMap<String, u32>>,
    pub variant_format: Option<VariantFormat>,
    pub webhook_url: Option<String>,
    pub webhooks: Option<bool>,
}

impl Processing {
    /// `restricts_types`: the profile's allowed types are not `*/*` — sniffing is then on
    /// unless turned off.
    pub(super) fn from_toml(t: ProcessingToml, restricts_types: bool) -> Result<Self, String> {
        let mut scan = t.scan.unwrap_or_default();
        let before = scan.len();
        scan.dedup();
        if scan.len() != before {
            return Err("scan: a scanner is named twice".into());
        }
        let mut variants = Vec::new();
        for (name, size) in t.variants.unwrap_or_default() {
            let name_ok = (1..=32).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
            if !name_ok {
                return Err(format!("variants: {name:?} is not 1 to 32 characters of a-z 0-9 _ -"));
            }
            if !(16..=MAX_VARIANT_SIZE).contains(&size) {
                return Err(format!("variants.{name}: the size must be 16 to {MAX_VARIANT_SIZE} pixels"));
            }
            variants.push(VariantSpec { name, size });
        }
        variants.sort_by_key(|v| v.size);
        if let Some(url) = &t.webhook_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!("webhook_url: {url:?} is not an http(s) URL"));
        }
        Ok(Self {
            sniff: t.sniff.unwrap_or(restricts_types),
            scan,
            variants,
            variant_format: t.variant_format.unwrap_or_default(),
            webhook_url: t.webhook_url,
            webhooks: t.webhooks.unwrap_or(true),
        })
    }
}
