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

fn temp_file(contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("r2b-secret-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn each_secret_can_come_from_a_file_without_its_trailing_newline() {
    let mut s = minimal();
    s.database_url = None;
    s.database_url_file = Some(temp_file("postgres://u:p@db.internal:5432/app\n"));
    s.s3_secret_access_key = None;
    s.s3_secret_access_key_file = Some(temp_file("from-file\r\n"));
    s.s3_access_key_id = None;
    s.s3_access_key_id_file = Some(temp_file("AKFILE"));
    s.jwt_secret = None;
    s.jwt_secret_file = Some(temp_file("0123456789abcdef0123456789abcdef\n"));
    let c = s.validate().unwrap();
    assert_eq!(c.db.url.expose_secret(), "postgres://u:p@db.internal:5432/app");
    assert_eq!(c.s3.secret_access_key.expose_secret(), "from-file");
    assert_eq!(c.s3.access_key_id, "AKFILE");
    assert!(c.jwt.hmac.is_some());
}

#[test]
fn a_secret_given_twice_or_in_a_bad_file_is_named() {
    type Case = (fn(&mut Settings), &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            |s| s.jwt_secret_file = Some(temp_file("x")),
            "JWT_SECRET_FILE",
            "JWT_SECRET and JWT_SECRET_FILE are both set",
        ),
        (|s| s.database_url_file = Some(temp_file("x")), "DATABASE_URL_FILE", "DATABASE_URL and DATABASE_URL_FILE"),
        (
            |s| s.s3_secret_access_key_file = Some(temp_file("x")),
            "S3_SECRET_ACCESS_KEY_FILE",
            "S3_SECRET_ACCESS_KEY and S3_SECRET_ACCESS_KEY_FILE",
        ),
        (
            |s| {
                s.jwt_secret = None;
                s.jwt_secret_file = Some("/nonexistent/jwt".into());
            },
            "JWT_SECRET_FILE",
            "cannot read /nonexistent/jwt",
        ),
        (
            |s| {
                s.database_url = None;
                s.database_url_file = Some(temp_file("\n"));
            },
            "DATABASE_URL_FILE",
            "is empty",
        ),
        (
            |s| {
                s.jwt_secret = None;
                s.jwt_secret_file = Some(temp_file("short\n"));
            },
            "JWT_SECRET_FILE",
            "at least 32 bytes",
        ),
    ];
    for (change, variable, reason) in cases {
        let mut s = minimal();
        change(&mut s);
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn jwks_providers_come_from_jwt_jwks_url_and_jwt_issuers() {
    let mut s = minimal();
    s.jwt_secret = None;
    s.jwt_jwks_url = Some("https://tenant.auth0.com/.well-known/jwks.json".into());
    s.jwt_issuer = Some("https://tenant.auth0.com/".into());
    s.jwt_audience = Some("https://api.example".into());
    s.jwt_issuers = Some(
        " iss=https://securetoken.google.com/proj, aud=proj ,jwks=https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com ;\n\
         iss=https://clerk.example.com,jwks=http://127.0.0.1:9999/jwks\n"
            .into(),
    );
    let c = s.validate().unwrap();
    let got: Vec<_> = c.jwt.jwks.iter().map(|j| (j.issuer.as_str(), j.audience.as_deref(), j.variable)).collect();
    assert_eq!(
        got,
        [
            ("https://tenant.auth0.com/", Some("https://api.example"), "JWT_JWKS_URL"),
            ("https://securetoken.google.com/proj", Some("proj"), "JWT_ISSUERS"),
            ("https://clerk.example.com", None, "JWT_ISSUERS"),
        ]
    );
    assert_eq!(c.jwt.owner_claim, "sub");
    assert_eq!(c.jwt.scope_claims, ["scope", "scp", "scopes"]);
    assert_eq!(c.jwt.jwks_timeout, std::time::Duration::from_secs(5));
    assert_eq!(c.jwt.jwks_cooldown, std::time::Duration::from_secs(30));
    assert!(c.summary().contains("+jwks(https://tenant.auth0.com/)"), "{}", c.summary());

    let mut s = minimal();
    s.jwt_owner_claim = Some(" org_id ".into());
    s.jwt_scope_claim = Some("permissions, scope".into());
    let c = s.validate().unwrap();
    assert_eq!(
        (c.jwt.owner_claim.as_str(), c.jwt.scope_claims.as_slice()),
        ("org_id", &["permissions".to_owned(), "scope".into()][..])
    );
}

#[test]
fn each_bad_jwks_setting_is_named() {
    type Case = (fn(&mut Settings), &'static str);
    let cases: Vec<Case> = vec![
        (|s| s.jwt_jwks_url = Some("https://idp.example/jwks".into()), "JWT_JWKS_URL"), // no JWT_ISSUER
        (
            |s| {
                s.jwt_issuer = Some("https://idp.example/".into());
                s.jwt_jwks_url = Some("http://idp.example/jwks".into());
            },
            "JWT_JWKS_URL",
        ),
        (
            |s| {
                s.jwt_issuer = Some("https://idp.example/".into());
                s.jwt_jwks_url = Some("idp.example/jwks".into());
            },
            "JWT_JWKS_URL",
        ),
        (|s| s.jwt_issuers = Some("iss=https://a/".into()), "JWT_ISSUERS"),
        (|s| s.jwt_issuers = Some("jwks=https://a/jwks".into()), "JWT_ISSUERS"),
        (|s| s.jwt_issuers = Some("iss=https://a/,jwks=https://a/j,audience=x".into()), "JWT_ISSUERS"),
        (|s| s.jwt_issuers = Some("iss=https://a/,jwks=https://a/j,iss=https://b/".into()), "JWT_ISSUERS"),
        (|s| s.jwt_issuers = Some("iss=a,jwks=https://a/j;iss=a,jwks=https://b/j".into()), "JWT_ISSUERS"),
        (|s| s.jwt_issuers = Some("https://a/".into()), "JWT_ISSUERS"),
        (|s| s.jwt_scope_claim = Some(" , ".into()), "JWT_SCOPE_CLAIM"),
        (|s| s.jwt_jwks_cooldown = Some("-1".into()), "JWT_JWKS_COOLDOWN"),
        (|s| s.jwks_timeout = Some("0".into()), "BROKER_JWKS_TIMEOUT"),
    ];
    for (change, variable) in cases {
        let mut s = minimal();
        change(&mut s);
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
    }
}
