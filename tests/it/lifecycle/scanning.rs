//! The scanning hook end to end: `complete` leaves the asset `processing`, the job worker
//! streams it to a real clamd, and the state decides downloads and listings.

use serde_json::json;

use super::{run_jobs, state_of, upload_and_complete};
use crate::support::app::{TestApp, TestOptions};
use crate::support::clamd::{self, EICAR, EICAR_SIGNATURE};

const PROFILES: &str = r#"
[profiles.docs]
allowed_content_types = ["text/plain", "application/pdf"]
scan = ["clamd"]
"#;

async fn app_with(clamd: &str) -> TestApp {
    let addr = format!("tcp://{clamd}");
    TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(move |s| s.clamd = Some(addr))),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn an_eicar_file_is_quarantined_keeps_its_object_and_gets_no_download_url() {
    // Arrange
    let Some(clamd) = clamd::start().await else { return };
    let app = app_with(&clamd.addr).await;
    let (intent, done) = upload_and_complete(&app, "eve", "docs", "invoice.txt", "text/plain", EICAR).await;

    // complete verified it, but it is only `processing`: no URL yet, one job queued
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["state"], "processing");
    let id = done.body["id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&app, &id).await, ("processing".into(), None, 1));
    let early = app.get(&format!("/v1/assets/{id}/download-url"), &app.token("eve")).await;
    assert!(early.assert_error(409, "invalid_state").contains("processing"));

    // Act: one job pass
    let report = run_jobs(&app).await;

    // Assert: quarantined with clamd's signature name; the object stays (for review) and
    // still counts; no download URL, single or batch; the job is gone
    assert_eq!(report.quarantined, 1, "{report:?}");
    let (state, reason, jobs) = state_of(&app, &id).await;
    assert_eq!((state.as_str(), jobs), ("quarantined", 0));
    assert_eq!(reason.as_deref(), Some(format!("clamd: {EICAR_SIGNATURE}").as_str()));
    let got = app.get(&format!("/v1/assets/{id}"), &app.token("eve")).await;
    assert_eq!(
        (got.body["state"].as_str(), got.body["state_reason"].as_str()),
        (Some("quarantined"), reason.as_deref())
    );
    let refused = app.get(&format!("/v1/assets/{id}/download-url"), &app.token("eve")).await;
    assert!(refused.assert_error(409, "invalid_state").contains("quarantined"));
    let batch = app.post("/v1/assets/download-urls", &app.token("eve"), json!({"ids": [id]})).await;
    assert_eq!(batch.body, json!({"urls": {}}), "absent from a batch too");
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await.as_deref(), Some(EICAR));
    assert_eq!(app.usage_row("eve").await, (EICAR.len() as i64, 1, 0, 0));
    assert_eq!(app.state.metrics.job_outcomes.with_label_values(&["scan", "quarantined"]).get(), 1);

    // Deleting it removes the object and the usage (once).
    assert_eq!(app.delete(&format!("/v1/assets/{id}"), &app.token("eve")).await.status, 204);
    assert_eq!(app.usage_row("eve").await, (0, 0, 0, 0));
    assert!(app.keys().await.is_empty());
}

