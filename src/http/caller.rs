//! Who is calling: two steps every `/v1` route runs before its handler (see `routes` in
//! http/mod.rs), and the `Caller` extractor that reads what they found.
//!
//! 1. [`authenticate`] reads `Authorization: Bearer <token>` and verifies it;
//! 2. [`rate_limit`] charges the caller's owner against `BROKER_RATE_LIMIT_*`.
//!
//! Neither answers by itself: each leaves its outcome (the caller, or the 401 / 429) in the
//! request's extensions, and the handler's `Caller` argument turns it into the error. That
//! keeps openapi.yaml's check order, which is the handler's extractor order — a path id that
//! names nothing is a 404 even without a token — while every request that reaches a
//! handler is authenticated and charged exactly once, as when the extractor did it all.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, http::header, web};
use governor::clock::Clock;

use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;

/// The outcome of the two steps, in the request's extensions until `Caller` takes it.
struct Authentication(Result<Caller, Error>);

/// Step 1: the bearer token, verified.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let outcome = verify(req.request()).await;
    if let Ok(caller) = &outcome {
        tracing::Span::current().record("owner", caller.owner.as_str());
    }
    req.extensions_mut().insert(Authentication(outcome));
    next.call(req).await
}

/// Async: a token from a JWKS provider may need its keys fetched (bounded by
/// `BROKER_JWKS_TIMEOUT`); every other token verifies without waiting.
async fn verify(req: &HttpRequest) -> Result<Caller, Error> {
    let state = app_state(req)?;
    let value =
        req.headers().get(header::AUTHORIZATION).ok_or(Error::Unauthorized("missing Authorization: Bearer token"))?;
    let value = value.to_str().map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(Error::Unauthorized("Authorization must be `Bearer <token>`")),
    };
    state.verifier.verify(token).await
}

/// Step 2: `429 rate_limited` with the wait when the caller's owner is over its rate.
/// Only an authenticated caller is charged.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let over = match (app_state(req.request()), req.extensions().get::<Authentication>()) {
        (Ok(state), Some(Authentication(Ok(caller)))) => check_rate(state, &caller.owner).err(),
        _ => None,
    };
    if let Some(e) = over {
        req.extensions_mut().insert(Authentication(Err(e)));
    }
    next.call(req).await
}

fn check_rate(state: &AppState, owner: &str) -> Result<(), Error> {
    let Some(limiter) = &state.limiter else { return Ok(()) };
    limiter.check_key(&owner.to_owned()).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        Error::RateLimited { retry_after: wait.as_secs_f64().ceil().max(1.0) as u32 }
    })
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, Error> {
    Ok(req.app_data::<web::Data<AppState>>().ok_or_else(|| anyhow::anyhow!("AppState missing"))?)
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let outcome = req.extensions_mut().remove::<Authentication>().map(|a| a.0);
        ready(
            outcome.unwrap_or_else(|| {
                Err(anyhow::anyhow!("a route that takes a Caller lacks the authenticate step").into())
            }),
        )
    }
}
