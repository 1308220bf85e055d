//! The one public error type. Its variants are exactly the rows of openapi.yaml's error table
//! (plus `Internal`); `code()` and `status()` are the only mapping, as flat matches.
//!
//! Which error to use where:
//! - workflow code (`uploads`, `assets`, `quota`) returns `Error` directly;
//! - the `db` and `store` layers return their own small error types; the `From` impls
//!   beside those types (db/mod.rs, store/mod.rs) decide whether a dependency failure is
//!   `Unavailable` (503, retry later) or `Internal` (500, a bug);
//! - 5xx bodies carry only a generic message: the cause is logged with the request id.
//!
//! This module is a leaf: it knows no framework. The HTTP answer (headers, logging, the
//! request id) is `http::error_response`; `status()` is the `http` crate's type so that
//! the table stays here.

use std::borrow::Cow;

use ::http::StatusCode;
use serde::Serialize;

/// How long a client should wait before retrying after a dependency failure.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- client errors (4xx): the message is shown to the caller ----
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("{0}")]
    MethodNotSupported(Cow<'static, str>),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    QuotaExceeded(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed; allowed: {}", allow.join(", "))]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("{0}")]
    ObjectMissing(Cow<'static, str>),
    #[error("{0}")]
    InvalidState(Cow<'static, str>),
    #[error("the upload intent expired before it was completed")]
    UploadExpired,
    #[error("declared size exceeds the profile's max_size of {max} bytes")]
    FileTooLarge { max: u64 },
    #[error("content type {0:?} is not allowed by the profile")]
    UnsupportedContentType(String),
    #[error("the stored object does not match the upload intent: {0}; the object was deleted")]
    VerificationFailed(String),
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u32 },
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),

    // ---- dependency / server errors (5xx): generic message, source logged ----
    #[error("a dependency is unavailable; retry later")]
    Unavailable {
        retry_after: u32,
        #[source]
        source: anyhow::Error,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidRequest(message.into())
    }

    pub fn invalid_state(message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidState(message.into())
    }

    pub fn unavailable(source: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable { retry_after: UNAVAILABLE_RETRY_AFTER_SECS, source: source.into() }
    }

    /// The stable machine-readable code (openapi.yaml's table).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::MethodNotSupported(_) => "method_not_supported",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::ObjectMissing(_) => "object_missing",
            Self::InvalidState(_) => "invalid_state",
            Self::UploadExpired => "upload_expired",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::VerificationFailed(_) => "verification_failed",
            Self::RateLimited { .. } => "rate_limited",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::MethodNotSupported(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::ObjectMissing(_) | Self::InvalidState(_) => StatusCode::CONFLICT,
            Self::UploadExpired => StatusCode::GONE,
            Self::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::VerificationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Every code a client can see, for the OpenAPI drift test. `internal` is not in the
    /// contract's table: a 500 is a bug, not an answer a client can act on.
    pub const CONTRACT_CODES: [&'static str; 16] = [
        "invalid_request",
        "method_not_supported",
        "unauthorized",
        "forbidden",
        "quota_exceeded",
        "not_found",
        "method_not_allowed",
        "object_missing",
        "invalid_state",
        "upload_expired",
        "file_too_large",
        "unsupported_content_type",
        "verification_failed",
        "rate_limited",
        "request_timeout",
        "unavailable",
    ];

    /// The `{"error": {...}}` body as a JSON value (batch items reuse it without `request_id`).
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody { code: self.code(), message: self.public_message(), request_id: None }
    }

    /// The whole `{"error": {...}}` body: the one writer of it (responses, and the answers
    /// an Idempotency-Key keeps).
    pub fn envelope(&self, request_id: Option<String>) -> Envelope<'_> {
        let mut error = self.body();
        error.request_id = request_id;
        Envelope { error }
    }

    /// The Display text: for 5xx variants it is generic by construction (the `#[error]`
    /// strings above never interpolate the source), so internals cannot leak here.
    fn public_message(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'static str,
    pub message: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The whole error body of a response: `{"error": {...}}`.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub error: ErrorBody<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// openapi.yaml's table, copied: a change to either must be deliberate.
    #[test]
    fn every_variant_maps_to_the_contract_table() {
        let table: Vec<(Error, u16, &str)> = vec![
            (Error::invalid("x"), 400, "invalid_request"),
            (Error::MethodNotSupported("x".into()), 400, "method_not_supported"),
            (Error::Unauthorized("x"), 401, "unauthorized"),
            (Error::Forbidden("x"), 403, "forbidden"),
            (Error::QuotaExceeded("x"), 403, "quota_exceeded"),
            (Error::NotFound, 404, "not_found"),
            (Error::MethodNotAllowed { allow: vec!["GET"] }, 405, "method_not_allowed"),
            (Error::ObjectMissing("x".into()), 409, "object_missing"),
            (Error::invalid_state("x"), 409, "invalid_state"),
            (Error::UploadExpired, 410, "upload_expired"),
            (Error::FileTooLarge { max: 1 }, 413, "file_too_large"),
            (Error::UnsupportedContentType("a/b".into()), 415, "unsupported_content_type"),
            (Error::VerificationFailed("size".into()), 422, "verification_failed"),
            (Error::RateLimited { retry_after: 1 }, 429, "rate_limited"),
            (Error::RequestTimeout(10), 408, "request_timeout"),
            (Error::unavailable(anyhow::anyhow!("db down")), 503, "unavailable"),
        ];
        let codes: Vec<&str> = table.iter().map(|(_, _, c)| *c).collect();
        assert_eq!(codes, Error::CONTRACT_CODES);
        for (err, status, code) in table {
            assert_eq!(err.status().as_u16(), status, "{code}");
            assert_eq!(err.code(), code);
        }
        assert_eq!(Error::Internal(anyhow::anyhow!("x")).status().as_u16(), 500);
    }

    #[test]
    fn server_errors_do_not_leak_their_source() {
        let err = Error::unavailable(anyhow::anyhow!("password=hunter2 connection refused"));
        assert!(!err.body().message.contains("hunter2"));
        let err = Error::Internal(anyhow::anyhow!("SELECT secret"));
        assert_eq!(err.body().message, "internal error");
    }
}
