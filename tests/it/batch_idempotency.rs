//! Batch intents (results in order, quota exact across items and concurrent batches) and
//! `Idempotency-Key` on create, complete, abort and batch.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{TestApp, TestOptions};

const PROFILES: &str = "[profiles.img]\nallowed_content_types = [\"image/png\"]\n";

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions { profiles: Some(PROFILES.into()), ..Default::default() }).await
}

fn item(name: &str, ct: &str, size: i64) -> Value {
    json!({"filename": name, "content_type": ct, "size": size, "profile": "img"})
}

async fn batch(app: &TestApp, owner: &str, items: Vec<Value>, key: Option<&str>) -> crate::support::Call {
    app.call_keyed("POST", "/v1/uploads/batch", &app.token(owner), Some(json!({"uploads": items})), key).await
}

/// How many results are uploads, checking each is an upload or an error.
fn successes(results: &Value) -> usize {
    results
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            assert!(r.get("upload").is_some() != r.get("error").is_some(), "{r}");
            r.get("upload").is_some()
        })
        .count()
}

#[tokio::test]
async fn a_batch_answers_in_order_with_one_error_among_uploads() {
    let app = app().await;
    let items = vec![item("a.png", "image/png", 10), item("b.txt", "text/plain", 20), item("c.png", "image/png", 30)];
    let r = batch(&app, "ba", items, None).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["upload"]["key"].as_str().unwrap().rsplit('/').next(), Some("a.png"));
    assert_eq!(results[0]["upload"]["method"], "put");
    assert_eq!(results[1]["error"]["code"], "unsupported_content_type");
    assert!(results[1]["error"]["message"].is_string());
    assert_eq!(results[2]["upload"]["key"].as_str().unwrap().rsplit('/').next(), Some("c.png"));
    assert_eq!(app.usage_row("ba").await, (0, 0, 40, 2), "two reservations");
    assert_eq!(app.count("select count(*) from uploads").await, 2);
}

#[tokio::test]
async fn a_batch_of_the_wrong_size_or_shape_is_refused_whole() {
    let app = app().await;
    let ok = item("a.png", "image/png", 1);
    let mut unknown = ok.clone();
    unknown["colour"] = json!("red");
    for (what, items) in [
        ("empty", vec![]),
        ("101 items", vec![ok.clone(); 101]),
        ("unknown field", vec![ok.clone(), unknown]),
        ("non-object item", vec![ok.clone(), json!(5)]),
        ("missing field", vec![ok.clone(), json!({"filename": "x.png", "size": 1})]),
    ] {
        let r = batch(&app, "bb", items, None).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(app.count("select count(*) from uploads").await, 0, "{what}: nothing reserved");
    }
    // 100 is allowed.
    let r = batch(&app, "bb", vec![ok; 100], None).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(successes(&r.body["results"]), 100);
}

#[tokio::test]
async fn the_quota_holds_exactly_across_items_of_a_batch() {
    let app = app().await;
    app.set_quota("bc", None, Some(2)).await;
    let items = vec![item("a.png", "image/png", 1), item("b.png", "image/png", 1), item("c.png", "image/png", 1)];
    let r = batch(&app, "bc", items, None).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert!(results[0]["upload"].is_object() && results[1]["upload"].is_object());
    assert_eq!(results[2]["error"]["code"], "quota_exceeded");
    assert_eq!(app.usage_row("bc").await, (0, 0, 2, 2));
}

#[tokio::test]
async fn the_quota_holds_exactly_across_concurrent_batches() {
    const K: i64 = 7;
    let app = app().await;
    app.set_quota("bd", None, Some(K)).await;
    let calls = (0..10).map(|i| {
        let items = (0..3).map(|j| item(&format!("{i}-{j}.png"), "image/png", 100)).collect();
        batch(&app, "bd", items, None)
    });
    let answers = join_all(calls).await;
    let mut ok = 0;
    for a in &answers {
        assert_eq!(a.status, 200, "{:#}", a.body);
        ok += successes(&a.body["results"]);
        for r in a.body["results"].as_array().unwrap().iter().filter(|r| r.get("error").is_some()) {
            assert_eq!(r["error"]["code"], "quota_exceeded");
        }
    }
    assert_eq!(ok as i64, K);
    assert_eq!(app.usage_row("bd").await, (0, 0, K * 100, K));
    assert_eq!(app.count("select count(*) from uploads").await, K);
}

#[tokio::test]
async fn create_with_an_idempotency_key_reserves_once_and_refuses_another_body() {
    let app = app().await;
    let body = json!({"filename": "a.bin", "content_type": "application/pdf", "size": 10});
    let token = app.token("ia");
    let first = app.call_keyed("POST", "/v1/uploads", &token, Some(body.clone()), Some("k-1")).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let again = app.call_keyed("POST", "/v1/uploads", &token, Some(body.clone()), Some("k-1")).await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    assert_eq!(again.body, first.body, "the first answer again");
    assert_eq!(app.count("select count(*) from uploads").await, 1);
    assert_eq!(app.usage_row("ia").await, (0, 0, 10, 1), "one reservation");

    let mut other = body.clone();
    other["size"] = json!(11);
    let r = app.call_keyed("POST", "/v1/uploads", &token, Some(other), Some("k-1")).await;
    r.assert_error(409, "invalid_state");
    assert_eq!(app.count("select count(*) from uploads").await, 1);

    // Another owner's key space is its own.
    let theirs = app.call_keyed("POST", "/v1/uploads", &app.token("ib"), Some(body.clone()), Some("k-1")).await;
    assert_eq!(theirs.status, 201, "{:#}", theirs.body);
    assert_ne!(theirs.body["upload_id"], first.body["upload_id"]);
    assert_eq!(app.usage_row("ib").await, (0, 0, 10, 1));

    // Without a key, each call is a new intent.
    app.call_keyed("POST", "/v1/uploads", &token, Some(body), None).await;
    assert_eq!(app.usage_row("ia").await, (0, 0, 20, 2));
}

