//! Collection handlers (`/v1/collections[/{id}]`).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::json::Json;
use super::target::{ActsFor, Target};
use crate::auth::Caller;
use crate::collections::{self, CollectionPatch, Deleted, NewCollection};
use crate::error::Error;
use crate::state::AppState;

pub async fn create_collection(
    caller: Caller,
    state: web::Data<AppState>,
    _: web::Query<super::NoQuery>,
    body: Json<NewCollection>,
) -> Result<HttpResponse, Error> {
    let req = body.into_inner();
    let owner = caller.owner_for(req.owner.as_deref())?;
    Ok(HttpResponse::Created().json(collections::create(&state, &owner, req).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    owner: Option<String>,
}

pub async fn list_collections(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    let owner = caller.owner_for(q.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(collections::list(&state, &owner, q.limit, q.cursor.as_deref()).await?))
}

pub async fn get_collection(on: Target, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok().json(collections::get(&state, &on.owner()?, on.id).await?))
}

pub async fn update_collection(
    on: Target,
    state: web::Data<AppState>,
    body: Json<CollectionPatch>,
) -> Result<HttpResponse, Error> {
    let patch = body.into_inner();
    Ok(HttpResponse::Ok().json(collections::update(&state, &on.owner()?, on.id, patch).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    purge: bool,
    owner: Option<String>,
}

impl ActsFor for DeleteQuery {
    fn requested_owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

/// `204` when gone; `202` with the collection while a long purge goes on in the background.
pub async fn delete_collection(on: Target<DeleteQuery>, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    match collections::delete(&state, &on.owner()?, on.id, on.query.purge).await? {
        Deleted::Done => Ok(HttpResponse::NoContent().finish()),
        Deleted::Purging(c) => Ok(HttpResponse::Accepted().json(c)),
    }
}
