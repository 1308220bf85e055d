//! Hostile and odd input (issue 11): text PostgreSQL cannot store, duplicate JSON keys,
//! query parameters a route does not take, integer-valued numbers, the one id spelling,
//! the order of size checks, and what a download may render inline.

use serde_json::{Value, json};

use crate::errors::raw;
use crate::support::{TestApp, TestOptions, id_of};

fn body() -> Value {
    json!({"filename": "a.txt", "content_type": "text/plain", "size": 5})
}

async fn nothing_written(app: &TestApp) {
    assert_eq!(app.count("select count(*) from uploads").await, 0, "no upload row");
    assert_eq!(app.count("select count(*) from owners where reserved_objects > 0").await, 0, "nothing reserved");
}

#[tokio::test]
async fn nul_in_any_text_is_400_naming_the_field_and_401_in_a_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root");
    let cases = [
        (r#"{"filename":"a\u0000.txt","content_type":"text/plain","size":5}"#, "filename"),
        (r#"{"filename":"a.txt","content_type":"text/plain","size":5,"metadata":{"k":"v\u0000"}}"#, "metadata.k"),
        (r#"{"filename":"a.txt","content_type":"text/plain","size":5,"metadata":{"k\u0000":"v"}}"#, "metadata"),
        (r#"{"filename":"a.txt","content_type":"text/plain","size":5,"owner":"a\u0000b"}"#, "owner"),
    ];
    for (json, field) in cases {
        let c = raw(&app, "POST", "/v1/uploads", Some(&admin), json, &[]).await;
        let m = c.assert_error(400, "invalid_request");
        assert!(m.starts_with(field) && m.contains("U+0000"), "{json}: {m}");
    }
    let batch = r#"{"uploads":[{"filename":"ok.txt","content_type":"text/plain","size":1},
                                {"filename":"b\u0000","content_type":"text/plain","size":1}]}"#;
    let m = raw(&app, "POST", "/v1/uploads/batch", Some(&admin), batch, &[]).await.assert_error(400, "invalid_request");
    assert!(m.starts_with("uploads[1].filename"), "{m}");
    nothing_written(&app).await;

    for path in ["/v1/usage?owner=a%00b", "/v1/assets?owner=%00"] {
        app.get(path, &admin).await.assert_error(400, "invalid_request");
    }
    let c = app.call("PUT", "/v1/admin/owners/a%00b/quota", Some(&admin), Some(json!({"quota_bytes": 5}))).await;
    assert!(c.assert_error(400, "invalid_request").starts_with("owner"));
    assert_eq!(app.count("select count(*) from owners").await, 0, "no owner row");

    let nul_sub = app.token_with(json!({"sub": "eve\u{0}", "exp": crate::support::app::now() + 60}));
    app.get("/v1/usage", &nul_sub).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn duplicate_json_keys_are_refused_at_any_depth() {
    let app = TestApp::spawn().await;
    let token = app.token("dup");
    for json in [
        r#"{"filename":"a.txt","filename":"b.html","content_type":"text/plain","size":5}"#,
        r#"{"filename":"a.txt","content_type":"text/plain","size":5,"metadata":{"k":"1","k":"2"}}"#,
    ] {
        let m = raw(&app, "POST", "/v1/uploads", Some(&token), json, &[]).await.assert_error(400, "invalid_request");
        assert!(m.contains("duplicate key"), "{m}");
    }
    nothing_written(&app).await;
}

#[tokio::test]
async fn routes_that_take_no_query_refuse_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root");
    // An admin's ?owner= on create used to upload silently as the admin.
    app.call("POST", "/v1/uploads?owner=x", Some(&admin), Some(body())).await.assert_error(400, "invalid_request");
    let batch = json!({"uploads": [body()]});
    app.call("POST", "/v1/uploads/batch?owner=x", Some(&admin), Some(batch)).await.assert_error(400, "invalid_request");
    nothing_written(&app).await;
    let ids = json!({"ids": [uuid::Uuid::new_v4()]});
    app.call("POST", "/v1/assets/download-urls?x=1", Some(&admin), Some(ids))
        .await
        .assert_error(400, "invalid_request");
    let quota = json!({"quota_bytes": 5});
    app.call("PUT", "/v1/admin/owners/x/quota?dry=1", Some(&admin), Some(quota))
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(app.count("select count(*) from owners").await, 0, "no quota set");
}

#[tokio::test]
async fn integer_valued_numbers_are_integers_and_fractions_are_not() {
    let app = TestApp::spawn().await;
    let token = app.token("num");
    let c = raw(
        &app,
        "POST",
        "/v1/uploads",
        Some(&token),
        r#"{"filename":"a","content_type":"text/plain","size":5.0}"#,
        &[],
    )
    .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(app.usage_row("num").await, (0, 0, 5, 1));
    let c = raw(
        &app,
        "POST",
        "/v1/uploads",
        Some(&token),
        r#"{"filename":"a","content_type":"text/plain","size":5.5}"#,
        &[],
    )
    .await;
    assert!(c.assert_error(400, "invalid_request").starts_with("size"));
}

#[tokio::test]
async fn a_size_over_the_profile_and_the_5_tib_cap_is_413_and_a_batch_item_below_0_refuses_the_batch() {
    let app = TestApp::spawn().await;
    let token = app.token("big");
    for method in [None, Some("multipart"), Some("put")] {
        let mut b = json!({"filename": "a.bin", "content_type": "application/octet-stream", "size": 6_i64 << 40});
        if let Some(m) = method {
            b["method"] = json!(m);
        }
        app.post("/v1/uploads", &token, b).await.assert_error(413, "file_too_large");
    }
    let items = json!({"uploads": [body(), {"filename": "b.txt", "content_type": "text/plain", "size": -1}]});
    let m = app.post("/v1/uploads/batch", &token, items).await.assert_error(400, "invalid_request");
    assert!(m.starts_with("uploads[1].size"), "{m}");
    nothing_written(&app).await;
}

#[tokio::test]
async fn a_post_intent_with_a_checksum_is_refused_at_create() {
    let app = TestApp::spawn().await;
    let b = json!({"filename": "a.txt", "content_type": "text/plain", "size": 5, "method": "post",
                   "checksum_sha256": crate::support::sha256_b64(b"hello")});
    let m = app.post("/v1/uploads", &app.token("pc"), b).await.assert_error(400, "invalid_request");
    assert!(m.starts_with("checksum_sha256"), "{m}");
    nothing_written(&app).await;
}

#[tokio::test]
async fn ids_have_one_spelling_on_every_route() {
    let app = TestApp::spawn().await;
    let token = app.token("ids");
    let c = app.create("ids", body()).await;
    assert_eq!(app.put_to(&c.body, b"hello".to_vec()).await.status(), 200);
    let upload = c.body["upload_id"].as_str().unwrap().to_owned();
    let asset = app.complete("ids", &c.body["upload_id"]).await.body;
    let id = id_of(&asset).to_owned();
    let spellings = |id: &str| {
        let simple = id.replace('-', "");
        vec![format!("{{{id}}}"), simple, format!("urn:uuid:{id}"), format!("{id}0")]
    };
    let routes = |u: &str, a: &str| {
        vec![
            ("GET", format!("/v1/uploads/{u}")),
            ("GET", format!("/v1/uploads/{u}/parts")),
            ("POST", format!("/v1/uploads/{u}/complete")),
            ("GET", format!("/v1/assets/{a}")),
            ("GET", format!("/v1/assets/{a}/download-url")),
        ]
    };
    for (u, a) in spellings(&upload).into_iter().zip(spellings(&id)) {
        for (method, path) in routes(&u, &a) {
            app.call(method, &path, Some(&token), None).await.assert_error(404, "not_found");
        }
    }
    // Hex digits in either case are the same id.
    let (u, a) = (upload.to_uppercase(), id.to_uppercase());
    assert_eq!(app.get(&format!("/v1/uploads/{u}"), &token).await.status, 200);
    assert_eq!(app.get(&format!("/v1/assets/{a}"), &token).await.status, 200);
    assert_eq!(app.call("POST", &format!("/v1/uploads/{u}/complete"), Some(&token), None).await.status, 200);
    // In a body, another spelling is a 400 naming the item.
    let braced = format!("{{{id}}}");
    let m = app
        .post("/v1/assets/download-urls", &token, json!({"ids": [id, braced]}))
        .await
        .assert_error(400, "invalid_request");
    assert!(m.starts_with("ids[1]"), "{m}");
}

async fn disposition(app: &TestApp, owner: &str, asset: &Value) -> String {
    let c = app.get(&format!("/v1/assets/{}/download-url?disposition=inline", id_of(asset)), &app.token(owner)).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    let res = app.http.get(c.body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.headers()["content-disposition"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn only_passive_types_are_inline_and_filenames_lose_format_controls() {
    let app = TestApp::spawn_with(TestOptions::default()).await;
    for ct in
        ["text/xsl", "text/ecmascript", "multipart/x-mixed-replace; boundary=x", "application/octet-stream", "text/csv"]
    {
        let asset = app.upload("dl", "f", ct, b"x").await;
        let cd = disposition(&app, "dl", &asset).await;
        assert!(cd.starts_with("attachment; "), "{ct}: {cd}");
    }
    for ct in ["image/png", "audio/mpeg", "video/mp4", "application/pdf", "text/plain; charset=utf-8"] {
        let asset = app.upload("dl", "f", ct, b"x").await;
        let cd = disposition(&app, "dl", &asset).await;
        assert!(cd.starts_with("inline; "), "{ct}: {cd}");
    }
    // U+202E turns "photo\u{202E}gpj.exe" into "photoexe.jpg" on screen.
    let asset = app.upload("dl", "photo\u{202E}gpj.exe\u{200B}", "image/png", b"x").await;
    let cd = disposition(&app, "dl", &asset).await;
    assert_eq!(cd, "inline; filename=\"photogpj.exe\"; filename*=UTF-8''photogpj.exe");
}

#[tokio::test]
async fn a_checksum_without_a_method_picks_put_above_the_multipart_threshold() {
    let profiles = "[profiles.small]\nmultipart_threshold = 4\n";
    let app = TestApp::spawn_with(TestOptions { profiles: Some(profiles.into()), ..Default::default() }).await;
    let b = json!({"filename": "a.txt", "content_type": "text/plain", "size": 5, "profile": "small",
                   "checksum_sha256": crate::support::sha256_b64(b"hello")});
    let c = app.post("/v1/uploads", &app.token("ck"), b).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(c.body["method"], "put");
    assert_eq!(app.put_to(&c.body, b"hello".to_vec()).await.status(), 200);
    assert_eq!(app.complete("ck", &c.body["upload_id"]).await.status, 201);
    // Without a checksum the profile's threshold decides.
    let b = json!({"filename": "b.txt", "content_type": "text/plain", "size": 5, "profile": "small"});
    assert_eq!(app.post("/v1/uploads", &app.token("ck"), b).await.body["method"], "multipart");
    // An empty profile name is a shape error: the whole batch is refused.
    let items = json!({"uploads": [body(), {"filename": "b", "content_type": "text/plain", "size": 1, "profile": ""}]});
    let m = app.post("/v1/uploads/batch", &app.token("ck"), items).await.assert_error(400, "invalid_request");
    assert!(m.starts_with("uploads[1].profile"), "{m}");
}
