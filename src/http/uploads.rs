//! Upload handlers: extract (path, token, body/query), call one workflow, shape the answer.

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::{OwnerQuery, optional_json};
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;
use crate::uploads::{
    self, batch::BatchRequest, complete::Completed, create::CreateUploadRequest, parts::PresignPartsRequest,
};

pub async fn create_upload(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CreateUploadRequest>,
) -> Result<HttpResponse, Error> {
    let intent = uploads::create::create(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(intent))
}

pub async fn create_upload_batch(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, Error> {
    let results = uploads::batch::create_batch(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(results))
}

pub async fn get_upload(
    id: web::Path<Uuid>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::status(&state, &owner, *id).await?))
}

pub async fn abort_upload(
    id: web::Path<Uuid>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    uploads::abort::abort(&state, &owner, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn complete_upload(
    id: web::Path<Uuid>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    let req = optional_json(&body)?;
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(match uploads::complete::complete(&state, &owner, *id, req).await? {
        Completed::Created(asset) => HttpResponse::Created().json(asset),
        Completed::Again(asset) => HttpResponse::Ok().json(asset),
    })
}

pub async fn presign_parts(
    id: web::Path<Uuid>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
    body: web::Json<PresignPartsRequest>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::parts::presign(&state, &owner, *id, body.into_inner()).await?))
}

pub async fn list_parts(
    id: web::Path<Uuid>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::parts::list(&state, &owner, *id).await?))
}
