//! Operations: health, readiness, metrics, the served spec and its drift against the code,
//! SQL that prepares against the migrated schema, and the command line's configuration.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::json;

use crate::support::TestApp;

const OPENAPI: &str = include_str!("../../openapi.yaml");

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = TestApp::spawn().await;
    let health = app.call("GET", "/healthz", None, None).await;
    assert_eq!((health.status.as_u16(), health.body.clone()), (200, json!({"status": "ok"})));
    let ready = app.call("GET", "/readyz", None, None).await;
    assert_eq!((ready.status.as_u16(), ready.body.clone()), (200, json!({"status": "ready"})));
}

/// The demo page and the JS client are `r2-broker dev`'s only (tests/it/dev_mode.rs).
#[tokio::test]
async fn dev_pages_are_not_served_outside_dev_mode() {
    let app = TestApp::spawn().await;
    for path in ["/", "/demo.js", "/client/r2-broker.js"] {
        let res = app.call("GET", path, None, None).await;
        assert_eq!((res.status.as_u16(), &res.body["error"]["code"]), (404, &json!("not_found")), "{path}");
    }
}

async fn metrics(app: &TestApp) -> String {
    let res = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    res.text().await.unwrap()
}

/// The value of the first sample line starting with `name` and containing every label.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next() == Some(name) && labels.iter().all(|label| l.contains(label)))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_intents_and_reserved_bytes() {
    let app = TestApp::spawn().await;
    let c = app.create("alice", json!({"filename": "a.txt", "content_type": "text/plain", "size": 1234})).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let text = metrics(&app).await;
    let create = [r#"route="/v1/uploads""#, r#"method="POST""#, r#"status="201""#];
    assert_eq!(sample(&text, "broker_http_requests_total", &create), Some(1.0), "{text}");
    assert_eq!(sample(&text, "broker_upload_intents_created_total", &[r#"method="put""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "broker_bytes_reserved_total", &[]), Some(1234.0), "{text}");
    let route = [r#"route="/v1/uploads""#];
    assert_eq!(sample(&text, "broker_http_request_duration_seconds_count", &route), Some(1.0), "{text}");
    assert!(sample(&text, "broker_http_request_duration_seconds_bucket", &route).is_some(), "{text}");

    // Route patterns, not paths: ids do not become labels.
    let id = c.body["upload_id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/uploads/{id}"), &app.token("alice")).await.status, 200);
    let text = metrics(&app).await;
    assert!(!text.contains(id), "{text}");
    let status = [r#"route="/v1/uploads/{id}""#, r#"method="GET""#, r#"status="200""#];
    assert_eq!(sample(&text, "broker_http_requests_total", &status), Some(1.0), "{text}");
}

#[tokio::test]
async fn a_verification_failure_is_counted() {
    let app = TestApp::spawn().await;
    let c = app.create("bob", json!({"filename": "a.txt", "content_type": "text/plain", "size": 5})).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    // Someone with store credentials writes a different object at the key.
    let key = c.body["key"].as_str().unwrap();
    app.s3.put_object().bucket(&app.bucket).key(key).body(b"abc".to_vec().into()).send().await.unwrap();
    app.complete("bob", &c.body["upload_id"]).await.assert_error(422, "verification_failed");
    let text = metrics(&app).await;
    assert_eq!(sample(&text, "broker_verification_failures_total", &[]), Some(1.0), "{text}");
    assert_eq!(app.object(key).await, None, "the mismatching object is deleted");
}

#[tokio::test]
async fn openapi_yaml_is_served_as_the_repository_file() {
    let app = TestApp::spawn().await;
    let res = app.http.get(format!("{}/openapi.yaml", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().contains("yaml"));
    assert!(res.headers().contains_key("x-request-id"));
    let text = res.text().await.unwrap();
    assert_eq!(text, OPENAPI);
    // No YAML crate here: the structural basics a parser would trip over first.
    assert!(text.starts_with("openapi: 3."), "an OpenAPI 3 document");
    assert!(!text.contains('\t'), "YAML forbids tabs in indentation");
    for key in ["info:", "paths:", "components:"] {
        assert!(text.lines().any(|l| l == key), "top-level {key}");
    }
    assert!(!spec_routes().is_empty());
}

/// The lines of the block opened by the exact line `start` (those indented deeper).
fn block(start: &str) -> Vec<&'static str> {
    let indent = start.len() - start.trim_start().len();
    let mut lines = OPENAPI.lines().skip_while(|l| *l != start);
    assert!(lines.next().is_some(), "openapi.yaml has no line {start:?}");
    lines.take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent).collect()
}

/// `(path, METHOD)` pairs under `paths:`: keys `  /x:` and methods `    get:` below them.
fn spec_routes() -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
    let mut out = BTreeSet::new();
    let mut path = None;
    for line in block("paths:") {
        if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            assert!(!p.contains(' '), "odd path key {line:?}");
            path = Some(format!("/{p}"));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && METHODS.contains(&m)
        {
            out.insert((path.clone().expect("a method under a path"), m.to_uppercase()));
        }
    }
    out
}

#[test]
fn openapi_paths_and_methods_match_the_route_table() {
    let code: BTreeSet<(String, String)> = r2_broker::http::route_table()
        .into_iter()
        .flat_map(|(path, methods)| methods.into_iter().map(move |m| (path.to_owned(), m.to_owned())))
        .collect();
    let spec = spec_routes();
    let only_code: Vec<_> = code.difference(&spec).collect();
    let only_spec: Vec<_> = spec.difference(&code).collect();
    assert!(
        only_code.is_empty() && only_spec.is_empty(),
        "in code only: {only_code:?}; in openapi.yaml only: {only_spec:?}"
    );
}

/// The `code` enum of `components.schemas.Error` (block list or `[a, b]` flow list).
fn spec_error_codes() -> BTreeSet<String> {
    let lines = block("    Error:");
    let code = lines.iter().position(|l| l.trim() == "code:").expect("Error has a code property");
    let enum_at =
        code + lines[code..].iter().position(|l| l.trim_start().starts_with("enum:")).expect("code has an enum");
    let inline = lines[enum_at].trim_start().trim_start_matches("enum:").trim();
    if let Some(list) = inline.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        return list.split(',').map(|c| c.trim().to_owned()).collect();
    }
    lines[enum_at + 1..]
        .iter()
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|c| c.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

#[test]
fn openapi_error_codes_match_the_error_type() {
    let code: BTreeSet<String> = r2_broker::error::Error::CONTRACT_CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(code.len(), r2_broker::error::Error::CONTRACT_CODES.len(), "no duplicates");
    let spec = spec_error_codes();
    let only_code: Vec<_> = code.difference(&spec).collect();
    let only_spec: Vec<_> = spec.difference(&code).collect();
    assert!(
        only_code.is_empty() && only_spec.is_empty(),
        "in code only: {only_code:?}; in openapi.yaml only: {only_spec:?}"
    );
}

#[tokio::test]
async fn every_sql_statement_prepares_against_the_migrated_schema() {
    let app = TestApp::spawn().await;
    assert!(!r2_broker::db::ALL_STATEMENTS.is_empty());
    for sql in r2_broker::db::ALL_STATEMENTS {
        if let Err(e) = app.db.prepare(sql).await {
            panic!("{sql}\n  does not prepare: {e:?}");
        }
    }
}

#[test]
fn every_sql_constant_in_src_db_is_listed_in_all_statements() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db");
    let listed = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let listed = &listed[listed.find("ALL_STATEMENTS").expect("ALL_STATEMENTS in src/db/mod.rs")..];
    let mut missing = vec![];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if module == "mod" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if let Some(name) = line.strip_prefix("pub const ").and_then(|l| l.split_once(": &str")).map(|(n, _)| n) {
                let qualified = format!("{module}::{name}");
                if !listed.contains(&format!("{qualified},")) {
                    missing.push(qualified);
                }
            }
        }
    }
    assert!(missing.is_empty(), "SQL not in db::ALL_STATEMENTS (so never prepared by a test): {missing:?}");
}

