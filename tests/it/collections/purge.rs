//! Purging a collection: every asset goes through the same path as a single delete (object
//! first), so cutting the store midway leaves each asset wholly there or wholly gone, and
//! the purge resumes.

use std::time::Duration;

use serde_json::json;

use super::{counters, create_in, fill, new_collection};
use crate::support::{TestApp, TestOptions};

const N: usize = 120;

#[tokio::test]
async fn a_purge_cut_by_the_store_midway_is_consistent_and_resumes_to_the_end() {
    // Arrange: N assets and one pending upload in a collection; the app reaches the store
    // through a proxy the test can cut
    let app = TestApp::spawn_with(TestOptions { s3_proxy: true, ..Default::default() }).await;
    let shoot = new_collection(&app, "uma", json!({"name": "Shoot"})).await;
    let assets = fill(&app, "uma", &shoot, N).await;
    let pending = create_in(&app, "uma", &shoot, 7).await;
    assert_eq!(pending.status, 201);
    let id = shoot["id"].as_str().unwrap().to_owned();
    let total = |n: usize| assets.iter().take(n).map(|a| a["size"].as_i64().unwrap()).sum::<i64>();
    assert_eq!(app.usage_row("uma").await, (total(N), N as i64, 7, 1));

    // Act: purge, and cut the store once some assets are gone
    let token = app.token("uma");
    let path = format!("/v1/collections/{id}?purge=true");
    let purge = app.delete(&path, &token);
    let cut = async {
        for _ in 0..5000 {
            if app.count("select count(*) from assets").await < N as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.s3_proxy.as_ref().unwrap().cut();
    };
    let (first, ()) = tokio::join!(purge, cut);

    // Assert: a clean 503, the collection marked as being purged, and every asset either
    // wholly there (record, object, usage) or wholly gone
    first.assert_error(503, "unavailable");
    let left = app.count("select count(*) from assets").await;
    assert!(left > 0 && left < N as i64, "cut midway: {left} of {N} left");
    let rows = app.db.query("select key, size from assets", &[]).await.unwrap();
    let left_bytes: i64 = rows.iter().map(|r| r.get::<_, i64>(1)).sum();
    assert_eq!(
        app.usage_row("uma").await,
        (left_bytes, left, 0, 0),
        "usage is what is left; the pending upload was aborted"
    );
    assert_eq!(counters(&app, &shoot).await, (left_bytes, left, 0, 0));
    let got = app.get(&format!("/v1/collections/{id}"), &token).await;
    assert!(got.body["deleting_at"].is_string(), "{:#}", got.body);
    // A purge in progress takes no new uploads
    create_in(&app, "uma", &shoot, 1).await.assert_error(409, "invalid_state");
    app.s3_proxy.as_ref().unwrap().restore();
    // A remaining record keeps its object, but for the one delete in flight when the cut
    // came: the store may have deleted it without the answer arriving (its retry finishes).
    let mut missing = 0;
    for r in &rows {
        missing += usize::from(app.object(r.get::<_, &str>(0)).await.is_none());
    }
    assert!(missing <= 1, "{missing} records without their object");

    // The next call goes on from there and finishes
    let second = app.delete(&format!("/v1/collections/{id}?purge=true"), &token).await;
    assert_eq!(second.status, 204, "{:#}", second.body);
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert_eq!(app.count("select count(*) from collections").await, 0);
    assert_eq!(app.usage_row("uma").await, (0, 0, 0, 0));
    assert!(app.keys().await.is_empty(), "bucket empty: {:?}", app.keys().await);
}

#[tokio::test]
async fn the_reaper_finishes_a_purge_nobody_called_again() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "uma", json!({"name": "Shoot"})).await;
    fill(&app, "uma", &shoot, 3).await;
    let id: uuid::Uuid = shoot["id"].as_str().unwrap().parse().unwrap();
    // A purge that started and stopped (as after a 503).
    app.db.execute("update collections set deleting_at = now() where id = $1", &[&id]).await.unwrap();

    let report = r2_broker::reaper::run_once(&app.state).await.unwrap();

    assert_eq!(report.purges, 1);
    assert_eq!(app.count("select count(*) from collections").await, 0);
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert!(app.keys().await.is_empty());
    assert_eq!(app.usage_row("uma").await, (0, 0, 0, 0));
}
