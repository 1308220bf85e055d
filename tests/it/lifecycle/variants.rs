//! Image variants end to end: a PNG's variants are made by the job worker from the real
//! store, listed on the asset, served with `?variant=`, and `asset.ready` reaches a local
//! receiver signed; decompression bombs are rejected without the worker's memory growing.

use std::io::Cursor;

use serde_json::json;

use super::{run_jobs, state_of, upload_and_complete};
use crate::support::receiver::Receiver;
use crate::support::{TestApp, TestOptions};

const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const PROFILES: &str = r#"
[profiles.photos]
allowed_content_types = ["image/png", "image/jpeg", "image/heic"]
variants = { thumb = 64, medium = 256 }
"#;

async fn app(receiver: &Receiver) -> TestApp {
    let url = receiver.url();
    TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(move |s| {
            s.webhook_url = Some(url);
            s.webhook_secret = Some(SECRET.into());
            s.variant_max_pixels = Some("20000000".into());
        })),
        ..Default::default()
    })
    .await
}

/// A 640×480 PNG: red on the left half, blue on the right.
fn png_640x480() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(
            640,
            480,
            |x, _| if x < 320 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) },
        );
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A real PNG of `w`×`h` black pixels: tiny on disk, `w`×`h`×3 bytes decoded.
fn zeros_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; w as usize * 3];
    for _ in 0..h {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    drop(writer);
    out
}

/// This process's peak resident memory, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024
}

#[tokio::test]
async fn a_png_gets_its_variants_and_a_signed_asset_ready_webhook() {
    // Arrange
    let receiver = Receiver::start().await;
    let app = app(&receiver).await;
    let png = png_640x480();
    let (intent, done) = upload_and_complete(&app, "pia", "photos", "beach.png", "image/png", &png).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["state"], "processing");
    let id = done.body["id"].as_str().unwrap().to_owned();

    // Act: the job worker, then the webhook deliveries
    let report = run_jobs(&app).await;
    let delivered = r2_broker::webhooks::deliver_once(&app.state).await.unwrap();

    // Assert: ready with two JPEG variants next to the original, aspect ratio kept
    assert_eq!(report.ready, 1, "{report:?}");
    assert_eq!(state_of(&app, &id).await, ("ready".into(), None, 0));
    let asset = app.get(&format!("/v1/assets/{id}"), &app.token("pia")).await.body;
    let variants = asset["variants"].as_array().unwrap();
    let dims: Vec<(&str, u64, u64)> = variants
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(dims, [("thumb", 64, 48), ("medium", 256, 192)]);
    let folder = intent["key"].as_str().unwrap().rsplit_once('/').unwrap().0.to_owned();
    for v in variants {
        let key = v["key"].as_str().unwrap();
        assert_eq!(key, format!("{folder}/~{}.jpg", v["name"].as_str().unwrap()));
        let stored = app.object(key).await.expect("the variant is in the bucket");
        assert_eq!(stored.len() as u64, v["size"].as_u64().unwrap());
        let img = image::load_from_memory_with_format(&stored, image::ImageFormat::Jpeg).expect("a JPEG");
        assert_eq!(
            (img.width() as u64, img.height() as u64),
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
        );
        // Red stays on the left, blue on the right.
        let px = img.to_rgb8();
        assert!(px.get_pixel(2, 10)[0] > 200 && px.get_pixel(img.width() - 3, 10)[2] > 200);
    }
    // Variants do not count: usage is the original only
    assert_eq!(app.usage_row("pia").await, (png.len() as i64, 1, 0, 0));

    // ?variant= serves one, as its own type; an unknown name is a 400 naming what there is
    let url = app.get(&format!("/v1/assets/{id}/download-url?variant=thumb"), &app.token("pia")).await;
    assert_eq!(url.status, 200, "{:#}", url.body);
    let got = app.http.get(url.body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.unwrap().len() as u64, variants[0]["size"].as_u64().unwrap());
    let unknown = app.get(&format!("/v1/assets/{id}/download-url?variant=huge"), &app.token("pia")).await;
    assert!(unknown.assert_error(400, "invalid_request").contains("thumb, medium"));

    // The receiver got asset.ready, signed, with the variants in it
    assert_eq!(delivered.delivered, 1, "{delivered:?}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    standardwebhooks::Webhook::new(SECRET).unwrap().verify(&got[0].body, &got[0].headers).expect("a valid signature");
    let body = got[0].json();
    assert_eq!((body["type"].as_str(), body["data"]["id"].as_str()), (Some("asset.ready"), Some(id.as_str())));
    assert_eq!(body["data"]["variants"], asset["variants"]);
    assert_eq!(got[0].header("webhook-id"), body["id"].as_str().unwrap());

    // Deleting the asset deletes its variants too, and says so
    assert_eq!(app.delete(&format!("/v1/assets/{id}"), &app.token("pia")).await.status, 204);
    assert!(app.keys().await.is_empty(), "{:?}", app.keys().await);
    r2_broker::webhooks::deliver_once(&app.state).await.unwrap();
    assert_eq!(receiver.received()[1].json()["type"], "asset.deleted");
}

