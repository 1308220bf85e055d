//! Retention: a profile's assets are deleted by the reaper after that age — object, record,
//! usage — and `GET /v1/assets/{id}` says when.

use serde_json::json;

use crate::support::{TestApp, TestOptions, parse_time};

const PROFILES: &str = "[profiles.voice]\nallowed_content_types = [\"audio/*\"]\nsniff = false\nretention = 2592000\n";

#[tokio::test]
async fn assets_past_their_retention_are_deleted_with_their_usage_and_an_event() {
    // Arrange: two voice notes (30 days' retention) and one asset without retention;
    // events go to a webhook endpoint (recorded in the outbox, not delivered here)
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(|s| {
            s.webhook_url = Some("http://127.0.0.1:9/hooks".into());
            s.webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        })),
        ..Default::default()
    })
    .await;
    let note = app.upload_in("vic", Some("voice"), "a.ogg", "audio/ogg", b"OggS voice one").await;
    let kept = app.upload_in("vic", Some("voice"), "b.ogg", "audio/ogg", b"OggS voice two").await;
    let forever = app.upload("vic", "notes.txt", "text/plain", b"keep me").await;
    let expires = parse_time(&note["expires_at"]);
    let created = parse_time(&note["created_at"]);
    assert_eq!((expires - created).num_days(), 30, "{:#}", note);
    assert_eq!(forever["expires_at"], json!(null));
    let got = app.get(&format!("/v1/assets/{}", note["id"].as_str().unwrap()), &app.token("vic")).await;
    assert_eq!(got.body["expires_at"], note["expires_at"]);

    // Act: the first note's time has come
    let id: uuid::Uuid = note["id"].as_str().unwrap().parse().unwrap();
    app.db.execute("update assets set expires_at = now() - interval '1 second' where id = $1", &[&id]).await.unwrap();
    let report = r2_broker::reaper::run_once(&app.state).await.unwrap();

    // Assert: that one is gone (object, record, usage, with asset.deleted); the others stay
    assert_eq!(report.retention_deleted, 1, "{report:?}");
    app.get(&format!("/v1/assets/{id}"), &app.token("vic")).await.assert_error(404, "not_found");
    assert_eq!(app.object(note["key"].as_str().unwrap()).await, None);
    assert!(app.object(kept["key"].as_str().unwrap()).await.is_some());
    let left = kept["size"].as_i64().unwrap() + forever["size"].as_i64().unwrap();
    assert_eq!(app.usage_row("vic").await, (left, 2, 0, 0));
    let events = app
        .db
        .query("select type, payload->'data'->>'id' from webhook_events where type = 'asset.deleted'", &[])
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get::<_, String>(1), id.to_string());
    assert_eq!(app.state.metrics.reaper_actions.with_label_values(&["retention_deleted"]).get(), 1);
}
