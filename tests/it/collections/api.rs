//! The collection routes: create, read, list, change, delete; owner scoping; listing a
//! collection's assets; its usage in one call.

use serde_json::json;

use super::{counters, fill, new_collection};
use crate::support::TestApp;

#[tokio::test]
async fn a_collection_is_created_read_listed_changed_and_owner_scoped() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(
        &app,
        "olga",
        json!({"name": "Wedding 2026", "description": "Anna & Ben", "visibility": "public", "max_bytes": 10_737_418_240i64}),
    )
    .await;
    assert_eq!(shoot["name"], "Wedding 2026");
    assert_eq!(shoot["visibility"], "public");
    assert_eq!(shoot["max_bytes"], 10_737_418_240i64);
    assert_eq!(shoot["max_objects"], json!(null));
    assert_eq!(shoot["usage"], json!({"used_bytes": 0, "used_objects": 0, "reserved_bytes": 0, "reserved_objects": 0}));
    let id = shoot["id"].as_str().unwrap();

    // Read back, and another owner sees nothing (404, as an unknown id)
    let got = app.get(&format!("/v1/collections/{id}"), &app.token("olga")).await;
    assert_eq!(got.body, shoot);
    app.get(&format!("/v1/collections/{id}"), &app.token("pete")).await.assert_error(404, "not_found");
    let admin = app.get(&format!("/v1/collections/{id}?owner=olga"), &app.admin_token("ops")).await;
    assert_eq!(admin.body, shoot);

    // PATCH: absent fields stay, `remove` clears
    let body = json!({"remove": ["description", "max_bytes"], "max_objects": 3});
    let patched = app.call("PATCH", &format!("/v1/collections/{id}"), Some(&app.token("olga")), Some(body)).await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    let b = &patched.body;
    assert_eq!((&b["description"], &b["max_bytes"], &b["max_objects"]), (&json!(null), &json!(null), &json!(3)));
    let both = json!({"remove": ["max_objects"], "max_objects": 4});
    let refused = app.call("PATCH", &format!("/v1/collections/{id}"), Some(&app.token("olga")), Some(both)).await;
    assert!(refused.assert_error(400, "invalid_request").contains("max_objects"));
    assert_eq!(patched.body["name"], "Wedding 2026");
    let other = app
        .call("PATCH", &format!("/v1/collections/{id}"), Some(&app.token("pete")), Some(json!({"name": "mine"})))
        .await;
    other.assert_error(404, "not_found");

    // Listing: newest first, keyset pages, only the owner's
    new_collection(&app, "olga", json!({"name": "Portraits"})).await;
    new_collection(&app, "pete", json!({"name": "Pete's"})).await;
    let page = app.get("/v1/collections?limit=1", &app.token("olga")).await;
    assert_eq!(page.body["items"][0]["name"], "Portraits");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("/v1/collections?limit=1&cursor={cursor}"), &app.token("olga")).await;
    assert_eq!(next.body["items"][0]["name"], "Wedding 2026");
    assert_eq!(next.body["next_cursor"], json!(null));

    // Bad input is a 400 naming the field
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "max_bytes": -1}), "max_bytes"),
        (json!({"name": "x", "visibility": "secret"}), "visibility"),
        (json!({"name": "x", "colour": "red"}), "colour"),
    ] {
        let c = app.post("/v1/collections", &app.token("olga"), body).await;
        assert!(c.assert_error(400, "invalid_request").contains(field), "{:#}", c.body);
    }
}

