//! Assets: reading, listing (keyset pages), download URLs that the store really serves
//! with the declared type and a safe Content-Disposition, public URLs, and deleting.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::support::app::base_settings;
use crate::support::{TestApp, TestOptions, sha256_b64};

/// Create, upload and complete one `put` upload in `profile`; returns the asset JSON.
async fn upload_in(app: &TestApp, owner: &str, profile: &str, filename: &str, ct: &str, bytes: &[u8]) -> Value {
    let body = json!({"filename": filename, "content_type": ct, "size": bytes.len(), "profile": profile});
    let c = app.create(owner, body).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(app.put_to(&c.body, bytes.to_vec()).await.status(), 200);
    let done = app.complete(owner, &c.body["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    done.body
}

fn id_of(asset: &Value) -> &str {
    asset["id"].as_str().unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|a| id_of(a).to_owned()).collect()
}

async fn asset_rows(app: &TestApp, id: &str) -> i64 {
    let id: uuid::Uuid = id.parse().unwrap();
    app.db.query_one("select count(*) from assets where id = $1", &[&id]).await.unwrap().get(0)
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string")).expect("RFC 3339").with_timezone(&Utc)
}

/// `expires_at` is about now + `secs` (a few seconds of slack for the round trip).
fn assert_expires_in(expires_at: &Value, secs: i64) {
    let off = parse_time(expires_at) - (Utc::now() + chrono::Duration::seconds(secs));
    assert!(off.num_seconds().abs() <= 5, "expires_at {expires_at} vs now + {secs}");
}

/// Every page of `GET /v1/assets?<query>`, following `next_cursor`.
async fn walk(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    let mut path = format!("/v1/assets?{query}");
    loop {
        let page = app.get(&path, token).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        pages.push(page.body);
        match pages.last().unwrap()["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/assets?{query}&cursor={cursor}"),
            None => return pages,
        }
        assert!(pages.len() <= 100, "the walk ends");
    }
}

