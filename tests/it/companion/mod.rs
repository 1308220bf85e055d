//! `/v1/companion`: the routes driven exactly as `@uppy/aws-s3` 5.x drives them (request
//! shapes from `../shared/research/uppy-protocol.md` §1.3: `Accept: application/json`,
//! the app's `authorization` header, JSON bodies only on the two POSTs, `?key=` on the
//! multipart routes), the bytes PUT to the returned URLs with the returned headers, and
//! the database, the usage counters and the bucket checked after each step.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::multipart::{MIB, bytes};
use crate::support::{Call, TestApp, TestOptions, app::to_call};

const PROFILES: &str = "[profiles.small]\nmax_size = 1000\n";

/// Multipart: create, sign, list, complete.
mod multipart;

/// The confirmer on, checking every 0.2 s (what makes a single PUT an asset).
async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions {
        profiles: Some(PROFILES.into()),
        tweak: Some(Box::new(|s| {
            s.confirm_interval = Some("0.2".into());
            s.confirm_backoff = Some("0.2".into());
            s.confirm_backoff_max = Some("1".into());
            s.cors_origins = Some("http://app.test".into());
        })),
        ..Default::default()
    })
    .await
}

/// A request as Uppy's RequestClient makes it: `Accept`, the configured headers, and
/// `Content-Type: application/json` only with a body.
async fn uppy(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Call {
    let mut req =
        app.http.request(method, format!("{}/v1/companion/{path}", app.base)).header("accept", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    to_call(req.send().await.expect("the broker answers")).await
}

/// `getUploadParameters`: `new URLSearchParams({filename, type, ...metadata[k]})`.
async fn params(app: &TestApp, token: &str, filename: &str, ty: &str, meta: &[(&str, &str)]) -> Call {
    let mut query = vec![("filename".to_owned(), filename.to_owned()), ("type".to_owned(), ty.to_owned())];
    query.extend(meta.iter().map(|(k, v)| (format!("metadata[{k}]"), (*v).to_owned())));
    let qs = serde_urlencoded_pairs(&query);
    uppy(app, Method::GET, &format!("s3/params?{qs}"), Some(token), None).await
}

/// Form encoding as `URLSearchParams` writes it (space as `+`).
fn serde_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| percent_encode(s, b"*-._", true);
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// `encodeURIComponent`, for `?key=`.
fn uri_component(s: &str) -> String {
    percent_encode(s, b"-_.!~*'()", false)
}

/// Percent-encoding as JavaScript writes it: ASCII letters, digits and the `unreserved` bytes
/// as they are, a space as `+` when `plus_for_space`, every other byte as `%XX`.
fn percent_encode(s: &str, unreserved: &[u8], plus_for_space: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b if b.is_ascii_alphanumeric() || unreserved.contains(&b) => (b as char).to_string(),
            b' ' if plus_for_space => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `createMultipartUpload`: `POST s3/multipart` with `{filename, type, metadata}`.
async fn create_multipart(app: &TestApp, token: &str, filename: &str, ty: &str, metadata: Value) -> Call {
    let body = json!({"filename": filename, "type": ty, "metadata": metadata});
    uppy(app, Method::POST, "s3/multipart", Some(token), Some(body)).await
}

/// Uppy's `uploadPartBytes`: the method and URL, every returned header, the raw body.
async fn send_bytes(app: &TestApp, signed: &Value, body: Vec<u8>) -> reqwest::Response {
    let method = signed["method"].as_str().unwrap_or("PUT");
    let mut req = app.http.request(Method::from_bytes(method.as_bytes()).unwrap(), signed["url"].as_str().unwrap());
    if let Some(headers) = signed["headers"].as_object() {
        for (name, value) in headers {
            req = req.header(name, value.as_str().unwrap());
        }
    }
    if body.is_empty() {
        req = req.header("content-length", "0");
    }
    req.body(body).send().await.expect("the store answers")
}

/// Polls `done` every 0.1 s until it holds, 600 times at most (no timing is asserted: the
/// bound is generous); whether it came to hold.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..600 {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Polls until the upload's status is `want`.
async fn wait_for_status(app: &TestApp, id: &str, want: &str) {
    if !eventually(async || app.upload_status(id).await == want).await {
        panic!("upload {id} never became {want} (is {})", app.upload_status(id).await);
    }
}

async fn asset_of(app: &TestApp, id: &str) -> (i64, Value) {
    let id: uuid::Uuid = id.parse().unwrap();
    let row = app.db.query_one("select size, metadata from assets where upload_id = $1", &[&id]).await.unwrap();
    (row.get(0), row.get(1))
}

fn assert_companion_error(c: &Call, status: u16, code: &str) -> String {
    let message = c.assert_error(status, code);
    assert_eq!(c.body["message"], message.as_str(), "Uppy shows the top-level message: {:#}", c.body);
    message
}

#[tokio::test]
async fn a_single_put_with_its_size_becomes_an_asset_without_a_complete_call() {
    let app = app().await;
    let token = app.token("alice");
    let body = b"hello from uppy\n".to_vec();
    let size = body.len().to_string();
    let meta = [("name", "hi.txt"), ("type", "text/plain"), ("size", size.as_str()), ("caption", "a b")];

    let p = params(&app, &token, "hi.txt", "text/plain", &meta).await;
    assert_eq!(p.status, 200, "{:#}", p.body);
    assert_eq!(p.body["method"], "PUT");
    assert_eq!(p.body["fields"], json!({}));
    assert!(p.body["expires"].as_u64().unwrap() > 0);
    assert!(p.body.get("error").is_none(), "Uppy throws on a 2xx body with `error`");
    let headers = p.body["headers"].as_object().unwrap();
    let names: Vec<&str> = headers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["content-type", "if-none-match", "x-amz-meta-upload-id"],
        "no content-length: the browser sets it"
    );
    assert_eq!(headers["content-type"], "text/plain");
    let id = p.body["uploadId"].as_str().unwrap().to_owned();
    assert_eq!(headers["x-amz-meta-upload-id"], id.as_str());
    assert!(p.body["url"].as_str().unwrap().contains("content-length%3Bcontent-type"), "the size is signed");
    assert_eq!(app.usage_row("alice").await, (0, 0, body.len() as i64, 1));

    assert_eq!(send_bytes(&app, &p.body, body.clone()).await.status(), 200);
    wait_for_status(&app, &id, "completed").await;

    let (asset_size, metadata) = asset_of(&app, &id).await;
    assert_eq!(asset_size, body.len() as i64);
    assert_eq!(metadata, json!({"caption": "a b"}), "Uppy's name/type/size are not stored as metadata");
    assert_eq!(app.usage_row("alice").await, (body.len() as i64, 1, 0, 0));
    assert_eq!(app.object(p.body["key"].as_str().unwrap()).await.unwrap(), body);
    // A client that does call complete later gets the same asset.
    let again = app.complete("alice", &json!(id)).await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(app.usage_row("alice").await, (body.len() as i64, 1, 0, 0));
}

#[tokio::test]
async fn without_a_size_the_profile_max_is_reserved_and_settled_to_the_stored_size() {
    let app = app().await;
    let token = app.token("bob");
    let meta = [("name", "n.bin"), ("type", "application/octet-stream"), ("profile", "small")];

    let p = params(&app, &token, "n.bin", "application/octet-stream", &meta).await;
    assert_eq!(p.status, 200, "{:#}", p.body);
    assert!(!p.body["headers"].as_object().unwrap().contains_key("content-length"));
    assert!(!p.body["url"].as_str().unwrap().contains("content-length"), "no size is signed");
    let id = p.body["uploadId"].as_str().unwrap().to_owned();
    assert_eq!(app.usage_row("bob").await, (0, 0, 1000, 1), "the profile's max_size is reserved");

    assert_eq!(send_bytes(&app, &p.body, bytes(10, 1)).await.status(), 200);
    wait_for_status(&app, &id, "completed").await;
    assert_eq!(asset_of(&app, &id).await.0, 10);
    assert_eq!(app.usage_row("bob").await, (10, 1, 0, 0), "settled: exactly the stored bytes are used");

    // Larger than the profile allows: the store takes it (no size signed), verification
    // does not, and the object goes.
    let big = params(&app, &token, "b.bin", "application/octet-stream", &meta).await;
    assert_eq!(big.status, 200, "{:#}", big.body);
    let big_id = big.body["uploadId"].as_str().unwrap().to_owned();
    assert_eq!(send_bytes(&app, &big.body, bytes(1001, 2)).await.status(), 200);
    wait_for_status(&app, &big_id, "failed").await;
    let big_key = big.body["key"].as_str().unwrap();
    eventually(async || app.object(big_key).await.is_none()).await;
    assert_eq!(app.object(big_key).await, None, "the oversized object is deleted");
    assert_eq!(app.usage_row("bob").await, (10, 1, 0, 0));
}

#[tokio::test]
async fn removing_a_file_mid_upload_aborts_it_and_releases_the_reservation() {
    let app = app().await;
    let token = app.token("erin");
    let data = bytes(6 * MIB, 4);
    let metadata = json!({"size": data.len().to_string()});
    let created = create_multipart(&app, &token, "a.bin", "application/octet-stream", metadata).await;
    assert_eq!(created.status, 200, "{:#}", created.body);
    let (id, key) = (created.body["uploadId"].as_str().unwrap(), created.body["key"].as_str().unwrap());
    let k = uri_component(key);
    let signed = uppy(&app, Method::GET, &format!("s3/multipart/{id}/1?key={k}"), Some(&token), None).await;
    assert_eq!(send_bytes(&app, &signed.body, data[..5 * MIB].to_vec()).await.status(), 200);
    let store_id = app.store_upload_id(id).await.unwrap();
    assert_eq!(app.usage_row("erin").await, (0, 0, data.len() as i64, 1));

    // abortMultipartUpload: DELETE, no body; any JSON back.
    let gone = uppy(&app, Method::DELETE, &format!("s3/multipart/{id}?key={k}"), Some(&token), None).await;
    assert_eq!(gone.status, 200, "{:#}", gone.body);
    assert_eq!(gone.body, json!({}));
    assert_eq!(app.upload_status(id).await, "aborted");
    assert_eq!(app.usage_row("erin").await, (0, 0, 0, 0));
    assert!(app.store_parts(key, &store_id).await.is_empty(), "the store's multipart upload is aborted");
    let again = uppy(&app, Method::DELETE, &format!("s3/multipart/{id}?key={k}"), Some(&token), None).await;
    assert_eq!((again.status.as_u16(), again.body.clone()), (200, json!({})), "idempotent");
}

#[tokio::test]
async fn another_owners_upload_id_is_404_everywhere() {
    let app = app().await;
    let metadata = json!({"size": (6 * MIB).to_string()});
    let created = create_multipart(&app, &app.token("frank"), "a.bin", "application/octet-stream", metadata).await;
    let (id, key) = (created.body["uploadId"].as_str().unwrap(), created.body["key"].as_str().unwrap());
    let k = uri_component(key);
    let other = app.token("mallory");
    for (method, path, body) in [
        (Method::GET, format!("s3/multipart/{id}/1?key={k}"), None),
        (Method::GET, format!("s3/multipart/{id}?key={k}"), None),
        (Method::POST, format!("s3/multipart/{id}/complete?key={k}"), Some(json!({"parts": []}))),
        (Method::GET, format!("s3/multipart/{id}/1"), None),
    ] {
        let c = uppy(&app, method, &path, Some(&other), body).await;
        assert_companion_error(&c, 404, "not_found");
    }
    // Abort is idempotent: another owner's id is nothing to abort, and stays untouched.
    let c = uppy(&app, Method::DELETE, &format!("s3/multipart/{id}?key={k}"), Some(&other), None).await;
    assert_eq!(c.status, 200);
    assert_eq!(app.upload_status(id).await, "pending");
    // Not an id at all: 404 too.
    let c = uppy(&app, Method::GET, "s3/multipart/not-an-id/1", Some(&other), None).await;
    assert_companion_error(&c, 404, "not_found");
}

#[tokio::test]
async fn a_tampered_key_query_is_ignored_the_upload_id_alone_names_the_upload() {
    let app = app().await;
    let token = app.token("gina");
    let start = |name: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let metadata = json!({"size": (6 * MIB).to_string()});
            let c = create_multipart(app, token, name, "application/octet-stream", metadata).await;
            assert_eq!(c.status, 200, "{:#}", c.body);
            (c.body["uploadId"].as_str().unwrap().to_owned(), c.body["key"].as_str().unwrap().to_owned())
        }
    };
    let (a, a_key) = start("a.bin").await;
    let (b, b_key) = start("b.bin").await;
    let forged = uri_component("uploads/victim/x/../../secret.bin");

    // Signed for `a`'s own key, whatever key the query names.
    for key in [forged.clone(), uri_component(&b_key)] {
        let signed = uppy(&app, Method::GET, &format!("s3/multipart/{a}/1?key={key}"), Some(&token), None).await;
        assert_eq!(signed.status, 200, "{:#}", signed.body);
        let url = signed.body["url"].as_str().unwrap();
        assert!(url.contains(&format!("/{a_key}?")), "{url}");
        let listed = uppy(&app, Method::GET, &format!("s3/multipart/{a}?key={key}"), Some(&token), None).await;
        assert_eq!(listed.status, 200, "{:#}", listed.body);
    }
    // Aborting `a` with `b`'s key aborts `a`, and only `a`.
    let gone =
        uppy(&app, Method::DELETE, &format!("s3/multipart/{a}?key={}", uri_component(&b_key)), Some(&token), None)
            .await;
    assert_eq!(gone.status, 200, "{:#}", gone.body);
    assert_eq!(app.upload_status(&a).await, "aborted");
    assert_eq!(app.upload_status(&b).await, "pending");
    // Other query parameters are refused, as on every route.
    let c = uppy(&app, Method::GET, &format!("s3/multipart/{b}/1?bucket=x"), Some(&token), None).await;
    assert_companion_error(&c, 400, "invalid_request");
}

