//! Multipart uploads with real bytes: the broker's part plan, part URLs signed with each
//! part's exact size, resume from the store's listing, complete with a part missing, abort.
//! Owners and filenames stay short: s3s-fs fails on multipart keys above ~132 bytes.

use serde_json::{Value, json};

use crate::support::multipart::{PART, bytes};
use crate::support::{TestApp, TestOptions};

const PROFILE: &str = "[profiles.mp]\npart_size = 5242880\nmultipart_threshold = 1048576\n";

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions { profiles: Some(PROFILE.into()), ..Default::default() }).await
}

/// A multipart intent of `size` bytes on the `mp` profile; returns the create answer.
async fn intent(app: &TestApp, owner: &str, size: usize) -> Value {
    let c = app
        .create(
            owner,
            json!({"filename": "v.mp4", "content_type": "video/mp4", "size": size, "profile": "mp", "method": "multipart"}),
        )
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    c.body
}

fn id(intent: &Value) -> &str {
    intent["upload_id"].as_str().unwrap()
}

#[tokio::test]
async fn a_three_part_upload_lands_byte_for_byte_and_the_store_upload_id_stays_private() {
    let app = app().await;
    let size = 2 * PART + 123;
    let data = bytes(size, 7);

    // Create without `method`: above the threshold, the broker picks multipart and plans.
    let c = app
        .create("al", json!({"filename": "v.mp4", "content_type": "video/mp4", "size": size, "profile": "mp"}))
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let intent = c.body;
    let id = id(&intent).to_owned();
    assert_eq!(intent["method"], "multipart");
    assert_eq!(intent["part_size"], PART);
    assert_eq!(intent["part_count"], 3);
    for absent in ["url", "headers", "fields"] {
        assert_eq!(intent[absent], Value::Null, "{absent}");
    }
    let store_id = app.store_upload_id(&id).await.expect("the store's UploadId is kept in the database");
    assert!(!intent.to_string().contains(&store_id), "the store's UploadId never reaches the client");
    assert_eq!(app.usage_row("al").await, (0, 0, size as i64, 1), "reserved");

    // Part URLs, each signed with its exact size.
    let urls = app.part_urls("al", &id, json!([1, 2, 3])).await;
    assert_eq!(urls.status, 200, "{:#}", urls.body);
    let parts = urls.body["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let expected = [PART, PART, 123];
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["part_number"], i + 1);
        assert_eq!(part["size"], expected[i]);
        assert_eq!(part["headers"]["content-length"], expected[i].to_string());
    }

    // The bytes go to the store, part by part.
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let slice = data[i * PART..(i * PART + expected[i])].to_vec();
        let res = app.put_part(part, slice).await;
        assert_eq!(res.status(), 200, "part {}", i + 1);
        etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
    }

    // The listing is sorted, with sizes and the ETags the store gave.
    let listed = app.listed_parts("al", &id).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    assert_eq!(listed.body["part_size"], PART);
    assert_eq!(listed.body["part_count"], 3);
    let listed = listed.body["parts"].as_array().unwrap();
    let numbers_sizes: Vec<(u64, u64)> =
        listed.iter().map(|p| (p["part_number"].as_u64().unwrap(), p["size"].as_u64().unwrap())).collect();
    assert_eq!(numbers_sizes, [(1, PART as u64), (2, PART as u64), (3, 123)]);
    for (p, etag) in listed.iter().zip(&etags) {
        // s3s-fs 0.14.1's ListParts carries no ETag (a real store's does): compare when given.
        let listed_etag = p["etag"].as_str().expect("an etag field");
        assert!(listed_etag.is_empty() || listed_etag == etag, "{listed_etag} vs {etag}");
    }

    // Complete: the asset, the object, the usage.
    let done = app.complete("al", &intent["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["size"], size);
    assert_eq!(done.body["content_type"], "video/mp4");
    assert_eq!(done.body["key"], intent["key"]);
    assert!(app.object(intent["key"].as_str().unwrap()).await.unwrap() == data, "object bytes differ");
    assert_eq!(app.usage_row("al").await, (size as i64, 1, 0, 0), "reservation became usage");
    assert_eq!(app.upload_status(&id).await, "completed");
}

#[tokio::test]
async fn a_client_resumes_by_uploading_only_the_parts_the_listing_lacks() {
    let app = app().await;
    let size = 2 * PART + 9;
    let data = bytes(size, 3);
    let intent = intent(&app, "bo", size).await;
    let id = id(&intent);

    app.upload_parts("bo", id, PART, &data, &[3, 1]).await;
    let listed = app.listed_parts("bo", id).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    let numbers: Vec<u64> =
        listed.body["parts"].as_array().unwrap().iter().map(|p| p["part_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 3], "only what was uploaded, sorted");

    // The client sends only what is missing.
    app.upload_parts("bo", id, PART, &data, &[2]).await;
    let done = app.complete("bo", &intent["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert!(app.object(intent["key"].as_str().unwrap()).await.unwrap() == data, "object bytes differ");
}

#[tokio::test]
async fn complete_with_a_part_missing_is_409_naming_it_and_the_upload_stays_pending() {
    let app = app().await;
    let size = PART + 11;
    let data = bytes(size, 5);
    let intent = intent(&app, "cy", size).await;
    let id = id(&intent);
    app.upload_parts("cy", id, PART, &data, &[1]).await;

    let r = app.complete("cy", &intent["upload_id"]).await;
    let message = r.assert_error(409, "object_missing");
    assert!(message.contains('2') && !message.contains('1'), "names part 2 only: {message}");
    assert_eq!(app.upload_status(id).await, "pending");
    assert_eq!(app.usage_row("cy").await, (0, 0, size as i64, 1), "reservation intact");
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None);

    app.upload_parts("cy", id, PART, &data, &[2]).await;
    let done = app.complete("cy", &intent["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(app.usage_row("cy").await, (size as i64, 1, 0, 0));
}

#[tokio::test]
async fn a_part_url_can_be_asked_for_again_and_both_urls_work() {
    let app = app().await;
    let intent = intent(&app, "di", 100).await;
    let id = id(&intent);
    let first = app.part_urls("di", id, json!([1])).await;
    assert_eq!(first.status, 200, "{:#}", first.body);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = app.part_urls("di", id, json!([1])).await;
    assert_eq!(second.status, 200, "refresh: {:#}", second.body);
    assert_eq!(second.body["parts"][0]["size"], 100);

    let data = bytes(100, 1);
    assert_eq!(app.put_part(&first.body["parts"][0], data.clone()).await.status(), 200, "first URL");
    // S3 allows uploading a part again: the refreshed URL still works after the first.
    assert_eq!(app.put_part(&second.body["parts"][0], data.clone()).await.status(), 200, "refreshed URL");
    let done = app.complete("di", &intent["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await.unwrap(), data);
    let again = app.complete("di", &intent["upload_id"]).await;
    assert_eq!((again.status.as_u16(), &again.body["id"]), (200, &done.body["id"]), "complete is idempotent");
}

#[tokio::test]
async fn the_store_refuses_a_part_of_another_size_than_signed() {
    let app = app().await;
    let intent = intent(&app, "ed", 100).await;
    let urls = app.part_urls("ed", id(&intent), json!([1])).await;
    let part = &urls.body["parts"][0];
    assert_eq!(part["headers"]["content-length"], "100");
    // A body of another length carries another Content-Length than the one signed.
    for n in [99, 101] {
        let res = app.http.put(part["url"].as_str().unwrap()).body(bytes(n, 2)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{n} bytes");
    }
    let store_id = app.store_upload_id(id(&intent)).await.unwrap();
    assert!(app.store_parts(intent["key"].as_str().unwrap(), &store_id).await.is_empty(), "no part stored");
}

#[tokio::test]
async fn a_part_of_another_size_than_planned_fails_verification_and_is_cleaned_up() {
    let app = app().await;
    let intent = intent(&app, "ek", 100).await;
    let (id, key) = (id(&intent), intent["key"].as_str().unwrap());
    let store_id = app.store_upload_id(id).await.unwrap();
    // Written with the broker's own credentials, bypassing the signed size.
    let body = aws_sdk_s3::primitives::ByteStream::from(bytes(60, 1));
    let put = app.s3.upload_part().bucket(&app.bucket).key(key).upload_id(&store_id).part_number(1).body(body);
    put.send().await.expect("the store takes the part");

    let message = app.complete("ek", &intent["upload_id"]).await.assert_error(422, "verification_failed");
    assert!(message.contains('1'), "names part 1: {message}");
    assert_eq!(app.upload_status(id).await, "failed");
    assert_eq!(app.usage_row("ek").await, (0, 0, 0, 0), "reservation released");
    assert!(app.store_parts(key, &store_id).await.is_empty(), "the multipart upload is aborted");
    assert_eq!(app.object(key).await, None);
}

#[tokio::test]
async fn bad_part_numbers_are_400_and_non_multipart_uploads_are_409() {
    let app = app().await;
    let intent = intent(&app, "fi", 100).await;
    let id = id(&intent);
    let many: Vec<u32> = (1..=1001).collect();
    for numbers in [json!([0]), json!([2]), json!([1, 1]), json!([]), json!(many), json!([-1])] {
        let r = app.part_urls("fi", id, numbers.clone()).await;
        r.assert_error(400, "invalid_request");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("part_numbers"), "{numbers}: {:#}", r.body);
    }

    let put = app.create("fi", json!({"filename": "a.txt", "content_type": "text/plain", "size": 3})).await;
    assert_eq!(put.body["method"], "put");
    let put_id = put.body["upload_id"].as_str().unwrap();
    app.part_urls("fi", put_id, json!([1])).await.assert_error(409, "invalid_state");
    app.listed_parts("fi", put_id).await.assert_error(409, "invalid_state");
}

#[tokio::test]
async fn complete_with_the_clients_own_parts_list_checks_the_etags() {
    let app = app().await;
    let intent = intent(&app, "gi", 100).await;
    let id = id(&intent);
    app.upload_parts("gi", id, PART, &bytes(100, 4), &[1]).await;
    let path = format!("/v1/uploads/{id}/complete");
    let wrong = json!({"parts": [{"part_number": 1, "etag": "\"0123456789abcdef0123456789abcdef\""}]});
    let r = app.post(&path, &app.token("gi"), wrong).await;
    let message = r.assert_error(409, "object_missing");
    assert!(message.contains('1'), "names part 1: {message}");
    assert_eq!(app.upload_status(id).await, "pending");
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None);

    // The ETag the store lists is accepted (s3s-fs lists none, a real store the PUT's).
    let listed = app.listed_parts("gi", id).await;
    let etag = listed.body["parts"][0]["etag"].clone();
    let right = json!({"parts": [{"part_number": 1, "etag": etag}]});
    let done = app.post(&path, &app.token("gi"), right).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
}

#[tokio::test]
async fn abort_removes_the_multipart_upload_and_releases_the_reservation() {
    let app = app().await;
    let intent = intent(&app, "hu", 100).await;
    let id = id(&intent);
    let key = intent["key"].as_str().unwrap();
    let store_id = app.store_upload_id(id).await.unwrap();
    app.upload_parts("hu", id, PART, &bytes(100, 6), &[1]).await;
    assert_eq!(app.store_parts(key, &store_id).await, [1], "the part is in the store");

    assert_eq!(app.abort("hu", id).await.status, 204);
    assert_eq!(app.usage_row("hu").await, (0, 0, 0, 0), "reservation released");
    assert_eq!(app.upload_status(id).await, "aborted");
    assert!(app.store_parts(key, &store_id).await.is_empty(), "the store no longer has the upload");
    assert_eq!(app.object(key).await, None);
    // Idempotent, and nothing can be done with it afterwards.
    assert_eq!(app.abort("hu", id).await.status, 204);
    app.part_urls("hu", id, json!([1])).await.assert_error(409, "invalid_state");
    app.complete("hu", &intent["upload_id"]).await.assert_error(409, "invalid_state");
    assert_eq!(app.usage_row("hu").await, (0, 0, 0, 0), "nothing released twice");
}

#[tokio::test]
async fn multipart_refuses_a_checksum_and_an_empty_file() {
    let app = app().await;
    let sum = crate::support::sha256_b64(b"x");
    let r = app
        .create(
            "ia",
            json!({"filename": "v.mp4", "content_type": "video/mp4", "size": 100, "method": "multipart", "checksum_sha256": sum}),
        )
        .await;
    assert!(r.assert_error(400, "invalid_request").contains("checksum_sha256"));
    let r = app
        .create("ia", json!({"filename": "v.mp4", "content_type": "video/mp4", "size": 0, "method": "multipart"}))
        .await;
    assert!(r.assert_error(400, "invalid_request").contains("size"));
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.usage_row("ia").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn abort_succeeds_when_the_store_already_forgot_the_multipart_upload() {
    let app = app().await;
    let intent = intent(&app, "ju", 100).await;
    let id = id(&intent);
    let key = intent["key"].as_str().unwrap();
    let store_id = app.store_upload_id(id).await.unwrap();
    // A lifecycle rule (or an operator) aborted it in the store behind the broker's back.
    app.s3.abort_multipart_upload().bucket(&app.bucket).key(key).upload_id(&store_id).send().await.unwrap();

    let r = app.abort("ju", id).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(app.usage_row("ju").await, (0, 0, 0, 0));
    assert_eq!(app.upload_status(id).await, "aborted");
    let cleaned: bool = app
        .db
        .query_one("select cleaned_at is not null from uploads where id = $1", &[&id.parse::<uuid::Uuid>().unwrap()])
        .await
        .unwrap()
        .get(0);
    assert!(cleaned, "the store cleanup is recorded as done");
}
