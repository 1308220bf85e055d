//! `r2-broker doctor` and the scanners profiles name: clamd answering with its signature
//! database, or down with the fix.

use crate::support::{TestApp, clamd, store};

const PROFILES: &str = "[profiles.docs]\nallowed_content_types = [\"text/plain\"]\nscan = [\"clamd\"]\n";

async fn doctor(app: &TestApp, clamd_addr: &str) -> (i32, String) {
    let profiles = std::env::temp_dir().join(format!("r2b-doctor-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&profiles, PROFILES).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_r2-broker"));
    cmd.arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("S3_ENDPOINT", &store().endpoint)
        .env("S3_ACCESS_KEY_ID", &store().access_key)
        .env("S3_SECRET_ACCESS_KEY", &store().secret_key)
        .env("S3_BUCKET", &app.bucket)
        .env("S3_PROVIDER", "s3")
        .env("JWT_SECRET", crate::support::app::JWT_SECRET)
        .env("BROKER_PROFILES", &profiles)
        .env("BROKER_CLAMD", format!("tcp://{clamd_addr}"));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run r2-broker doctor")).await.unwrap();
    let _ = std::fs::remove_file(&profiles);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("an exit code"), stdout)
}

fn scanners_line(report: &str) -> &str {
    report.lines().find(|l| l.contains(" scanners ")).unwrap_or_else(|| panic!("no scanners line in\n{report}"))
}

#[tokio::test]
async fn doctor_reports_the_clamd_the_profiles_scan_with() {
    let Some(clamd) = clamd::start().await else { return };
    let app = TestApp::spawn().await;

    // The exit code also reflects the other checks (doctor.rs's): only this line is ours.
    let (_, report) = doctor(&app, &clamd.addr).await;

    let line = scanners_line(&report);
    assert!(line.trim_start().starts_with("ok"), "{line}");
    assert!(line.contains("clamd answers: ClamAV") && line.contains("docs"), "{line}");
}

#[tokio::test]
async fn doctor_fails_when_the_clamd_is_not_there() {
    let app = TestApp::spawn().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();

    let (code, report) = doctor(&app, &free.to_string()).await;

    assert_eq!(code, 1, "{report}");
    let line = scanners_line(&report);
    assert!(line.contains("cannot connect") && line.contains("docs"), "{line}");
    assert!(report.contains("docs/scanning.md"), "the fix says where to look:\n{report}");
}