#[tokio::test]
async fn decompression_bombs_are_rejected_their_objects_deleted_and_memory_stays_flat() {
    // Arrange: a header that claims 50000×50000 (2.5 gigapixels, 7 GiB decoded) and a
    // real 6000×6000 PNG of zeros (108 MiB decoded from ~110 KB) over the 20-megapixel bound
    let receiver = Receiver::start().await;
    let app = app(&receiver).await;
    let claims = {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 50_000, 50_000);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        w.write_chunk(png::chunk::IDAT, &[0x78, 0x01, 0x03, 0x00]).unwrap();
        drop(w);
        out
    };
    let zeros = zeros_png(6000, 6000);
    assert!(zeros.len() < 1 << 20, "{} bytes", zeros.len());
    let before = peak_rss_mib();
    let (a, done_a) = upload_and_complete(&app, "pia", "photos", "bomb.png", "image/png", &claims).await;
    let (b, done_b) = upload_and_complete(&app, "pia", "photos", "zeros.png", "image/png", &zeros).await;
    assert_eq!((done_a.status.as_u16(), done_b.status.as_u16()), (201, 201), "both look like PNGs to complete");

    // Act
    let report = run_jobs(&app).await;

    // Assert: both rejected with the reason, objects gone, usage released, events written
    assert_eq!(report.rejected, 2, "{report:?}");
    for (intent, done, pixels) in [(&a, &done_a, "50000×50000"), (&b, &done_b, "6000×6000")] {
        let (state, reason, jobs) = state_of(&app, done.body["id"].as_str().unwrap()).await;
        assert_eq!((state.as_str(), jobs), ("rejected", 0));
        let reason = reason.unwrap();
        assert!(reason.contains(pixels) && reason.contains("20000000"), "{reason}");
        assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None, "object deleted");
    }
    assert_eq!(app.usage_row("pia").await, (0, 0, 0, 0));
    let id = done_a.body["id"].as_str().unwrap();
    app.get(&format!("/v1/assets/{id}/download-url"), &app.token("pia")).await.assert_error(409, "invalid_state");
    r2_broker::webhooks::deliver_once(&app.state).await.unwrap();
    let types: Vec<String> =
        receiver.received().iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["asset.rejected", "asset.rejected"]);
    // Nothing close to a decoded bomb was ever allocated (7 GiB and 108 MiB).
    let grew = peak_rss_mib().saturating_sub(before);
    assert!(grew < 64, "peak RSS grew by {grew} MiB");
    // A rejected asset's record can still be deleted; its usage is not released twice.
    assert_eq!(app.delete(&format!("/v1/assets/{id}"), &app.token("pia")).await.status, 204);
    assert_eq!(app.usage_row("pia").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_heic_photo_is_ready_without_variants() {
    // No maintained HEIC decoder builds here (src/variants): such a photo is kept, unresized.
    let receiver = Receiver::start().await;
    let app = app(&receiver).await;
    let mut heic = vec![0, 0, 0, 0x18];
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic.extend_from_slice(&[0u8; 64]);
    let (_, done) = upload_and_complete(&app, "pia", "photos", "IMG_0001.HEIC", "image/heic", &heic).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    let id = done.body["id"].as_str().unwrap().to_owned();

    let report = run_jobs(&app).await;

    assert_eq!(report.ready, 1, "{report:?}");
    let asset = app.get(&format!("/v1/assets/{id}"), &app.token("pia")).await.body;
    assert_eq!((asset["state"].clone(), asset["variants"].clone()), (json!("ready"), json!([])));
    assert_eq!(app.keys().await.len(), 1, "the original only");
}

#[tokio::test]
async fn variants_are_made_only_of_the_verified_bytes() {
    // Verified at complete, then overwritten in the store with another image.
    let receiver = Receiver::start().await;
    let app = app(&receiver).await;
    let (intent, done) = upload_and_complete(&app, "pia", "photos", "a.png", "image/png", &png_640x480()).await;
    let key = intent["key"].as_str().unwrap();
    let other = zeros_png(64, 64);
    app.s3.put_object().bucket(&app.bucket).key(key).content_type("image/png").body(other.into()).send().await.unwrap();

    let report = run_jobs(&app).await;

    assert_eq!(report.rejected, 1, "{report:?}");
    let (state, reason, _) = state_of(&app, done.body["id"].as_str().unwrap()).await;
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("rejected", Some("the object is no longer in the store as it was verified"))
    );
    assert!(app.keys().await.is_empty(), "no variant of the other image: {:?}", app.keys().await);
}
