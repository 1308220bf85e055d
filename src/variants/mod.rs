//! Image variants: decode (bounded in pixels and memory), honour and strip EXIF
//! orientation, resize, encode JPEG or WebP. Pure and synchronous: the job runner
//! (src/jobs) runs [`render`] on a blocking thread under a timeout and moves the bytes
//! between the store and here.
//!
//! INTERFACE PLACEHOLDER: the variants helper replaces the body of this module.

use crate::profiles::{VariantFormat, VariantSpec};

/// Bounds of one decode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Width × height at most.
    pub max_pixels: u64,
}

/// One encoded variant.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum VariantError {
    /// The content is not an image this module decodes: the asset gets no variants (and is
    /// not rejected for it).
    #[error("not a supported image: {0}")]
    Unsupported(String),
    /// The image cannot be decoded within the limits, or is corrupt: the asset is rejected.
    #[error("{0}")]
    Refused(String),
}

/// Whether `essence` (lowercased `type/subtype`) is a type this module makes variants of.
pub fn supports(essence: &str) -> bool {
    matches!(essence, "image/jpeg" | "image/png" | "image/webp" | "image/tiff" | "image/gif")
}

pub fn render(
    _bytes: &[u8],
    _specs: &[VariantSpec],
    _format: VariantFormat,
    _limits: &Limits,
) -> Result<Vec<Rendered>, VariantError> {
    Err(VariantError::Unsupported("variants are not built yet".into()))
}
