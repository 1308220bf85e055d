//! `/v1/companion`: the routes `@uppy/aws-s3` 4.x/5.x calls in Companion mode
//! (`uppy.use(AwsS3, { endpoint: `${broker}/v1/companion`, headers: { authorization } })`),
//! shapes as in `../shared/research/uppy-protocol.md` §1.3. Thin handlers over
//! `uploads::companion`, behind the same `Caller` (JWT, rate limit) as every `/v1` route.
//!
//! Errors are our `Error`, answered in a Companion-shaped body: the usual `error` object
//! plus a top-level `message` (Uppy shows the `message` of a 4xx to the user, and throws on
//! a 2xx body that has an `error` field, so successes never carry one). Checks run in the
//! API's order: path id (404), token (401), query or body (400); extractors are taken as
//! `Result`s so that their failures get this shape too.

use std::collections::BTreeMap;
use std::future::{Ready, ready};

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::json::Json;
use super::read_query;
use crate::auth::Caller;
use crate::error::{Envelope, Error, ErrorBody};
use crate::state::AppState;
use crate::uploads::companion::{self, CompleteMultipartRequest, UppyFile};

/// An [`Error`] answered in the Companion shape.
#[derive(Debug)]
pub struct CompanionError(Error);

impl From<Error> for CompanionError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for CompanionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Serialize)]
struct Shaped<'a> {
    message: &'a str,
    error: &'a ErrorBody<'a>,
}

impl ResponseError for CompanionError {
    fn status_code(&self) -> StatusCode {
        super::error_response::status_of(&self.0)
    }

    /// Our own answer (status, headers such as `Retry-After`, logging), with the body
    /// replaced by `{"message", "error"}`.
    fn error_response(&self) -> HttpResponse {
        let res = self.0.error_response();
        let Envelope { error } = self.0.envelope(super::request_id::current());
        let body = serde_json::to_vec(&Shaped { message: &error.message, error: &error }).unwrap_or_default();
        res.set_body(BoxBody::new(body))
    }
}

type Answer = Result<HttpResponse, CompanionError>;

fn ok<T: Serialize>(body: &T) -> Answer {
    Ok(HttpResponse::Ok().json(body))
}

/// `?key=`, the only query parameter of the multipart routes: Uppy sends the key back,
/// and it is ignored (the upload id names the upload; its recorded key is used).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyQuery {
    #[serde(default, rename = "key")]
    _key: Option<String>,
}

/// What every `s3/multipart/{uploadId}…` route checks first, in the API's order: the path's
/// `{uploadId}`, our upload id (any other spelling names nothing: 404), then the token
/// (401), then the query (400: parameters other than `key` are refused, as every route
/// refuses undocumented ones).
pub struct UploadRoute {
    id: Uuid,
    caller: Caller,
}

impl FromRequest for UploadRoute {
    type Error = CompanionError;
    type Future = Ready<Result<Self, CompanionError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(upload_route(req, payload).map_err(CompanionError))
    }
}

fn upload_route(req: &HttpRequest, payload: &mut Payload) -> Result<UploadRoute, Error> {
    let id = req.match_info().get("uploadId").and_then(super::ids::parse).ok_or(Error::NotFound)?;
    let caller = Caller::from_request(req, payload).into_inner()?;
    read_query::<KeyQuery>(req.query_string())?;
    tracing::Span::current().record("upload_id", tracing::field::display(id));
    Ok(UploadRoute { id, caller })
}

