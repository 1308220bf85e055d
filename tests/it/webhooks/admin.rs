//! Given-up events: listed newest first, retried one by one or all at once (admin scope
//! only); events without an endpoint; the reaper forgetting delivered events.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{app_for, deliver, insert_event, make_due, report, row};
use crate::support::receiver::Receiver;

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
