//! Failure injection (CONTRIBUTING.md): a TCP proxy in front of PostgreSQL and/or the store is
//! cut mid-workflow. Every case proves the answer is `503 unavailable` with `Retry-After`
//! and a generic message, that the database and the bucket hold nothing half-written, and
//! that after `restore()` the same request succeeds (the pool and the SDK reconnect).

use serde_json::{Value, json};

use crate::support::chaos::ChaosProxy;
use crate::support::{Call, TestApp, TestOptions};

async fn spawn(db_proxy: bool, s3_proxy: bool) -> TestApp {
    TestApp::spawn_with(TestOptions { db_proxy, s3_proxy, ..Default::default() }).await
}

fn db(app: &TestApp) -> &ChaosProxy {
    app.db_proxy.as_ref().expect("spawned with db_proxy")
}

fn store(app: &TestApp) -> &ChaosProxy {
    app.s3_proxy.as_ref().expect("spawned with s3_proxy")
}

/// `503 unavailable`, a `Retry-After` in seconds, and no internals anywhere in the body.
pub(crate) fn assert_unavailable(app: &TestApp, call: &Call) {
    let message = call.assert_error(503, "unavailable");
    assert_eq!(message, "a dependency is unavailable; retry later");
    let retry = call.headers.get("retry-after").expect("Retry-After header").to_str().unwrap();
    assert!(retry.parse::<u32>().is_ok_and(|s| s >= 1), "Retry-After: {retry:?}");
    let fields: Vec<&String> = call.body["error"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["code", "message", "request_id"], "nothing but the contract's fields");
    let lower = message.to_lowercase();
    let mut leaks = vec![
        "refused",
        "reset",
        "closed",
        "127.0.0.1",
        "localhost",
        "postgres",
        "select",
        "insert",
        "dispatch",
        "timed out",
        "headobject",
        "deleteobject",
        "multipart",
        "pool",
        "io error",
        "database:",
        "object store:",
    ];
    let ports: Vec<String> =
        [&app.db_proxy, &app.s3_proxy].into_iter().flatten().map(|p| p.addr.port().to_string()).collect();
    leaks.extend(ports.iter().map(String::as_str));
    leaks.push(&app.bucket);
    for leak in leaks {
        assert!(!lower.contains(leak), "the 503 message leaks {leak:?}: {message}");
    }
}

/// The bookkeeping invariants, straight from the tables and the bucket: every owner's
/// reservation is exactly its pending uploads, its usage exactly its assets, every asset
/// belongs to a completed upload, and every asset's object is in the bucket.
pub(crate) async fn assert_nothing_half_written(app: &TestApp) {
    let drift = app
        .count(
            "select count(*) from owners o where \
               (reserved_bytes, reserved_objects) <> (select coalesce(sum(size), 0)::bigint, count(*) \
                  from uploads u where u.owner = o.owner and u.status = 'pending') \
            or (used_bytes, used_objects) <> (select coalesce(sum(size), 0)::bigint, count(*) \
                  from assets a where a.owner = o.owner)",
        )
        .await;
    assert_eq!(drift, 0, "an owner's reserved/used totals differ from its pending uploads/assets");
    let orphans = app
        .count(
            "select count(*) from assets a where not exists (select 1 from uploads u where u.owner = a.owner \
               and u.id = a.upload_id and u.status = 'completed' and u.asset_id = a.id)",
        )
        .await;
    assert_eq!(orphans, 0, "an asset without its completed upload");
    let keys = app.keys().await;
    for row in app.db.query("select key from assets", &[]).await.unwrap() {
        let key: String = row.get(0);
        assert!(keys.contains(&key), "the asset's object {key} is missing from the bucket");
    }
}

fn small(name: &str) -> Value {
    json!({"filename": name, "content_type": "text/plain", "size": 5})
}

