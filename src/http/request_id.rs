//! `x-request-id`: the client's own when it is 1 to 128 characters of
//! `A-Z a-z 0-9 . _ : -`, a new UUID otherwise; echoed on every response. The rest of the
//! request runs inside its span (src/telemetry.rs), so every line logged while serving it
//! carries the id.
//!
//! Mechanism: the middleware runs the rest of the request inside a tokio task-local
//! (`REQUEST_ID.scope`). actix builds error responses (`ResponseError::error_response`)
//! inside that future, so `current()` gives the error body its `request_id` without
//! threading the request through every error. (An `Err` that escapes the inner service,
//! e.g. a CORS rejection, is passed on as is: actix forbids keeping a clone of the request
//! across routing, so it cannot be turned into a response here.)

use actix_web::HttpMessage as _;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing::field::Empty;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called inside one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The route pattern the request matched (`/v1/uploads/{id}`), or `unmatched`.
#[derive(Clone)]
pub struct RoutePattern(pub String);

fn valid(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    // Matched once here; `observe` (metrics, access line) reads it from the extensions.
    let route = RoutePattern(req.match_pattern().unwrap_or_else(|| "unmatched".to_owned()));
    // At error level, the highest: a span exists only when its level passes the filter, and
    // the warnings and errors of a request must carry its id under `RUST_LOG=warn` too.
    // `owner` and `upload_id` are filled in by the handlers (`Span::current().record`).
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = route.0.as_str(),
        owner = Empty,
        upload_id = Empty,
    );
    req.extensions_mut().insert(route);
    let mut res = REQUEST_ID.scope(id.clone(), next.call(req).instrument(span)).await?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_validated() {
        assert!(super::valid("abc-123_X.y:z"));
        assert!(super::valid(&"a".repeat(128)));
        for bad in ["", " ", "a b", "a\nb", "é", &"a".repeat(129)] {
            assert!(!super::valid(bad), "{bad:?}");
        }
    }
}
