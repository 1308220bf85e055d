//! Single-PUT uploads from intent to verified asset, and the store refusing anything the
//! intent did not declare.

use serde_json::json;

use crate::support::{TestApp, sha256_b64};

#[tokio::test]
async fn put_upload_goes_from_intent_to_verified_asset() {
    let app = TestApp::spawn().await;
    let bytes = b"hello, r2".to_vec();
    let sum = sha256_b64(&bytes);

    // Arrange: an intent
    let c = app
        .create(
            "alice",
            json!({"filename": "IMG 0001.HEIC", "content_type": "image/heic", "size": bytes.len(),
                   "checksum_sha256": sum, "metadata": {"shoot_id": "abc123"}}),
        )
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let key = c.body["key"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("uploads/alice/{id}/IMG_0001.HEIC"));
    assert_eq!(c.body["method"], "put");
    assert_eq!(c.body["fields"], serde_json::Value::Null);
    let headers = c.body["headers"].as_object().unwrap();
    assert_eq!(headers["content-type"], "image/heic");
    assert_eq!(headers["content-length"], bytes.len().to_string());
    assert_eq!(headers["x-amz-checksum-sha256"], sum);
    assert_eq!(headers["x-amz-meta-upload-id"], id.as_str());
    assert_eq!(headers["if-none-match"], "*");
    let url = c.body["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/{}/", crate::support::store().endpoint, app.bucket)));
    assert!(!url.contains("x-amz-checksum-crc32") && !url.contains("x-amz-sdk-checksum-algorithm"), "{url}");
    assert_eq!(app.usage_row("alice").await, (0, 0, bytes.len() as i64, 1), "reserved");
    assert_eq!(app.upload_status(&id).await, "pending");

    // Act: the bytes go straight to the store, then complete
    let put = app.put_to(&c.body, bytes.clone()).await;
    assert_eq!(put.status(), 200);
    let done = app.complete("alice", &c.body["upload_id"]).await;

    // Assert: the asset, the usage, the bucket
    assert_eq!(done.status, 201, "{:#}", done.body);
    let asset = &done.body;
    assert_eq!(asset["owner"], "alice");
    assert_eq!(asset["key"], key.as_str());
    assert_eq!(asset["filename"], "IMG 0001.HEIC");
    assert_eq!(asset["size"], bytes.len());
    assert_eq!(asset["checksum_sha256"], sum);
    assert_eq!(asset["metadata"], json!({"shoot_id": "abc123"}));
    assert_eq!(asset["visibility"], "private");
    assert_eq!(app.usage_row("alice").await, (bytes.len() as i64, 1, 0, 0), "reservation became usage");
    assert_eq!(app.object(&key).await.unwrap(), bytes);
    assert_eq!(app.upload_status(&id).await, "completed");

    // complete is idempotent: 200 and the same asset
    let again = app.complete("alice", &c.body["upload_id"]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], asset["id"]);
    assert_eq!(app.usage_row("alice").await, (bytes.len() as i64, 1, 0, 0), "nothing counted twice");

    let status = app.get(&format!("/v1/uploads/{id}"), &app.token("alice")).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["status"], "completed");
    assert_eq!(status.body["asset_id"], asset["id"]);
}

#[tokio::test]
async fn the_store_refuses_a_body_other_than_declared() {
    let app = TestApp::spawn().await;
    let body = b"exactly sixteen!".to_vec();
    let c = app
        .create("bob", json!({"filename": "a.txt", "content_type": "text/plain", "size": 16, "checksum_sha256": sha256_b64(&body)}))
        .await;
    assert_eq!(c.status, 201);

    // Wrong size: the signed content-length does not match.
    let r = app.put_to(&c.body, b"seventeen bytes!!".to_vec()).await;
    assert_eq!(r.status(), 403, "wrong size");
    // Wrong type: the signed content-type does not match.
    let r = app.put_with(&c.body, body.clone(), &[("content-type", "text/html")]).await;
    assert_eq!(r.status(), 403, "wrong type");
    // Missing upload-id metadata header: a signed header is absent.
    let r = app.put_with(&c.body, body.clone(), &[("x-amz-meta-upload-id", "someone-else")]).await;
    assert_eq!(r.status(), 403, "other metadata");
    // Wrong body with the right size: the signed checksum does not match.
    let r = app.put_to(&c.body, b"Exactly sixteen!".to_vec()).await;
    assert_eq!(r.status(), 400, "wrong checksum (BadDigest)");
    // s3s-fs wrote the bad body anyway (CONTRIBUTING.md): complete must catch it and delete it.
    let done = app.complete("bob", &c.body["upload_id"]).await;
    let message = done.assert_error(422, "verification_failed");
    assert!(message.contains("checksum") || message.contains("metadata"), "{message}");
    assert_eq!(app.object(c.body["key"].as_str().unwrap()).await, None, "object deleted");
    assert_eq!(app.usage_row("bob").await, (0, 0, 0, 0), "reservation released");
    assert_eq!(app.upload_status(c.body["upload_id"].as_str().unwrap()).await, "failed");
    // The failed intent cannot be completed later.
    app.complete("bob", &c.body["upload_id"]).await.assert_error(409, "invalid_state");
}