/// `?filename=&type=&metadata[<name>]=<value>…` (form-encoded by `URLSearchParams`).
fn file_query(query: &str) -> Result<UppyFile, Error> {
    let pairs: Vec<(String, String)> = read_query(query)?;
    let (mut filename, mut content_type, mut metadata) = (None, None, BTreeMap::new());
    for (name, value) in pairs {
        // PostgreSQL's `text` cannot hold U+0000 (the JSON extractor refuses it the same way).
        if name.contains('\0') || value.contains('\0') {
            return Err(Error::invalid(format!("query: {name:?} must not contain U+0000 (NUL)")));
        }
        let repeated = match name.as_str() {
            "filename" => filename.replace(value).is_some(),
            "type" => content_type.replace(value).is_some(),
            other => match other.strip_prefix("metadata[").and_then(|n| n.strip_suffix(']')) {
                Some(field) => metadata.insert(field.to_owned(), value).is_some(),
                None => return Err(Error::invalid(format!("query: unknown parameter {other:?}"))),
            },
        };
        if repeated {
            return Err(Error::invalid(format!("query: {name} is given twice")));
        }
    }
    let filename = filename.ok_or_else(|| Error::invalid("filename: required"))?;
    Ok(UppyFile { filename, content_type: content_type.unwrap_or_default(), metadata })
}

/// `GET /v1/companion/s3/params`: a single PUT.
pub async fn get_upload_parameters(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Result<Caller, Error>,
) -> Answer {
    let caller = caller?;
    let file = file_query(req.query_string())?;
    ok(&companion::params(&state, &caller, file).await?)
}

/// `POST /v1/companion/s3/multipart`.
pub async fn create_multipart(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Result<Caller, Error>,
    body: Result<Json<UppyFile>, Error>,
) -> Answer {
    let caller = caller?;
    if !req.query_string().is_empty() {
        return Err(Error::invalid("query: this route takes no parameters").into());
    }
    ok(&companion::create_multipart(&state, &caller, body?.into_inner()).await?)
}

/// `GET /v1/companion/s3/multipart/{uploadId}/{partNumber}`.
pub async fn sign_part(req: HttpRequest, state: web::Data<AppState>, route: UploadRoute) -> Answer {
    let part_number = req
        .match_info()
        .get("partNumber")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| (1..=crate::limits::MAX_PARTS as i64).contains(n))
        .ok_or_else(|| Error::invalid("partNumber: must be an integer from 1 to 10000"))?;
    ok(&companion::sign_part(&state, &route.caller.owner, route.id, part_number).await?)
}

/// `GET /v1/companion/s3/multipart/{uploadId}`: the parts uploaded so far (resume).
pub async fn list_parts(state: web::Data<AppState>, route: UploadRoute) -> Answer {
    ok(&companion::list_parts(&state, &route.caller.owner, route.id).await?)
}

/// `POST /v1/companion/s3/multipart/{uploadId}/complete`.
pub async fn complete_multipart(
    state: web::Data<AppState>,
    route: UploadRoute,
    body: Result<Json<CompleteMultipartRequest>, Error>,
) -> Answer {
    ok(&companion::complete(&state, &route.caller.owner, route.id, body?.into_inner()).await?)
}

/// `DELETE /v1/companion/s3/multipart/{uploadId}`: `{}` (Uppy parses the body as JSON).
pub async fn abort_multipart(state: web::Data<AppState>, route: UploadRoute) -> Answer {
    companion::abort(&state, &route.caller.owner, route.id).await?;
    ok(&serde_json::json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_params_query_is_read_as_uppy_writes_it() {
        // URLSearchParams: spaces as `+`, brackets percent-encoded.
        let f = file_query(
            "filename=photo+one.jpg&type=image%2Fjpeg&metadata%5Bname%5D=photo+one.jpg&metadata%5Bsize%5D=12",
        )
        .unwrap();
        assert_eq!(f.filename, "photo one.jpg");
        assert_eq!(f.content_type, "image/jpeg");
        assert_eq!(f.metadata["size"], "12");
        assert_eq!(f.metadata["name"], "photo one.jpg");
        for bad in [
            "type=a%2Fb",
            "filename=a%00",
            "filename=a&metadata%5Bk%5D=%00",
            "filename=a&filename=b",
            "filename=a&owner=x",
            "filename=a&metadata%5Bk%5D=1&metadata%5Bk%5D=2",
        ] {
            assert!(file_query(bad).is_err(), "{bad}");
        }
    }
}
