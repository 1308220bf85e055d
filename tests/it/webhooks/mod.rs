//! Signed webhook delivery against a real receiver (support/receiver.rs) and the real
//! database: events are written to the outbox as the workflows write them
//! (`db::events::insert`), delivered by `webhooks::deliver_once`, and every step is checked
//! in the receiver's log and in the `webhook_events` rows. Signatures are checked with the
//! Standard Webhooks reference verifier and recomputed with aws-lc-rs's HMAC. Backoffs are
//! long (100 s): instead of waiting, tests move `next_attempt_at` to now, as the reaper's
//! tests move deadlines. The admin routes and the housekeeping are in `admin`.

mod admin;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use r2_broker::config::Settings;
use r2_broker::events::{Event, EventType};
use r2_broker::webhooks::{DeliveryReport, deliver_once};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::receiver::{Received, Receiver};
use crate::support::{TestApp, TestOptions};

const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const BACKOFF_SECS: f64 = 100.0;

/// A test app whose events go to `url`, with backoffs of 100 s.
fn options(url: &str, max_attempts: u32, profiles: Option<&str>) -> TestOptions {
    let url = url.to_owned();
    let tweak = move |s: &mut Settings| {
        s.webhook_url = Some(url);
        s.webhook_secret = Some(SECRET.into());
        s.webhook_backoff = Some(BACKOFF_SECS.to_string());
        s.webhook_backoff_max = Some("1000".into());
        s.webhook_max_attempts = Some(max_attempts.to_string());
        s.webhook_timeout = Some("5".into());
        // The background worker would deliver too: these tests run the passes themselves.
        s.jobs = Some("off".into());
    };
    let profiles = profiles.map(str::to_owned);
    TestOptions { profiles, tweak: Some(Box::new(tweak)), ..Default::default() }
}

async fn app_for(url: &str, max_attempts: u32, profiles: Option<&str>) -> TestApp {
    TestApp::spawn_with(options(url, max_attempts, profiles)).await
}

