//! The reaper: one pass expires what is due (quota released, multipart aborted, stray
//! objects deleted) and nothing else; two reapers at once handle each item once; a row
//! another reaper holds (a live lease) is left alone and one whose lease ran out is taken
//! again; a store failure leaves the row to a later pass; old idempotency keys are
//! forgotten; `r2-broker reap` runs a pass and exits. Deadlines and leases are compared
//! with the database's `now()`: tests move them into the past instead of waiting.

use r2_broker::reaper::{Report, run_once};
use serde_json::{Value, json};

use crate::support::multipart::{PART, bytes};
use crate::support::{TestApp, TestOptions};

/// URLs live 1–2 s (whole seconds), `complete` is accepted 1 s more.
const SHORT: &str = "[profiles.short]\nupload_url_ttl = 2\ncomplete_grace = 1\npart_size = 5242880\n";

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions { profiles: Some(SHORT.into()), ..Default::default() }).await
}

async fn create(app: &TestApp, owner: &str, body: Value) -> Value {
    let c = app.create(owner, body).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    c.body
}

fn uuid(v: &Value) -> uuid::Uuid {
    v["upload_id"].as_str().unwrap().parse().unwrap()
}

async fn cleaned(app: &TestApp, intent: &Value) -> bool {
    let sql = "select cleaned_at is not null from uploads where id = $1";
    app.db.query_one(sql, &[&uuid(intent)]).await.unwrap().get(0)
}

/// Moves every pending intent's deadlines an hour into the past.
async fn make_all_due(app: &TestApp) {
    back_date(app, "status = 'pending'").await;
}

/// Moves the deadlines of the intents matching `filter` an hour into the past.
async fn back_date(app: &TestApp, filter: &str) {
    let sql = format!(
        "update uploads set expires_at = now() - interval '1 hour', complete_by = now() - interval '1 hour' \
         where {filter}"
    );
    app.db.execute(&sql, &[]).await.unwrap();
}

#[tokio::test]
async fn one_pass_expires_what_is_due_and_leaves_no_reservation_upload_or_stray_object() {
    let app = app().await;
    let short = |name: &str, size: usize| json!({"filename": name, "content_type": "text/plain", "size": size, "profile": "short"});
    let not_due = create(&app, "re", json!({"filename": "k.txt", "content_type": "text/plain", "size": 7})).await;
    let uploaded = create(&app, "re", short("u.txt", 2)).await;
    let never = create(&app, "re", short("n.txt", 3)).await;
    let mut mp_body = short("m.bin", 100);
    mp_body["method"] = json!("multipart");
    let mp = create(&app, "re", mp_body).await;
    assert_eq!(app.put_to(&uploaded, b"hi".to_vec()).await.status(), 200);
    let mp_id = mp["upload_id"].as_str().unwrap();
    app.upload_parts("re", mp_id, PART, &bytes(100, 8), &[1]).await;
    let store_id = app.store_upload_id(mp_id).await.unwrap();
    let mp_key = mp["key"].as_str().unwrap();
    assert_eq!(app.store_parts(mp_key, &store_id).await, [1]);
    assert_eq!(app.usage_row("re").await, (0, 0, 7 + 2 + 3 + 100, 4));

    // Past expires_at + complete_grace for the short ones: their deadlines move an hour back.
    back_date(&app, "profile = 'short'").await;
    let report = run_once(&app.state).await.expect("a reaper pass");

    assert_eq!(report, Report { expired: 3, cleaned: 3, ..Default::default() });
    for intent in [&uploaded, &never, &mp] {
        let id = intent["upload_id"].as_str().unwrap();
        assert_eq!(app.upload_status(id).await, "expired", "{id}");
        assert!(cleaned(&app, intent).await, "{id} cleaned");
        assert_eq!(app.object(intent["key"].as_str().unwrap()).await, None, "{id}: no object");
    }
    assert!(app.store_parts(mp_key, &store_id).await.is_empty(), "the multipart upload is gone");
    assert_eq!(app.usage_row("re").await, (0, 0, 7, 1), "only the not-due intent is reserved");
    assert_eq!(app.upload_status(not_due["upload_id"].as_str().unwrap()).await, "pending");
    assert!(!cleaned(&app, &not_due).await);
    assert!(app.keys().await.is_empty(), "{:?}", app.keys().await);

    // The expired intents answer as expired; a second pass has nothing to do.
    app.complete("re", &uploaded["upload_id"]).await.assert_error(410, "upload_expired");
    assert_eq!(run_once(&app.state).await.unwrap(), Report::default());
    assert_eq!(app.usage_row("re").await, (0, 0, 7, 1));
}

