//! Quotas: reservations at create can never overshoot them, even under a burst of
//! concurrent requests; pending uploads count; abort, complete and delete move the
//! numbers; defaults come from the settings; admins set quotas.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{Call, TestApp, TestOptions};

const K: i64 = 7;
const BURST: usize = 200;

fn intent(size: i64) -> Value {
    json!({"filename": "x.bin", "content_type": "application/octet-stream", "size": size})
}

/// `n` creates for `owner`, all in flight at once.
async fn create_burst(app: &TestApp, owner: &str, n: usize, size: i64) -> Vec<Call> {
    join_all((0..n).map(|_| app.create(owner, intent(size)))).await
}

/// Asserts that exactly `k` creates got 201 and every other one 403 `quota_exceeded`.
fn assert_exactly_k_created(calls: &[Call], k: i64) {
    let created = calls.iter().filter(|c| c.status == 201).count() as i64;
    assert_eq!(created, k, "201s in the burst");
    for c in calls.iter().filter(|c| c.status != 201) {
        c.assert_error(403, "quota_exceeded");
    }
}

async fn uploads_of(app: &TestApp, owner: &str) -> i64 {
    app.db.query_one("select count(*) from uploads where owner = $1", &[&owner]).await.unwrap().get(0)
}

async fn usage(app: &TestApp, owner: &str) -> Value {
    let c = app.get("/v1/usage", &app.token(owner)).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    c.body
}

async fn put_quota(app: &TestApp, owner: &str, body: Value) -> Call {
    app.call("PUT", &format!("/v1/admin/owners/{owner}/quota"), Some(&app.admin_token("root")), Some(body)).await
}

async fn stored_quota(app: &TestApp, owner: &str) -> Option<(Option<i64>, Option<i64>)> {
    app.db
        .query_opt("select quota_bytes, quota_objects from owners where owner = $1", &[&owner])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

#[tokio::test]
async fn a_burst_of_concurrent_creates_never_overshoots_the_byte_quota() {
    // Arrange: room for exactly K uploads of 1000 bytes
    let app = TestApp::spawn().await;
    app.set_quota("hoarder", Some(K * 1000), None).await;

    // Act
    let calls = create_burst(&app, "hoarder", BURST, 1000).await;

    // Assert: the answers, the owner row and the upload rows agree
    assert_exactly_k_created(&calls, K);
    assert_eq!(app.usage_row("hoarder").await, (0, 0, K * 1000, K));
    assert_eq!(uploads_of(&app, "hoarder").await, K);
}

#[tokio::test]
async fn a_burst_of_concurrent_creates_never_overshoots_the_object_quota() {
    let app = TestApp::spawn().await;
    app.set_quota("counter", None, Some(K)).await;

    let calls = create_burst(&app, "counter", BURST, 1).await;

    assert_exactly_k_created(&calls, K);
    assert_eq!(app.usage_row("counter").await, (0, 0, K, K));
    assert_eq!(uploads_of(&app, "counter").await, K);
}

#[tokio::test]
async fn concurrent_first_creates_of_new_owners_all_succeed_within_the_default_quota() {
    // Arrange: warm connections, and owners with no row yet, far below the default quota
    let app = TestApp::spawn().await;
    let warm = app.token("warm-up");
    join_all((0..20).map(|_| app.get("/v1/usage", &warm))).await;

    for round in 0..10 {
        let owner = format!("newcomer-{round}");
        // Act: an owner's very first requests arrive together
        let calls = create_burst(&app, &owner, 20, 10).await;

        // Assert: nobody is refused, and everything is counted once
        let refused: Vec<&Value> = calls.iter().filter(|c| c.status != 201).map(|c| &c.body).collect();
        assert!(refused.is_empty(), "{owner}: {} of 20 refused, e.g. {:#}", refused.len(), refused[0]);
        assert_eq!(app.usage_row(&owner).await, (0, 0, 200, 20));
        assert_eq!(uploads_of(&app, &owner).await, 20);
    }
}

#[tokio::test]
async fn pending_uploads_hold_the_quota_until_aborted_completed_or_deleted() {
    // Arrange: 10 bytes of quota, 6 of them held by a pending upload
    let app = TestApp::spawn().await;
    app.set_quota("pat", Some(10), None).await;
    let held = app.create("pat", intent(6)).await;
    assert_eq!(held.status, 201, "{:#}", held.body);

    // Act + Assert: the pending upload counts
    app.create("pat", intent(5)).await.assert_error(403, "quota_exceeded");
    assert_eq!(app.usage_row("pat").await, (0, 0, 6, 1));
    assert_eq!(uploads_of(&app, "pat").await, 1, "a refused create writes no upload row");

    // Abort frees it
    let id = held.body["upload_id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/uploads/{id}"), &app.token("pat")).await.status, 204);
    assert_eq!(app.usage_row("pat").await, (0, 0, 0, 0));

    // Two uploads of 5 now fit, and then not one byte more
    let first = app.create("pat", intent(5)).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let second = app.create("pat", intent(5)).await;
    assert_eq!(second.status, 201, "{:#}", second.body);
    app.create("pat", intent(1)).await.assert_error(403, "quota_exceeded");

    // Completing turns a reservation into usage
    assert_eq!(app.put_to(&first.body, b"12345".to_vec()).await.status(), 200);
    let asset = app.complete("pat", &first.body["upload_id"]).await;
    assert_eq!(asset.status, 201, "{:#}", asset.body);
    assert_eq!(app.usage_row("pat").await, (5, 1, 5, 1));
    assert_eq!(
        usage(&app, "pat").await,
        json!({"owner": "pat", "used_bytes": 5, "reserved_bytes": 5, "quota_bytes": 10,
               "object_count": 1, "reserved_objects": 1, "quota_objects": 100000})
    );
    app.create("pat", intent(1)).await.assert_error(403, "quota_exceeded");

    // Deleting the asset frees its bytes
    let asset_id = asset.body["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/assets/{asset_id}"), &app.token("pat")).await.status, 204);
    assert_eq!(app.usage_row("pat").await, (0, 0, 5, 1));
    assert_eq!(app.create("pat", intent(5)).await.status, 201);
    assert_eq!(app.usage_row("pat").await, (0, 0, 10, 2));
}