/// Create and upload the bytes (through the store proxy, which must be open), no complete.
async fn uploaded_intent(app: &TestApp, owner: &str) -> (Value, String, String) {
    let c = app.create(owner, small("a.txt")).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(app.put_to(&c.body, b"hello".to_vec()).await.status(), 200);
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let key = c.body["key"].as_str().unwrap().to_owned();
    (c.body, id, key)
}

async fn cleaned(app: &TestApp, id: &str) -> bool {
    let id: uuid::Uuid = id.parse().unwrap();
    app.db.query_one("select cleaned_at is not null from uploads where id = $1", &[&id]).await.unwrap().get(0)
}

async fn assets_of(app: &TestApp, owner: &str) -> i64 {
    app.db.query_one("select count(*) from assets where owner = $1", &[&owner]).await.unwrap().get(0)
}

#[tokio::test]
async fn create_with_the_database_cut_is_503_and_writes_nothing_then_succeeds_after_restore() {
    let app = spawn(true, false).await;

    db(&app).cut();
    let c = app.create("alice", small("a.txt")).await;
    assert_unavailable(&app, &c);
    db(&app).restore();

    assert_eq!(app.count("select count(*) from owners").await, 0, "no owner row");
    assert_eq!(app.count("select count(*) from uploads").await, 0, "no upload row");
    assert!(app.keys().await.is_empty());

    let c = app.create("alice", small("a.txt")).await;
    assert_eq!(c.status, 201, "the pool reconnects: {:#}", c.body);
    assert_eq!(app.usage_row("alice").await, (0, 0, 5, 1));
    assert_eq!(app.put_to(&c.body, b"hello".to_vec()).await.status(), 200);
    assert_eq!(app.complete("alice", &c.body["upload_id"]).await.status, 201);
    assert_nothing_half_written(&app).await;
}

#[tokio::test]
async fn a_multipart_create_with_the_store_cut_is_503_and_releases_its_reservation() {
    let app = spawn(false, true).await;

    store(&app).cut();
    let body =
        json!({"filename": "m.bin", "content_type": "application/octet-stream", "size": 10, "method": "multipart"});
    let c = app.create("mona", body.clone()).await;
    assert_unavailable(&app, &c);
    store(&app).restore();

    // The intent was reserved before CreateMultipartUpload; the failure ended it.
    assert_eq!(app.usage_row("mona").await, (0, 0, 0, 0), "reservation released");
    assert_eq!(app.count("select count(*) from uploads where status = 'pending'").await, 0);
    assert_nothing_half_written(&app).await;

    let c = app.create("mona", body).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(c.body["part_count"], 1);
    assert_eq!(app.usage_row("mona").await, (0, 0, 10, 1));
    assert_nothing_half_written(&app).await;
}

#[tokio::test]
async fn complete_with_the_store_cut_is_503_and_keeps_the_intent_pending_then_succeeds_after_restore() {
    let app = spawn(false, true).await;
    let (intent, id, key) = uploaded_intent(&app, "bob").await;

    store(&app).cut();
    let r = app.complete("bob", &intent["upload_id"]).await;
    assert_unavailable(&app, &r);

    assert_eq!(app.upload_status(&id).await, "pending");
    assert_eq!(app.usage_row("bob").await, (0, 0, 5, 1), "reservation intact");
    assert_eq!(assets_of(&app, "bob").await, 0, "no asset");
    assert_eq!(app.object(&key).await.as_deref(), Some(&b"hello"[..]), "the object is untouched");
    assert_nothing_half_written(&app).await;

    store(&app).restore();
    let r = app.complete("bob", &intent["upload_id"]).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    assert_eq!(app.upload_status(&id).await, "completed");
    assert_eq!(app.usage_row("bob").await, (5, 1, 0, 0), "reservation moved to usage");
    assert_nothing_half_written(&app).await;
}

