//! Request metrics and the access log: count and latency per route pattern (not per path,
//! so ids do not explode the label space), method and status; one access line per request
//! at info under `r2_broker::access` (src/telemetry.rs). It runs inside the request's
//! span (http/request_id.rs), which adds the request id and the owner to the line.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::request_id::RoutePattern;
use crate::state::AppState;

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            // Passed on for actix to answer (e.g. a CORS rejection), before any route: not
            // counted, but logged; the span has the route it would have had.
            let status = e.as_response_error().status_code();
            let duration_ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::info!(target: crate::telemetry::ACCESS, method = %method, status = status.as_u16(), duration_ms, "request");
            return Err(e);
        }
    };
    // Matched once, by `request_id::middleware` (outermost): `observe` always runs inside it.
    let route =
        res.request().extensions().get::<RoutePattern>().map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = res.status();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state.metrics.http_requests.with_label_values(&[route.as_str(), method.as_str(), status.as_str()]).inc();
        state
            .metrics
            .http_duration
            .with_label_values(&[route.as_str(), method.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    tracing::info!(
        target: crate::telemetry::ACCESS,
        method = %method,
        route,
        status = status.as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    Ok(res)
}