#[tokio::test]
async fn twenty_racing_requests_with_one_key_make_one_intent() {
    let app = app().await;
    let body = json!({"filename": "a.bin", "content_type": "application/pdf", "size": 10});
    let token = app.token("ic");
    let answers =
        join_all((0..20).map(|_| app.call_keyed("POST", "/v1/uploads", &token, Some(body.clone()), Some("race"))))
            .await;
    for a in &answers {
        assert_eq!(a.status, 201, "{:#}", a.body);
        assert_eq!(a.body["upload_id"], answers[0].body["upload_id"]);
    }
    assert_eq!(app.count("select count(*) from uploads").await, 1);
    assert_eq!(app.usage_row("ic").await, (0, 0, 10, 1));
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_400() {
    let app = app().await;
    let body = json!({"filename": "a.bin", "content_type": "application/pdf", "size": 1});
    let token = app.token("id");
    let long = "k".repeat(256);
    for key in [long.as_str(), "a\tb", ""] {
        let r = app.call_keyed("POST", "/v1/uploads", &token, Some(body.clone()), Some(key)).await;
        r.assert_error(400, "invalid_request");
    }
    let max = "k".repeat(255);
    let r = app.call_keyed("POST", "/v1/uploads", &token, Some(body), Some(&max)).await;
    assert_eq!(r.status, 201, "255 characters are fine: {:#}", r.body);
    assert_eq!(app.count("select count(*) from uploads").await, 1);
}

#[tokio::test]
async fn complete_and_abort_with_a_key_replay_the_first_answer() {
    let app = app().await;
    let token = app.token("ie");
    let c = app.create("ie", json!({"filename": "a.txt", "content_type": "text/plain", "size": 2})).await;
    assert_eq!(app.put_to(&c.body, b"hi".to_vec()).await.status(), 200);
    let path = format!("/v1/uploads/{}/complete", c.body["upload_id"].as_str().unwrap());
    let first = app.call_keyed("POST", &path, &token, None, Some("done-1")).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let again = app.call_keyed("POST", &path, &token, None, Some("done-1")).await;
    assert_eq!(again.status, 201, "the first answer, replayed");
    assert_eq!(again.body, first.body);
    assert_eq!(app.count("select count(*) from assets").await, 1);
    assert_eq!(app.usage_row("ie").await, (2, 1, 0, 0));

    let c = app.create("ie", json!({"filename": "b.txt", "content_type": "text/plain", "size": 3})).await;
    let path = format!("/v1/uploads/{}", c.body["upload_id"].as_str().unwrap());
    for _ in 0..2 {
        let r = app.call_keyed("DELETE", &path, &token, None, Some("gone-1")).await;
        assert_eq!(r.status, 204, "{:#}", r.body);
    }
    assert_eq!(app.upload_status(c.body["upload_id"].as_str().unwrap()).await, "aborted");
    assert_eq!(app.usage_row("ie").await, (2, 1, 0, 0));
}

#[tokio::test]
async fn a_batch_with_a_key_replays_the_same_results() {
    let app = app().await;
    let items = vec![item("a.png", "image/png", 5), item("b.gif", "image/gif", 5), item("c.png", "image/png", 5)];
    let first = batch(&app, "if", items.clone(), Some("gallery-1")).await;
    assert_eq!(first.status, 200, "{:#}", first.body);
    let again = batch(&app, "if", items.clone(), Some("gallery-1")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(app.count("select count(*) from uploads").await, 2);
    assert_eq!(app.usage_row("if").await, (0, 0, 10, 2));
    // The same key on another body is refused.
    let r = batch(&app, "if", items[..2].to_vec(), Some("gallery-1")).await;
    r.assert_error(409, "invalid_state");
}

/// With the database down no item can be reserved: the batch is the same `503` +
/// `Retry-After` as a single create, and the answer is not kept under its key, so the
/// retry after recovery runs for real.
#[tokio::test]
async fn a_batch_during_an_outage_is_503_and_not_replayed_after_recovery() {
    let app =
        TestApp::spawn_with(TestOptions { profiles: Some(PROFILES.into()), db_proxy: true, ..Default::default() })
            .await;
    let items = vec![item("a.png", "image/png", 10), item("b.png", "image/png", 20)];
    let proxy = app.db_proxy.as_ref().unwrap();

    proxy.cut();
    let r = batch(&app, "bo", items.clone(), None).await;
    r.assert_error(503, "unavailable");
    assert!(r.headers.contains_key("retry-after"));
    let r = batch(&app, "bo", items.clone(), Some("gallery-1")).await;
    r.assert_error(503, "unavailable");
    proxy.restore();

    // The background discard of the key needs the database back; give it a moment.
    let mut replay = batch(&app, "bo", items.clone(), Some("gallery-1")).await;
    for _ in 0..40 {
        if replay.status != 409 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        replay = batch(&app, "bo", items.clone(), Some("gallery-1")).await;
    }
    assert_eq!(replay.status, 200, "{:#}", replay.body);
    assert_eq!(successes(&replay.body["results"]), 2);
    assert_eq!(app.usage_row("bo").await, (0, 0, 30, 2), "reserved once, after recovery");
    let again = batch(&app, "bo", items, Some("gallery-1")).await;
    assert_eq!(again.body, replay.body, "the successful answer is the one replayed");
    assert_eq!(app.usage_row("bo").await, (0, 0, 30, 2));
}
