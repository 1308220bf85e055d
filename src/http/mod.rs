//! The HTTP layer: the route table (open routes, and the API behind the caller steps),
//! the extractor configurations that turn actix's own rejections into our error shape,
//! and thin handlers per noun.
//! Handlers extract in openapi.yaml's check order — path id (404), token (401), then the body
//! or query (400) — because actix runs extractors left to right and the first error wins.

pub mod assets;
pub mod caller;
pub mod collections;
pub mod companion;
pub mod dev_pages;
pub mod error_response;
pub mod idempotency;
pub use crate::ids;
pub mod json;
pub mod middleware;
pub mod ops;
pub mod request_id;
pub mod shedding;
pub mod target;
pub mod uploads;
pub mod usage;
pub mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Route, web};

use crate::error::Error;

/// JSON bodies above this are refused (400): the largest legitimate body is a batch of
/// 100 intents with 2 KiB of metadata each.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

type Table = Vec<(&'static str, Vec<(&'static str, Route)>)>;

/// The operations routes: no token (probes and scrapers do not carry one).
fn open_table() -> Table {
    use actix_web::web::get;
    vec![
        ("/healthz", vec![("GET", get().to(ops::healthz))]),
        ("/readyz", vec![("GET", get().to(ops::readyz))]),
        ("/metrics", vec![("GET", get().to(ops::metrics))]),
        ("/openapi.yaml", vec![("GET", get().to(ops::openapi))]),
    ]
}

/// Only the operations routes, for `r2-broker worker`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    for (path, methods) in open_table() {
        let mut resource = web::resource(path);
        for (_, route) in methods {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
}

/// The API: every route here runs the caller steps first (see `routes`).
/// `/v1/uploads/batch`, `/v1/assets/download-urls` and
/// `/v1/companion/s3/multipart/{uploadId}/complete` come before their `{id}` /
/// `{partNumber}` siblings so they match first.
fn caller_table() -> Table {
    use actix_web::web::{delete, get, patch, post, put};
    vec![
        ("/v1/uploads", vec![("POST", post().to(uploads::create_upload))]),
        ("/v1/uploads/batch", vec![("POST", post().to(uploads::create_upload_batch))]),
        (
            "/v1/uploads/{id}",
            vec![("GET", get().to(uploads::get_upload)), ("DELETE", delete().to(uploads::abort_upload))],
        ),
        (
            "/v1/uploads/{id}/parts",
            vec![("POST", post().to(uploads::presign_parts)), ("GET", get().to(uploads::list_parts))],
        ),
        ("/v1/uploads/{id}/complete", vec![("POST", post().to(uploads::complete_upload))]),
        ("/v1/assets", vec![("GET", get().to(assets::list_assets))]),
        ("/v1/assets/download-urls", vec![("POST", post().to(assets::get_download_urls))]),
        ("/v1/assets/{id}", vec![("GET", get().to(assets::get_asset)), ("DELETE", delete().to(assets::delete_asset))]),
        ("/v1/assets/{id}/download-url", vec![("GET", get().to(assets::get_download_url))]),
        (
            "/v1/collections",
            vec![("POST", post().to(collections::create_collection)), ("GET", get().to(collections::list_collections))],
        ),
        (
            "/v1/collections/{id}",
            vec![
                ("GET", get().to(collections::get_collection)),
                ("PATCH", patch().to(collections::update_collection)),
                ("DELETE", delete().to(collections::delete_collection)),
            ],
        ),
        ("/v1/usage", vec![("GET", get().to(usage::get_usage))]),
        ("/v1/admin/owners/{owner}/quota", vec![("PUT", put().to(usage::set_quota))]),
        ("/v1/admin/webhooks/failed", vec![("GET", get().to(webhooks::list_failed_webhooks))]),
        ("/v1/admin/webhooks/retry-failed", vec![("POST", post().to(webhooks::retry_failed_webhooks))]),
        ("/v1/admin/webhooks/{owner}/{id}/retry", vec![("POST", post().to(webhooks::retry_webhook))]),
        // Uppy (`@uppy/aws-s3` 4.x/5.x, Companion mode): http/companion.rs.
        ("/v1/companion/s3/params", vec![("GET", get().to(companion::get_upload_parameters))]),
        ("/v1/companion/s3/multipart", vec![("POST", post().to(companion::create_multipart))]),
        (
            "/v1/companion/s3/multipart/{uploadId}",
            vec![("GET", get().to(companion::list_parts)), ("DELETE", delete().to(companion::abort_multipart))],
        ),
        ("/v1/companion/s3/multipart/{uploadId}/complete", vec![("POST", post().to(companion::complete_multipart))]),
        ("/v1/companion/s3/multipart/{uploadId}/{partNumber}", vec![("GET", get().to(companion::sign_part))]),
    ]
}

/// Every route, in matching order.
fn table() -> Table {
    let callers = caller_table().into_iter().map(|(path, routes)| {
        let routes = routes.into_iter().map(|(method, route)| (method, with_caller_steps(route))).collect();
        (path, routes)
    });
    open_table().into_iter().chain(callers).collect()
}

/// The caller steps, outermost first: authenticate the bearer token, then charge the
/// owner's rate limit. A route (not resource) middleware: it runs only once the method
/// matched, so a 405 or 404 is never charged.
fn with_caller_steps(route: Route) -> Route {
    route.wrap(from_fn(caller::rate_limit)).wrap(from_fn(caller::authenticate))
}

/// The route table without handlers: for the OpenAPI drift test.
pub fn route_table() -> Vec<(&'static str, Vec<&'static str>)> {
    let all = open_table().into_iter().chain(caller_table());
    all.map(|(path, routes)| (path, routes.into_iter().map(|(m, _)| m).collect())).collect()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_JSON_BODY)).app_data(query_config()).app_data(path_config());
    for (path, routes) in table() {
        let allow: Vec<&'static str> = routes.iter().map(|(m, _)| *m).collect();
        let mut resource = web::resource(path);
        for (_, route) in routes {
            resource = resource.route(route);
        }
        // A known path with another method: 405 with `Allow`, in our error shape.
        resource = resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, Error>(Error::MethodNotAllowed { allow }) }
        }));
        cfg.service(resource);
    }
}

/// Unknown routes: 404 in our error shape.
pub async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound)
}

/// A query string read as `T`, or a 400 saying why not: the one wording of a bad query,
/// also for `web::Query` (`query_config`).
pub fn read_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, Error> {
    web::Query::<T>::from_query(query).map(web::Query::into_inner).map_err(bad_query)
}

fn bad_query(err: actix_web::error::QueryPayloadError) -> Error {
    Error::invalid(format!("query: {err}"))
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| bad_query(err).into())
}

/// A path id that is not a UUID names nothing: 404, like any unknown id.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| Error::NotFound.into())
}

/// An optional JSON body (complete): empty means the defaults.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json::parse_object(body)
}

/// The query of a route that takes none: any parameter is refused (400) rather than
/// silently ignored (an admin's `POST /v1/uploads?owner=x` must not upload as the admin).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

/// `?owner=` for routes whose body does not carry it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerQuery {
    #[serde(default)]
    pub owner: Option<String>,
}
