//! `Idempotency-Key` on create, batch, complete and abort (API.md "Idempotency"): the same
//! key, owner and request within 24 h gets the first answer again and reserves nothing
//! twice; the same key with another request is `409 invalid_state`. Two identical requests
//! racing with one key: the first claims the key (an INSERT … ON CONFLICT DO NOTHING), the
//! second waits for its answer. 2xx and 4xx answers are kept; a 5xx (or a batch answer
//! with an item that met an outage) forgets the key so a retry runs again.

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};
use sha2::{Digest, Sha256};

use crate::db::idempotency as db;
use crate::error::Error;
use crate::state::AppState;

const HEADER: &str = "idempotency-key";
/// How long a duplicate waits for the first request's answer.
const WAIT: Duration = Duration::from_secs(10);

/// What a handler answers: a status and an optional JSON body, serialized once (it is sent
/// as is, and stored as is when the request has a key), and whether it is the request's
/// final outcome. A batch answer with an item that met an outage is not: a retry with the
/// same key must run again rather than replay `unavailable`.
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Box<RawValue>>,
    pub replayable: bool,
}

impl Reply {
    pub fn new(status: StatusCode, body: Option<Box<RawValue>>) -> Self {
        Self { status, body, replayable: true }
    }
}

pub fn respond(status: StatusCode, body: Option<Box<RawValue>>) -> HttpResponse {
    match body {
        Some(b) => HttpResponse::build(status)
            .content_type(actix_web::http::header::ContentType::json())
            .body(String::from(Box::<str>::from(b))),
        None => HttpResponse::build(status).finish(),
    }
}

/// Whether the request carries an `Idempotency-Key` (valid or not).
pub fn requested(req: &HttpRequest) -> bool {
    req.headers().contains_key(HEADER)
}

fn key_of(req: &HttpRequest) -> Result<Option<String>, Error> {
    let Some(v) = req.headers().get(HEADER) else { return Ok(None) };
    let bad = || Error::invalid("Idempotency-Key: 1 to 255 printable ASCII characters");
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// Runs `work` at most once per (owner, key); `request` identifies the request (method,
/// path, query and the parsed body, serialized).
pub async fn run<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    owner: &str,
    request: &[u8],
    work: F,
) -> Result<HttpResponse, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    let Some(key) = key_of(req)? else { return work().await.map(|r| respond(r.status, r.body)) };
    let mut hash = Sha256::new();
    hash.update(req.method().as_str());
    hash.update(b" ");
    hash.update(req.uri().path_and_query().map_or("", |p| p.as_str()));
    hash.update(b"\n");
    hash.update(request);
    let hash = hash.finalize().to_vec();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if db::begin(&state.db, owner, &key, &hash).await? {
            return first_run(state, owner, &key, work).await;
        }
        let Some(existing) = db::get(&state.db, owner, &key).await? else { continue };
        if existing.stale {
            db::discard(&state.db, owner, &key).await?;
            continue;
        }
        if existing.request_hash != hash {
            return Err(Error::invalid_state("this Idempotency-Key was used with a different request"));
        }
        if let Some(status) = existing.status {
            return Ok(replay(status, existing.response));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::invalid_state("a request with this Idempotency-Key is still in progress; retry later"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn first_run<F, Fut>(state: &AppState, owner: &str, key: &str, work: F) -> Result<HttpResponse, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    let reply = match work().await {
        Ok(reply) => reply,
        Err(e) if e.status().is_server_error() => {
            forget(state, owner, key).await;
            return Err(e);
        }
        Err(e) => {
            let body = to_raw_value(&serde_json::json!({"error": {"code": e.code(), "message": e.body().message}}))
                .map_err(anyhow::Error::from)?;
            // Keep the client's answer even if recording it fails: the key then goes stale.
            let _ = db::finish(&state.db, owner, key, e.status().as_u16() as i16, Some(&body)).await;
            return Err(e);
        }
    };
    if !reply.replayable {
        forget(state, owner, key).await;
    } else if let Err(e) = db::finish(&state.db, owner, key, reply.status.as_u16() as i16, reply.body.as_deref()).await
    {
        tracing::warn!(error = %e, "could not record an idempotent answer");
    }
    Ok(respond(reply.status, reply.body))
}

/// Releases a claimed key whose answer is not final, so a retry runs again.
async fn forget(state: &AppState, owner: &str, key: &str) {
    if db::discard(&state.db, owner, key).await.is_ok() {
        return;
    }
    // The database is likely down too: keep trying in the background, so a retry that is
    // waiting on this key runs as soon as the database is back (instead of waiting for the
    // key to go stale).
    let (db, owner, key) = (state.db.clone(), owner.to_owned(), key.to_owned());
    tokio::spawn(async move {
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if db::discard(&db, &owner, &key).await.is_ok() {
                return;
            }
        }
        tracing::warn!("could not discard an idempotency key after a failure; it goes stale in 60 s");
    });
}

/// The first answer again; an error body gets this request's id.
fn replay(status: i16, body: Option<Value>) -> HttpResponse {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let body = body.and_then(|mut b| {
        if let (Some(err), Some(id)) = (b.get_mut("error"), super::request_id::current()) {
            err["request_id"] = Value::String(id);
        }
        to_raw_value(&b).ok()
    });
    respond(status, body)
}
