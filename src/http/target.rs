//! What the `/v1/uploads/{id}…` and `/v1/assets/{id}…` routes read before their body: the
//! id, the caller, and the query with its `owner`, in openapi.yaml's check order — path id (404),
//! token (401), query (400). The owner check (403) waits for [`Target::owner`], which a
//! handler calls after reading its body, so a bad body is a 400 before an owner it may not
//! act for.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use uuid::Uuid;

use super::ids::Id;
use super::{OwnerQuery, read_query};
use crate::auth::Caller;
use crate::error::Error;

/// A route's query, which names the owner to act for (`?owner=`, admin scope).
pub trait ActsFor: serde::de::DeserializeOwned {
    fn requested_owner(&self) -> Option<&str>;
}

impl ActsFor for OwnerQuery {
    fn requested_owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

pub struct Target<Q = OwnerQuery> {
    pub id: Uuid,
    pub caller: Caller,
    pub query: Q,
}

impl<Q: ActsFor> Target<Q> {
    /// The owner to act for: the caller's own, or the query's (admin scope).
    pub fn owner(&self) -> Result<String, Error> {
        self.caller.owner_for(self.query.requested_owner())
    }

    /// The id, as an upload's: recorded on the request's span.
    pub fn upload_id(&self) -> Uuid {
        tracing::Span::current().record("upload_id", tracing::field::display(self.id));
        self.id
    }
}

impl<Q: ActsFor> FromRequest for Target<Q> {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(read(req, payload))
    }
}

fn read<Q: ActsFor>(req: &HttpRequest, payload: &mut Payload) -> Result<Target<Q>, Error> {
    // As `web::Path<Id>` reads it (percent-decoded); an id that is not one names nothing.
    let id = req.match_info().load::<Id>().map_err(|_| Error::NotFound)?.uuid();
    let caller = Caller::from_request(req, payload).into_inner()?;
    Ok(Target { id, caller, query: read_query(req.query_string())? })
}
