//! The error contract: routes and methods, request shape (the message names the field),
//! the order of checks, `x-request-id`, other owners' IDs, and rate limiting.

use serde_json::{Value, json};

use crate::support::app::to_call;
use crate::support::{Call, TestApp, TestOptions};

fn body() -> Value {
    json!({"filename": "a.txt", "content_type": "text/plain", "size": 5})
}

fn with(mut b: Value, field: &str, value: Value) -> Value {
    b[field] = value;
    b
}

/// A request with a raw body (for JSON `serde_json::Value` cannot hold) and headers.
pub(crate) async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> Call {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(method, format!("{}{path}", app.base)).body(body.to_owned());
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    to_call(req.send().await.expect("the broker answers")).await
}

#[tokio::test]
async fn an_unknown_route_is_404_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    for (method, path) in [("GET", "/nope"), ("GET", "/v1/nope"), ("POST", "/v1/upload"), ("GET", "/v2/uploads")] {
        app.call(method, path, Some(&t), None).await.assert_error(404, "not_found");
        app.call(method, path, None, None).await.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn a_known_route_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::new_v4();
    let t = app.token("alice");
    for (method, path, allow) in [
        ("GET", "/v1/uploads".to_owned(), "POST"),
        ("PUT", format!("/v1/uploads/{id}"), "GET, DELETE"),
        ("DELETE", "/v1/usage".to_owned(), "GET"),
        ("POST", "/healthz".to_owned(), "GET"),
        ("GET", "/v1/admin/owners/bob/quota".to_owned(), "PUT"),
    ] {
        for token in [Some(t.as_str()), None] {
            let c = app.call(method, &path, token, None).await;
            c.assert_error(405, "method_not_allowed");
            assert_eq!(c.headers.get("allow").unwrap(), allow, "{method} {path}");
        }
    }
}

/// Bodies the validators refuse, with the field the message must name.
#[tokio::test]
async fn a_bad_create_body_is_400_and_the_message_names_the_field() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let b = body();
    let cases: Vec<(&str, Value)> = vec![
        ("colour", with(b.clone(), "colour", json!("red"))),
        ("size", json!({"filename": "a.txt", "content_type": "text/plain"})),
        ("filename", json!({"content_type": "text/plain", "size": 1})),
        ("size", with(b.clone(), "size", json!(-1))),
        ("filename", with(b.clone(), "filename", json!(""))),
        ("filename", with(b.clone(), "filename", json!("a".repeat(256)))),
        ("content_type", with(b.clone(), "content_type", json!("text"))),
        ("content_type", with(b.clone(), "content_type", json!(""))),
        ("profile", with(b.clone(), "profile", json!("nope"))),
        ("metadata", with(b.clone(), "metadata", json!({"k": "v".repeat(2048)}))),
        ("checksum_sha256", with(b.clone(), "checksum_sha256", json!("not base64!"))),
        ("checksum_sha256", with(b.clone(), "checksum_sha256", json!("AAAA"))),
        (
            "checksum_sha256",
            with(
                with(with(b.clone(), "method", json!("multipart")), "size", json!(6 << 20)),
                "checksum_sha256",
                json!(crate::support::sha256_b64(b"x")),
            ),
        ),
    ];
    for (field, body) in cases {
        let c = app.post("/v1/uploads", &t, body.clone()).await;
        let message = c.assert_error(400, "invalid_request");
        assert!(message.contains(field), "{body}: {message:?} should name {field}");
    }
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.usage_row("alice").await, (0, 0, 0, 0));
}

