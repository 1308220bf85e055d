//! Operations: liveness, readiness (database and store), metrics, the spec.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::error::Error;
use crate::state::AppState;

/// The contract, served as written.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 when both the database and the store answer within 3 s; 503 otherwise.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let db = async {
        let client = state.db.get().await.map_err(crate::db::DbError::from)?;
        client.simple_query("select 1").await.map_err(crate::db::DbError::from)?;
        Ok::<_, crate::db::DbError>(())
    };
    let timeout = Duration::from_secs(3);
    let (db, store) =
        tokio::join!(tokio::time::timeout(timeout, db), tokio::time::timeout(timeout, state.store.ready()));
    match (db, store) {
        (Ok(Ok(())), Ok(Ok(()))) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))),
        (db, store) => {
            Err(Error::unavailable(anyhow::anyhow!("not ready: database {}, store {}", describe(db), describe(store))))
        }
    }
}

fn describe<E: std::fmt::Display>(r: Result<Result<(), E>, tokio::time::error::Elapsed>) -> String {
    match r {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".into(),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}