#[tokio::test]
async fn a_clean_file_becomes_ready_after_its_scan_and_listings_follow_the_state() {
    let Some(clamd) = clamd::start().await else { return };
    let app = app_with(&clamd.addr).await;
    let clean = b"quarterly numbers, nothing to see".to_vec();
    let (_, done) = upload_and_complete(&app, "eve", "docs", "q3.txt", "text/plain", &clean).await;
    let (_, bad) = upload_and_complete(&app, "eve", "docs", "bad.txt", "text/plain", EICAR).await;
    let (good_id, bad_id) = (done.body["id"].as_str().unwrap().to_owned(), bad.body["id"].as_str().unwrap().to_owned());
    let listed = app.get("/v1/assets?state=processing", &app.token("eve")).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2, "{:#}", listed.body);

    let report = run_jobs(&app).await;

    assert_eq!((report.ready, report.quarantined), (1, 1), "{report:?}");
    assert_eq!(state_of(&app, &good_id).await, ("ready".into(), None, 0));
    let url = app.get(&format!("/v1/assets/{good_id}/download-url"), &app.token("eve")).await;
    assert_eq!(url.status, 200, "{:#}", url.body);
    let body = app.http.get(url.body["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), clean.as_slice());
    let ready = app.get("/v1/assets?state=ready", &app.token("eve")).await;
    let ids: Vec<&str> = ready.body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [good_id.as_str()]);
    let quarantined = app.get("/v1/assets?state=quarantined&profile=docs", &app.token("eve")).await;
    assert_eq!(quarantined.body["items"][0]["id"], bad_id.as_str());
    app.get("/v1/assets?state=lost", &app.token("eve")).await.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_scanner_that_is_down_leaves_the_asset_processing_and_retries_later() {
    // A clamd address nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = app_with(&free.to_string()).await;
    let (_, done) = upload_and_complete(&app, "eve", "docs", "a.txt", "text/plain", b"hello").await;
    let id = done.body["id"].as_str().unwrap().to_owned();

    let report = run_jobs(&app).await;

    // Retried, not quarantined yet: due again later, with the reason recorded.
    assert_eq!(report.retried, 1, "{report:?}");
    let asset: uuid::Uuid = id.parse().unwrap();
    let row = app
        .db
        .query_one(
            "select attempts, last_error, run_after > now() + interval '2 seconds' from asset_jobs where asset_id = $1",
            &[&asset],
        )
        .await
        .unwrap();
    let (attempts, error, later): (i32, String, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(attempts, 1);
    assert!(error.starts_with("clamd: "), "{error}");
    assert!(later, "backed off");
    assert_eq!(state_of(&app, &id).await.0, "processing");
    assert_eq!(app.state.metrics.job_outcomes.with_label_values(&["scan", "retry"]).get(), 1);

    // Deleting a processing asset takes its job with it.
    assert_eq!(app.delete(&format!("/v1/assets/{id}"), &app.token("eve")).await.status, 204);
    assert_eq!(app.count("select count(*) from asset_jobs").await, 0);
    assert_eq!(app.usage_row("eve").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_moderation_service_behind_the_http_validator_decides_ready_or_quarantined() {
    use crate::support::validator::{Rule, Validator};
    // Arrange: a validator that refuses (422) anything, then one that passes
    let validator = Validator::start(Rule::Answer { status: 422, body: r#"{"reason": "nudity"}"#.into() }).await;
    let url = validator.url.clone();
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some("[profiles.moderated]\nallowed_content_types = [\"text/plain\"]\nscan = [\"http\"]\n".into()),
        tweak: Some(Box::new(move |s| s.scan_url = Some(url))),
        ..Default::default()
    })
    .await;
    let (_, refused) = upload_and_complete(&app, "mo", "moderated", "a.txt", "text/plain", b"first").await;

    // Act
    let first = run_jobs(&app).await;
    validator.set(Rule::Pass);
    let (_, passed) = upload_and_complete(&app, "mo", "moderated", "b.txt", "text/plain", b"second").await;
    let second = run_jobs(&app).await;

    // Assert: the validator fetched each object through the presigned URL it was given, and
    // its answer decided the state
    assert_eq!((first.quarantined, second.ready), (1, 1), "{first:?} {second:?}");
    let (state, reason, _) = state_of(&app, refused.body["id"].as_str().unwrap()).await;
    assert_eq!((state.as_str(), reason.as_deref()), ("quarantined", Some("http: nudity")));
    assert_eq!(state_of(&app, passed.body["id"].as_str().unwrap()).await.0, "ready");
    let seen = validator.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].fetched.as_ref().map(|(s, b)| (*s, b.as_slice())), Some((200, &b"first"[..])));
    assert_eq!(seen[1].body["asset"]["id"], passed.body["id"]);
}

#[tokio::test]
async fn an_object_replaced_after_complete_is_quarantined_not_scanned_as_verified() {
    // Arrange: verified at complete, then overwritten in the store (as a POST policy still
    // valid on S3 could) with other bytes of the same size
    let Some(clamd) = clamd::start().await else { return };
    let app = app_with(&clamd.addr).await;
    let (intent, done) = upload_and_complete(&app, "eve", "docs", "a.txt", "text/plain", b"checked!").await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    let key = intent["key"].as_str().unwrap();
    app.s3
        .put_object()
        .bucket(&app.bucket)
        .key(key)
        .content_type("text/plain")
        .body(b"swapped!".to_vec().into())
        .send()
        .await
        .unwrap();

    // Act
    let report = run_jobs(&app).await;

    // Assert: what is there now was never verified, so it is not scanned as if it were
    assert_eq!(report.quarantined, 1, "{report:?}");
    let (state, reason, _) = state_of(&app, done.body["id"].as_str().unwrap()).await;
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("quarantined", Some("clamd: the object changed after it was verified"))
    );
}