#[tokio::test]
async fn complete_with_the_database_cut_is_503_and_a_retry_records_exactly_one_asset() {
    let app = spawn(true, false).await;
    let (intent, id, key) = uploaded_intent(&app, "carl").await;

    db(&app).cut();
    let r = app.complete("carl", &intent["upload_id"]).await;
    assert_unavailable(&app, &r);
    // Cut twice in a row: connections that died in the first cut are not reused.
    let r = app.complete("carl", &intent["upload_id"]).await;
    assert_unavailable(&app, &r);

    assert_eq!(app.upload_status(&id).await, "pending");
    assert_eq!(app.usage_row("carl").await, (0, 0, 5, 1));
    assert_eq!(assets_of(&app, "carl").await, 0);
    assert!(app.object(&key).await.is_some());

    db(&app).restore();
    let r = app.complete("carl", &intent["upload_id"]).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let again = app.complete("carl", &intent["upload_id"]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], r.body["id"]);
    assert_eq!(assets_of(&app, "carl").await, 1, "exactly one asset");
    assert_eq!(app.usage_row("carl").await, (5, 1, 0, 0), "usage counted once");
    assert_nothing_half_written(&app).await;
}

/// The database transition comes first, then the store cleanup (uploads/mod.rs), so the
/// answer is 503 with the intent already aborted and its reservation released; the object
/// stays until a retried DELETE (or the reaper) cleans it and sets `cleaned_at`.
#[tokio::test]
async fn abort_with_the_store_cut_is_503_after_the_release_and_a_retry_deletes_the_object() {
    let app = spawn(false, true).await;
    let (_, id, key) = uploaded_intent(&app, "dora").await;
    let path = format!("/v1/uploads/{id}");
    store(&app).cut();
    let r = app.delete(&path, &app.token("dora")).await;
    assert_unavailable(&app, &r);

    assert_eq!(app.upload_status(&id).await, "aborted", "the database transition happened first");
    assert_eq!(app.usage_row("dora").await, (0, 0, 0, 0), "reservation released");
    assert!(!cleaned(&app, &id).await, "cleanup not recorded while the object is still there");
    assert!(app.object(&key).await.is_some(), "the object is still in the bucket");
    assert_nothing_half_written(&app).await;

    store(&app).restore();
    let r = app.delete(&path, &app.token("dora")).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(app.object(&key).await, None, "the retry deleted the object");
    assert!(cleaned(&app, &id).await, "cleaned_at is set");
    assert_eq!(app.upload_status(&id).await, "aborted");
    assert_eq!(app.usage_row("dora").await, (0, 0, 0, 0), "nothing released twice");
    assert_nothing_half_written(&app).await;
}

#[tokio::test]
async fn deleting_an_asset_with_the_store_cut_is_503_and_keeps_record_usage_and_object() {
    let app = spawn(false, true).await;
    let asset = app.upload("eve", "a.txt", "text/plain", b"hello").await;
    let id = asset["id"].as_str().unwrap();
    let key = asset["key"].as_str().unwrap();
    let path = format!("/v1/assets/{id}");

    store(&app).cut();
    let r = app.delete(&path, &app.token("eve")).await;
    assert_unavailable(&app, &r);

    assert_eq!(assets_of(&app, "eve").await, 1, "record kept");
    assert_eq!(app.usage_row("eve").await, (5, 1, 0, 0), "usage kept");
    assert!(app.object(key).await.is_some(), "object kept");
    assert_nothing_half_written(&app).await;

    store(&app).restore();
    let r = app.delete(&path, &app.token("eve")).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(assets_of(&app, "eve").await, 0);
    assert_eq!(app.usage_row("eve").await, (0, 0, 0, 0));
    assert!(app.keys().await.is_empty(), "object deleted");
    assert_eq!(app.get(&path, &app.token("eve")).await.status, 404);
    assert_nothing_half_written(&app).await;
}

