//! `r2-broker worker` as its own process: the serving app (`BROKER_JOBS=off`, as every test
//! app) leaves the job alone, a worker process started beside it with the same settings does
//! it, and serves its metrics.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{state_of, upload_and_complete};
use crate::support::app::{JWT_SECRET, TestApp, TestOptions};
use crate::support::{clamd, store};

const PROFILES: &str = "[profiles.docs]\nallowed_content_types = [\"text/plain\"]\nscan = [\"clamd\"]\n";

/// Kills the worker however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_worker_process_does_the_jobs_the_serving_process_leaves() {
    // Arrange: an asset waiting for its scan, and the serving app not running jobs
    let Some(clamd) = clamd::start().await else { return };
    let addr = format!("tcp://{}", clamd.addr);
    let clamd_setting = addr.clone();
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(move |s| s.clamd = Some(clamd_setting))),
        ..Default::default()
    })
    .await;
    let (_, done) = upload_and_complete(&app, "wes", "docs", "a.txt", "text/plain", b"plain words").await;
    let id = done.body["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state_of(&app, &id).await.0, "processing", "BROKER_JOBS=off: the serving app does not run it");

    // Act: `r2-broker worker` with the same settings
    let profiles = std::env::temp_dir().join(format!("r2b-worker-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&profiles, PROFILES).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_r2-broker"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BROKER_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &app.database_url)
        .env("S3_ENDPOINT", &store().endpoint)
        .env("S3_BUCKET", &app.bucket)
        .env("S3_PROVIDER", "s3")
        .env("S3_ACCESS_KEY_ID", &store().access_key)
        .env("S3_SECRET_ACCESS_KEY", &store().secret_key)
        .env("JWT_SECRET", JWT_SECRET)
        .env("BROKER_PROFILES", &profiles)
        .env("BROKER_CLAMD", &addr)
        .env("BROKER_JOB_INTERVAL", "0.2")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("r2-broker worker starts");
    let _child = Child(child);

    // Assert: the worker settles it (bounded wait), and its /metrics say so
    let mut state = String::new();
    for _ in 0..150 {
        state = state_of(&app, &id).await.0;
        if state != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_file(&profiles);
    assert_eq!(state, "ready");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("broker_job_outcomes_total{outcome=\"done\",step=\"scan\"} 1"), "{metrics}");
    let api = reqwest::get(format!("http://127.0.0.1:{port}/v1/assets")).await.unwrap();
    assert_eq!(api.status(), 404, "a worker serves no API");
}
