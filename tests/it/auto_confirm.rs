//! The confirmer (src/confirm.rs): pending `put`/`post` uploads whose client never calls
//! `complete` (Uppy's single PUT, a phone that died) become verified assets through the
//! same path as `complete`; one whose object never appears is released at expiry; one
//! whose object differs fails verification and is cleaned; two confirmers at once confirm
//! each upload once; the checks back off. Waits poll with a generous bound; nothing timed
//! is asserted.

use std::time::Duration;

use r2_broker::confirm::run_once;
use serde_json::{Value, json};

use crate::support::{TestApp, TestOptions};

/// URLs live 2 s, `complete` is accepted 1 s more.
const SHORT: &str = "[profiles.short]\nupload_url_ttl = 2\ncomplete_grace = 1\n";

/// `background`: the confirmer runs every 0.2 s; else only when a test calls `run_once`.
async fn app(background: bool) -> TestApp {
    TestApp::spawn_with(TestOptions {
        profiles: Some(SHORT.into()),
        tweak: Some(Box::new(move |s| {
            s.confirm_interval = Some(if background { "0.2" } else { "0" }.into());
            s.confirm_backoff = Some("0.2".into());
            s.confirm_backoff_max = Some("60".into());
        })),
        ..Default::default()
    })
    .await
}

async fn create(app: &TestApp, owner: &str, body: Value) -> Value {
    let c = app.create(owner, body).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    c.body
}

fn id_of(intent: &Value) -> &str {
    intent["upload_id"].as_str().unwrap()
}