#[tokio::test]
async fn download_urls_and_usage_with_the_database_cut_are_503_then_work_after_restore() {
    let app = spawn(true, false).await;
    let asset = app.upload("finn", "a.txt", "text/plain", b"hello").await;
    let id = asset["id"].as_str().unwrap();
    let token = app.token("finn");
    let download = format!("/v1/assets/{id}/download-url");

    db(&app).cut();
    assert_unavailable(&app, &app.get(&download, &token).await);
    assert_unavailable(&app, &app.get("/v1/usage", &token).await);
    assert_unavailable(&app, &app.post("/v1/assets/download-urls", &token, json!({"ids": [id]})).await);
    db(&app).restore();

    let r = app.get(&download, &token).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert!(r.body["url"].as_str().is_some());
    let r = app.get("/v1/usage", &token).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!((r.body["used_bytes"].as_i64(), r.body["object_count"].as_i64()), (Some(5), Some(1)));
}

async fn ops(app: &TestApp, path: &str) -> Call {
    app.call("GET", path, None, None).await
}

#[tokio::test]
async fn readyz_is_503_while_either_dependency_is_cut_and_healthz_stays_200() {
    let app = spawn(true, true).await;
    assert_eq!(ops(&app, "/readyz").await.status, 200);

    for (name, proxy) in [("database", db(&app)), ("store", store(&app))] {
        proxy.cut();
        assert_unavailable(&app, &ops(&app, "/readyz").await);
        assert_eq!(ops(&app, "/healthz").await.status, 200, "{name} cut: healthz checks no dependency");
        proxy.restore();
        let r = ops(&app, "/readyz").await;
        assert_eq!(r.status, 200, "ready again after the {name} is restored: {:#}", r.body);
    }

    db(&app).cut();
    store(&app).cut();
    assert_unavailable(&app, &ops(&app, "/readyz").await);
    assert_eq!(ops(&app, "/healthz").await.status, 200);
    db(&app).restore();
    store(&app).restore();
    assert_eq!(ops(&app, "/readyz").await.status, 200);
}

async fn complete_with_key(app: &TestApp, owner: &str, id: &str, key: &str) -> Call {
    let req = app
        .http
        .post(format!("{}/v1/uploads/{id}/complete", app.base))
        .bearer_auth(app.token(owner))
        .header("idempotency-key", key);
    crate::support::app::to_call(req.send().await.expect("the broker answers")).await
}

/// A 5xx is not kept under an `Idempotency-Key` (src/idempotency.rs): the retry runs again.
#[tokio::test]
async fn a_503_is_not_replayed_to_a_retry_with_the_same_idempotency_key() {
    let app = spawn(false, true).await;
    let (_, id, _) = uploaded_intent(&app, "gina").await;

    store(&app).cut();
    assert_unavailable(&app, &complete_with_key(&app, "gina", &id, "k-1").await);
    store(&app).restore();

    let r = complete_with_key(&app, "gina", &id, "k-1").await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    assert_eq!(app.usage_row("gina").await, (5, 1, 0, 0));
    assert_nothing_half_written(&app).await;
}

/// The same, when the database dies while the request waits on the store: the key was
/// claimed, and forgetting it after the 503 needs the database too.
#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_runs_again_after_the_database_died_mid_request() {
    let app = spawn(true, true).await;
    let (_, id, _) = uploaded_intent(&app, "hugo").await;

    store(&app).stall();
    let (r, ()) = tokio::join!(complete_with_key(&app, "hugo", &id, "k-1"), async {
        // The request is in HeadObject: its database work (claim the key, load) is done.
        while store(&app).held() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        db(&app).cut();
        store(&app).cut();
    });
    assert_unavailable(&app, &r);
    db(&app).restore();
    store(&app).restore();
    assert_eq!(app.upload_status(&id).await, "pending");
    assert_nothing_half_written(&app).await;

    let started = std::time::Instant::now();
    let r = complete_with_key(&app, "hugo", &id, "k-1").await;
    assert_eq!(r.status, 201, "after {:?}: {:#}", started.elapsed(), r.body);
    assert_eq!(app.usage_row("hugo").await, (5, 1, 0, 0));
}
