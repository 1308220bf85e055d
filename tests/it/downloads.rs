//! Download URLs that the store really serves with the declared type and a safe
//! Content-Disposition (one and in batches), and public URLs.

use std::collections::HashSet;

use chrono::Utc;
use serde_json::{Value, json};

use crate::support::app::base_settings;
use crate::support::{TestApp, TestOptions, id_of, parse_time};

/// `expires_at` is about now + `secs` (a few seconds of slack for the round trip).
fn assert_expires_in(expires_at: &Value, secs: i64) {
    let off = parse_time(expires_at) - (Utc::now() + chrono::Duration::seconds(secs));
    assert!(off.num_seconds().abs() <= 5, "expires_at {expires_at} vs now + {secs}");
}

/// Fetches a download URL with a plain GET: `(status, content-type, content-disposition, bytes)`.
async fn fetch(app: &TestApp, url: &Value) -> (u16, String, String, Vec<u8>) {
    let res = app.http.get(url.as_str().expect("a url")).send().await.expect("the store answers");
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (status, ct, cd) = (res.status().as_u16(), header("content-type"), header("content-disposition"));
    (status, ct, cd, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_download_url_serves_the_bytes_with_the_declared_type_and_a_safe_disposition() {
    // Arrange: a non-ASCII filename with quotes
    let app = TestApp::spawn().await;
    let bytes = b"%PDF-1.4 resume".to_vec();
    let asset = app.upload("gia", "résumé \"final\".pdf", "application/pdf", &bytes).await;
    let id = id_of(&asset);

    // Act
    let c = app.get(&format!("/v1/assets/{id}/download-url?expires_in=120"), &app.token("gia")).await;

    // Assert: the answer, then what the store serves at the URL
    assert_eq!(c.status, 200, "{:#}", c.body);
    assert_expires_in(&c.body["expires_at"], 120);
    let (status, ct, cd, got) = fetch(&app, &c.body["url"]).await;
    assert_eq!(status, 200);
    assert_eq!(got, bytes);
    assert_eq!(ct, "application/pdf");
    assert_eq!(cd, "inline; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf");

    // attachment when asked; the default expiry is the profile's download_url_ttl (600 s)
    let c = app.get(&format!("/v1/assets/{id}/download-url?disposition=attachment"), &app.token("gia")).await;
    assert_expires_in(&c.body["expires_at"], 600);
    let (status, _, cd, got) = fetch(&app, &c.body["url"]).await;
    assert_eq!((status, got), (200, bytes));
    assert_eq!(cd, "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf");
}

#[tokio::test]
async fn active_types_are_always_downloaded_as_attachments() {
    let app = TestApp::spawn().await;
    let token = app.token("hal");
    for (name, ct) in [
        ("p.html", "text/html"),
        ("i.svg", "image/svg+xml"),
        ("x.html", "TEXT/HTML; charset=utf-8"),
        ("f.xml", "application/atom+xml"),
        ("s.js", "text/javascript"),
    ] {
        let asset = app.upload("hal", name, ct, b"<x/>").await;

        let c = app.get(&format!("/v1/assets/{}/download-url?disposition=inline", id_of(&asset)), &token).await;

        assert_eq!(c.status, 200, "{ct}: {:#}", c.body);
        let (status, served_ct, cd, _) = fetch(&app, &c.body["url"]).await;
        assert_eq!(status, 200, "{ct}");
        assert_eq!(served_ct, ct, "the declared type is served");
        assert_eq!(cd, format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}"), "{ct}");
    }
}

#[tokio::test]
async fn download_url_parameters_are_checked_and_other_owners_assets_are_404() {
    let app = TestApp::spawn().await;
    let asset = app.upload("ivy", "a.png", "image/png", b"png").await;
    let path = format!("/v1/assets/{}/download-url", id_of(&asset));
    let token = app.token("ivy");

    for query in ["expires_in=0", "expires_in=604801", "expires_in=-1", "disposition=evil", "ttl=5"] {
        app.get(&format!("{path}?{query}"), &token).await.assert_error(400, "invalid_request");
    }
    for query in ["expires_in=1", "expires_in=604800"] {
        assert_eq!(app.get(&format!("{path}?{query}"), &token).await.status, 200, "{query}");
    }
    app.get(&path, &app.token("jon")).await.assert_error(404, "not_found");
    let unknown = format!("/v1/assets/{}/download-url", uuid::Uuid::new_v4());
    app.get(&unknown, &token).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn batch_download_urls_cover_only_the_callers_assets() {
    // Arrange: two assets for kim, one for lee
    let app = TestApp::spawn().await;
    let k1 = app.upload("kim", "one.txt", "text/plain", b"one").await;
    let k2 = app.upload("kim", "two.txt", "text/plain", b"two").await;
    let other = app.upload("lee", "lee.txt", "text/plain", b"lee").await;
    let random = uuid::Uuid::new_v4().to_string();

    // Act
    let c = app
        .post(
            "/v1/assets/download-urls",
            &app.token("kim"),
            json!({"ids": [id_of(&k1), id_of(&other), random, id_of(&k2)], "expires_in": 60}),
        )
        .await;

    // Assert: only kim's ids, each URL serving its own bytes
    assert_eq!(c.status, 200, "{:#}", c.body);
    let urls = c.body["urls"].as_object().unwrap();
    assert_eq!(urls.keys().map(String::as_str).collect::<HashSet<_>>(), HashSet::from([id_of(&k1), id_of(&k2)]));
    for (asset, bytes) in [(&k1, b"one"), (&k2, b"two")] {
        let (status, ct, cd, body) = fetch(&app, &urls[id_of(asset)]["url"]).await;
        assert_eq!((status, ct.as_str(), body.as_slice()), (200, "text/plain", &bytes[..]));
        assert!(cd.starts_with("inline; "), "{cd}");
        assert_expires_in(&urls[id_of(asset)]["expires_at"], 60);
    }

    // Bad values and shapes are refused (`ids` holds 1 to 1,000 UUIDs)
    for body in [
        json!({"ids": []}),
        json!({"ids": [id_of(&k1)], "expires_in": 0}),
        json!({"ids": [id_of(&k1)], "extra": true}),
        json!({"ids": ["not-a-uuid"]}),
        json!({}),
        json!({"ids": vec![random.as_str(); 1001]}),
    ] {
        app.post("/v1/assets/download-urls", &app.token("kim"), body).await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn a_public_profile_hands_out_the_public_url_without_expiry() {
    // Arrange: a public profile and a public base URL
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some(
            "[profiles.pub]\nvisibility = \"public\"\nallowed_content_types = [\"image/png\"]\nkey_prefix = \"pub\"\n"
                .into(),
        ),
        tweak: Some(Box::new(|s| s.s3_public_base_url = Some("https://cdn.example.com".into()))),
        ..Default::default()
    })
    .await;
    let public = app.upload_in("m.o@x", Some("pub"), "my photo.png", "image/png", b"\x89PNG").await;
    let private = app.upload("m.o@x", "p.png", "image/png", b"\x89PNG").await;
    let key = public["key"].as_str().unwrap();
    // Every segment the broker builds is unreserved characters only (the owner as `~XX`,
    // the filename sanitised), so its percent-encoded form is the key itself; the
    // encoding of other characters is unit-tested in src/assets.rs.
    assert!(key.starts_with("pub/m~2Eo~40x/") && key.ends_with("/my_photo.png"), "{key}");
    let expected = format!("https://cdn.example.com/{key}");

    // Act
    let token = app.token("m.o@x");
    let one = app.get(&format!("/v1/assets/{}/download-url?disposition=attachment", id_of(&public)), &token).await;
    let many = app.post("/v1/assets/download-urls", &token, json!({"ids": [id_of(&public), id_of(&private)]})).await;

    // Assert
    assert_eq!(public["visibility"], "public");
    assert_eq!(app.get(&format!("/v1/assets/{}", id_of(&public)), &token).await.body["visibility"], "public");
    assert_eq!(one.body, json!({"url": expected, "expires_at": null}));
    assert_eq!(many.body["urls"][id_of(&public)], json!({"url": expected, "expires_at": null}));
    // A private asset in the same deployment still gets a presigned URL that works
    assert_eq!(private["visibility"], "private");
    let presigned = &many.body["urls"][id_of(&private)];
    assert!(presigned["expires_at"].is_string());
    assert_eq!(fetch(&app, &presigned["url"]).await.3, b"\x89PNG");
}

#[test]
fn a_public_profile_that_allows_active_types_refuses_to_start() {
    for allowed in ["\"*/*\"", "\"image/*\"", "\"image/svg+xml\"", "\"image/png\", \"text/html\""] {
        // Arrange: a profiles file with a public profile allowing active types
        let path = std::env::temp_dir().join(format!("r2b-pub-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            format!("[profiles.pub]\nvisibility = \"public\"\nallowed_content_types = [{allowed}]\n"),
        )
        .unwrap();
        let mut settings = base_settings("postgres://postgres@127.0.0.1:5432/unused");
        settings.s3_bucket = Some("bucket".into());
        settings.profiles = Some(path.clone());

        // Act
        let result = settings.validate();
        std::fs::remove_file(&path).unwrap();

        // Assert
        let err = result.err().unwrap_or_else(|| panic!("[{allowed}] must be refused"));
        assert_eq!(err.variable, "BROKER_PROFILES", "{err}");
        assert!(err.to_string().starts_with("BROKER_PROFILES"), "{err}");
    }
}