/// An `asset.ready` event for `owner` in `profile`, written as the workflows write it.
async fn insert_event(app: &TestApp, owner: &str, profile: &str) -> Event {
    let data = json!({"id": Uuid::now_v7(), "owner": owner, "filename": "cat.png", "state": "ready"});
    let event = Event::new(EventType::AssetReady, &data);
    // On a pooled connection, as the workflows write it (`insert` takes deadpool's client).
    let pg: tokio_postgres::Config = app.database_url.parse().unwrap();
    let manager = deadpool_postgres::Manager::new(pg, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap();
    r2_broker::db::events::insert(&pool.get().await.unwrap(), owner, profile, &event).await.unwrap();
    event
}

#[derive(Debug)]
struct Row {
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<String>,
    delivered: bool,
    failed: bool,
    /// Seconds from now to `next_attempt_at`; `None` when it is null.
    next_in: Option<f64>,
}

async fn row(app: &TestApp, id: Uuid) -> Row {
    let sql = "select attempts, last_status, last_error, delivered_at is not null, failed_at is not null, \
               extract(epoch from next_attempt_at - now())::float8 from webhook_events where id = $1";
    let r = app.db.query_one(sql, &[&id]).await.unwrap();
    Row {
        attempts: r.get(0),
        last_status: r.get(1),
        last_error: r.get(2),
        delivered: r.get(3),
        failed: r.get(4),
        next_in: r.get(5),
    }
}

/// Every pending event due now (its backoff waited out).
async fn make_due(app: &TestApp) {
    app.db
        .execute("update webhook_events set next_attempt_at = now() where next_attempt_at is not null", &[])
        .await
        .unwrap();
}

async fn deliver(app: &TestApp) -> DeliveryReport {
    deliver_once(&app.state).await.expect("a delivery pass")
}

fn report(delivered: u64, failed_attempts: u64, gave_up: u64, due: i64) -> DeliveryReport {
    DeliveryReport { delivered, failed_attempts, gave_up, errors: 0, due }
}

/// The signature recomputed from the specification with another HMAC implementation.
fn expected_signature(r: &Received) -> String {
    use aws_lc_rs::hmac;
    let key = STANDARD.decode(SECRET.strip_prefix("whsec_").unwrap()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let signed = format!(
        "{}.{}.{}",
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        std::str::from_utf8(&r.body).unwrap()
    );
    format!("v1,{}", STANDARD.encode(hmac::sign(&key, signed.as_bytes()).as_ref()))
}

#[tokio::test]
async fn a_delivered_event_carries_its_body_and_a_signature_the_reference_verifier_accepts() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let event = insert_event(&app, "user_1", "default").await;

    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hooks"));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("webhook-id"), event.id.to_string());
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 300, "this attempt's time");
    assert_eq!(r.json(), serde_json::to_value(&event).unwrap());
    assert_eq!(r.json()["type"], "asset.ready");
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier.verify(&r.body, &r.headers).expect("the reference verifier accepts the signature");
    assert_eq!(r.header("webhook-signature"), expected_signature(r));
    let mut tampered = r.body.clone();
    tampered.extend_from_slice(b" ");
    assert!(verifier.verify(&tampered, &r.headers).is_err(), "the signature covers the body");
    let other = standardwebhooks::Webhook::new("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0xMjM0").unwrap();
    assert!(other.verify(&r.body, &r.headers).is_err(), "and is made with the configured secret");

    let row = row(&app, event.id).await;
    assert!(row.delivered && !row.failed && row.next_in.is_none(), "{row:?}");
    assert_eq!((row.attempts, row.last_status, row.last_error), (1, Some(200), None));

    assert_eq!(deliver(&app).await, report(0, 0, 0, 0), "a delivered event is not sent again");
    assert_eq!(receiver.received().len(), 1);
    let metrics = app.state.metrics.render();
    assert!(metrics.contains("broker_webhook_deliveries_total{outcome=\"delivered\"} 1"), "{metrics}");
    assert!(metrics.contains("broker_webhook_events_due 0"), "{metrics}");
    assert!(metrics.contains("broker_webhook_delivery_duration_seconds_count 1"), "{metrics}");
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_with_the_same_id_once_it_is_back() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let event = insert_event(&app, "user_1", "default").await;
    receiver.stop().await;

    assert_eq!(deliver(&app).await, report(0, 1, 0, 0));
    let first = row(&app, event.id).await;
    assert_eq!((first.attempts, first.last_status, first.delivered, first.failed), (1, None, false, false));
    let error = first.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("Connection refused"), "the cause: {error}");
    assert!(!error.contains("/hooks"), "without the URL (it may carry a token): {error}");
    let next = first.next_in.unwrap();
    assert!((BACKOFF_SECS * 0.8 - 5.0..=BACKOFF_SECS * 1.2).contains(&next), "the first backoff ±20 %: {next}");

    assert_eq!(deliver(&app).await, report(0, 0, 0, 0), "not due before its backoff");
    assert_eq!(row(&app, event.id).await.attempts, 1);

    make_due(&app).await;
    assert_eq!(deliver(&app).await, report(0, 1, 0, 0));
    let second = row(&app, event.id).await;
    assert_eq!(second.attempts, 2);
    let next = second.next_in.unwrap();
    assert!((BACKOFF_SECS * 1.6 - 5.0..=BACKOFF_SECS * 2.4).contains(&next), "the backoff doubled: {next}");
    assert!(receiver.received().is_empty());

    receiver.start_again().await;
    make_due(&app).await;
    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), event.id.to_string());
    assert_eq!(got[0].json(), serde_json::to_value(&event).unwrap());
    standardwebhooks::Webhook::new(SECRET).unwrap().verify(&got[0].body, &got[0].headers).unwrap();
    let last = row(&app, event.id).await;
    assert!(last.delivered && !last.failed && last.next_in.is_none(), "{last:?}");
    assert_eq!((last.attempts, last.last_status, last.last_error), (3, Some(200), None));
}

#[tokio::test]
async fn two_passes_at_once_deliver_each_event_exactly_once() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(insert_event(&app, &format!("user_{}", i % 3), "default").await.id.to_string());
    }

    let (a, b) = tokio::join!(deliver_once(&app.state), deliver_once(&app.state));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a.delivered + b.delivered, 40, "{a:?} {b:?}");
    assert_eq!(a.failed_attempts + b.failed_attempts + a.errors + b.errors, 0);
    let mut got: Vec<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "every event once");
    assert_eq!(
        app.count("select count(*) from webhook_events where delivered_at is not null and attempts = 1").await,
        40
    );
}

