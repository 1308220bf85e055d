//! `r2-broker doctor`, run as the real binary against the in-process store and a test
//! database: every check ok but the lifecycle warning (exit 0), then none at all once a rule
//! is put; a bad CORS rule, wrong credentials and a database that is down each fail their own
//! check with the fix (exit 1) while the others still run; the probe object never stays.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, CorsConfiguration, CorsRule, ExpirationStatus,
    LifecycleRule, LifecycleRuleFilter,
};

use crate::support::{TestApp, store};

const ORIGIN: &str = "http://localhost:5173";

/// Runs `r2-broker doctor` with the test app's settings, `overrides` last; (exit code, stdout).
pub(crate) async fn doctor(app: &TestApp, overrides: &[(&str, String)]) -> (i32, String) {
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
        .env("BROKER_CORS_ORIGINS", ORIGIN)
        .env("JWT_SECRET", crate::support::app::JWT_SECRET);
    for (k, v) in overrides {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run r2-broker doctor")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("an exit code"), stdout)
}

/// The outcome printed for `check` (the words before the check's name).
fn outcome<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| {
            let (head, _) = l.split_once(&format!(" {check}  "))?;
            (!head.trim().is_empty()).then(|| head.trim())
        })
        .unwrap_or_else(|| panic!("no line for {check:?} in\n{report}"))
}

async fn assert_no_probe_left(app: &TestApp) {
    let keys = app.keys().await;
    assert!(!keys.iter().any(|k| k.starts_with(".r2-broker-doctor")), "probe left behind: {keys:?}");
}

#[tokio::test]
async fn doctor_passes_on_the_embedded_store_with_only_the_lifecycle_warning_until_a_rule_is_put() {
    let app = TestApp::spawn().await;

    let (code, report) = doctor(&app, &[]).await;

    assert_eq!(code, 0, "{report}");
    for check in ["database", "database TLS", "migrations", "bucket", "clock", "presigned round trip", "bucket CORS"] {
        assert_eq!(outcome(&report, check), "ok", "{check}: {report}");
    }
    assert_eq!(outcome(&report, "lifecycle"), "warning");
    assert!(report.contains("aws s3api put-bucket-lifecycle-configuration --endpoint-url"), "{report}");
    assert!(report.contains("7 ok, 1 warning(s), 0 failed, 0 not checked"), "{report}");
    assert_no_probe_left(&app).await;

    let rule = LifecycleRule::builder()
        .id("abort-mpu")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(3).build())
        .build()
        .unwrap();
    app.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&app.bucket)
        .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(outcome(&report, "lifecycle"), "ok");
    assert!(report.contains("rule \"abort-mpu\" aborts incomplete multipart uploads after 3 day(s)"), "{report}");
    assert!(report.contains("8 ok, 0 warning(s), 0 failed"), "{report}");
    assert_no_probe_left(&app).await;
}

