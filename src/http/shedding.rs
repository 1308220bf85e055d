//! Load shedding past `BROKER_MAX_CONNECTIONS`: such a connection is accepted, its
//! requests are answered `503 unavailable` + `Retry-After: 1` before routing (no body is
//! read), and it is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, http::header};

use crate::error::{Envelope, ErrorBody};

/// Client connections open now, all workers together.
pub struct LiveConnections {
    open: Arc<AtomicUsize>,
    limit: usize,
    /// Connections shed so far, and when (Unix seconds) that was last logged.
    shed: Arc<(AtomicU64, AtomicU64)>,
}

/// In a connection's extensions: counts it as open until the connection is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Marks a connection opened while `limit` were open.
struct Shed;

impl LiveConnections {
    pub fn new(limit: usize) -> Self {
        Self { open: Arc::default(), limit, shed: Arc::default() }
    }

    /// `HttpServer::on_connect`.
    pub fn opened(&self, ext: &mut Extensions) {
        let before = self.open.fetch_add(1, Relaxed);
        ext.insert(Open(self.open.clone()));
        if before < self.limit {
            return;
        }
        ext.insert(Shed);
        let (count, logged) = &*self.shed;
        let n = count.fetch_add(1, Relaxed) + 1;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = logged.load(Relaxed);
        if now >= last + 10 && logged.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
            tracing::warn!(
                limit = self.limit,
                shed_total = n,
                "BROKER_MAX_CONNECTIONS reached: new connections are answered 503 and closed"
            );
        }
    }
}

/// Inside `request_id` (so the 503 carries `x-request-id`) and `observe` (so it is counted),
/// before routing: no body is read.
pub async fn shed_over_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.conn_data::<Shed>().is_none() {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    // Not an `Error::Unavailable`: this answer has its own message and a shorter wait.
    let error = ErrorBody {
        code: "unavailable",
        message: "the server is at its connection limit; retry later".into(),
        request_id: super::request_id::current(),
    };
    let res = HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .force_close()
        .json(Envelope { error });
    Ok(req.into_response(res).map_into_right_body())
}
