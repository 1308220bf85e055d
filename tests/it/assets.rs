//! Assets: reading, listing (keyset pages) and deleting. Download URLs: `downloads.rs`.

use std::collections::HashSet;

use chrono::Utc;
use serde_json::{Value, json};

use crate::support::{TestApp, TestOptions, id_of, parse_time, sha256_b64};

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|a| id_of(a).to_owned()).collect()
}

async fn asset_rows(app: &TestApp, id: &str) -> i64 {
    let id: uuid::Uuid = id.parse().unwrap();
    app.db.query_one("select count(*) from assets where id = $1", &[&id]).await.unwrap().get(0)
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
        "etag": a["etag"], "metadata": {"case": "42"}, "visibility": "private", "state": "ready", "state_reason": null,
        "variants": [], "created_at": a["created_at"]});
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
    let d1 = app.upload_in("erin", Some("default"), "a.txt", "text/plain", b"a").await;
    let doc = app.upload_in("erin", Some("docs"), "b.txt", "text/plain", b"b").await;
    let d2 = app.upload_in("erin", Some("default"), "c.txt", "text/plain", b"c").await;
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
