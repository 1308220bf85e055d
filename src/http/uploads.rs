//! Upload handlers: extract (path, token, body/query), call one workflow, shape the answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::idempotency::{self, Reply};
use super::ids::Id;
use super::{NoQuery, OwnerQuery, optional_json};
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;
use crate::uploads::{
    self, batch::BatchRequest, complete::Completed, create::CreateUploadRequest, parts::PresignPartsRequest,
};

fn json<T: serde::Serialize>(status: StatusCode, body: T) -> Result<Reply, Error> {
    Ok(Reply::new(status, Some(serde_json::value::to_raw_value(&body).map_err(anyhow::Error::from)?)))
}

/// The parsed body, serialized again: what an Idempotency-Key is bound to. Only made when
/// the request carries a key.
fn canonical<T: serde::Serialize>(req: &HttpRequest, body: &T) -> Result<Vec<u8>, Error> {
    if !idempotency::requested(req) {
        return Ok(Vec::new());
    }
    Ok(serde_json::to_vec(body).map_err(anyhow::Error::from)?)
}

pub async fn create_upload(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    _: web::Query<NoQuery>,
    body: super::json::Json<CreateUploadRequest>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    idempotency::run(&state, &req, &caller.owner, &canonical(&req, &body)?, || async {
        json(StatusCode::CREATED, uploads::create::create(&state, &caller, body).await?)
    })
    .await
}

pub async fn create_upload_batch(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    _: web::Query<NoQuery>,
    body: super::json::Json<BatchRequest>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    idempotency::run(&state, &req, &caller.owner, &canonical(&req, &body)?, || async {
        let answer = uploads::batch::create_batch(&state, &caller, body).await?;
        let replayable = !answer.has_server_errors();
        Ok(Reply { replayable, ..json(StatusCode::OK, answer)? })
    })
    .await
}

pub async fn get_upload(
    id: web::Path<Id>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::status(&state, &owner, id.uuid()).await?))
}

pub async fn abort_upload(
    id: web::Path<Id>,
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    idempotency::run(&state, &req, &caller.owner, b"", || async {
        uploads::abort::abort(&state, &owner, id.uuid()).await?;
        Ok(Reply::new(StatusCode::NO_CONTENT, None))
    })
    .await
}

pub async fn complete_upload(
    id: web::Path<Id>,
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<OwnerQuery>,
    body: super::json::Body,
) -> Result<HttpResponse, Error> {
    let body = body.0;
    let parsed = optional_json(&body)?;
    let owner = caller.owner_for(query.owner.as_deref())?;
    idempotency::run(&state, &req, &caller.owner, &body, || async {
        match uploads::complete::complete(&state, &owner, id.uuid(), parsed).await? {
            Completed::Created(asset) => json(StatusCode::CREATED, asset),
            Completed::Again(asset) => json(StatusCode::OK, asset),
        }
    })
    .await
}

pub async fn presign_parts(
    id: web::Path<Id>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
    body: super::json::Json<PresignPartsRequest>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::parts::presign(&state, &owner, id.uuid(), body.into_inner()).await?))
}

pub async fn list_parts(
    id: web::Path<Id>,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<OwnerQuery>,
) -> Result<HttpResponse, Error> {
    let owner = caller.owner_for(query.owner.as_deref())?;
    Ok(HttpResponse::Ok().json(uploads::parts::list(&state, &owner, id.uuid()).await?))
}
