//! Operations: liveness, readiness (database and store), metrics, the spec.

use actix_web::{HttpResponse, web};

use crate::error::Error;
use crate::state::AppState;

/// The contract, served as written.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 when both the database and the store answer, each within its own deadline
/// (`BROKER_DB_TIMEOUT`, `BROKER_STORE_TIMEOUT`); 503 otherwise.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    match tokio::join!(state.db.ping(), state.store.ready()) {
        (Ok(()), Ok(())) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))),
        (db, store) => {
            Err(Error::unavailable(anyhow::anyhow!("not ready: database {}, store {}", describe(db), describe(store))))
        }
    }
}

fn describe<E: std::fmt::Display>(r: Result<(), E>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}