/// Fetches a download URL with a plain GET: `(status, content-type, content-disposition, bytes)`.
async fn fetch(app: &TestApp, url: &Value) -> (u16, String, String, Vec<u8>) {
    let res = app.http.get(url.as_str().expect("a url")).send().await.expect("the store answers");
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (status, ct, cd) = (res.status().as_u16(), header("content-type"), header("content-disposition"));
    (status, ct, cd, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_asset_reads_back_with_every_documented_field_and_only_for_its_owner() {
    // Arrange: an upload with a checksum and metadata
    let app = TestApp::spawn().await;
    let bytes = b"%PDF-1.7 tiny".to_vec();
    let c = app
        .create(
            "alice",
            json!({"filename": "report.pdf", "content_type": "application/pdf", "size": bytes.len(),
                   "checksum_sha256": sha256_b64(&bytes), "metadata": {"case": "42"}}),
        )
        .await;
    assert_eq!(app.put_to(&c.body, bytes.clone()).await.status(), 200);
    let created = app.complete("alice", &c.body["upload_id"]).await.body;
    let id = id_of(&created);

    // Act
    let got = app.get(&format!("/v1/assets/{id}"), &app.token("alice")).await;

    // Assert: exactly the documented fields, equal to what complete answered
    assert_eq!(got.status, 200, "{:#}", got.body);
    let a = &got.body;
    let expected = json!({"id": id, "owner": "alice", "profile": "default", "key": c.body["key"],
        "filename": "report.pdf", "content_type": "application/pdf", "size": 13, "checksum_sha256": sha256_b64(&bytes),
        "etag": a["etag"], "metadata": {"case": "42"}, "visibility": "private", "created_at": a["created_at"]});
    assert_eq!((a, a), (&expected, &created));
    assert!(a["etag"].as_str().is_some_and(|e| e.len() > 2 && e.starts_with('"') && e.ends_with('"')), "{}", a["etag"]);
    let age = Utc::now() - parse_time(&a["created_at"]);
    assert!(age.num_seconds().abs() < 300, "created_at is now-ish: {}", a["created_at"]);

    // Another owner, an unknown id and a non-UUID are all 404; an admin may read it for alice
    app.get(&format!("/v1/assets/{id}"), &app.token("bob")).await.assert_error(404, "not_found");
    app.get(&format!("/v1/assets/{}", uuid::Uuid::new_v4()), &app.token("alice")).await.assert_error(404, "not_found");
    app.get("/v1/assets/not-a-uuid", &app.token("alice")).await.assert_error(404, "not_found");
    let admin = app.get(&format!("/v1/assets/{id}?owner=alice"), &app.admin_token("ops")).await;
    assert_eq!(admin.body, created);
}

#[tokio::test]
async fn listing_pages_newest_first_with_no_duplicates_and_no_other_owners() {
    // Arrange: five assets for carol (oldest first), one for dan
    let app = TestApp::spawn().await;
    let mut uploaded = Vec::new();
    for i in 0..5 {
        let asset = app.upload("carol", &format!("f{i}.txt"), "text/plain", format!("body {i}").as_bytes()).await;
        uploaded.push(id_of(&asset).to_owned());
    }
    app.upload("dan", "d.txt", "text/plain", b"dan").await;
    let token = app.token("carol");

    // Act: walk the pages of 2
    let pages = walk(&app, &token, "limit=2").await;

    // Assert: 2, 2, 1, newest first, every asset once
    assert_eq!(pages.iter().map(|p| ids(p).len()).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages[2]["next_cursor"], Value::Null);
    let walked: Vec<String> = pages.iter().flat_map(ids).collect();
    let newest_first: Vec<String> = uploaded.iter().rev().cloned().collect();
    assert_eq!(walked, newest_first);
    assert!(pages.iter().flat_map(|p| p["items"].as_array().unwrap().clone()).all(|a| a["owner"] == "carol"));

    // Without a limit: one page of everything (default 50)
    let all = app.get("/v1/assets", &token).await;
    assert_eq!((ids(&all.body), &all.body["next_cursor"]), (newest_first, &Value::Null));
}

#[tokio::test]
async fn the_default_page_is_50_and_pages_are_exact_even_when_created_at_ties() {
    // Arrange: 51 asset records sharing one created_at (listing never reads the store)
    let app = TestApp::spawn().await;
    app.db
        .batch_execute(
            "insert into owners (owner) values ('bulk'); \
             insert into assets (owner, id, upload_id, profile, key, filename, content_type, size, visibility) \
             select 'bulk', gen_random_uuid(), gen_random_uuid(), 'default', 'uploads/bulk/' || g, 'f' || g, \
                    'text/plain', 1, 'private' from generate_series(1, 51) g",
        )
        .await
        .unwrap();
    let expected: Vec<String> = app
        .db
        .query("select id::text from assets where owner = 'bulk' order by created_at desc, id desc", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let token = app.token("bulk");

    // Act + Assert: the default limit
    let first = app.get("/v1/assets", &token).await;
    assert_eq!(ids(&first.body), expected[..50]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let rest = app.get(&format!("/v1/assets?cursor={cursor}"), &token).await;
    assert_eq!((ids(&rest.body), &rest.body["next_cursor"]), (expected[50..].to_vec(), &Value::Null));

    // Pages of 7 across the tie: the same order, nothing twice
    let walked: Vec<String> = walk(&app, &token, "limit=7").await.iter().flat_map(ids).collect();
    assert_eq!(walked, expected);
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 51);
}

#[tokio::test]
async fn listing_filters_by_profile() {
    let app = TestApp::spawn_with(TestOptions {
        profiles: Some("[profiles.docs]\nkey_prefix = \"docs\"\n".into()),
        ..Default::default()
    })
    .await;
    let d1 = upload_in(&app, "erin", "default", "a.txt", "text/plain", b"a").await;
    let doc = upload_in(&app, "erin", "docs", "b.txt", "text/plain", b"b").await;
    let d2 = upload_in(&app, "erin", "default", "c.txt", "text/plain", b"c").await;
    assert!(doc["key"].as_str().unwrap().starts_with("docs/"));
    let token = app.token("erin");

    let docs = walk(&app, &token, "profile=docs").await;
    let defaults = walk(&app, &token, "profile=default&limit=1").await;

    assert_eq!(docs.iter().map(ids).collect::<Vec<_>>(), [[id_of(&doc)]]);
    assert_eq!(docs[0]["items"][0]["profile"], "docs");
    assert_eq!(defaults.iter().map(ids).collect::<Vec<_>>(), [[id_of(&d2)], [id_of(&d1)]]);
}

#[tokio::test]
async fn listing_refuses_bad_limits_cursors_and_parameters() {
    let app = TestApp::spawn().await;
    app.upload("fred", "a.txt", "text/plain", b"a").await;
    let token = app.token("fred");

    for query in
        ["limit=0", "limit=1001", "limit=-1", "limit=ten", "cursor=garbage!", "cursor=bm90LWEtY3Vyc29y", "sort=asc"]
    {
        app.get(&format!("/v1/assets?{query}"), &token).await.assert_error(400, "invalid_request");
    }
    for query in ["limit=1", "limit=1000"] {
        let c = app.get(&format!("/v1/assets?{query}"), &token).await;
        assert_eq!((c.status.as_u16(), ids(&c.body).len()), (200, 1), "{query}");
    }
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
    let public = upload_in(&app, "m.o@x", "pub", "my photo.png", "image/png", b"\x89PNG").await;
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

#[tokio::test]
async fn deleting_an_asset_removes_object_record_and_usage_and_is_idempotent() {
    // Arrange: two assets for nia, one for oz
    let app = TestApp::spawn().await;
    let gone = app.upload("nia", "gone.txt", "text/plain", b"12345").await;
    let kept = app.upload("nia", "kept.txt", "text/plain", b"678").await;
    let theirs = app.upload("oz", "oz.txt", "text/plain", b"oz!").await;
    let path = format!("/v1/assets/{}", id_of(&gone));

    // Act
    let first = app.delete(&path, &app.token("nia")).await;

    // Assert: the object, the record and the usage
    assert_eq!((first.status.as_u16(), &first.body), (204, &Value::Null));
    assert_eq!(app.object(gone["key"].as_str().unwrap()).await, None);
    assert_eq!(asset_rows(&app, id_of(&gone)).await, 0);
    assert_eq!(app.usage_row("nia").await, (3, 1, 0, 0));
    app.get(&path, &app.token("nia")).await.assert_error(404, "not_found");
    let keys: HashSet<String> = app.keys().await.into_iter().collect();
    assert_eq!(keys, HashSet::from([kept["key"].as_str().unwrap().into(), theirs["key"].as_str().unwrap().into()]));

    // Again: 204 and nothing else changes
    assert_eq!(app.delete(&path, &app.token("nia")).await.status, 204);
    assert_eq!(app.usage_row("nia").await, (3, 1, 0, 0));

    // Another owner's id: 204, and their asset is untouched
    let theirs_path = format!("/v1/assets/{}", id_of(&theirs));
    assert_eq!(app.delete(&theirs_path, &app.token("nia")).await.status, 204);
    assert_eq!(asset_rows(&app, id_of(&theirs)).await, 1);
    assert_eq!(app.object(theirs["key"].as_str().unwrap()).await.unwrap(), b"oz!");
    assert_eq!(app.usage_row("oz").await, (3, 1, 0, 0));
    assert_eq!(app.usage_row("nia").await, (3, 1, 0, 0));
    assert_eq!(app.keys().await.len(), 2);
}
