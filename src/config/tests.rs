use super::*;

fn minimal() -> Settings {
    Settings {
        database_url: Some("postgres://u:p@127.0.0.1:5432/db".into()),
        s3_endpoint: Some("https://acct.r2.cloudflarestorage.com/".into()),
        s3_bucket: Some("media".into()),
        s3_access_key_id: Some("AK".into()),
        s3_secret_access_key: Some("SK".into()),
        jwt_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    }
}

#[test]
fn minimal_settings_get_the_documented_defaults() {
    let c = minimal().validate().unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080");
    assert_eq!(c.s3.endpoint, "https://acct.r2.cloudflarestorage.com");
    assert_eq!(c.s3.region, "auto");
    assert_eq!(c.s3.provider, Provider::R2);
    assert_eq!(c.jwt.admin_scope, "broker:admin");
    assert_eq!(c.default_quota_bytes, 10_737_418_240);
    assert_eq!(c.default_quota_objects, 100_000);
    assert!(c.rate_limit.is_none());
}

#[test]
fn each_bad_setting_is_named() {
    type Case = (fn(&mut Settings), &'static str);
    let cases: Vec<Case> = vec![
        (|s| s.database_url = None, "DATABASE_URL"),
        (|s| s.database_url = Some("not a url::".into()), "DATABASE_URL"),
        (|s| s.s3_endpoint = Some("ftp://x".into()), "S3_ENDPOINT"),
        (|s| s.s3_bucket = Some("A_B".into()), "S3_BUCKET"),
        (|s| s.s3_secret_access_key = None, "S3_SECRET_ACCESS_KEY"),
        (|s| s.s3_provider = Some("gcs".into()), "S3_PROVIDER"),
        (|s| s.jwt_secret = None, "JWT_SECRET"),
        (|s| s.jwt_secret = Some("short".into()), "JWT_SECRET"),
        (|s| s.jwt_public_key_file = Some("/nonexistent.pem".into()), "JWT_PUBLIC_KEY_FILE"),
        (|s| s.default_quota_bytes = Some("ten".into()), "BROKER_DEFAULT_QUOTA_BYTES"),
        (|s| s.default_quota_objects = Some("-1".into()), "BROKER_DEFAULT_QUOTA_OBJECTS"),
        (|s| s.profiles = Some("/nonexistent.toml".into()), "BROKER_PROFILES"),
        (|s| s.log_format = Some("xml".into()), "BROKER_LOG_FORMAT"),
    ];
    for (change, variable) in cases {
        let mut s = minimal();
        change(&mut s);
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
    }
}

#[test]
fn secrets_do_not_appear_in_debug_or_summary() {
    let c = minimal().validate().unwrap();
    let text = format!("{c:?} {}", c.summary());
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(!text.contains("u:p@"), "{text}");
    assert!(!text.contains("\"SK\""), "{text}");
}

#[test]
fn deadlines_have_defaults_take_fractions_and_migrations_may_be_unbounded() {
    use std::time::Duration;
    let c = minimal().validate().unwrap();
    assert_eq!(c.db.timeout, Duration::from_secs(3));
    assert_eq!(c.db.migration_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.s3.timeout, Duration::from_secs(5));
    assert_eq!(c.s3.complete_timeout, Duration::from_secs(60));

    let mut s = minimal();
    s.db_timeout = Some(" 1.5 ".into());
    s.store_timeout = Some("0.5".into());
    s.store_complete_timeout = Some("600".into());
    s.migration_timeout = Some("0".into());
    let c = s.validate().unwrap();
    assert_eq!(c.db.timeout, Duration::from_millis(1500));
    assert_eq!(c.s3.timeout, Duration::from_millis(500));
    assert_eq!(c.s3.complete_timeout, Duration::from_secs(600));
    assert_eq!(c.db.migration_timeout, None, "0 means no bound");
}

#[test]
fn each_bad_deadline_is_named() {
    type Case = (fn(&mut Settings), &'static str);
    let cases: Vec<Case> = vec![
        (|s| s.db_timeout = Some("three".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.db_timeout = Some("0".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.db_timeout = Some("-1".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.db_timeout = Some("NaN".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.db_timeout = Some("1e400".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.db_timeout = Some("601".into()), "BROKER_DB_TIMEOUT"),
        (|s| s.store_timeout = Some("0".into()), "BROKER_STORE_TIMEOUT"),
        (|s| s.store_timeout = Some("5s".into()), "BROKER_STORE_TIMEOUT"),
        (|s| s.store_complete_timeout = Some("0.01".into()), "BROKER_STORE_COMPLETE_TIMEOUT"),
        (|s| s.store_complete_timeout = Some("inf".into()), "BROKER_STORE_COMPLETE_TIMEOUT"),
        (|s| s.migration_timeout = Some("-5".into()), "BROKER_MIGRATION_TIMEOUT"),
        (|s| s.migration_timeout = Some("forever".into()), "BROKER_MIGRATION_TIMEOUT"),
    ];
    for (change, variable) in cases {
        let mut s = minimal();
        change(&mut s);
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
        assert!(err.to_string().starts_with(variable), "{err}");
    }
}
