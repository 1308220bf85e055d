//! A webhook receiver on 127.0.0.1: a real HTTP server (actix-web, as the broker) that
//! records every request (method, path, headers, body) and answers the status the test
//! set. `stop` closes its port (connections are refused, as for a receiver that is down);
//! `start_again` listens on the same port, so the broker's configured URL works again.
//! `hold` keeps requests waiting for their answer until `release`, so a test can act
//! between a delivery's POST and what the broker does after it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One request as the receiver got it. `headers` are `http` 1 types, as the Standard
/// Webhooks verifier takes them.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap_or_else(|| panic!("header {name}")).to_str().unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

struct Shared {
    status: Mutex<u16>,
    received: Mutex<Vec<Received>>,
    /// How many requests arrived (watched by `wait_for`).
    count: tokio::sync::watch::Sender<usize>,
    /// Answers wait while this is true.
    holding: tokio::sync::watch::Sender<bool>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    handle: Mutex<Option<ServerHandle>>,
}

impl Receiver {
    /// Listening on a free port, answering 200.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            status: Mutex::new(200),
            received: Mutex::default(),
            count: tokio::sync::watch::channel(0).0,
            holding: tokio::sync::watch::channel(false).0,
        });
        let (port, handle) = listen(0, shared.clone());
        Self { port, shared, handle: Mutex::new(Some(handle)) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// The status every request gets from now on.
    pub fn answer(&self, status: u16) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Requests from now on wait for `release` before they are answered.
    pub fn hold(&self) {
        self.shared.holding.send_replace(true);
    }

    pub fn release(&self) {
        self.shared.holding.send_replace(false);
    }

    /// Waits (at most 10 s) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) {
        let mut count = self.shared.count.subscribe();
        tokio::time::timeout(Duration::from_secs(10), count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} requests within 10 s"))
            .unwrap();
    }

    /// Closes the port (and the connections open on it).
    pub async fn stop(&self) {
        let handle = self.handle.lock().unwrap().take();
        if let Some(h) = handle {
            h.stop(false).await;
        }
    }

    /// Listens on the same port again.
    pub async fn start_again(&self) {
        let (_, handle) = listen(self.port, self.shared.clone());
        *self.handle.lock().unwrap() = Some(handle);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(h) = self.handle.lock().unwrap().take() {
            drop(h.stop(false));
        }
    }
}

fn listen(port: u16, shared: Arc<Shared>) -> (u16, ServerHandle) {
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(record)))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("the receiver binds its port");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (port, handle)
}

async fn record(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    shared.received.lock().unwrap().push(Received {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    shared.count.send_modify(|c| *c += 1);
    let mut holding = shared.holding.subscribe();
    let _ = holding.wait_for(|h| !h).await;
    let status = actix_web::http::StatusCode::from_u16(*shared.status.lock().unwrap()).unwrap();
    match status {
        s if s.is_success() => HttpResponse::build(s).finish(),
        // Somewhere a client that follows redirects would go next (and be recorded).
        s if s.is_redirection() => HttpResponse::build(s).insert_header(("location", "/moved")).finish(),
        s => HttpResponse::build(s).body("receiver says no"),
    }
}
