//! How an [`Error`] is answered over HTTP: its status, the headers a client acts on
//! (`WWW-Authenticate`, `Retry-After`, `Allow`), the `{"error": {...}}` body with this
//! request's id, and the log line of a 5xx (whose cause the body never shows).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::error::Error;

/// `Error::status` in actix's `StatusCode` (actix-web 4 uses the `http` 0.2 types).
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(self)
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = super::request_id::current();
        // `{:#}` prints anyhow's whole chain; the client only sees the generic message.
        match self {
            Self::Unavailable { source, .. } => {
                tracing::warn!(
                    request_id = request_id.as_deref(),
                    error = format!("{source:#}"),
                    "dependency unavailable"
                )
            }
            Self::Internal(source) => {
                tracing::error!(request_id = request_id.as_deref(), error = format!("{source:#}"), "internal error")
            }
            _ => {}
        }
        let mut res = HttpResponse::build(status_of(self));
        match self {
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.join(", ")));
            }
            // The rest of the body may still be on its way: the connection cannot be reused.
            Self::RequestTimeout(_) => {
                res.force_close();
            }
            _ => {}
        }
        res.json(self.envelope(request_id))
    }
}
