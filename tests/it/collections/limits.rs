//! A collection's limits under concurrency: one statement order for every change of both an
//! owner's and a collection's counters, so bursts never overshoot either and never deadlock.

use futures_util::future::join_all;
use serde_json::json;

use super::{counters, create_in, new_collection};
use crate::support::{Call, TestApp};

const K: i64 = 23;
const BURST: usize = 200;

fn created(calls: &[Call]) -> i64 {
    calls.iter().filter(|c| c.status == 201).count() as i64
}

/// Every refusal is the documented 403, never a 5xx (a deadlock would be one).
fn refusals_are_quota_exceeded(calls: &[Call]) {
    for c in calls.iter().filter(|c| c.status != 201) {
        c.assert_error(403, "quota_exceeded");
    }
}

#[tokio::test]
async fn two_hundred_concurrent_creates_at_a_collection_object_limit_give_exactly_k() {
    // Arrange: a collection with room for K uploads; the owner's quota is far away
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "rita", json!({"name": "Shoot", "max_objects": K})).await;

    // Act
    let calls = join_all((0..BURST).map(|_| create_in(&app, "rita", &shoot, 1000))).await;

    // Assert: exactly K, and the rows say so
    assert_eq!(created(&calls), K);
    refusals_are_quota_exceeded(&calls);
    let msg = calls.iter().find(|c| c.status == 403).unwrap().body["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("collection"), "{msg}");
    assert_eq!(counters(&app, &shoot).await, (0, 0, K * 1000, K));
    assert_eq!(app.usage_row("rita").await, (0, 0, K * 1000, K), "the owner's reservation moved with it");
    assert_eq!(app.count("select count(*) from uploads where status = 'pending'").await, K);
}

#[tokio::test]
async fn concurrent_creates_at_a_collection_byte_limit_give_exactly_k() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "rita", json!({"name": "Shoot", "max_bytes": K * 5000})).await;
    let calls = join_all((0..BURST).map(|_| create_in(&app, "rita", &shoot, 5000))).await;
    assert_eq!(created(&calls), K);
    refusals_are_quota_exceeded(&calls);
    assert_eq!(counters(&app, &shoot).await, (0, 0, K * 5000, K));
}

#[tokio::test]
async fn concurrent_creates_across_two_collections_respect_both_and_the_owner_quota() {
    // Arrange: two collections of 40 each, under an owner quota of 50 objects
    let app = TestApp::spawn().await;
    app.set_quota("sam", None, Some(50)).await;
    let a = new_collection(&app, "sam", json!({"name": "A", "max_objects": 40})).await;
    let b = new_collection(&app, "sam", json!({"name": "B", "max_objects": 40})).await;

    // Act: 100 into each, interleaved, all at once
    let calls = join_all((0..200).map(|i| create_in(&app, "sam", if i % 2 == 0 { &a } else { &b }, 10))).await;

    // Assert: the owner's 50 are never overshot, nor either collection's 40, and the
    // counters add up exactly
    refusals_are_quota_exceeded(&calls);
    let (in_a, in_b) = (counters(&app, &a).await.3, counters(&app, &b).await.3);
    assert_eq!(created(&calls), 50);
    assert_eq!(in_a + in_b, 50);
    assert!(in_a <= 40 && in_b <= 40, "{in_a} {in_b}");
    assert_eq!(app.usage_row("sam").await, (0, 0, 500, 50));
}

#[tokio::test]
async fn complete_abort_and_expiry_settle_the_collection_too() {
    // Arrange: three pending uploads in a collection
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "rita", json!({"name": "Shoot", "max_objects": 3})).await;
    let mut intents = Vec::new();
    for _ in 0..3 {
        let c = create_in(&app, "rita", &shoot, 4).await;
        assert_eq!(c.status, 201, "{:#}", c.body);
        intents.push(c.body);
    }
    create_in(&app, "rita", &shoot, 4).await.assert_error(403, "quota_exceeded");

    // complete one: reserved → used, for both
    assert_eq!(app.put_to(&intents[0], b"abcd".to_vec()).await.status(), 200);
    assert_eq!(app.complete("rita", &intents[0]["upload_id"]).await.status, 201);
    assert_eq!(counters(&app, &shoot).await, (4, 1, 8, 2));
    // abort one
    let id = intents[1]["upload_id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/uploads/{id}"), &app.token("rita")).await.status, 204);
    assert_eq!(counters(&app, &shoot).await, (4, 1, 4, 1));
    // expire one (the reaper, with its deadline moved into the past)
    let id: uuid::Uuid = intents[2]["upload_id"].as_str().unwrap().parse().unwrap();
    app.db.execute("update uploads set complete_by = now() - interval '1 second' where id = $1", &[&id]).await.unwrap();
    let report = r2_broker::reaper::run_once(&app.state).await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(counters(&app, &shoot).await, (4, 1, 0, 0));
    assert_eq!(app.usage_row("rita").await, (4, 1, 0, 0));
    // room again
    assert_eq!(create_in(&app, "rita", &shoot, 4).await.status, 201);
}
