//! Fitting a box, resizing with `fast_image_resize`, and applying the EXIF orientation to
//! the (small) result.

use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, images::Image};
use image::{DynamicImage, RgbImage, RgbaImage, metadata::Orientation};

use super::VariantError;

/// 8-bit pixels, row-major: RGB, or RGBA with premultiplied alpha when `alpha`.
pub(super) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    fn pixel_type(&self) -> PixelType {
        if self.alpha { PixelType::U8x4 } else { PixelType::U8x3 }
    }
}

/// The size of a `width`×`height` image fitted within `size`×`size`: aspect ratio kept
/// (rounded to the nearest pixel, at least 1), never enlarged.
pub(super) fn fit(width: u32, height: u32, size: u32) -> (u32, u32) {
    if width <= size && height <= size {
        return (width, height);
    }
    let scaled = |short: u32, long: u32| {
        let exact = u64::from(short) * u64::from(size);
        let rounded = (exact + u64::from(long) / 2) / u64::from(long);
        u32::try_from(rounded).unwrap_or(size).clamp(1, size)
    };
    if width >= height { (size, scaled(height, width)) } else { (scaled(width, height), size) }
}

/// One `fast_image_resize` resizer, reused across a render's variants (it keeps its
/// buffers between calls).
pub(super) struct Resizer {
    inner: fast_image_resize::Resizer,
    options: ResizeOptions,
}

impl Resizer {
    pub fn new() -> Self {
        Self {
            inner: fast_image_resize::Resizer::new(),
            // Lanczos3: the sharpest of the usual downscaling filters without visible
            // ringing on photos. The alpha is premultiplied once at decode, so the resizer
            // must not do it again (that would also cost a full-size copy per variant).
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).use_alpha(false),
        }
    }

    pub fn resize(&mut self, source: &Pixels, width: u32, height: u32) -> Result<Pixels, VariantError> {
        let failed = |e: &dyn std::fmt::Display| VariantError::Refused(format!("cannot resize the image: {e}"));
        // A borrowed view: the full-size source is not copied.
        let src =
            fast_image_resize::images::ImageRef::new(source.width, source.height, &source.data, source.pixel_type())
                .map_err(|e| failed(&e))?;
        let mut dst = Image::new(width, height, source.pixel_type());
        self.inner.resize(&src, &mut dst, &self.options).map_err(|e| failed(&e))?;
        Ok(Pixels { width, height, alpha: source.alpha, data: dst.into_vec() })
    }
}

/// `pixels` turned as EXIF says, or `None` when it says nothing is to be done.
pub(super) fn orient(pixels: &Pixels, orientation: Orientation) -> Option<Pixels> {
    if orientation == Orientation::NoTransforms {
        return None;
    }
    let Pixels { width, height, alpha, ref data } = *pixels;
    // The buffer lengths match their sizes by construction (the resizer made them).
    let mut image = if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, data.clone())?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, data.clone())?)
    };
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let data = if alpha { image.into_rgba8().into_raw() } else { image.into_rgb8().into_raw() };
    Some(Pixels { width, height, alpha, data })
}
