//! Asset handlers.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::NoQuery;
use super::ids::Id;
use super::target::{ActsFor, Target};
use crate::asset_state::AssetState;
use crate::assets::{self, Disposition, DownloadUrl};
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;

/// Query and body fields are all optional here but `ids` (serde reads a missing `Option`
/// as `None`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    profile: Option<String>,
    state: Option<AssetState>,
    owner: Option<String>,
}

pub async fn list_assets(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    let owner = caller.owner_for(q.owner.as_deref())?;
    let filter = assets::ListFilter { profile: q.profile.as_deref(), state: q.state };
    let page = assets::list(&state, &owner, q.limit, q.cursor.as_deref(), filter).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn get_asset(on: Target, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok().json(assets::get(&state, &on.owner()?, on.id).await?))
}

pub async fn delete_asset(on: Target, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    assets::delete(&state, &on.owner()?, on.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    disposition: Option<Disposition>,
    expires_in: Option<i64>,
    variant: Option<String>,
    owner: Option<String>,
}

impl ActsFor for DownloadQuery {
    fn requested_owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

pub async fn get_download_url(on: Target<DownloadQuery>, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let q = &on.query;
    let options =
        assets::DownloadOptions { disposition: q.disposition, expires_in: q.expires_in, variant: q.variant.as_deref() };
    Ok(HttpResponse::Ok().json(assets::download(&state, &on.owner()?, on.id, options).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadUrlsRequest {
    ids: Vec<Id>,
    disposition: Option<Disposition>,
    expires_in: Option<i64>,
    owner: Option<String>,
}

#[derive(Serialize)]
struct DownloadUrls {
    urls: std::collections::BTreeMap<uuid::Uuid, DownloadUrl>,
}

pub async fn get_download_urls(
    caller: Caller,
    state: web::Data<AppState>,
    _: web::Query<NoQuery>,
    body: super::json::Json<DownloadUrlsRequest>,
) -> Result<HttpResponse, Error> {
    let b = body.into_inner();
    let owner = caller.owner_for(b.owner.as_deref())?;
    let ids: Vec<uuid::Uuid> = b.ids.iter().map(|id| id.uuid()).collect();
    let urls = assets::download_many(&state, &owner, &ids, b.disposition, b.expires_in).await?;
    Ok(HttpResponse::Ok().json(DownloadUrls { urls }))
}