/// JSON that does not fit the types: refused whole.
const WRONG_TYPES: [(&str, &str); 9] = [
    ("size", r#"{"filename":"a","content_type":"text/plain","size":1e300}"#),
    ("size", r#"{"filename":"a","content_type":"text/plain","size":9223372036854775808}"#),
    ("size", r#"{"filename":"a","content_type":"text/plain","size":1.5}"#),
    ("size", r#"{"filename":"a","content_type":"text/plain","size":18446744073709551616}"#),
    ("size", r#"{"filename":"a","content_type":"text/plain","size":"5"}"#),
    ("filename", r#"{"filename":7,"content_type":"text/plain","size":5}"#),
    ("method", r#"{"filename":"a","content_type":"text/plain","size":5,"method":"ftp"}"#),
    ("metadata", r#"{"filename":"a","content_type":"text/plain","size":5,"metadata":{"k":1}}"#),
    ("metadata", r#"{"filename":"a","content_type":"text/plain","size":5,"metadata":"x"}"#),
];

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let mut bodies: Vec<&str> = WRONG_TYPES.iter().map(|(_, b)| *b).collect();
    bodies.extend(["{\"filename\":", "not json", "[]", "null", "{\"filename\":\"a\",\"filename\":\"b\"}"]);
    for b in bodies {
        raw(&app, "POST", "/v1/uploads", Some(&t), b, &[]).await.assert_error(400, "invalid_request");
    }
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn a_wrong_json_type_names_the_field() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let mut unnamed = vec![];
    for (field, b) in WRONG_TYPES {
        let message = raw(&app, "POST", "/v1/uploads", Some(&t), b, &[]).await.assert_error(400, "invalid_request");
        if !message.contains(field) {
            unnamed.push(format!("{b} -> {message:?} does not name {field}"));
        }
    }
    assert!(unnamed.is_empty(), "{unnamed:#?}");
}

#[tokio::test]
async fn a_body_over_1_mib_is_400_and_reserves_nothing() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"filename":"a","content_type":"text/plain","size":1,"metadata":{{"k":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    raw(&app, "POST", "/v1/uploads", Some(&app.token("alice")), &big, &[]).await.assert_error(400, "invalid_request");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn an_unknown_query_parameter_is_400() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let id = uuid::Uuid::new_v4();
    for (field, path) in [
        ("colour", "/v1/usage?colour=red".to_owned()),
        ("sort", "/v1/assets?limit=5&sort=asc".to_owned()),
        ("verbose", format!("/v1/uploads/{id}?verbose=1")),
        ("ttl", format!("/v1/assets/{id}/download-url?disposition=inline&ttl=5")),
    ] {
        let message = app.get(&path, &t).await.assert_error(400, "invalid_request");
        assert!(message.contains(field), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_404_before_the_token_is_checked() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    for (method, path) in [
        ("GET", "/v1/uploads/x"),
        ("DELETE", "/v1/uploads/x"),
        ("POST", "/v1/uploads/x/complete"),
        ("GET", "/v1/uploads/1234/parts"),
        ("GET", "/v1/assets/x"),
        ("DELETE", "/v1/assets/x"),
        ("GET", "/v1/assets/x/download-url"),
    ] {
        app.call(method, path, Some(&t), None).await.assert_error(404, "not_found");
        app.call(method, path, None, None).await.assert_error(404, "not_found");
        app.call(method, path, Some("garbage"), None).await.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn the_token_is_checked_before_the_body() {
    let app = TestApp::spawn().await;
    for token in [None, Some("garbage")] {
        raw(&app, "POST", "/v1/uploads", token, "{not json", &[]).await.assert_error(401, "unauthorized");
        raw(&app, "POST", "/v1/uploads", token, r#"{"size":1.5}"#, &[]).await.assert_error(401, "unauthorized");
    }
    let c = app.call("GET", "/v1/usage?colour=red", None, None).await;
    c.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_bad_shape_answers_before_acting_for_another_owner() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let b = with(body(), "owner", json!("bob"));
    app.post("/v1/uploads", &t, with(b.clone(), "size", json!(-1))).await.assert_error(400, "invalid_request");
    let fraction = r#"{"filename":"a","content_type":"text/plain","size":1.5,"owner":"bob"}"#;
    raw(&app, "POST", "/v1/uploads", Some(&t), fraction, &[]).await.assert_error(400, "invalid_request");
    app.get("/v1/usage?owner=bob&x=1", &t).await.assert_error(400, "invalid_request");
}

fn photos() -> String {
    "[profiles.photos]\nmax_size = 1000\nallowed_content_types = [\"image/png\"]\n".into()
}

#[tokio::test]
async fn forbidden_then_too_large_then_unsupported_type() {
    let app = TestApp::spawn_with(TestOptions { profiles: Some(photos()), ..Default::default() }).await;
    let t = app.token("alice");
    let b = json!({"filename": "a.txt", "content_type": "text/plain", "size": 5000, "profile": "photos"});
    app.post("/v1/uploads", &t, with(b.clone(), "owner", json!("bob"))).await.assert_error(403, "forbidden");
    app.post("/v1/uploads", &t, b.clone()).await.assert_error(413, "file_too_large");
    app.post("/v1/uploads", &t, with(b.clone(), "size", json!(10))).await.assert_error(415, "unsupported_content_type");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn an_unsupported_type_then_method_not_supported_then_quota_on_r2() {
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some(photos()),
        tweak: Some(Box::new(|s| s.s3_provider = Some("r2".into()))),
        ..Default::default()
    })
    .await;
    app.set_quota("alice", Some(0), None).await;
    let t = app.token("alice");
    let b =
        json!({"filename": "a.txt", "content_type": "text/plain", "size": 10, "profile": "photos", "method": "post"});
    app.post("/v1/uploads", &t, b.clone()).await.assert_error(415, "unsupported_content_type");
    let png = with(b, "content_type", json!("image/png"));
    let message = app.post("/v1/uploads", &t, png.clone()).await.assert_error(400, "method_not_supported");
    assert!(message.contains("put"), "{message}");
    // Quota last: with `put` the only failure left is the zero quota.
    app.post("/v1/uploads", &t, with(png, "method", json!("put"))).await.assert_error(403, "quota_exceeded");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.usage_row("alice").await, (0, 0, 0, 0));
}

fn request_id(c: &Call) -> String {
    c.headers.get("x-request-id").expect("x-request-id").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_valid_client_request_id_is_echoed_and_an_invalid_one_replaced() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let max = "a".repeat(128);
    for id in ["abc-123_X.y:z", "1", max.as_str()] {
        let ok = raw(&app, "GET", "/v1/usage", Some(&t), "", &[("x-request-id", id)]).await;
        assert_eq!((ok.status.as_u16(), request_id(&ok)), (200, id.to_owned()));
        let err = raw(&app, "GET", "/v1/usage", None, "", &[("x-request-id", id)]).await;
        err.assert_error(401, "unauthorized");
        assert_eq!(request_id(&err), id);
    }
    let long = "a".repeat(200);
    for id in [long.as_str(), "a b", "a/b", "\"x\"", ""] {
        let c = raw(&app, "GET", "/nope", None, "", &[("x-request-id", id)]).await;
        c.assert_error(404, "not_found");
        let got = request_id(&c);
        assert!(got.parse::<uuid::Uuid>().is_ok(), "{id:?} replaced by a UUID, got {got:?}");
    }
    // Not even UTF-8.
    let mut req = app.http.get(format!("{}/healthz", app.base));
    req = req.header("x-request-id", reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
    let c = to_call(req.send().await.unwrap()).await;
    assert!(request_id(&c).parse::<uuid::Uuid>().is_ok());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let t = app.token("alice");
    let calls = [
        app.call("GET", "/healthz", None, None).await,
        app.call("GET", "/metrics", None, None).await,
        app.call("GET", "/v1/usage", Some(&t), None).await,
        app.post("/v1/uploads", &t, body()).await,
        app.call("GET", "/nope", None, None).await,
        app.call("GET", "/v1/usage", None, None).await,
        app.call("GET", "/v1/uploads", None, None).await,
    ];
    let mut seen = std::collections::HashSet::new();
    for c in calls {
        let id = request_id(&c);
        assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");
        assert!(seen.insert(id.clone()), "a new id per request");
        if !c.status.is_success() {
            assert_eq!(c.body["error"]["request_id"], id.as_str());
        }
    }
}

#[tokio::test]
async fn another_owners_upload_and_asset_are_404() {
    let app = TestApp::spawn().await;
    let asset = app.upload("alice", "a.txt", "text/plain", b"hello").await;
    let pending = app.create("alice", body()).await;
    assert_eq!(app.put_to(&pending.body, b"12345".to_vec()).await.status(), 200);
    let (aid, uid) = (asset["id"].as_str().unwrap(), pending.body["upload_id"].as_str().unwrap());
    let bob = app.token("bob");
    for (method, path) in [
        ("GET", format!("/v1/uploads/{uid}")),
        ("POST", format!("/v1/uploads/{uid}/complete")),
        ("GET", format!("/v1/uploads/{uid}/parts")),
        ("GET", format!("/v1/assets/{aid}")),
        ("GET", format!("/v1/assets/{aid}/download-url")),
    ] {
        app.call(method, &path, Some(&bob), None).await.assert_error(404, "not_found");
    }
    let urls = app.post("/v1/assets/download-urls", &bob, json!({"ids": [aid]})).await;
    assert_eq!((urls.status.as_u16(), urls.body["urls"].clone()), (200, json!({})));
    assert_eq!(app.upload_status(uid).await, "pending", "bob's complete did nothing");
    assert_eq!(app.usage_row("bob").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn deleting_another_owners_upload_or_asset_is_204_and_touches_nothing() {
    let app = TestApp::spawn().await;
    let asset = app.upload("alice", "a.txt", "text/plain", b"hello").await;
    let pending = app.create("alice", body()).await;
    assert_eq!(app.put_to(&pending.body, b"12345".to_vec()).await.status(), 200);
    let (aid, uid) = (asset["id"].as_str().unwrap(), pending.body["upload_id"].as_str().unwrap());
    let before = app.usage_row("alice").await;
    assert_eq!(before, (5, 1, 5, 1));

    let bob = app.token("bob");
    assert_eq!(app.delete(&format!("/v1/uploads/{uid}"), &bob).await.status, 204);
    assert_eq!(app.delete(&format!("/v1/assets/{aid}"), &bob).await.status, 204);

    assert_eq!(app.upload_status(uid).await, "pending");
    let aid: uuid::Uuid = aid.parse().unwrap();
    assert_eq!(app.db.query_opt("select 1 from assets where id = $1", &[&aid]).await.unwrap().map(|_| ()), Some(()));
    assert_eq!(app.object(asset["key"].as_str().unwrap()).await.as_deref(), Some(&b"hello"[..]));
    assert_eq!(app.object(pending.body["key"].as_str().unwrap()).await.as_deref(), Some(&b"12345"[..]));
    assert_eq!(app.usage_row("alice").await, before);
}

#[tokio::test]
async fn the_third_quick_request_from_one_owner_is_429_and_other_owners_are_unaffected() {
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| {
            s.rate_limit_per_second = Some("1".into());
            s.rate_limit_burst = Some("2".into());
        })),
        ..Default::default()
    })
    .await;
    let alice = app.token("alice");
    assert_eq!(app.get("/v1/usage", &alice).await.status, 200);
    assert_eq!(app.get("/v1/usage", &alice).await.status, 200);
    let limited = app.get("/v1/usage", &alice).await;
    limited.assert_error(429, "rate_limited");
    let retry: u32 = limited.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    // A limited create reserves nothing.
    app.post("/v1/uploads", &alice, body()).await.assert_error(429, "rate_limited");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    let bob = app.token("bob");
    assert_eq!(app.get("/v1/usage", &bob).await.status, 200);
    assert_eq!(app.post("/v1/uploads", &bob, body()).await.status, 201);
}
