//! Usage and the admin quota route.

use actix_web::{HttpResponse, web};

use super::{NoQuery, OwnerQuery};
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;
use crate::usage::{self, QuotaUpdate};

pub async fn get_usage(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(usage::get(&state, owner).await?))
}

pub async fn set_quota(
    caller: Caller,
    owner: web::Path<String>,
    state: web::Data<AppState>,
    _: web::Query<NoQuery>,
    body: super::json::Json<QuotaUpdate>,
) -> Result<HttpResponse, Error> {
    caller.require_admin()?;
    Ok(HttpResponse::Ok().json(usage::set_quota(&state, owner.into_inner(), body.into_inner()).await?))
}
