//! Secrets from files (`*_FILE`), as container platforms mount them: the broker starts
//! with DATABASE_URL, the store's keys and JWT_SECRET all read from files (trailing
//! newline included) and works with them. The error cases are config unit tests.

use r2_broker::config::Settings;
use serde_json::json;

use crate::support::{TestApp, TestOptions};

#[tokio::test]
async fn the_broker_runs_on_secrets_read_from_files() {
    // Arrange: every secret moves from its variable to a file.
    let dir = std::env::temp_dir().join(format!("r2b-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = dir.clone();
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(move |s: &mut Settings| {
            let to_file = |value: &mut Option<String>, name: &str| {
                let path = files.join(name);
                std::fs::write(&path, format!("{}\n", value.take().unwrap())).unwrap();
                Some(path)
            };
            s.database_url_file = to_file(&mut s.database_url, "database_url");
            s.s3_access_key_id_file = to_file(&mut s.s3_access_key_id, "s3_access_key_id");
            s.s3_secret_access_key_file = to_file(&mut s.s3_secret_access_key, "s3_secret_access_key");
            s.jwt_secret_file = to_file(&mut s.jwt_secret, "jwt_secret");
        })),
        ..Default::default()
    })
    .await;

    // Act: a token signed with the secret (without the newline), a database write, a
    // presigned PUT the store checks against the secret key.
    let asset = app.upload("alice", "a.txt", "text/plain", b"hello").await;

    // Assert
    assert_eq!(asset["size"], json!(5));
    assert_eq!(app.usage_row("alice").await.0, 5);
    assert!(app.state.config.s3.access_key_id == crate::support::store().access_key);
    std::fs::remove_dir_all(dir).unwrap();
}
