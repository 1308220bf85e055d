//! `r2-broker doctor` and the scanners profiles name: clamd answering with its signature
//! database, or down with the fix.

use crate::support::{TestApp, clamd};

const PROFILES: &str = "[profiles.docs]\nallowed_content_types = [\"text/plain\"]\nscan = [\"clamd\"]\n";

/// `r2-broker doctor` (doctor.rs's runner) with a profile that scans with the clamd at `clamd_addr`.
async fn doctor(app: &TestApp, clamd_addr: &str) -> (i32, String) {
    let profiles = std::env::temp_dir().join(format!("r2b-doctor-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&profiles, PROFILES).unwrap();
    let overrides =
        [("BROKER_PROFILES", profiles.display().to_string()), ("BROKER_CLAMD", format!("tcp://{clamd_addr}"))];
    let out = crate::doctor::doctor(app, &overrides).await;
    let _ = std::fs::remove_file(&profiles);
    out
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
