//! What most `/v1/uploads/{id}…` and `/v1/assets/{id}` routes read before their body: the
//! id, the caller, and `?owner=`, in API.md's check order — path id (404), token (401),
//! query (400). The owner check (403) waits for [`Target::owner`], which a handler calls
//! after reading its body, so a bad body is a 400 before an owner it may not act for.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use uuid::Uuid;

use super::OwnerQuery;
use super::ids::Id;
use crate::auth::Caller;
use crate::error::Error;

pub struct Target {
    pub id: Uuid,
    pub caller: Caller,
    requested: Option<String>,
}

impl Target {
    /// The owner to act for: the caller's own, or `?owner=` (admin scope).
    pub fn owner(&self) -> Result<String, Error> {
        self.caller.owner_for(self.requested.as_deref())
    }

    /// The id, as an upload's: recorded on the request's span.
    pub fn upload_id(&self) -> Uuid {
        tracing::Span::current().record("upload_id", tracing::field::display(self.id));
        self.id
    }
}

impl FromRequest for Target {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(read(req, payload))
    }
}

fn read(req: &HttpRequest, payload: &mut Payload) -> Result<Target, Error> {
    // As `web::Path<Id>` reads it (percent-decoded); an id that is not one names nothing.
    let id = req.match_info().load::<Id>().map_err(|_| Error::NotFound)?.uuid();
    let caller = Caller::from_request(req, payload).into_inner()?;
    let query =
        web::Query::<OwnerQuery>::from_query(req.query_string()).map_err(|e| Error::invalid(format!("query: {e}")))?;
    Ok(Target { id, caller, requested: query.into_inner().owner })
}
