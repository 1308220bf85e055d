//! Encoding a variant: JPEG (`image`'s encoder) or lossy WebP (libwebp, see the module
//! doc of `variants` for why). Neither writes metadata: no EXIF, XMP or ICC chunks.

use image::{ExtendedColorType, ImageEncoder, codecs::jpeg::JpegEncoder};

use super::VariantError;
use super::resize::Pixels;
use crate::profiles::VariantFormat;

/// Quality of both encoders: visually clean photos at about a tenth of a PNG's size.
const QUALITY: u8 = 82;

pub(super) fn content_type(format: VariantFormat) -> &'static str {
    match format {
        VariantFormat::Jpeg => "image/jpeg",
        VariantFormat::Webp => "image/webp",
    }
}

pub(super) fn encode(pixels: &Pixels, format: VariantFormat) -> Result<Vec<u8>, VariantError> {
    match format {
        VariantFormat::Jpeg => jpeg(pixels),
        VariantFormat::Webp => webp(pixels),
    }
}

fn jpeg(pixels: &Pixels) -> Result<Vec<u8>, VariantError> {
    let flattened;
    let rgb = if pixels.alpha {
        flattened = on_white(&pixels.data);
        &flattened
    } else {
        &pixels.data
    };
    let mut out = Vec::with_capacity(rgb.len() / 8);
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .write_image(rgb, pixels.width, pixels.height, ExtendedColorType::Rgb8)
        .map_err(|e| VariantError::Refused(format!("cannot encode the JPEG variant: {e}")))?;
    Ok(out)
}

/// Premultiplied RGBA over an opaque white background: `c·a + 255·(1 − a)`, and the
/// premultiplied `c` already is `c·a`.
fn on_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let background = 255 - px[3];
        rgb.extend(px[..3].iter().map(|&c| c.saturating_add(background)));
    }
    rgb
}

fn webp(pixels: &Pixels) -> Result<Vec<u8>, VariantError> {
    let failed = |e: &dyn std::fmt::Debug| VariantError::Refused(format!("cannot encode the WebP variant: {e:?}"));
    let encoded = if pixels.alpha {
        // libwebp takes straight (not premultiplied) alpha.
        let mut straight = fast_image_resize::images::Image::from_vec_u8(
            pixels.width,
            pixels.height,
            pixels.data.clone(),
            fast_image_resize::PixelType::U8x4,
        )
        .map_err(|e| failed(&e))?;
        fast_image_resize::MulDiv::default().divide_alpha_inplace(&mut straight).map_err(|e| failed(&e))?;
        let straight = straight.into_vec();
        webp::Encoder::from_rgba(&straight, pixels.width, pixels.height).encode_simple(false, f32::from(QUALITY))
    } else {
        webp::Encoder::from_rgb(&pixels.data, pixels.width, pixels.height).encode_simple(false, f32::from(QUALITY))
    };
    Ok(encoded.map_err(|e| failed(&e))?.to_vec())
}
