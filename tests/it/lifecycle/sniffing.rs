//! Content sniffing in `complete`: one ranged GET of the first bytes against the declared type.

use serde_json::json;

use super::upload_and_complete;
use crate::support::app::{TestApp, TestOptions};

const PROFILES: &str = r#"
[profiles.photos]
allowed_content_types = ["image/png", "image/jpeg"]

[profiles.unchecked]
allowed_content_types = ["image/png"]
sniff = false
"#;

const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x04\0\x09\xfb\x03\xfd\xe3U\xf2\x9c\0\0\0\0IEND\xaeB`\x82";

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions { profiles: Some(PROFILES.into()), ..Default::default() }).await
}

#[tokio::test]
async fn html_declared_as_png_is_refused_at_complete_its_object_deleted_and_its_reservation_released() {
    // Arrange
    let app = app().await;
    let page = b"<!DOCTYPE html><html><body><script>document.cookie</script></body></html>";

    // Act
    let (intent, done) = upload_and_complete(&app, "ann", "photos", "cat.png", "image/png", page).await;

    // Assert: 422 naming what it is, no asset, nothing held, nothing left in the bucket
    let message = done.assert_error(422, "verification_failed");
    assert!(message.contains(": content is text/html, declared image/png;"), "{message}");
    assert_eq!(app.upload_status(intent["upload_id"].as_str().unwrap()).await, "failed");
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert_eq!(app.usage_row("ann").await, (0, 0, 0, 0));
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None, "object deleted");
    assert_eq!(app.state.metrics.verification_failures.with_label_values(&["content"]).get(), 1);
    assert_eq!(app.state.metrics.sniff_seconds.get_sample_count(), 1);
}

#[tokio::test]
async fn a_real_png_is_ready_at_once_and_downloadable() {
    let app = app().await;
    let (_, done) = upload_and_complete(&app, "ann", "photos", "dot.png", "image/png", PNG_1X1).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["state"], "ready");
    assert_eq!(done.body["variants"], json!([]));
    let id = done.body["id"].as_str().unwrap();
    let url = app.get(&format!("/v1/assets/{id}/download-url"), &app.token("ann")).await;
    assert_eq!(url.status, 200, "{:#}", url.body);
    let got = app.http.get(url.body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG_1X1);
    assert_eq!(app.usage_row("ann").await, (PNG_1X1.len() as i64, 1, 0, 0));
}

#[tokio::test]
async fn a_jpeg_declared_as_png_is_refused_and_a_profile_can_turn_sniffing_off() {
    let app = app().await;
    let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0 the rest";
    let (_, done) = upload_and_complete(&app, "ann", "photos", "a.png", "image/png", jpeg).await;
    let message = done.assert_error(422, "verification_failed");
    assert!(message.contains("content is image/jpeg, declared image/png"), "{message}");

    // `sniff = false`: the same bytes become an asset (today's behaviour, no extra GET).
    let (_, done) = upload_and_complete(&app, "ann", "unchecked", "a.png", "image/png", jpeg).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["state"], "ready");
    assert_eq!(app.state.metrics.sniff_seconds.get_sample_count(), 1, "one sniff: the first profile's");
}

#[tokio::test]
async fn a_profile_without_type_rules_does_not_sniff() {
    let app = app().await;
    let page = b"<html><body>hello</body></html>";
    let (_, done) = upload_and_complete(&app, "ann", "default", "notes.bin", "application/octet-stream", page).await;
    // The default profile allows */*: nothing to sniff against, so no read at all.
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(app.state.metrics.sniff_seconds.get_sample_count(), 0);
}

#[tokio::test]
async fn the_sniffs_ranged_get_is_bounded_by_the_store_timeout() {
    // A "store" that accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            conns.push(c);
        }
    });
    let mut settings = crate::support::app::base_settings("postgres://u@127.0.0.1:1/db");
    settings.s3_endpoint = Some(format!("http://{addr}"));
    settings.s3_bucket = Some("hole".into());
    settings.store_timeout = Some("0.4".into());
    let config = settings.validate().unwrap();
    let store = r2_broker::store::Store::new(&config.s3).unwrap();

    let err = store.read_prefix("some/key", 4096, None).await.unwrap_err();

    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("no answer"), "{err}");
    held.abort();
}