/// At least once: the receiver accepted the event, but the database went away before the
/// broker recorded it. The event stays pending (leased), and once the lease is over it is
/// sent again, with the same id and body.
#[tokio::test]
async fn an_event_whose_delivery_was_not_recorded_is_sent_again_with_the_same_id() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(TestOptions { db_proxy: true, ..options(&receiver.url(), 5, None) }).await;
    let event = insert_event(&app, "user_1", "default").await;
    let proxy = app.db_proxy.as_ref().unwrap();

    receiver.hold();
    let pass = tokio::spawn({
        let state = app.state.clone();
        async move { deliver_once(&state).await }
    });
    receiver.wait_for(1).await;
    proxy.cut();
    receiver.release();
    let failed = pass.await.unwrap();

    let err = failed.expect_err("the pass could not record the delivery");
    assert_eq!(err.code(), "unavailable", "{err:?}");
    proxy.restore();
    let pending = row(&app, event.id).await;
    assert!(!pending.delivered && !pending.failed && pending.attempts == 0, "{pending:?}");
    assert!(pending.next_in.is_some_and(|s| s > 0.0), "leased: {pending:?}");
    assert_eq!(deliver(&app).await, report(0, 0, 0, 0), "not again while the lease holds");

    make_due(&app).await; // the lease ran out
    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].header("webhook-id"), got[1].header("webhook-id")),
        (&*event.id.to_string(), &*event.id.to_string())
    );
    assert_eq!(got[0].body, got[1].body, "the same bytes");
    let delivered = row(&app, event.id).await;
    assert!(delivered.delivered && delivered.attempts == 1, "{delivered:?}");
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let receiver = Receiver::start().await;
    receiver.answer(307);
    let app = app_for(&receiver.url(), 5, None).await;
    let event = insert_event(&app, "user_1", "default").await;

    assert_eq!(deliver(&app).await, report(0, 1, 0, 0));

    let got = receiver.received();
    assert_eq!(got.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/hooks"], "no request to /moved");
    let r = row(&app, event.id).await;
    assert_eq!((r.attempts, r.last_status, r.delivered), (1, Some(307), false));
    assert_eq!(r.last_error.as_deref(), Some("status 307: redirects are not followed"));
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_within_the_timeout_is_a_failed_attempt() {
    let receiver = Receiver::start().await;
    let mut opts = options(&receiver.url(), 5, None);
    let base = opts.tweak.take().unwrap();
    opts.tweak = Some(Box::new(move |s: &mut Settings| {
        base(s);
        s.webhook_timeout = Some("0.5".into());
    }));
    let app = TestApp::spawn_with(opts).await;
    let event = insert_event(&app, "user_1", "default").await;
    receiver.hold();

    assert_eq!(deliver(&app).await, report(0, 1, 0, 0));

    receiver.release();
    assert_eq!(receiver.received().len(), 1);
    let r = row(&app, event.id).await;
    assert_eq!((r.attempts, r.last_status, r.delivered, r.failed), (1, None, false, false));
    let error = r.last_error.unwrap_or_default();
    assert!(error.starts_with("no answer within the timeout"), "{error}");
    assert!(r.next_in.is_some_and(|s| s > BACKOFF_SECS * 0.8 - 5.0), "the backoff, not the lease: {:?}", r.next_in);
}

/// The whole path: `complete` writes `asset.ready` in its transaction, DELETE writes
/// `asset.deleted`, and the receiver gets both, signed, with the asset as `data`.
#[tokio::test]
async fn an_uploaded_asset_is_reported_ready_and_then_deleted() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let asset = app.upload("user_1", "notes.txt", "text/plain", b"hello, receiver").await;

    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));
    let deleted = app.delete(&format!("/v1/assets/{}", asset["id"].as_str().unwrap()), &app.token("user_1")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));

    let got = receiver.received();
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let events: Vec<Value> = got
        .iter()
        .map(|r| {
            verifier.verify(&r.body, &r.headers).expect("signed");
            assert_eq!(r.header("webhook-id"), r.json()["id"].as_str().unwrap());
            r.json()
        })
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["asset.ready", "asset.deleted"]);
    for e in &events {
        assert_eq!((&e["data"]["id"], &e["data"]["owner"]), (&asset["id"], &asset["owner"]), "{e:#}");
    }
    assert_eq!(events[0]["data"]["filename"], "notes.txt");
    assert_eq!(app.count("select count(*) from webhook_events where delivered_at is not null").await, 2);
}