#[tokio::test]
async fn quota_and_auth_errors_are_4xx_with_a_message_uppy_shows() {
    let app = app().await;
    app.set_quota("hank", Some(100), None).await;
    let token = app.token("hank");

    let c = params(&app, &token, "a.txt", "text/plain", &[("size", "101")]).await;
    assert_companion_error(&c, 403, "quota_exceeded");
    // Without a size, the reservation (the profile's max_size) must fit too.
    let c = params(&app, &token, "a.txt", "text/plain", &[("profile", "small")]).await;
    assert_companion_error(&c, 403, "quota_exceeded");
    let c = params(&app, &token, "a.txt", "text/plain", &[("size", "2000"), ("profile", "small")]).await;
    assert_companion_error(&c, 413, "file_too_large");
    let c = params(&app, &token, "a.txt", "text/plain", &[("profile", "nope")]).await;
    assert_companion_error(&c, 400, "invalid_request");
    assert_eq!(app.usage_row("hank").await, (0, 0, 0, 0));

    let c = uppy(&app, Method::GET, "s3/params?filename=a.txt&type=text%2Fplain", None, None).await;
    assert_companion_error(&c, 401, "unauthorized");
    let c = uppy(&app, Method::POST, "s3/multipart", Some("not-a-jwt"), Some(json!({"filename": "a"}))).await;
    assert_companion_error(&c, 401, "unauthorized");
}

#[tokio::test]
async fn the_api_cors_lets_uppy_call_from_the_app_origin() {
    let app = app().await;
    let pre = app
        .http
        .request(Method::OPTIONS, format!("{}/v1/companion/s3/multipart", app.base))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "accept,authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(pre.headers()["access-control-allow-origin"], "http://app.test");
    let allowed = pre.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for h in ["accept", "authorization", "content-type"] {
        assert!(allowed.contains(h), "{allowed}");
    }
}