/// The built binary with only PATH and the given variables.
fn broker(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r2-broker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run r2-broker")
}

fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The Configuration table of the original specification (the README lists them all).
const VARIABLES: [&str; 17] = [
    "BROKER_LISTEN",
    "DATABASE_URL",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_PROVIDER",
    "S3_PUBLIC_BASE_URL",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "BROKER_ADMIN_SCOPE",
    "BROKER_PROFILES",
    "BROKER_DEFAULT_QUOTA_BYTES",
    "BROKER_DEFAULT_QUOTA_OBJECTS",
];

#[test]
fn help_documents_every_configuration_variable() {
    let out = broker(&["--help"], &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    let help = all_output(&out);
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mentions = |v: &str| {
        help.match_indices(v).any(|(i, _)| !word(help[..i].chars().last()) && !word(help[i + v.len()..].chars().next()))
    };
    let missing: Vec<_> = VARIABLES.iter().filter(|v| !mentions(v)).collect();
    assert!(missing.is_empty(), "not in --help: {missing:?}\n{help}");
}

#[test]
fn without_any_configuration_it_refuses_to_start_naming_database_url() {
    let out = broker(&[], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"), "{}", all_output(&out));
}

#[test]
fn a_short_jwt_secret_is_refused_by_name_and_no_secret_is_printed() {
    let db_password = "pg-Pa55word-q8Zr";
    let s3_secret = "s3-SecretKey-h4Xv";
    let jwt = "jwt-0123ab";
    assert_eq!(jwt.len(), 10);
    let url = format!("postgres://broker:{db_password}@127.0.0.1:9/broker");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("S3_ENDPOINT", "http://127.0.0.1:9"),
        ("S3_BUCKET", "media"),
        ("S3_ACCESS_KEY_ID", "AKIDTEST"),
        ("S3_SECRET_ACCESS_KEY", s3_secret),
        ("JWT_SECRET", jwt),
    ];
    let out = broker(&[], &env);
    let text = all_output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"), "{text}");
    for secret in [db_password, s3_secret, jwt] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // Even --help with the secrets in the environment does not print them.
    let help = broker(&["--help"], &env);
    let text = all_output(&help);
    for secret in [db_password, s3_secret, jwt] {
        assert!(!text.contains(secret), "{secret} leaked by --help: {text}");
    }
}