/// Polls `sql` (one boolean, `$1` the upload id) until it is true.
async fn wait_until(app: &TestApp, id: &str, sql: &str) {
    let id: uuid::Uuid = id.parse().unwrap();
    for _ in 0..600 {
        if app.db.query_one(sql, &[&id]).await.unwrap().get::<_, bool>(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id}: never true: {sql}");
}

async fn metric(app: &TestApp, line_start: &str) -> u64 {
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(line_start).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

#[tokio::test]
async fn an_intent_whose_object_appears_is_confirmed_by_the_background_pass() {
    let app = app(true).await;
    let body = b"uploaded, then the phone died".to_vec();
    let intent =
        create(&app, "ann", json!({"filename": "a.txt", "content_type": "text/plain", "size": body.len()})).await;
    let mp = create(
        &app,
        "ann",
        json!({"filename": "m.bin", "content_type": "video/mp4", "size": 6 * 1024 * 1024, "method": "multipart"}),
    )
    .await;
    assert_eq!(app.put_to(&intent, body.clone()).await.status(), 200);

    wait_until(&app, id_of(&intent), "select status = 'completed' from uploads where id = $1").await;
    assert_eq!(app.usage_row("ann").await, (body.len() as i64, 1, 6 * 1024 * 1024, 1));
    assert!(metric(&app, "broker_confirm_checks_total{outcome=\"confirmed\"}").await >= 1);
    // The client's own complete, later: the same asset, 200, nothing counted twice.
    let done = app.complete("ann", &intent["upload_id"]).await;
    assert_eq!(done.status, 200, "{:#}", done.body);
    let asset_id: uuid::Uuid = done.body["id"].as_str().unwrap().parse().unwrap();
    let recorded: uuid::Uuid = app
        .db
        .query_one("select asset_id from uploads where id = $1", &[&id_of(&intent).parse::<uuid::Uuid>().unwrap()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, asset_id);
    assert_eq!(app.usage_row("ann").await, (body.len() as i64, 1, 6 * 1024 * 1024, 1));
    // Multipart intents are never checked: their parts need the client's complete.
    let unchecked = "select next_check_at is null and status = 'pending' from uploads where id = $1";
    wait_until(&app, id_of(&mp), unchecked).await;
}

#[tokio::test]
async fn an_intent_whose_object_never_appears_is_checked_then_released_at_expiry() {
    let app = app(true).await;
    let intent =
        create(&app, "bea", json!({"filename": "n.txt", "content_type": "text/plain", "size": 3, "profile": "short"}))
            .await;
    assert_eq!(app.usage_row("bea").await, (0, 0, 3, 1));

    // The last check comes before complete_by; after it none is scheduled.
    wait_until(&app, id_of(&intent), "select next_check_at is null from uploads where id = $1").await;
    assert!(metric(&app, "broker_confirm_checks_total{outcome=\"not_yet\"}").await >= 1);
    assert_eq!(app.upload_status(id_of(&intent)).await, "pending");
    // Past complete_by: moved into the past rather than waited for.
    let past = "update uploads set expires_at = now() - interval '1 hour', complete_by = now() - interval '1 hour' \
                where id = $1";
    app.db.execute(past, &[&id_of(&intent).parse::<uuid::Uuid>().unwrap()]).await.unwrap();

    let report = r2_broker::reaper::run_once(&app.state).await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    assert_eq!(app.upload_status(id_of(&intent)).await, "expired");
    assert_eq!(app.usage_row("bea").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_mismatching_object_fails_verification_and_is_cleaned() {
    let app = app(true).await;
    let intent = create(&app, "cat", json!({"filename": "w.txt", "content_type": "text/plain", "size": 5})).await;
    // Written past the presigned URL (the store would refuse 6 bytes on it): the right
    // key, type and upload-id metadata, the wrong size.
    app.s3
        .put_object()
        .bucket(&app.bucket)
        .key(intent["key"].as_str().unwrap())
        .content_type("text/plain")
        .metadata("upload-id", id_of(&intent))
        .body(b"sixsix".to_vec().into())
        .send()
        .await
        .unwrap();

    wait_until(&app, id_of(&intent), "select status = 'failed' and cleaned_at is not null from uploads where id = $1")
        .await;
    assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None, "the object is deleted");
    assert_eq!(app.usage_row("cat").await, (0, 0, 0, 0), "the reservation is released");
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert!(metric(&app, "broker_verification_failures_total{reason=\"size\"}").await >= 1);
    app.complete("cat", &intent["upload_id"]).await.assert_error(409, "invalid_state");
}

#[tokio::test]
async fn two_confirmers_at_once_confirm_each_upload_exactly_once() {
    let app = app(false).await;
    let owners = ["da", "db", "dc"];
    let mut total = [0i64; 3];
    for i in 0..40 {
        let size = i + 1;
        let body = json!({"filename": format!("{i}.txt"), "content_type": "text/plain", "size": size});
        let intent = create(&app, owners[i % 3], body).await;
        assert_eq!(app.put_to(&intent, vec![b'x'; size]).await.status(), 200);
        total[i % 3] += size as i64;
    }
    app.db.execute("update uploads set next_check_at = now() - interval '1 second'", &[]).await.unwrap();

    let (a, b) = tokio::join!(run_once(&app.state), run_once(&app.state));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.confirmed + b.confirmed, 40, "{a:?} {b:?}");
    assert_eq!(a.done_elsewhere + b.done_elsewhere + a.errors + b.errors, 0, "{a:?} {b:?}");
    for (owner, bytes) in owners.iter().zip(total) {
        let n = app.count(&format!("select count(*) from assets where owner = '{owner}'")).await;
        assert_eq!(app.usage_row(owner).await, (bytes, n, 0, 0), "{owner}");
    }
    assert_eq!(app.count("select count(*) from assets").await, 40);
    assert_eq!(run_once(&app.state).await.unwrap(), Default::default(), "nothing left to check");
}

#[tokio::test]
async fn checks_back_off_with_the_uploads_age_and_stop_before_its_deadline() {
    let app = app(false).await;
    let intent = create(&app, "eve", json!({"filename": "b.txt", "content_type": "text/plain", "size": 4})).await;
    let id: uuid::Uuid = id_of(&intent).parse().unwrap();
    let wait = "select extract(epoch from next_check_at - now())::float8 from uploads where id = $1";
    let set = |sql: &'static str| {
        let db = &app.db;
        async move { db.execute(sql, &[&id]).await.unwrap() }
    };

    // Ten seconds old, no object: the next check waits about as long as the upload is old.
    set("update uploads set created_at = now() - interval '10 s', next_check_at = now() where id = $1").await;
    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report.not_yet, 1, "{report:?}");
    let secs: f64 = app.db.query_one(wait, &[&id]).await.unwrap().get(0);
    assert!((9.0..=11.0).contains(&secs), "{secs}");

    // An hour old: capped by BROKER_CONFIRM_BACKOFF_MAX (60 s here).
    set("update uploads set created_at = now() - interval '1 hour', next_check_at = now() where id = $1").await;
    run_once(&app.state).await.unwrap();
    let secs: f64 = app.db.query_one(wait, &[&id]).await.unwrap().get(0);
    assert!((59.0..=60.5).contains(&secs), "{secs}");

    // Close to complete_by: the last check is just before it, then none.
    set("update uploads set next_check_at = now(), complete_by = now() + interval '30 s' where id = $1").await;
    run_once(&app.state).await.unwrap();
    let secs: f64 = app.db.query_one(wait, &[&id]).await.unwrap().get(0);
    assert!((29.0..=30.0).contains(&secs), "{secs}");
    set("update uploads set next_check_at = now(), complete_by = now() + interval '100 ms' where id = $1").await;
    run_once(&app.state).await.unwrap();
    let row =
        app.db.query_one("select next_check_at is null, status from uploads where id = $1", &[&id]).await.unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "pending", "expiry stays the reaper's (or complete's) job");
}
