//! Upload handlers: extract (path, token, body/query), call one workflow, shape the answer.
//! The ones that take `Idempotency-Key` run their workflow through `idempotency::run`.

use ::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::idempotency::{self, KeyedPost};
use super::json::{Body, Json};
use super::optional_json;
use super::target::Target;
use crate::error::Error;
use crate::idempotency::Reply;
use crate::state::AppState;
use crate::uploads::{self, batch::BatchRequest, complete::Completed, create::CreateUploadRequest};
use crate::uploads::{complete::CompleteRequest, parts::PresignPartsRequest};

type Answer = Result<HttpResponse, Error>;
type State = web::Data<AppState>;

pub async fn create_upload(state: State, post: KeyedPost<CreateUploadRequest>) -> Answer {
    post.run(&state, async |me, body| {
        Reply::json(StatusCode::CREATED, &uploads::create::create(&state, &me, body).await?)
    })
    .await
}

/// A batch answer with an item that met an outage is not final: a retry runs again.
pub async fn create_upload_batch(state: State, post: KeyedPost<BatchRequest>) -> Answer {
    post.run(&state, async |me, body| {
        let answer = uploads::batch::create_batch(&state, &me, body).await?;
        Ok(Reply { replayable: !answer.has_server_errors(), ..Reply::json(StatusCode::OK, &answer)? })
    })
    .await
}

pub async fn get_upload(on: Target, state: State) -> Answer {
    Ok(HttpResponse::Ok().json(uploads::status(&state, &on.owner()?, on.upload_id()).await?))
}

pub async fn abort_upload(on: Target, state: State, req: HttpRequest) -> Answer {
    let owner = on.owner()?;
    idempotency::run(&state, &req, &on.caller.owner, (), async |()| {
        uploads::abort::abort(&state, &owner, on.upload_id()).await?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn complete_upload(on: Target, state: State, req: HttpRequest, body: Body) -> Answer {
    let parsed: CompleteRequest = optional_json(&body.0)?;
    let owner = on.owner()?;
    idempotency::run(&state, &req, &on.caller.owner, parsed, async |parsed| {
        match uploads::complete::complete(&state, &owner, on.upload_id(), parsed).await? {
            Completed::Created(asset) => Reply::json(StatusCode::CREATED, &asset),
            Completed::Again(asset) => Reply::json(StatusCode::OK, &asset),
        }
    })
    .await
}

pub async fn presign_parts(on: Target, state: State, body: Json<PresignPartsRequest>) -> Answer {
    let parts = uploads::parts::presign(&state, &on.owner()?, on.upload_id(), body.0).await?;
    Ok(HttpResponse::Ok().json(parts))
}

pub async fn list_parts(on: Target, state: State) -> Answer {
    Ok(HttpResponse::Ok().json(uploads::parts::list(&state, &on.owner()?, on.upload_id()).await?))
}