#[tokio::test]
async fn a_cors_rule_without_etag_or_put_fails_the_cors_check_with_the_fix() {
    let app = TestApp::spawn().await;
    let put_rule = |methods: &[&str], expose: &[&str]| {
        let mut r = CorsRule::builder().allowed_origins("*").allowed_headers("*");
        for m in methods {
            r = r.allowed_methods(*m);
        }
        for h in expose {
            r = r.expose_headers(*h);
        }
        let conf = CorsConfiguration::builder().cors_rules(r.build().unwrap()).build().unwrap();
        app.s3.put_bucket_cors().bucket(&app.bucket).cors_configuration(conf).send()
    };

    put_rule(&["GET", "PUT", "HEAD", "POST"], &[]).await.unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(outcome(&report, "bucket CORS"), "failed");
    assert!(report.contains(&format!("ETag is not exposed to {ORIGIN}")), "{report}");
    assert!(report.contains("fix: aws s3api put-bucket-cors --endpoint-url"), "{report}");
    assert!(report.contains(r#""ExposeHeaders":["ETag"]"#), "{report}");
    // The other checks are unaffected.
    assert_eq!(outcome(&report, "presigned round trip"), "ok");

    put_rule(&["GET", "HEAD"], &["ETag"]).await.unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(&format!("PUT is not allowed from {ORIGIN}")), "{report}");
    assert!(report.contains(&format!("POST is not allowed from {ORIGIN}")), "{report}");

    // Deleted, the store reports the rule its CORS layer applies again: all ok.
    app.s3.delete_bucket_cors().bucket(&app.bucket).send().await.unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(outcome(&report, "bucket CORS"), "ok");
    assert_no_probe_left(&app).await;
}

#[tokio::test]
async fn wrong_credentials_fail_the_bucket_check_and_skip_what_needs_the_bucket() {
    let app = TestApp::spawn().await;

    let (code, report) = doctor(&app, &[("S3_SECRET_ACCESS_KEY", "not-the-secret".into())]).await;
    assert!(!report.contains("not-the-secret") && !report.contains(&store().secret_key), "a secret in {report}");

    assert_eq!(code, 1, "{report}");
    assert_eq!(outcome(&report, "bucket"), "failed");
    assert!(report.contains("refuses these credentials for this bucket (403)"), "{report}");
    assert!(report.contains("fix: check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY"), "{report}");
    for check in ["presigned round trip", "bucket CORS", "lifecycle"] {
        assert_eq!(outcome(&report, check), "skipped", "{check}");
    }
    // The database and the clock (an unsigned request) are still checked.
    assert_eq!(outcome(&report, "database"), "ok");
    assert_eq!(outcome(&report, "clock"), "ok");
    assert_no_probe_left(&app).await;
}

#[tokio::test]
async fn a_database_that_is_down_fails_its_check_while_the_store_checks_still_run() {
    let app = TestApp::spawn().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    let url = format!("postgres://postgres@127.0.0.1:{closed}/r2broker");
    let (code, report) = doctor(&app, &[("DATABASE_URL", url)]).await;

    assert_eq!(code, 1, "{report}");
    assert_eq!(outcome(&report, "database"), "failed");
    assert!(report.contains("cannot reach PostgreSQL within BROKER_DB_TIMEOUT"), "{report}");
    assert_eq!(outcome(&report, "database TLS"), "skipped");
    assert_eq!(outcome(&report, "migrations"), "skipped");
    for check in ["bucket", "clock", "presigned round trip", "bucket CORS"] {
        assert_eq!(outcome(&report, check), "ok", "{check}");
    }
    assert_no_probe_left(&app).await;
}

#[tokio::test]
async fn a_pending_migration_warns_with_migrate_and_one_from_a_newer_broker_fails() {
    let app = TestApp::spawn().await;
    let last: i32 = app.db.query_one("select max(version) from refinery_schema_history", &[]).await.unwrap().get(0);

    app.db.execute("delete from refinery_schema_history where version = $1", &[&last]).await.unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 0, "a warning only: {report}");
    assert_eq!(outcome(&report, "migrations"), "warning");
    assert!(report.contains(&format!("1 of {last} not applied yet (V{last})")), "{report}");
    assert!(report.contains("fix: run `r2-broker migrate`"), "{report}");

    let newer = last + 100;
    app.db
        .execute(
            "insert into refinery_schema_history (version, name, applied_on, checksum) \
             select $1, 'future', applied_on, checksum from refinery_schema_history limit 1",
            &[&newer],
        )
        .await
        .unwrap();
    let (code, report) = doctor(&app, &[]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(outcome(&report, "migrations"), "failed");
    assert!(report.contains(&format!("does not know (V{newer})")), "{report}");
}

/// A store that has the bucket and answers 501 NotImplemented to everything else, with no
/// `Date` header: the checks it cannot answer say so instead of guessing.
async fn store_without_bucket_config(bucket: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let head_bucket = format!("HEAD /{bucket}");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned();
                let path = line.split(' ').nth(1).unwrap_or_default().split('?').next().unwrap_or_default();
                let resp = if line.starts_with(&head_bucket) && path.trim_end_matches('/') == &head_bucket[5..] {
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                } else {
                    let body = "<Error><Code>NotImplemented</Code><Message>not here</Message></Error>";
                    format!(
                        "HTTP/1.1 501 Not Implemented\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_store_that_answers_501_to_bucket_configuration_is_reported_as_cannot_check() {
    let app = TestApp::spawn().await;
    let endpoint = store_without_bucket_config(app.bucket.clone()).await;

    let (code, report) = doctor(&app, &[("S3_ENDPOINT", endpoint)]).await;

    assert_eq!(code, 1, "the round trip fails: {report}");
    assert_eq!(outcome(&report, "bucket"), "ok");
    assert_eq!(outcome(&report, "presigned round trip"), "failed");
    assert!(report.contains("PUT: HTTP 501 NotImplemented"), "{report}");
    assert_eq!(outcome(&report, "bucket CORS"), "cannot check");
    assert!(report.contains("the store does not implement GetBucketCors"), "{report}");
    assert_eq!(outcome(&report, "lifecycle"), "cannot check");
    assert_eq!(outcome(&report, "clock"), "cannot check");
    assert!(report.contains("the store's answer has no Date header"), "{report}");
}
