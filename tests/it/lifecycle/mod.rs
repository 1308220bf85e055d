//! The asset lifecycle (issue 15) end to end, against the real store, PostgreSQL and clamd:
//! content sniffing in `complete`, scanning, the states downloads and listings follow, and
//! the job worker as its own process.

mod events;
mod scanning;
mod sniffing;
mod variants;
mod worker_process;

use serde_json::{Value, json};

use crate::support::app::TestApp;

/// Runs job passes until one finds nothing to do (bounded: a job retried within the test
/// would otherwise loop).
pub async fn run_jobs(app: &TestApp) -> r2_broker::jobs::Report {
    let worker = r2_broker::jobs::Worker::new(app.state.clone()).expect("the job worker starts");
    let mut total = r2_broker::jobs::Report::default();
    for _ in 0..5 {
        let r = worker.run_once().await.expect("a job pass");
        let idle = r == r2_broker::jobs::Report::default();
        total.ready += r.ready;
        total.quarantined += r.quarantined;
        total.rejected += r.rejected;
        total.retried += r.retried;
        total.gone += r.gone;
        total.unfinished += r.unfinished;
        if idle {
            break;
        }
    }
    total
}

/// Create + PUT + complete; returns complete's answer (whatever its status).
pub async fn upload_and_complete(
    app: &TestApp,
    owner: &str,
    profile: &str,
    filename: &str,
    ct: &str,
    bytes: &[u8],
) -> (Value, crate::support::app::Call) {
    let c = app
        .create(owner, json!({"filename": filename, "content_type": ct, "size": bytes.len(), "profile": profile}))
        .await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    assert_eq!(app.put_to(&c.body, bytes.to_vec()).await.status(), 200, "PUT");
    let done = app.complete(owner, &c.body["upload_id"]).await;
    (c.body, done)
}

/// The asset's `state` column and `asset_jobs` row count, straight from the database.
pub async fn state_of(app: &TestApp, asset_id: &str) -> (String, Option<String>, i64) {
    let id: uuid::Uuid = asset_id.parse().unwrap();
    let row = app.db.query_one("select state, state_reason from assets where id = $1", &[&id]).await.unwrap();
    let jobs: i64 =
        app.db.query_one("select count(*) from asset_jobs where asset_id = $1", &[&id]).await.unwrap().get(0);
    (row.get(0), row.get(1), jobs)
}
