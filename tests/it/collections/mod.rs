//! Collections (issue 16): their API, limits that hold under concurrency alongside the
//! owner's quota, purge with the store cut midway, and retention.

mod api;
mod limits;
mod purge;
mod retention;

use serde_json::{Value, json};

use crate::support::{Call, TestApp};

/// `POST /v1/collections` for `owner`; asserts 201 and returns the collection.
pub async fn new_collection(app: &TestApp, owner: &str, body: Value) -> Value {
    let c = app.post("/v1/collections", &app.token(owner), body).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    c.body
}

/// A create into `collection` of `size` bytes.
pub async fn create_in(app: &TestApp, owner: &str, collection: &Value, size: i64) -> Call {
    app.create(
        owner,
        json!({"filename": "photo.jpg", "content_type": "application/octet-stream", "size": size,
               "collection": collection["id"]}),
    )
    .await
}

/// The collection's counters straight from the table:
/// `(used_bytes, used_objects, reserved_bytes, reserved_objects)`.
pub async fn counters(app: &TestApp, collection: &Value) -> (i64, i64, i64, i64) {
    let id: uuid::Uuid = collection["id"].as_str().unwrap().parse().unwrap();
    let r = app
        .db
        .query_one(
            "select used_bytes, used_objects, reserved_bytes, reserved_objects from collections where id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

/// Uploads `n` small assets into `collection` (create, PUT, complete); returns them.
pub async fn fill(app: &TestApp, owner: &str, collection: &Value, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        let bytes = format!("photo number {i:04}").into_bytes();
        let c = app
            .create(
                owner,
                json!({"filename": format!("p{i}.bin"), "content_type": "application/octet-stream",
                       "size": bytes.len(), "collection": collection["id"]}),
            )
            .await;
        assert_eq!(c.status, 201, "{:#}", c.body);
        assert_eq!(app.put_to(&c.body, bytes).await.status(), 200);
        let done = app.complete(owner, &c.body["upload_id"]).await;
        assert_eq!(done.status, 201, "{:#}", done.body);
        out.push(done.body);
    }
    out
}
