//! Bounded decoding: sniff the format, read the header, check the size against the limits,
//! and only then allocate and decode. The result is 8-bit RGB, or RGBA with premultiplied
//! alpha — the two layouts the resizer and the encoders take.

use std::io::Cursor;

use fast_image_resize::{MulDiv, PixelType, images::Image};
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, metadata::Orientation};

use super::resize::Pixels;
use super::{Limits, VariantError};

pub(super) struct Decoded {
    /// Not yet oriented: [`super::resize::orient`] applies `orientation` to each variant.
    pub pixels: Pixels,
    pub orientation: Orientation,
}

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, VariantError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VariantError::Refused(format!("cannot read the image: {e}")))?;
    if reader.format().is_none() {
        return Err(VariantError::Unsupported("the content is not a known image format".into()));
    }
    // Strict limits every decoder checks against the header, before any pixel buffer: no
    // edge may exceed the pixel budget, and the decoder's allocations are capped.
    let edge = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(edge);
    image_limits.max_image_height = Some(edge);
    image_limits.max_alloc = Some(limits.max_alloc);
    // (The decoders' allocation cap stays the whole budget rather than what the pixels leave:
    // the TIFF decoder counts its output buffer in it, and would refuse large images.)
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;

    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(VariantError::Refused(format!(
            "image is {width}×{height} pixels, at most {} allowed",
            limits.max_pixels
        )));
    }
    if pixels == 0 {
        return Err(VariantError::Refused(format!("image is {width}×{height} pixels")));
    }
    let color = decoder.color_type();
    let alpha = color.has_alpha();
    let decoded_bytes = decoder.total_bytes();
    let working_bytes = pixels * if alpha { 4 } else { 3 };
    // 8-bit RGB(A) sources are used in place; any other layout is converted (a second buffer).
    let needed = if matches!(color, image::ColorType::Rgb8 | image::ColorType::Rgba8) {
        decoded_bytes
    } else {
        decoded_bytes.saturating_add(working_bytes)
    };
    if needed > limits.max_alloc {
        return Err(VariantError::Refused(format!(
            "decoding the {width}×{height} image needs {} MiB, at most {} MiB allowed",
            needed >> 20,
            limits.max_alloc >> 20
        )));
    }

    // A malformed EXIF block must not cost the image its variants: no orientation then.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(classify)?;

    let pixels = if alpha {
        let mut data = image.into_rgba8().into_raw();
        premultiply(&mut data, width, height)?;
        Pixels { width, height, alpha: true, data }
    } else {
        Pixels { width, height, alpha: false, data: image.into_rgb8().into_raw() }
    };
    Ok(Decoded { pixels, orientation })
}

/// In place: the source is ours, and a premultiplied copy would double the peak memory.
fn premultiply(data: &mut [u8], width: u32, height: u32) -> Result<(), VariantError> {
    let mut view = Image::from_slice_u8(width, height, data, PixelType::U8x4)
        .map_err(|e| VariantError::Refused(format!("cannot premultiply the alpha: {e}")))?;
    MulDiv::default()
        .multiply_alpha_inplace(&mut view)
        .map_err(|e| VariantError::Refused(format!("cannot premultiply the alpha: {e}")))
}

/// A format this build does not decode (or a feature of one, such as a TIFF compression)
/// leaves the asset without variants; corrupt data and exceeded limits reject it.
fn classify(e: ImageError) -> VariantError {
    // (Some decoders' messages end in a newline.)
    let trimmed = |e: &dyn std::fmt::Display| e.to_string().trim_end().to_owned();
    match e {
        ImageError::Unsupported(e) => VariantError::Unsupported(trimmed(&e)),
        ImageError::Limits(e) => VariantError::Refused(format!("image exceeds the decoding limits: {}", trimmed(&e))),
        ImageError::Decoding(e) => VariantError::Refused(format!("corrupt image: {}", trimmed(&e))),
        ImageError::IoError(e) => VariantError::Refused(format!("corrupt image: {}", trimmed(&e))),
        e @ (ImageError::Parameter(_) | ImageError::Encoding(_)) => {
            VariantError::Refused(format!("cannot decode the image: {}", trimmed(&e)))
        }
    }
}
