//! Real images, made here with the `image` crate (and a hand-built EXIF segment and PNG
//! bomb), through [`render`]; the outputs are decoded again and checked.

use std::io::Cursor;

use image::codecs::{gif::GifEncoder, jpeg::JpegEncoder, png::PngEncoder, tiff::TiffEncoder, webp::WebPEncoder};
use image::{ExtendedColorType, Frame, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::resize::fit;
use super::{Limits, Rendered, VariantError, render};
use crate::profiles::{VariantFormat, VariantSpec};

fn specs(list: &[(&str, u32)]) -> Vec<VariantSpec> {
    list.iter().map(|&(name, size)| VariantSpec { name: name.into(), size }).collect()
}

const RED: Rgb<u8> = Rgb([255, 0, 0]);
const GREEN: Rgb<u8> = Rgb([0, 255, 0]);
const BLUE: Rgb<u8> = Rgb([0, 0, 255]);

/// Left half `left`, right half `right`.
fn halves(width: u32, height: u32, left: Rgb<u8>, right: Rgb<u8>) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| if x < width / 2 { left } else { right })
}

fn png_rgb(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn jpeg_rgb(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Decodes a variant, checking it is in `format` and of the size it claims.
fn decoded(r: &Rendered, format: ImageFormat) -> image::DynamicImage {
    assert_eq!(image::guess_format(&r.bytes).unwrap(), format, "{}", r.name);
    let image = image::load_from_memory_with_format(&r.bytes, format).unwrap();
    assert_eq!((image.width(), image.height()), (r.width, r.height), "{}", r.name);
    image
}

fn assert_near(actual: Rgb<u8>, expected: Rgb<u8>) {
    let close = actual.0.iter().zip(expected.0).all(|(&a, e)| a.abs_diff(e) <= 40);
    assert!(close, "pixel {actual:?}, expected about {expected:?}");
}

fn refused(result: Result<Vec<Rendered>, VariantError>) -> String {
    match result {
        Err(VariantError::Refused(message)) => message,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn fit_keeps_the_aspect_ratio_within_the_box_and_never_enlarges() {
    assert_eq!(fit(4000, 3000, 256), (256, 192));
    assert_eq!(fit(3000, 4000, 1024), (768, 1024));
    assert_eq!(fit(1200, 800, 256), (256, 171));
    assert_eq!(fit(10_000, 3, 256), (256, 1));
    assert_eq!(fit(100, 60, 256), (100, 60));
    assert_eq!(fit(256, 256, 256), (256, 256));
}

#[test]
fn png_with_alpha_becomes_jpeg_variants_of_the_fitted_sizes_composited_on_white() {
    // Left half fully transparent (its colour, red, must not show), right half opaque blue.
    let source =
        RgbaImage::from_fn(1200, 800, |x, _| if x < 600 { Rgba([255, 0, 0, 0]) } else { Rgba([0, 0, 255, 255]) });
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(source.as_raw(), 1200, 800, ExtendedColorType::Rgba8).unwrap();

    let out =
        render(&png, &specs(&[("thumb", 256), ("medium", 1024)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    let sizes: Vec<_> = out.iter().map(|r| (r.name.as_str(), r.width, r.height, r.content_type)).collect();
    assert_eq!(sizes, [("thumb", 256, 171, "image/jpeg"), ("medium", 1024, 683, "image/jpeg")]);
    for r in &out {
        let image = decoded(r, ImageFormat::Jpeg).into_rgb8();
        assert_near(*image.get_pixel(r.width / 4, r.height / 2), Rgb([255, 255, 255]));
        assert_near(*image.get_pixel(r.width * 3 / 4, r.height / 2), BLUE);
    }
}

#[test]
fn an_image_smaller_than_the_box_is_encoded_at_its_own_size() {
    let png = png_rgb(&halves(100, 60, RED, GREEN));

    let out = render(&png, &specs(&[("thumb", 256), ("big", 1024)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    assert_eq!(out.len(), 2);
    for r in &out {
        assert_eq!((r.width, r.height), (100, 60));
        decoded(r, ImageFormat::Jpeg);
    }
}

/// An APP1 segment holding a little-endian TIFF with one IFD entry: Orientation (0x0112).
fn exif_orientation_segment(orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0II*\0".to_vec();
    payload.extend(8u32.to_le_bytes()); // offset of IFD0
    payload.extend(1u16.to_le_bytes()); // one entry
    payload.extend(0x0112u16.to_le_bytes()); // Orientation
    payload.extend(3u16.to_le_bytes()); // SHORT
    payload.extend(1u32.to_le_bytes()); // one value
    payload.extend(u32::from(orientation).to_le_bytes()); // the value, padded to 4 bytes
    payload.extend(0u32.to_le_bytes()); // no next IFD
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    segment.extend(payload);
    segment
}

/// The markers of a JPEG's segments before its scan.
fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], [0xFF, 0xD8]);
    let mut markers = Vec::new();
    let mut at = 2;
    while bytes[at] == 0xFF && bytes[at + 1] != 0xDA {
        markers.push(bytes[at + 1]);
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
    markers
}

#[test]
fn exif_orientation_6_is_applied_and_the_variants_carry_no_exif() {
    // 640×320, red left and green right; orientation 6 is "turn 90° clockwise to view".
    let plain = jpeg_rgb(&halves(640, 320, RED, GREEN));
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend(exif_orientation_segment(6));
    jpeg.extend(&plain[2..]);
    assert!(jpeg_markers(&jpeg).contains(&0xE1));

    let out =
        render(&jpeg, &specs(&[("thumb", 128), ("full", 1024)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    let sizes: Vec<_> = out.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(sizes, [(64, 128), (320, 640)]);
    for r in &out {
        let image = decoded(r, ImageFormat::Jpeg).into_rgb8();
        // Turned clockwise, the left half is now the top half.
        assert_near(*image.get_pixel(r.width / 2, r.height / 4), RED);
        assert_near(*image.get_pixel(r.width / 2, r.height * 3 / 4), GREEN);
        assert!(!jpeg_markers(&r.bytes).contains(&0xE1), "{}: an APP1 segment", r.name);
        assert!(!r.bytes.windows(6).any(|w| w == b"Exif\0\0"), "{}: Exif bytes", r.name);
    }
}

/// The four-character chunk names of a WebP (RIFF) file.
fn webp_chunks(bytes: &[u8]) -> Vec<[u8; 4]> {
    assert_eq!((&bytes[..4], &bytes[8..12]), (&b"RIFF"[..], &b"WEBP"[..]));
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        chunks.push(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + len + len % 2;
    }
    chunks
}

#[test]
fn exif_orientation_6_is_applied_to_webp_variants_which_have_no_metadata_chunks() {
    let plain = jpeg_rgb(&halves(640, 320, RED, GREEN));
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend(exif_orientation_segment(6));
    jpeg.extend(&plain[2..]);

    let out = render(&jpeg, &specs(&[("thumb", 128)]), VariantFormat::Webp, &Limits::default()).unwrap();

    let r = &out[0];
    assert_eq!((r.width, r.height), (64, 128));
    let image = decoded(r, ImageFormat::WebP).into_rgb8();
    assert_near(*image.get_pixel(32, 32), RED);
    assert_near(*image.get_pixel(32, 96), GREEN);
    assert_eq!(webp_chunks(&r.bytes), [*b"VP8 "]);
}

#[test]
fn a_gif_gives_variants_of_its_first_frame() {
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        let frame = |c: [u8; 3]| Frame::new(RgbaImage::from_pixel(40, 30, Rgba([c[0], c[1], c[2], 255])));
        encoder.encode_frames([frame(RED.0), frame(BLUE.0)]).unwrap();
    }

    let out = render(&gif, &specs(&[("thumb", 20)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    assert_eq!((out[0].width, out[0].height), (20, 15));
    assert_near(*decoded(&out[0], ImageFormat::Jpeg).into_rgb8().get_pixel(10, 7), RED);
}

#[test]
fn a_tiff_gives_variants() {
    let source = halves(300, 200, RED, BLUE);
    let mut tiff = Cursor::new(Vec::new());
    TiffEncoder::new(&mut tiff).write_image(source.as_raw(), 300, 200, ExtendedColorType::Rgb8).unwrap();

    let out = render(tiff.get_ref(), &specs(&[("thumb", 100)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    assert_eq!((out[0].width, out[0].height), (100, 67));
    let image = decoded(&out[0], ImageFormat::Jpeg).into_rgb8();
    assert_near(*image.get_pixel(20, 33), RED);
    assert_near(*image.get_pixel(80, 33), BLUE);
}

#[test]
fn a_webp_with_alpha_gives_lossy_webp_variants_that_keep_the_alpha() {
    let source =
        RgbaImage::from_fn(400, 200, |x, _| if x < 200 { Rgba([255, 0, 0, 0]) } else { Rgba([0, 0, 255, 255]) });
    let mut webp = Vec::new();
    WebPEncoder::new_lossless(&mut webp).write_image(source.as_raw(), 400, 200, ExtendedColorType::Rgba8).unwrap();

    let out = render(&webp, &specs(&[("thumb", 100)]), VariantFormat::Webp, &Limits::default()).unwrap();

    let r = &out[0];
    assert_eq!((r.width, r.height, r.content_type), (100, 50, "image/webp"));
    // A lossy WebP has a "VP8 " bitstream (the lossless one is "VP8L").
    assert!(r.bytes.windows(4).any(|w| w == b"VP8 "), "not lossy");
    let image = decoded(r, ImageFormat::WebP).into_rgba8();
    assert_eq!(image.get_pixel(20, 25)[3], 0);
    let opaque = image.get_pixel(80, 25);
    assert_eq!(opaque[3], 255);
    assert_near(Rgb([opaque[0], opaque[1], opaque[2]]), BLUE);
}

#[test]
fn an_opaque_jpeg_gives_webp_variants() {
    let jpeg = jpeg_rgb(&halves(640, 480, GREEN, BLUE));

    let out = render(&jpeg, &specs(&[("thumb", 64)]), VariantFormat::Webp, &Limits::default()).unwrap();

    let image = decoded(&out[0], ImageFormat::WebP).into_rgb8();
    assert_eq!((image.width(), image.height()), (64, 48));
    assert_near(*image.get_pixel(10, 24), GREEN);
    assert_near(*image.get_pixel(54, 24), BLUE);
}

/// A valid PNG whose header claims `width`×`height` RGB pixels, followed by a tiny zlib
/// stream of zeros (a stored block) — what a decompression bomb looks like up front.
fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let zeros = vec![0u8; 1024];
    let mut zlib = vec![0x78, 0x01, 0x01]; // zlib header; final stored block
    zlib.extend(u16::try_from(zeros.len()).unwrap().to_le_bytes());
    zlib.extend((!u16::try_from(zeros.len()).unwrap()).to_le_bytes());
    zlib.extend(&zeros);
    zlib.extend(((zeros.len() as u32 % 65521) << 16 | 1).to_be_bytes()); // Adler-32 of zeros
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_chunk(png::chunk::IDAT, &zlib).unwrap();
    drop(writer); // writes IEND
    out
}

#[test]
fn a_decompression_bomb_png_is_refused_from_its_header() {
    let bomb = bomb_png(50_000, 50_000);
    assert!(bomb.len() < 2048);

    let message = refused(render(&bomb, &specs(&[("thumb", 256)]), VariantFormat::Jpeg, &Limits::default()));

    assert_eq!(message, "image is 50000×50000 pixels, at most 100000000 allowed");
}

#[test]
fn a_bomb_within_the_pixel_limit_is_refused_by_the_memory_limit_before_allocating() {
    // 2.5 gigapixels allowed, but 7 GiB of pixels do not fit in the default 1 GiB.
    let limits = Limits { max_pixels: 2_500_000_000, ..Limits::default() };

    let message = refused(render(&bomb_png(50_000, 50_000), &specs(&[("thumb", 256)]), VariantFormat::Jpeg, &limits));

    assert_eq!(message, "decoding the 50000×50000 image needs 7152 MiB, at most 1024 MiB allowed");
}

#[test]
fn max_pixels_just_below_the_image_refuses_it_and_exactly_at_it_accepts_it() {
    let png = png_rgb(&halves(300, 200, RED, GREEN));
    let thumb = specs(&[("thumb", 64)]);

    let below = Limits { max_pixels: 59_999, ..Limits::default() };
    let message = refused(render(&png, &thumb, VariantFormat::Jpeg, &below));
    assert_eq!(message, "image is 300×200 pixels, at most 59999 allowed");

    let exact = Limits { max_pixels: 60_000, ..Limits::default() };
    let out = render(&png, &thumb, VariantFormat::Jpeg, &exact).unwrap();
    assert_eq!((out[0].width, out[0].height), (64, 43));
}

#[test]
fn truncated_image_data_is_refused() {
    let source = RgbImage::from_fn(300, 200, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
    let png = png_rgb(&source);
    let jpeg = jpeg_rgb(&source);
    // A JPEG cut inside its scan is decoded leniently (zune-jpeg fills the rest with grey,
    // as browsers show it); one cut inside its headers cannot be decoded.
    for truncated in [&png[..png.len() / 2], &png[..40], &jpeg[..300]] {
        let message = refused(render(truncated, &specs(&[("thumb", 64)]), VariantFormat::Jpeg, &Limits::default()));

        assert!(message.starts_with("corrupt image: "), "{message}");
        assert!(!message.ends_with('\n'), "{message:?}");
    }
}

#[test]
fn text_and_formats_this_build_does_not_decode_are_unsupported() {
    let thumb = specs(&[("thumb", 64)]);
    for bytes in [&b"<!doctype html><p>not an image</p>\n"[..], b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0"] {
        let result = render(bytes, &thumb, VariantFormat::Jpeg, &Limits::default());
        assert!(matches!(result, Err(VariantError::Unsupported(_))), "{result:?}");
    }
}

#[test]
fn variants_come_back_in_the_order_of_the_specs() {
    let png = png_rgb(&halves(800, 600, RED, GREEN));

    let out = render(
        &png,
        &specs(&[("small", 50), ("large", 400), ("mid", 200), ("same", 200)]),
        VariantFormat::Jpeg,
        &Limits::default(),
    )
    .unwrap();

    let sizes: Vec<_> = out.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
    assert_eq!(sizes, [("small", 50, 38), ("large", 400, 300), ("mid", 200, 150), ("same", 200, 150)]);
    for r in &out {
        let image = decoded(r, ImageFormat::Jpeg).into_rgb8();
        assert_near(*image.get_pixel(r.width / 4, r.height / 2), RED);
        assert_near(*image.get_pixel(r.width * 3 / 4, r.height / 2), GREEN);
    }
}

#[test]
fn supports_names_the_decoded_types_only() {
    for essence in ["image/jpeg", "image/png", "image/webp", "image/tiff", "image/gif"] {
        assert!(super::supports(essence), "{essence}");
    }
    for essence in ["image/heic", "image/svg+xml", "image/bmp", "text/plain"] {
        assert!(!super::supports(essence), "{essence}");
    }
}

#[test]
fn semi_transparent_pixels_are_composited_on_white_by_their_alpha() {
    // Grey 100 at alpha 128: 100·128/255 + (255 − 128) = 177 (not 100 + 127 = 227).
    let source = RgbaImage::from_pixel(64, 64, Rgba([100, 100, 100, 128]));
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(source.as_raw(), 64, 64, ExtendedColorType::Rgba8).unwrap();

    let out = render(&png, &specs(&[("thumb", 32)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    let pixel = *decoded(&out[0], ImageFormat::Jpeg).into_rgb8().get_pixel(16, 16);
    assert!(pixel.0.iter().all(|&c| c.abs_diff(177) <= 4), "{pixel:?}");
}

#[test]
fn a_jpeg_whose_header_claims_50000_by_50000_pixels_is_refused() {
    let mut jpeg = jpeg_rgb(&halves(64, 48, RED, GREEN));
    // The baseline frame header (SOF0): FF C0, length, precision, height, width.
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xC3, 0x50, 0xC3, 0x50]); // 50000, 50000

    let message = refused(render(&jpeg, &specs(&[("thumb", 256)]), VariantFormat::Jpeg, &Limits::default()));

    assert_eq!(message, "image is 50000×50000 pixels, at most 100000000 allowed");
}

#[test]
fn a_16_bit_grey_png_is_converted_and_gives_variants() {
    let source = image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(120, 80, image::Luma([40_000u16]));
    // `image` takes 16-bit samples in native byte order.
    let bytes: Vec<u8> = source.as_raw().iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&bytes, 120, 80, ExtendedColorType::L16).unwrap();

    let out = render(&png, &specs(&[("thumb", 60)]), VariantFormat::Jpeg, &Limits::default()).unwrap();

    assert_eq!((out[0].width, out[0].height), (60, 40));
    // 40000 / 65535 of full scale is 156 in 8 bits.
    let pixel = *decoded(&out[0], ImageFormat::Jpeg).into_rgb8().get_pixel(30, 20);
    assert!(pixel.0.iter().all(|&c| c.abs_diff(156) <= 3), "{pixel:?}");
}
