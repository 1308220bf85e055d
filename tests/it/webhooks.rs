//! Signed webhook delivery against a real receiver (support/receiver.rs) and the real
//! database: events are written to the outbox as the workflows write them
//! (`db::events::insert`), delivered by `webhooks::deliver_once`, and every step is checked
//! in the receiver's log and in the `webhook_events` rows. Signatures are checked with the
//! Standard Webhooks reference verifier and recomputed with aws-lc-rs's HMAC. Backoffs are
//! long (100 s): instead of waiting, tests move `next_attempt_at` to now, as the reaper's
//! tests move deadlines.

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

async fn app_for(url: &str, max_attempts: u32, profiles: Option<&str>) -> TestApp {
    let url = url.to_owned();
    let tweak = move |s: &mut Settings| {
        s.webhook_url = Some(url);
        s.webhook_secret = Some(SECRET.into());
        s.webhook_backoff = Some(BACKOFF_SECS.to_string());
        s.webhook_backoff_max = Some("1000".into());
        s.webhook_max_attempts = Some(max_attempts.to_string());
        s.webhook_timeout = Some("5".into());
    };
    let profiles = profiles.map(str::to_owned);
    TestApp::spawn_with(TestOptions { profiles, tweak: Some(Box::new(tweak)), ..Default::default() }).await
}

/// An `asset.ready` event for `owner` in `profile`, written as the workflows write it.
async fn insert_event(app: &TestApp, owner: &str, profile: &str) -> Event {
    let data = json!({"id": Uuid::now_v7(), "owner": owner, "filename": "cat.png", "state": "ready"});
    let event = Event::new(EventType::AssetReady, &data);
    r2_broker::db::events::insert(&app.db, owner, profile, &event).await.unwrap();
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
async fn an_event_given_up_is_listed_and_delivered_after_an_admin_retry() {
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let app = app_for(&receiver.url(), 2, None).await;
    let event = insert_event(&app, "user_1", "default").await;
    let admin = app.admin_token("admin");

    assert_eq!(deliver(&app).await, report(0, 1, 0, 0));
    make_due(&app).await;
    assert_eq!(deliver(&app).await, report(0, 0, 1, 0), "the second attempt was the last");
    let given_up = row(&app, event.id).await;
    assert!(given_up.failed && !given_up.delivered && given_up.next_in.is_none(), "{given_up:?}");
    assert_eq!((given_up.attempts, given_up.last_status), (2, Some(500)));
    assert_eq!(given_up.last_error.as_deref(), Some("status 500: receiver says no"));
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.header("webhook-id") == event.id.to_string()), "the same id on every attempt");
    assert_eq!(deliver(&app).await, report(0, 0, 0, 0), "a failed event is not tried again by itself");

    let listed = app.get("/v1/admin/webhooks/failed", &admin).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    let mut schema = [
        "id",
        "owner",
        "type",
        "profile",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "failed_at",
        "payload",
    ];
    schema.sort_unstable();
    assert_eq!(fields, schema, "exactly openapi.yaml's WebhookEvent");
    assert_eq!(item["id"], event.id.to_string());
    assert_eq!(
        (item["owner"].as_str(), item["type"].as_str(), item["profile"].as_str()),
        (Some("user_1"), Some("asset.ready"), Some("default"))
    );
    assert_eq!((item["attempts"].as_i64(), item["last_status"].as_i64()), (Some(2), Some(500)));
    assert_eq!(item["last_error"], "status 500: receiver says no");
    assert_eq!(item["payload"], serde_json::to_value(&event).unwrap());
    assert!(item["failed_at"].is_string() && item["created_at"].is_string());
    assert_eq!((&item["next_attempt_at"], &item["delivered_at"]), (&Value::Null, &Value::Null));

    receiver.answer(200);
    let retried = app.post(&format!("/v1/admin/webhooks/user_1/{}/retry", event.id), &admin, json!({})).await;
    assert_eq!(retried.status, 200, "{:#}", retried.body);
    assert_eq!((retried.body["attempts"].as_i64(), &retried.body["failed_at"]), (Some(0), &Value::Null));
    assert!(retried.body["next_attempt_at"].is_string());
    let reset = row(&app, event.id).await;
    assert!(!reset.failed && reset.attempts == 0 && reset.next_in.is_some_and(|s| s <= 0.0), "{reset:?}");

    assert_eq!(deliver(&app).await, report(1, 0, 0, 0));
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(receiver.received()[2].header("webhook-id"), event.id.to_string());
    assert!(row(&app, event.id).await.delivered);
    let listed = app.get("/v1/admin/webhooks/failed", &admin).await;
    assert_eq!(listed.body["items"], json!([]));

    let again = app.post(&format!("/v1/admin/webhooks/user_1/{}/retry", event.id), &admin, json!({})).await;
    again.assert_error(409, "invalid_state");
    let unknown = app.post(&format!("/v1/admin/webhooks/user_1/{}/retry", Uuid::now_v7()), &admin, json!({})).await;
    unknown.assert_error(404, "not_found");
    let other_owner = app.post(&format!("/v1/admin/webhooks/user_2/{}/retry", event.id), &admin, json!({})).await;
    other_owner.assert_error(404, "not_found");
    let not_an_id = app.post("/v1/admin/webhooks/user_1/123/retry", &admin, json!({})).await;
    not_an_id.assert_error(404, "not_found");
}

