//! Request tracing (src/telemetry.rs): every line logged while serving a request, a
//! workflow's included, carries the request's id (and its method and route pattern); each
//! request ends with one access line under `r2_broker::access`, with method, route, status
//! and duration (and the owner once a handler recorded it); `RUST_LOG=info,r2_broker::access=off`
//! turns only those off. Lines are
//! captured as JSON from the same subscriber `telemetry::init` installs.

use std::sync::{Arc, Mutex, OnceLock};

use actix_web::middleware::from_fn;
use actix_web::{App, web};
use r2_broker::http::{middleware::observe, request_id};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use crate::support::TestApp;

type Buffer = Arc<Mutex<Vec<u8>>>;

struct Capture(Buffer);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn subscriber(filter: &str, buffer: &Buffer) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let buffer = Arc::clone(buffer);
    r2_broker::telemetry::subscriber(EnvFilter::new(filter), true, move || Capture(Arc::clone(&buffer)))
}

/// The process-wide subscriber, capturing at `info`: a served request's lines are logged on
/// the server's threads. Installed before the app starts (its `telemetry::init` then keeps
/// it); nextest runs each test in a process of its own.
fn global_lines() -> &'static Buffer {
    static LINES: OnceLock<Buffer> = OnceLock::new();
    LINES.get_or_init(|| {
        let buffer = Buffer::default();
        tracing::subscriber::set_global_default(subscriber("info", &buffer)).expect("the process's first subscriber");
        buffer
    })
}

fn lines(buffer: &Buffer) -> Vec<Value> {
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The lines logged inside the span of the request with this id.
fn of_request<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["span"]["request_id"] == id).collect()
}

fn access_lines<'a>(lines: &[&'a Value]) -> Vec<&'a Value> {
    lines.iter().copied().filter(|l| l["target"] == r2_broker::telemetry::ACCESS).collect()
}

#[tokio::test]
async fn a_requests_lines_carry_its_id_and_one_access_line_ends_it() {
    let captured = global_lines();
    let app = TestApp::spawn().await;
    let token = app.token("tia");
    let body = json!({"filename": "t.txt", "content_type": "text/plain", "size": 5});
    let created = app.http.post(format!("{}/v1/uploads", app.base)).bearer_auth(&token).json(&body);
    let created = created.header("x-request-id", "create-1").send().await.unwrap();
    assert_eq!(created.status(), 201);
    let intent: Value = created.json().await.unwrap();
    let id = intent["upload_id"].as_str().unwrap();
    // The wrong size, written past the presigned URL: `complete` logs why verification failed.
    let object = app.s3.put_object().bucket(&app.bucket).key(intent["key"].as_str().unwrap());
    let object = object.content_type("text/plain").metadata("upload-id", id).body(b"sixsix".to_vec().into());
    object.send().await.unwrap();

    let complete = app.http.post(format!("{}/v1/uploads/{id}/complete", app.base)).bearer_auth(&token).json(&json!({}));
    let complete = complete.header("x-request-id", "complete-1").send().await.unwrap();
    assert_eq!(complete.status(), 422);
    assert_eq!(complete.headers()["x-request-id"], "complete-1");
    let health = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let generated = health.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let all = lines(captured);
    let served = of_request(&all, "complete-1");
    let workflow = served.iter().find(|l| l["fields"]["message"] == "verification failed");
    let workflow = workflow.unwrap_or_else(|| panic!("the workflow's line carries the request id: {all:#?}"));
    assert_eq!(workflow["target"], "r2_broker::uploads::complete");
    assert_eq!(workflow["span"]["route"], "/v1/uploads/{id}/complete", "the pattern, not the path");
    assert_eq!(workflow["span"]["method"], "POST");

    for (request_id, method, route, status) in [
        ("create-1", "POST", "/v1/uploads", 201),
        ("complete-1", "POST", "/v1/uploads/{id}/complete", 422),
        (generated.as_str(), "GET", "/healthz", 200),
    ] {
        let access = access_lines(&of_request(&all, request_id));
        assert_eq!(access.len(), 1, "{request_id}: one access line: {access:#?}");
        let fields = &access[0]["fields"];
        assert_eq!(access[0]["level"], "INFO");
        assert_eq!(
            (&fields["method"], &fields["route"], &fields["status"]),
            (&json!(method), &json!(route), &json!(status))
        );
        assert!(fields["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{fields}");
    }
    assert_eq!(access_lines(&all.iter().collect::<Vec<_>>()).len(), 3, "no access line outside a request's span");
}

/// A request through the tracing and access-log middleware, logged under `filter`.
async fn serve_one(filter: &str) -> Vec<Value> {
    let buffer = Buffer::default();
    let _logging = tracing::subscriber::set_default(subscriber(filter, &buffer));
    // As the handlers do once they know who is calling.
    let hello = || async {
        tracing::Span::current().record("owner", "you");
        tracing::info!("hello from the handler");
        "hi"
    };
    let app = App::new()
        .wrap(from_fn(observe))
        .wrap(from_fn(request_id::middleware))
        .route("/hello/{name}", web::get().to(hello));
    let app = actix_web::test::init_service(app).await;
    let req = actix_web::test::TestRequest::get().uri("/hello/you").insert_header(("x-request-id", "hello-1"));
    assert_eq!(actix_web::test::call_service(&app, req.to_request()).await.status(), 200);
    lines(&buffer)
}

#[actix_web::test]
async fn rust_log_turns_the_access_lines_off_and_keeps_the_rest() {
    let on = serve_one("info").await;
    let served = of_request(&on, "hello-1");
    assert_eq!(served.len(), 2, "{on:#?}");
    assert_eq!(served[0]["fields"]["message"], "hello from the handler");
    assert_eq!(served[0]["span"]["route"], "/hello/{name}");
    let access = access_lines(&served);
    assert_eq!(access.len(), 1, "{on:#?}");
    assert_eq!(access[0]["span"]["owner"], "you", "the owner a handler recorded is on the access line");

    let off = serve_one("info,r2_broker::access=off").await;
    let served = of_request(&off, "hello-1");
    assert_eq!(served.len(), 1, "{off:#?}");
    assert_eq!(served[0]["fields"]["message"], "hello from the handler");
    assert!(access_lines(&served).is_empty(), "{off:#?}");
}
