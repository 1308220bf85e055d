//! A local HTTP validator (`BROKER_SCAN_URL`) on 127.0.0.1 port 0, served by actix-web as
//! the broker is. Like a real moderation service it GETs the presigned URL it is sent — so
//! a test proves that URL works — records the request and what the GET returned, then
//! answers by the [`Rule`] the test set. Drop stops it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Rule {
    /// 200.
    Pass,
    /// This status with this body (a 4xx rejects, 408/429 ask to come back later).
    Answer { status: u16, body: String },
    /// 500.
    Fail,
    /// Never answers.
    Hang,
    /// 302 to this location.
    Redirect(String),
}

/// One request the validator got.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The JSON body.
    pub body: Value,
    /// The status of its GET of `body.url`, and the bytes.
    pub fetched: Option<(u16, Vec<u8>)>,
}

#[derive(Default)]
struct Shared {
    rule: Mutex<Option<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

pub struct Validator {
    /// `http://127.0.0.1:PORT/check`
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl Validator {
    pub async fn start(rule: Rule) -> Self {
        let shared = Arc::new(Shared { rule: Mutex::new(Some(rule)), seen: Mutex::default() });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(check)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, shared, handle }
    }

    pub fn set(&self, rule: Rule) {
        *self.shared.rule.lock().unwrap() = Some(rule);
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

async fn check(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fetched = match body["url"].as_str() {
        Some(url) => fetch(url).await,
        None => None,
    };
    shared.seen.lock().unwrap().push(Seen { body, fetched });
    let rule = shared.rule.lock().unwrap().clone().unwrap_or(Rule::Pass);
    match rule {
        Rule::Pass => HttpResponse::Ok().json(serde_json::json!({"ok": true})),
        Rule::Answer { status, body } => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(body)
        }
        Rule::Fail => HttpResponse::InternalServerError().body("validator broke"),
        Rule::Hang => std::future::pending().await,
        Rule::Redirect(to) => HttpResponse::Found().insert_header(("location", to)).finish(),
    }
}

async fn fetch(url: &str) -> Option<(u16, Vec<u8>)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.bytes().await.ok()?.to_vec()))
}

impl Drop for Validator {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
