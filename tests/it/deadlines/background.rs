//! Deadlines on work that is not a request: the migrations at start and a reaper pass
//! whose database freezes mid-cleanup.

use super::*;

/// Migrations have their own bound (`BROKER_MIGRATION_TIMEOUT`), which includes waiting
/// for another replica's migrations: start-up fails naming the variable instead of
/// hanging, and succeeds once the other replica is done.
#[tokio::test]
async fn deadline_migrations_waiting_for_another_replica_give_up_after_their_own_bound() {
    let (url, name) = crate::support::db::fresh_database().await;
    let other_replica = crate::support::db::client(&url).await;
    let lock = r2_broker::db::MIGRATION_LOCK;
    other_replica.execute("select pg_advisory_lock($1)", &[&lock]).await.unwrap();
    let settings = Settings { migration_timeout: Some("1".into()), ..crate::support::app::base_settings(&url) };

    let t0 = Instant::now();
    let start = tokio::time::timeout(OUTER, r2_broker::build_state(settings.validate().unwrap()));
    let err = start.await.expect("start-up gives up within the bound").err().expect("the lock is held");
    eprintln!("deadline figures (migrations waiting on a held lock, BROKER_MIGRATION_TIMEOUT=1): {:?}", t0.elapsed());
    let text = format!("{err:#}");
    assert!(text.starts_with("DATABASE_URL: migrations failed"), "{text}");

    other_replica.execute("select pg_advisory_unlock($1)", &[&lock]).await.unwrap();
    let state = tokio::time::timeout(OUTER, r2_broker::build_state(settings.validate().unwrap()))
        .await
        .expect("start-up within the bound")
        .expect("migrations run once the lock is free");
    drop(state);
    crate::support::db::drop_database(name);
}

/// A reaper pass cut by the deadline. The database connection freezes (a black-holed
/// network) while the reaper waits on a stalled store; the pass fails within the bounds.
/// The reaper holds no transaction across its store calls (it leases the rows it cleans,
/// src/background.rs), so nothing stays locked while the network is down, nothing is
/// marked cleaned, and the next pass after the lease cleans.
#[tokio::test]
async fn deadline_a_reaper_pass_cut_by_a_frozen_database_leaves_nothing_locked_or_half_written() {
    let tweak: fn(&mut Settings) = |s| {
        short_db_timeout(s);
        short_store_timeout(s);
    };
    let app = spawn(true, true, Some(tweak)).await;
    let id = uploaded_intent(&app).await;
    store(&app).cut();
    let r = app.delete(&format!("/v1/uploads/{id}"), &app.token(OWNER)).await;
    assert_unavailable(&app, &r); // aborted, but the object is still there to clean
    let uuid: uuid::Uuid = id.parse().unwrap();
    let cleaned = "select count(*) from uploads where cleaned_at is not null";
    assert_eq!(app.count(cleaned).await, 0);

    store(&app).stall();
    let pass = r2_broker::reaper::run_once(&app.state);
    let (result, ()) = tokio::join!(tokio::time::timeout(OUTER, pass), async {
        // The reaper's DeleteObject is waiting on the store, inside its transaction.
        while store(&app).held() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        db(&app).freeze();
    });
    let err = result.expect("the pass ends within its bounds").expect_err("the database froze mid-transaction");
    assert_eq!(err.status(), 503, "{err:?}");
    store(&app).restore();

    // Still frozen: the proxy holds the reaper's connections to PostgreSQL open.
    let t0 = Instant::now();
    loop {
        match app.db.query_opt("select 1 from uploads where id = $1 for update nowait", &[&uuid]).await {
            Ok(_) => break,
            Err(e) => assert!(t0.elapsed() < OUTER, "the abandoned transaction still holds its lock: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("deadline figures (reaper pass abandoned, 1 s / 1 s): row unlocked {:?} after the pass", t0.elapsed());
    assert_eq!(app.count(cleaned).await, 0, "nothing committed");
    db(&app).restore();
    assert_nothing_half_written(&app).await;

    // The pass left the row leased (the lease is the backoff after a failure): the next pass
    // after it runs out cleans.
    app.db.execute("update uploads set clean_lease_until = now() - interval '1 second'", &[]).await.unwrap();
    let report = tokio::time::timeout(OUTER, r2_broker::reaper::run_once(&app.state)).await.unwrap().unwrap();
    assert_eq!(report.cleaned, 1, "{report:?}");
    assert_eq!(app.count(cleaned).await, 1);
    assert_nothing_half_written(&app).await;
}
