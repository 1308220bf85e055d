//! The admin webhook routes (`/v1/admin/webhooks/…`, admin scope): the events given up,
//! and retrying them.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::NoQuery;
use super::ids::Id;
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;
use crate::webhooks;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list_failed_webhooks(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<FailedQuery>,
) -> Result<HttpResponse, Error> {
    caller.require_admin()?;
    let q = query.into_inner();
    Ok(HttpResponse::Ok().json(webhooks::list_failed(&state, q.limit, q.cursor.as_deref()).await?))
}

pub async fn retry_webhook(
    path: web::Path<(String, Id)>,
    caller: Caller,
    state: web::Data<AppState>,
    _: web::Query<NoQuery>,
) -> Result<HttpResponse, Error> {
    caller.require_admin()?;
    let (owner, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(webhooks::retry(&state, &owner, id.uuid()).await?))
}

pub async fn retry_failed_webhooks(
    caller: Caller,
    state: web::Data<AppState>,
    _: web::Query<NoQuery>,
) -> Result<HttpResponse, Error> {
    caller.require_admin()?;
    Ok(HttpResponse::Ok().json(webhooks::retry_failed(&state).await?))
}