#[tokio::test]
async fn uploads_into_a_collection_are_listed_by_it_and_counted_in_its_usage() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "olga", json!({"name": "Shoot"})).await;
    let assets = fill(&app, "olga", &shoot, 3).await;
    app.upload("olga", "elsewhere.bin", "application/octet-stream", b"not in it").await;
    let id = shoot["id"].as_str().unwrap();

    let listed = app.get(&format!("/v1/assets?collection={id}"), &app.token("olga")).await;
    let ids: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = assets.iter().rev().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, newest_first);
    assert!(assets.iter().all(|a| a["collection"] == id));

    let total: i64 = assets.iter().map(|a| a["size"].as_i64().unwrap()).sum();
    let got = app.get(&format!("/v1/collections/{id}"), &app.token("olga")).await;
    assert_eq!(
        got.body["usage"],
        json!({"used_bytes": total, "used_objects": 3, "reserved_bytes": 0, "reserved_objects": 0})
    );
    assert_eq!(counters(&app, &shoot).await, (total, 3, 0, 0));

    // Deleting one asset gives its bytes back to both the owner and the collection
    let first = assets[0]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/assets/{first}"), &app.token("olga")).await.status, 204);
    let size0 = assets[0]["size"].as_i64().unwrap();
    assert_eq!(counters(&app, &shoot).await, (total - size0, 2, 0, 0));

    // Another owner's collection, or none, cannot be named
    let theirs =
        app.create("pete", json!({"filename": "a", "content_type": "text/plain", "size": 1, "collection": id})).await;
    assert!(theirs.assert_error(400, "invalid_request").contains("collection"));
    let malformed = app
        .create("olga", json!({"filename": "a", "content_type": "text/plain", "size": 1, "collection": "not-an-id"}))
        .await;
    malformed.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_collection_with_assets_is_not_deleted_without_purge() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "olga", json!({"name": "Shoot"})).await;
    fill(&app, "olga", &shoot, 1).await;
    let id = shoot["id"].as_str().unwrap();
    let refused = app.delete(&format!("/v1/collections/{id}"), &app.token("olga")).await;
    assert!(refused.assert_error(409, "invalid_state").contains("purge=true"));
    assert_eq!(app.count("select count(*) from collections").await, 1);

    let empty = new_collection(&app, "olga", json!({"name": "Empty"})).await;
    let gone = app.delete(&format!("/v1/collections/{}", empty["id"].as_str().unwrap()), &app.token("olga")).await;
    assert_eq!(gone.status, 204);
    assert_eq!(app.count("select count(*) from collections").await, 1);
    // Idempotent, as asset deletes are
    let again = app.delete(&format!("/v1/collections/{}", empty["id"].as_str().unwrap()), &app.token("olga")).await;
    assert_eq!(again.status, 204);
}

#[tokio::test]
async fn batch_items_name_a_collection_each_held_to_its_limit() {
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "olga", json!({"name": "Shoot", "max_objects": 2})).await;
    let item = |n: &str| json!({"filename": n, "content_type": "image/jpeg", "size": 10, "collection": shoot["id"]});
    let body = json!({"uploads": [item("a.jpg"), item("b.jpg"), item("c.jpg")]});

    let r = app.post("/v1/uploads/batch", &app.token("olga"), body).await;

    assert_eq!(r.status, 200, "{:#}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let ok = results.iter().filter(|x| x.get("upload").is_some()).count();
    assert_eq!(ok, 2, "{:#}", r.body);
    let refused: Vec<&str> = results.iter().filter_map(|x| x["error"]["code"].as_str()).collect();
    assert_eq!(refused, ["quota_exceeded"]);
    assert_eq!(counters(&app, &shoot).await, (0, 0, 20, 2));
}

#[tokio::test]
async fn a_collection_holding_only_rejected_assets_still_needs_purge() {
    // A rejected asset gave its usage back (as a job's rejection does), but its record stays.
    let app = TestApp::spawn().await;
    let shoot = new_collection(&app, "olga", json!({"name": "Shoot"})).await;
    let asset = &fill(&app, "olga", &shoot, 1).await[0];
    let id: uuid::Uuid = asset["id"].as_str().unwrap().parse().unwrap();
    let size = asset["size"].as_i64().unwrap();
    app.db.execute("update assets set state = 'rejected', state_reason = 'test' where id = $1", &[&id]).await.unwrap();
    app.db
        .execute("update collections set used_bytes = used_bytes - $1, used_objects = used_objects - 1", &[&size])
        .await
        .unwrap();
    app.db
        .execute("update owners set used_bytes = used_bytes - $1, used_objects = used_objects - 1", &[&size])
        .await
        .unwrap();
    let path = format!("/v1/collections/{}", shoot["id"].as_str().unwrap());

    app.delete(&path, &app.token("olga")).await.assert_error(409, "invalid_state");

    let purged = app.delete(&format!("{path}?purge=true"), &app.token("olga")).await;
    assert_eq!(purged.status, 204, "{:#}", purged.body);
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert_eq!(app.usage_row("olga").await, (0, 0, 0, 0), "not released twice");
}