#[tokio::test]
async fn two_reapers_at_once_handle_each_intent_exactly_once() {
    let app = app().await;
    let owners = ["ra", "rb", "rc", "rd", "rf"];
    let mut intents = Vec::new();
    for i in 0..30 {
        let body = json!({"filename": format!("{i}.txt"), "content_type": "text/plain", "size": i + 1});
        intents.push(create(&app, owners[i % owners.len()], body).await);
    }
    // A few have their object written, so the store has something to delete.
    for (i, intent) in intents.iter().enumerate().take(5) {
        assert_eq!(app.put_to(intent, bytes(i + 1, 0)).await.status(), 200);
    }
    make_all_due(&app).await;

    let (a, b) = tokio::join!(run_once(&app.state), run_once(&app.state));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.expired + b.expired, 30, "{a:?} {b:?}");
    assert_eq!(a.cleaned + b.cleaned, 30, "{a:?} {b:?}");
    assert_eq!(a.clean_failures + b.clean_failures, 0);
    for owner in owners {
        assert_eq!(app.usage_row(owner).await, (0, 0, 0, 0), "{owner}: released exactly once");
    }
    assert_eq!(app.count("select count(*) from uploads where status = 'expired' and cleaned_at is not null").await, 30);
    assert!(app.keys().await.is_empty(), "{:?}", app.keys().await);
}

/// Where a row's cleanup stands: cleaned, and whether a reaper's lease on it is live.
async fn clean_state(app: &TestApp, intent: &Value) -> (bool, Option<bool>) {
    let sql = "select cleaned_at is not null, clean_lease_until > now() from uploads where id = $1";
    let row = app.db.query_one(sql, &[&uuid(intent)]).await.unwrap();
    (row.get(0), row.get(1))
}

async fn set_lease(app: &TestApp, intent: &Value, until: &str) {
    let sql = format!("update uploads set clean_lease_until = {until} where id = $1");
    app.db.execute(&sql, &[&uuid(intent)]).await.unwrap();
}

fn key(intent: &Value) -> &str {
    intent["key"].as_str().unwrap()
}

#[tokio::test]
async fn a_row_another_reaper_holds_is_left_alone_until_its_lease_runs_out() {
    let app = app().await;
    let body = |name: &str| json!({"filename": name, "content_type": "text/plain", "size": 2});
    let (held, dropped) = (create(&app, "rl", body("h.txt")).await, create(&app, "rl", body("d.txt")).await);
    for intent in [&held, &dropped] {
        assert_eq!(app.put_to(intent, b"hi".to_vec()).await.status(), 200);
    }
    make_all_due(&app).await;
    // One reaper is still working on `held`; the one that took `dropped` died long ago.
    set_lease(&app, &held, "now() + interval '1 hour'").await;
    set_lease(&app, &dropped, "now() - interval '1 second'").await;

    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report, Report { expired: 2, cleaned: 1, ..Default::default() });
    assert_eq!(clean_state(&app, &dropped).await, (true, None), "cleaned, lease cleared");
    assert_eq!(app.object(key(&dropped)).await, None);
    assert_eq!(clean_state(&app, &held).await, (false, Some(true)), "left to the reaper holding it");
    assert!(app.object(key(&held)).await.is_some());

    // Another pass while the lease is live: still nothing to do.
    assert_eq!(run_once(&app.state).await.unwrap(), Report::default());
    assert_eq!(clean_state(&app, &held).await, (false, Some(true)));
    assert!(app.object(key(&held)).await.is_some());

    // The holder died: once its lease has run out, the next pass takes the row.
    set_lease(&app, &held, "now() - interval '1 second'").await;
    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report, Report { cleaned: 1, ..Default::default() });
    assert_eq!(clean_state(&app, &held).await, (true, None));
    assert!(app.keys().await.is_empty(), "{:?}", app.keys().await);
    assert_eq!(app.usage_row("rl").await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_store_failure_leaves_the_row_leased_and_a_pass_after_the_lease_cleans_it() {
    let app = TestApp::spawn_with(TestOptions { s3_proxy: true, ..Default::default() }).await;
    let store = app.s3_proxy.as_ref().unwrap();
    let intent = create(&app, "rf", json!({"filename": "f.txt", "content_type": "text/plain", "size": 4})).await;
    assert_eq!(app.put_to(&intent, b"data".to_vec()).await.status(), 200);
    make_all_due(&app).await;

    store.cut();
    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report, Report { expired: 1, clean_failures: 1, ..Default::default() });
    assert_eq!(app.upload_status(intent["upload_id"].as_str().unwrap()).await, "expired");
    assert_eq!(app.usage_row("rf").await, (0, 0, 0, 0), "released even though the store is down");
    assert_eq!(clean_state(&app, &intent).await, (false, Some(true)), "not cleaned, still leased");
    assert!(app.object(key(&intent)).await.is_some(), "the object is still in the bucket");

    // The store is back, but the lease is the backoff: a pass right away leaves the row.
    store.restore();
    assert_eq!(run_once(&app.state).await.unwrap(), Report::default());
    assert_eq!(clean_state(&app, &intent).await, (false, Some(true)));
    assert!(app.object(key(&intent)).await.is_some());

    set_lease(&app, &intent, "now() - interval '1 second'").await;
    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report, Report { cleaned: 1, ..Default::default() });
    assert_eq!(clean_state(&app, &intent).await, (true, None), "cleaned, lease cleared");
    assert_eq!(app.object(key(&intent)).await, None);
    assert!(app.keys().await.is_empty(), "{:?}", app.keys().await);
}