#[tokio::test]
async fn an_owner_never_seen_has_the_default_quota_and_reading_it_writes_nothing() {
    let app = TestApp::spawn().await;

    let body = usage(&app, "stranger").await;

    assert_eq!(
        body,
        json!({"owner": "stranger", "used_bytes": 0, "reserved_bytes": 0, "quota_bytes": 10_737_418_240i64,
               "object_count": 0, "reserved_objects": 0, "quota_objects": 100_000})
    );
    assert_eq!(stored_quota(&app, "stranger").await, None, "no owner row");
}

#[tokio::test]
async fn the_default_quota_comes_from_the_settings() {
    // Arrange: BROKER_DEFAULT_QUOTA_BYTES=3000, BROKER_DEFAULT_QUOTA_OBJECTS=2
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| {
            s.default_quota_bytes = Some("3000".into());
            s.default_quota_objects = Some("2".into());
        })),
        ..Default::default()
    })
    .await;

    // Act + Assert: usage reports it, and creates obey it
    let body = usage(&app, "dee").await;
    assert_eq!((body["quota_bytes"].as_i64(), body["quota_objects"].as_i64()), (Some(3000), Some(2)));
    app.create("dee", intent(3001)).await.assert_error(403, "quota_exceeded");
    assert_eq!(app.create("dee", intent(1000)).await.status, 201);
    assert_eq!(app.create("dee", intent(2000)).await.status, 201);
    app.create("dee", intent(0)).await.assert_error(403, "quota_exceeded");
    assert_eq!(app.usage_row("dee").await, (0, 0, 3000, 2));
    assert_eq!(stored_quota(&app, "dee").await, Some((None, None)), "the default is not copied into the row");
}

