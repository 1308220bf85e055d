//! `upload.expired`: written in the statement that expires the intent — the reaper's batch
//! and the lazy expiry of a late `complete` alike — only for profiles whose events go
//! somewhere.

use serde_json::json;

use crate::support::{TestApp, TestOptions};

const PROFILES: &str = "[profiles.quiet]\nwebhooks = false\n";

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(|s| {
            s.webhook_url = Some("http://127.0.0.1:9/hooks".into());
            s.webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        })),
        ..Default::default()
    })
    .await
}

async fn overdue(app: &TestApp, owner: &str, profile: &str) -> serde_json::Value {
    let c = app
        .create(
            owner,
            json!({"filename": "late.bin", "content_type": "application/octet-stream", "size": 9, "profile": profile}),
        )
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let id: uuid::Uuid = c.body["upload_id"].as_str().unwrap().parse().unwrap();
    app.db.execute("update uploads set complete_by = now() - interval '1 second' where id = $1", &[&id]).await.unwrap();
    c.body
}

async fn expired_events(app: &TestApp) -> Vec<serde_json::Value> {
    let rows = app
        .db
        .query("select payload from webhook_events where type = 'upload.expired' order by created_at", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<_, serde_json::Value>(0)).collect()
}

#[tokio::test]
async fn expiry_writes_upload_expired_in_the_same_statement_for_profiles_with_events() {
    // Arrange: two overdue intents with events, one of a profile that turned them off
    let app = app().await;
    let by_reaper = overdue(&app, "ned", "default").await;
    let by_complete = overdue(&app, "ned", "default").await;
    overdue(&app, "ned", "quiet").await;

    // Act: the reaper expires two; a late complete expires the third (410)
    let late = app.complete("ned", &by_complete["upload_id"]).await;
    late.assert_error(410, "upload_expired");
    let report = r2_broker::reaper::run_once(&app.state).await.unwrap();

    // Assert: one event per expiry with events wanted, in the documented shape
    assert_eq!(report.expired, 2);
    let events = expired_events(&app).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let ids: Vec<&str> = events.iter().map(|e| e["data"]["upload_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [by_complete["upload_id"].as_str().unwrap(), by_reaper["upload_id"].as_str().unwrap()]);
    for e in &events {
        assert_eq!(e["type"], "upload.expired");
        assert!(e["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).is_ok(), "{e}");
        let data = &e["data"];
        assert_eq!(
            (data["owner"].as_str(), data["profile"].as_str(), data["size"].as_i64()),
            (Some("ned"), Some("default"), Some(9))
        );
        assert_eq!(data["filename"], "late.bin");
        assert!(chrono::DateTime::parse_from_rfc3339(data["expires_at"].as_str().unwrap()).is_ok());
    }
    assert_eq!(app.usage_row("ned").await, (0, 0, 0, 0));
}