#[tokio::test]
async fn idempotency_keys_are_forgotten_after_a_day() {
    let app = app().await;
    let token = app.token("rk");
    for key in ["old", "new"] {
        let body = json!({"filename": format!("{key}.txt"), "content_type": "text/plain", "size": 1});
        let r = app.call_keyed("POST", "/v1/uploads", &token, Some(body), Some(key)).await;
        assert_eq!(r.status, 201, "{:#}", r.body);
    }
    app.db
        .execute("update idempotency_keys set created_at = created_at - interval '25 hours' where key = 'old'", &[])
        .await
        .unwrap();

    let report = run_once(&app.state).await.unwrap();
    assert_eq!(report.keys_forgotten, 1);
    let keys: Vec<String> =
        app.db.query("select key from idempotency_keys", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(keys, ["new"]);
}

#[tokio::test]
async fn the_reap_subcommand_runs_one_pass_and_exits_0() {
    let app = app().await;
    let due = create(&app, "rs", json!({"filename": "d.txt", "content_type": "text/plain", "size": 4})).await;
    assert_eq!(app.put_to(&due, b"data".to_vec()).await.status(), 200);
    make_all_due(&app).await;
    // Uploaded, never completed, not overdue: the pass's confirmer makes it an asset.
    let fresh = create(&app, "rs", json!({"filename": "f.txt", "content_type": "text/plain", "size": 5})).await;
    assert_eq!(app.put_to(&fresh, b"fresh".to_vec()).await.status(), 200);
    app.db.execute("update uploads set next_check_at = now() where status = 'pending'", &[]).await.unwrap();

    let out = tokio::task::spawn_blocking({
        let (db, bucket) = (app.database_url.clone(), app.bucket.clone());
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_r2-broker"))
                .arg("reap")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", db)
                .env("S3_ENDPOINT", &crate::support::store().endpoint)
                .env("S3_ACCESS_KEY_ID", &crate::support::store().access_key)
                .env("S3_SECRET_ACCESS_KEY", &crate::support::store().secret_key)
                .env("S3_BUCKET", bucket)
                .env("JWT_SECRET", crate::support::app::JWT_SECRET)
                .output()
                .expect("run r2-broker reap")
        }
    })
    .await
    .unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{output}");
    assert_eq!(app.upload_status(due["upload_id"].as_str().unwrap()).await, "expired");
    assert_eq!(app.upload_status(fresh["upload_id"].as_str().unwrap()).await, "completed");
    assert_eq!(app.usage_row("rs").await, (5, 1, 0, 0), "only the confirmed upload counts");
    assert_eq!(app.keys().await, [fresh["key"].as_str().unwrap()], "the stray object is deleted, the asset's kept");
}
