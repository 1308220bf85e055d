//! The HTTP side of `Idempotency-Key` (the workflow is `crate::idempotency`): read and check
//! the header, bind the key to this request, and send the answer — a replayed error body
//! gets this request's id.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::idempotency::{self, Answer, Claim, Reply};
use crate::state::AppState;

const HEADER: &str = "idempotency-key";

/// The header's value: 1 to 255 printable ASCII characters, or a 400.
fn key_of(req: &HttpRequest) -> Result<Option<&str>, Error> {
    let Some(v) = req.headers().get(HEADER) else { return Ok(None) };
    let bad = || Error::invalid("Idempotency-Key: 1 to 255 printable ASCII characters");
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(s))
}

/// Runs `work(body)` at most once per (caller's owner, key); `body` is the parsed request
/// body (`()` for a route without one), which the key is bound to.
pub async fn run<B, F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    owner: &str,
    body: B,
    work: F,
) -> Result<HttpResponse, Error>
where
    B: Serialize,
    F: FnOnce(B) -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    let claim = match key_of(req)? {
        None => None,
        Some(key) => {
            let target = req.uri().path_and_query().map_or("", |p| p.as_str());
            Some(Claim { owner, key, fingerprint: idempotency::fingerprint(req.method().as_str(), target, &body)? })
        }
    };
    Ok(match idempotency::run(&state.db, claim, || work(body)).await? {
        Answer::Ran(reply) => respond(reply.status, reply.body.map(|b| String::from(Box::<str>::from(b)))),
        Answer::Replayed { status, body } => respond(status, body.map(with_request_id).map(|b| b.to_string())),
    })
}

fn with_request_id(mut body: Value) -> Value {
    if let (Some(err), Some(id)) = (body.get_mut("error"), super::request_id::current()) {
        err["request_id"] = Value::String(id);
    }
    body
}

fn respond(status: ::http::StatusCode, body: Option<String>) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK));
    match body {
        Some(b) => res.content_type(ContentType::json()).body(b),
        None => res.finish(),
    }
}