#[tokio::test]
async fn events_go_to_their_profiles_endpoint_and_retry_failed_makes_every_failed_one_due() {
    let global = Receiver::start().await;
    let own = Receiver::start().await;
    let profiles = format!("[profiles.quiet]\nwebhooks = false\n\n[profiles.own]\nwebhook_url = \"{}\"\n", own.url());
    let app = app_for(&global.url(), 5, Some(&profiles)).await;
    let admin = app.admin_token("admin");
    let mut quiet = Vec::new();
    for _ in 0..3 {
        quiet.push(insert_event(&app, "user_1", "quiet").await.id);
    }
    let to_own = insert_event(&app, "user_2", "own").await;
    let to_global = insert_event(&app, "user_2", "default").await;

    assert_eq!(deliver(&app).await, report(2, 0, 3, 0));
    assert_eq!(
        own.received().iter().map(|r| r.header("webhook-id").to_owned()).collect::<Vec<_>>(),
        [to_own.id.to_string()]
    );
    assert_eq!(
        global.received().iter().map(|r| r.header("webhook-id").to_owned()).collect::<Vec<_>>(),
        [to_global.id.to_string()]
    );
    for id in &quiet {
        let r = row(&app, *id).await;
        assert!(r.failed && r.next_in.is_none(), "{r:?}");
        assert_eq!((r.attempts, r.last_status, r.last_error.as_deref()), (0, None, Some("no endpoint configured")));
    }

    // Newest failure first, two per page.
    let order: Vec<String> = app
        .db
        .query("select id::text from webhook_events where failed_at is not null order by failed_at desc, id desc", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let page1 = app.get("/v1/admin/webhooks/failed?limit=2", &admin).await;
    assert_eq!(page1.status, 200, "{:#}", page1.body);
    let cursor = page1.body["next_cursor"].as_str().expect("a next page").to_owned();
    let page2 = app.get(&format!("/v1/admin/webhooks/failed?limit=2&cursor={cursor}"), &admin).await;
    assert_eq!(page2.body["next_cursor"], Value::Null);
    let listed: Vec<String> = [&page1, &page2]
        .iter()
        .flat_map(|p| p.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(listed, order);
    app.get("/v1/admin/webhooks/failed?cursor=bm9wZQ", &admin).await.assert_error(400, "invalid_request");
    app.get("/v1/admin/webhooks/failed?limit=0", &admin).await.assert_error(400, "invalid_request");
    app.get("/v1/admin/webhooks/failed?owner=x", &admin).await.assert_error(400, "invalid_request");

    let all = app.post("/v1/admin/webhooks/retry-failed", &admin, json!({})).await;
    assert_eq!(all.status, 200, "{:#}", all.body);
    assert_eq!(all.body, json!({"retried": 3, "more": false}));
    for id in &quiet {
        let r = row(&app, *id).await;
        assert!(!r.failed && r.attempts == 0 && r.next_in.is_some_and(|s| s <= 0.0), "{r:?}");
    }
    // The endpoint is resolved at delivery: the profile still has events off.
    assert_eq!(deliver(&app).await, report(0, 0, 3, 0));
    let again = app.post("/v1/admin/webhooks/retry-failed", &admin, json!({})).await;
    assert_eq!(again.body, json!({"retried": 3, "more": false}));
    let none = app.post("/v1/admin/webhooks/retry-failed", &admin, json!({})).await;
    assert_eq!(none.body, json!({"retried": 0, "more": false}), "nothing failed is left");
}

#[tokio::test]
async fn admin_webhook_routes_need_the_admin_scope() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let event = insert_event(&app, "user_1", "default").await;
    let user = app.token("user_1");
    let retry = format!("/v1/admin/webhooks/user_1/{}/retry", event.id);
    app.get("/v1/admin/webhooks/failed", &user).await.assert_error(403, "forbidden");
    app.post(&retry, &user, json!({})).await.assert_error(403, "forbidden");
    app.post("/v1/admin/webhooks/retry-failed", &user, json!({})).await.assert_error(403, "forbidden");
    app.call("GET", "/v1/admin/webhooks/failed", None, None).await.assert_error(401, "unauthorized");
    app.call("POST", &retry, None, None).await.assert_error(401, "unauthorized");
    let r = row(&app, event.id).await;
    assert_eq!((r.attempts, r.failed, r.delivered), (0, false, false), "nothing changed: {r:?}");
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

#[tokio::test]
async fn the_reaper_forgets_events_delivered_more_than_a_week_ago() {
    let receiver = Receiver::start().await;
    let app = app_for(&receiver.url(), 5, None).await;
    let old = insert_event(&app, "user_1", "default").await;
    let recent = insert_event(&app, "user_1", "default").await;
    assert_eq!(deliver(&app).await, report(2, 0, 0, 0));
    let failed_long_ago = insert_event(&app, "user_1", "default").await;
    app.db
        .execute(
            "update webhook_events set failed_at = now() - interval '30 days', next_attempt_at = null where id = $1",
            &[&failed_long_ago.id],
        )
        .await
        .unwrap();
    app.db
        .execute("update webhook_events set delivered_at = now() - interval '8 days' where id = $1", &[&old.id])
        .await
        .unwrap();

    let reaped = r2_broker::reaper::run_once(&app.state).await.unwrap();

    assert_eq!(reaped.webhooks_forgotten, 1);
    let left: Vec<Uuid> = app
        .db
        .query("select id from webhook_events order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [recent.id, failed_long_ago.id], "the recent and the failed ones stay");
}