#[tokio::test]
async fn the_key_is_written_once() {
    let app = TestApp::spawn().await;
    let c =
        app.create("carol", json!({"filename": "x.bin", "content_type": "application/octet-stream", "size": 3})).await;
    assert_eq!(app.put_to(&c.body, b"abc".to_vec()).await.status(), 200);
    assert_eq!(app.put_to(&c.body, b"xyz".to_vec()).await.status(), 412, "If-None-Match: * refuses a second write");
    assert_eq!(app.object(c.body["key"].as_str().unwrap()).await.unwrap(), b"abc");
}

#[tokio::test]
async fn complete_before_the_upload_is_409_and_the_intent_stays_pending() {
    let app = TestApp::spawn().await;
    let c = app.create("dave", json!({"filename": "x.bin", "content_type": "application/pdf", "size": 5})).await;
    let r = app.complete("dave", &c.body["upload_id"]).await;
    r.assert_error(409, "object_missing");
    assert_eq!(app.upload_status(c.body["upload_id"].as_str().unwrap()).await, "pending");
    assert_eq!(app.usage_row("dave").await, (0, 0, 5, 1));
    // Upload now, and complete works.
    assert_eq!(app.put_to(&c.body, b"%PDF-".to_vec()).await.status(), 200);
    assert_eq!(app.complete("dave", &c.body["upload_id"]).await.status, 201);
}

#[tokio::test]
async fn a_zero_byte_put_upload_works() {
    let app = TestApp::spawn().await;
    let asset = app.upload("erin", "empty.txt", "text/plain", b"").await;
    assert_eq!(asset["size"], 0);
    assert_eq!(app.usage_row("erin").await, (0, 1, 0, 0));
}

#[tokio::test]
async fn abort_releases_the_reservation_and_deletes_the_object() {
    let app = TestApp::spawn().await;
    let c = app.create("fay", json!({"filename": "x.bin", "content_type": "image/png", "size": 4})).await;
    let id = c.body["upload_id"].as_str().unwrap();
    assert_eq!(app.put_to(&c.body, b"\x89PNG".to_vec()).await.status(), 200);
    let r = app.delete(&format!("/v1/uploads/{id}"), &app.token("fay")).await;
    assert_eq!(r.status, 204);
    assert_eq!(app.usage_row("fay").await, (0, 0, 0, 0));
    assert_eq!(app.upload_status(id).await, "aborted");
    assert!(app.keys().await.is_empty(), "object deleted");
    // Idempotent; complete after abort is invalid_state.
    assert_eq!(app.delete(&format!("/v1/uploads/{id}"), &app.token("fay")).await.status, 204);
    app.complete("fay", &c.body["upload_id"]).await.assert_error(409, "invalid_state");
    // Aborting a completed upload is refused.
    let asset = app.upload("fay", "y.png", "image/png", b"1234").await;
    let done_upload = app
        .db
        .query_one(
            "select id from uploads where asset_id = $1",
            &[&asset["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get::<_, uuid::Uuid>(0);
    app.delete(&format!("/v1/uploads/{done_upload}"), &app.token("fay")).await.assert_error(409, "invalid_state");
}

#[tokio::test]
async fn an_intent_past_its_grace_expires_releases_quota_and_deletes_the_object() {
    let app = TestApp::spawn_with(crate::support::TestOptions {
        profiles: Some("[profiles.short]\nupload_url_ttl = 1\ncomplete_grace = 1\n".into()),
        ..Default::default()
    })
    .await;
    let c = app
        .create("gus", json!({"filename": "x.txt", "content_type": "text/plain", "size": 2, "profile": "short"}))
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(app.put_to(&c.body, b"hi".to_vec()).await.status(), 200);
    // Past expires_at + complete_grace (1 s + 1 s).
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    // The URL itself no longer works at the store.
    let late = app.put_to(&c.body, b"hi".to_vec()).await;
    assert_eq!(late.status(), 403, "expired presigned URL");
    app.complete("gus", &c.body["upload_id"]).await.assert_error(410, "upload_expired");
    assert_eq!(app.upload_status(c.body["upload_id"].as_str().unwrap()).await, "expired");
    assert_eq!(app.usage_row("gus").await, (0, 0, 0, 0));
    assert!(app.keys().await.is_empty(), "object written before expiry is deleted");
}
