//! Image variants: decode (bounded in pixels and memory), honour and strip EXIF
//! orientation, resize, encode JPEG or WebP. Pure and synchronous: the job runner
//! (src/jobs) runs [`render`] on a blocking thread under a timeout and moves the bytes
//! between the store and here.
//!
//! The pipeline, and why it is in this order:
//!
//! 1. [`decode`]: the format is sniffed from the bytes (never the declared type); the
//!    header is read first and its width × height checked against [`Limits::max_pixels`],
//!    and the bytes the decode needs against [`Limits::max_alloc`], before a pixel buffer
//!    exists — a 50000×50000 PNG of a few hundred bytes is refused without allocating.
//!    The pixels become 8-bit RGB, or RGBA with the alpha premultiplied (see 2).
//! 2. [`resize`] with `fast_image_resize` (SIMD; Lanczos3). Premultiplied alpha keeps
//!    transparent pixels' colours from bleeding into the edges. Each variant fits within
//!    `size`×`size` with its aspect ratio kept and is never enlarged. The largest variant
//!    is made from the original; a smaller one from an already-made variant at least twice
//!    its size (a 4000 px photo's 256 px thumbnail from its 1024 px medium is visually the
//!    same and several times cheaper).
//! 3. The EXIF orientation is applied to each *resized* variant rather than to the
//!    original: rotating 12 megapixels costs a copy of them, rotating a thumbnail nothing.
//!    The box is square, so fitting before or after the rotation gives the same size.
//! 4. [`encode`]: JPEG (quality 82; alpha composited on white — with premultiplied pixels
//!    that is `c + 255 - a`) or lossy WebP. Neither encoder writes EXIF, XMP or ICC
//!    chunks, so the variants carry no metadata at all (GPS positions included).
//!
//! Choices the issue asked to be written down:
//!
//! - **Lossy WebP through libwebp** (the `webp` crate over `libwebp-sys`, which compiles
//!   the vendored libwebp C source with `cc` — no system library, builds offline).
//!   `image`'s own WebP encoder is lossless only, which makes photo variants several times
//!   larger than the JPEG ones; no maintained pure-Rust lossy VP8 encoder exists. Only
//!   libwebp's encoder is called: WebP *inputs* are decoded by `image` (pure Rust,
//!   `image-webp`), so libwebp never parses untrusted bytes.
//! - **No HEIC.** `libheif-rs` needs libheif ≥ 1.17; Debian bookworm ships 1.15. Its
//!   `embedded-libheif` feature builds libheif with CMake, but decoding HEVC still needs
//!   the system's libde265 (C, a long CVE history, parsing untrusted uploads), an extra
//!   runtime library in the Docker image and a C++ build on every CI run. HEIC assets
//!   get no variants ([`supports`] is false, [`render`] answers `Unsupported`) and are
//!   not rejected for it; revisit when the base image has libheif ≥ 1.17.
//! - A JPEG cut short inside its scan data is decoded as far as it goes (zune-jpeg's
//!   lenient mode, which `image` does not let us change; browsers show such files the
//!   same way); one cut inside its headers, and any truncated PNG, WebP, TIFF or GIF, is
//!   `Refused` as corrupt.
//! - GIF and other animations: the first frame. ICC profiles are not applied (the pixels
//!   are taken as sRGB, as browsers do for untagged images).

mod decode;
mod encode;
mod resize;
#[cfg(test)]
mod tests;

use crate::profiles::{VariantFormat, VariantSpec};

/// Bounds of one decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Width × height at most.
    pub max_pixels: u64,
    /// Bytes the decode may allocate: the decoded pixels, their 8-bit working copy when
    /// the source is another layout (16-bit, grey, palette), and the decoder's buffers.
    pub max_alloc: u64,
}

impl Default for Limits {
    /// `BROKER_VARIANT_MAX_PIXELS`' default, and 1 GiB: enough for 100 megapixels of
    /// 16-bit RGB, refused for 16-bit RGBA (1.2 GB).
    fn default() -> Self {
        Self { max_pixels: 100_000_000, max_alloc: 1 << 30 }
    }
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

/// Renders every spec from one decode of `bytes`, in the order of `specs`.
pub fn render(
    bytes: &[u8],
    specs: &[VariantSpec],
    format: VariantFormat,
    limits: &Limits,
) -> Result<Vec<Rendered>, VariantError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let decoded = decode::decode(bytes, limits)?;
    let orientation = decoded.orientation;

    // Largest first, so each smaller one can start from a bigger one already made.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(specs[i].size));

    let mut resizer = resize::Resizer::new();
    // Distinct outputs in the order they were made (largest first).
    let mut made: Vec<Made> = Vec::new();
    let mut rendered: Vec<Option<Rendered>> = vec![None; specs.len()];
    for i in order {
        let spec = &specs[i];
        let (width, height) = resize::fit(decoded.pixels.width, decoded.pixels.height, spec.size);
        // Two specs whose boxes both hold the whole image (or round to one size): one encode.
        let index = match made.iter().position(|m| m.size == (width, height)) {
            Some(index) => index,
            None => {
                let whole = &decoded.pixels;
                let resized = if (width, height) == (whole.width, whole.height) {
                    None // the box holds the whole image: encode the original, no copy
                } else {
                    let source = made
                        .iter()
                        .rev()
                        .filter_map(|m| m.resized.as_ref())
                        .find(|p| p.width >= 2 * width && p.height >= 2 * height)
                        .unwrap_or(whole);
                    Some(resizer.resize(source, width, height)?)
                };
                let pixels = resized.as_ref().unwrap_or(whole);
                let oriented = resize::orient(pixels, orientation);
                let oriented = oriented.as_ref().unwrap_or(pixels);
                let bytes = encode::encode(oriented, format)?;
                let (out_width, out_height) = (oriented.width, oriented.height);
                made.push(Made { size: (width, height), resized, width: out_width, height: out_height, bytes });
                made.len() - 1
            }
        };
        let m = &made[index];
        rendered[i] = Some(Rendered {
            name: spec.name.clone(),
            content_type: encode::content_type(format),
            width: m.width,
            height: m.height,
            bytes: m.bytes.clone(),
        });
    }
    Ok(rendered.into_iter().flatten().collect())
}

/// One distinct output: its size and resized pixels before orientation (`None`: the
/// original's size, so the decoded pixels themselves; `Some`: a source for smaller ones),
/// and its encoding, with the oriented size.
struct Made {
    size: (u32, u32),
    resized: Option<resize::Pixels>,
    width: u32,
    height: u32,
    bytes: Vec<u8>,
}