#[tokio::test]
async fn the_admin_quota_route_changes_only_the_fields_given() {
    let app = TestApp::spawn().await;

    // `{}` on an owner never seen: the default usage, nothing set
    let c = put_quota(&app, "quinn", json!({})).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    assert_eq!(
        c.body,
        json!({"owner": "quinn", "used_bytes": 0, "reserved_bytes": 0, "quota_bytes": 10_737_418_240i64,
               "object_count": 0, "reserved_objects": 0, "quota_objects": 100_000})
    );
    assert_eq!(stored_quota(&app, "quinn").await.unwrap_or((None, None)), (None, None));

    // One field keeps the other
    let c = put_quota(&app, "quinn", json!({"quota_bytes": 500})).await;
    assert_eq!(
        (c.status.as_u16(), &c.body["quota_bytes"], &c.body["quota_objects"]),
        (200, &json!(500), &json!(100_000))
    );
    let c = put_quota(&app, "quinn", json!({"quota_objects": 3})).await;
    assert_eq!((c.status.as_u16(), &c.body["quota_bytes"], &c.body["quota_objects"]), (200, &json!(500), &json!(3)));
    assert_eq!(stored_quota(&app, "quinn").await, Some((Some(500), Some(3))));

    // `{}` changes nothing; zero is a valid quota
    let c = put_quota(&app, "quinn", json!({})).await;
    assert_eq!((&c.body["quota_bytes"], &c.body["quota_objects"]), (&json!(500), &json!(3)));
    let c = put_quota(&app, "quinn", json!({"quota_bytes": 0, "quota_objects": 0})).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    assert_eq!(stored_quota(&app, "quinn").await, Some((Some(0), Some(0))));
    assert_eq!(usage(&app, "quinn").await, c.body, "the answer is the owner's usage object");
}

#[tokio::test]
async fn the_admin_quota_route_refuses_bad_bodies_and_non_admins() {
    // Arrange: a quota in place
    let app = TestApp::spawn().await;
    app.set_quota("rex", Some(100), Some(10)).await;

    // Act + Assert: each bad body is 400 and changes nothing
    for body in [
        json!({"quota_bytes": null}),
        json!({"quota_objects": null}),
        json!({"quota_bytes": -1}),
        json!({"quota_objects": -5}),
        json!({"quota_bytes": 1, "extra": 2}),
        json!({"quota_bytes": 1.5}),
        json!({"quota_bytes": "100"}),
        json!({"quota_bytes": 9_223_372_036_854_775_808u64}),
        json!("quota_bytes"),
    ] {
        put_quota(&app, "rex", body.clone()).await.assert_error(400, "invalid_request");
        assert_eq!(stored_quota(&app, "rex").await, Some((Some(100), Some(10))), "{body}");
    }

    // A valid token without the admin scope, even for its own owner, is forbidden
    let c =
        app.call("PUT", "/v1/admin/owners/rex/quota", Some(&app.token("rex")), Some(json!({"quota_bytes": 1}))).await;
    c.assert_error(403, "forbidden");
    assert_eq!(stored_quota(&app, "rex").await, Some((Some(100), Some(10))));
}

#[tokio::test]
async fn lowering_a_quota_below_current_usage_is_allowed_and_refuses_new_uploads() {
    // Arrange: 10 bytes used
    let app = TestApp::spawn().await;
    let asset = app.upload("lou", "a.txt", "text/plain", b"0123456789").await;

    // Act: lower the quota to 5
    let c = put_quota(&app, "lou", json!({"quota_bytes": 5})).await;

    // Assert: accepted, reported, and new uploads are refused until usage falls under it
    assert_eq!(c.status, 200, "{:#}", c.body);
    assert_eq!(
        c.body,
        json!({"owner": "lou", "used_bytes": 10, "reserved_bytes": 0, "quota_bytes": 5,
               "object_count": 1, "reserved_objects": 0, "quota_objects": 100_000})
    );
    app.create("lou", intent(0)).await.assert_error(403, "quota_exceeded");
    assert_eq!(uploads_of(&app, "lou").await, 1, "only the completed upload");
    let id = asset["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/assets/{id}"), &app.token("lou")).await.status, 204);
    assert_eq!(app.create("lou", intent(5)).await.status, 201);
    assert_eq!(app.usage_row("lou").await, (0, 0, 5, 1));
}

#[tokio::test]
async fn the_admin_quota_route_refuses_an_array_body() {
    // Arrange
    let app = TestApp::spawn().await;
    app.set_quota("sol", Some(100), Some(10)).await;

    // Act: the fields in order, as an array instead of an object
    let c = put_quota(&app, "sol", json!([55, 5])).await;

    // Assert
    c.assert_error(400, "invalid_request");
    assert_eq!(stored_quota(&app, "sol").await, Some((Some(100), Some(10))));
}
