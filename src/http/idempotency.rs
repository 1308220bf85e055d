//! The HTTP side of `Idempotency-Key` (the workflow is `crate::idempotency`): read and check
//! the header, bind the key to this request, and send the answer — a replayed error body
//! gets this request's id.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::json::Json;
use super::{NoQuery, read_query};
use crate::auth::Caller;
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

/// A `POST` of a JSON body that creates something, under its `Idempotency-Key`: read in
/// openapi.yaml's order — token (401), query (400: it takes none), body (400).
pub struct KeyedPost<T> {
    caller: Caller,
    body: T,
    req: HttpRequest,
}

impl<T: DeserializeOwned + 'static> FromRequest for KeyedPost<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload).into_inner();
        let query = read_query::<NoQuery>(req.query_string());
        let body = Json::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let caller = caller?;
            query?;
            Ok(Self { caller, body: body.await?.0, req })
        })
    }
}

impl<T: Serialize> KeyedPost<T> {
    /// `work(caller, body)`, at most once per key.
    pub async fn run<F, Fut>(self, state: &AppState, work: F) -> Result<HttpResponse, Error>
    where
        F: FnOnce(Caller, T) -> Fut,
        Fut: Future<Output = Result<Reply, Error>>,
    {
        let Self { caller, body, req } = self;
        let owner = caller.owner.clone();
        run(state, &req, &owner, body, |body| work(caller, body)).await
    }
}
