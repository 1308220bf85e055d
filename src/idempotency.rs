//! `Idempotency-Key` on create, batch, complete and abort (openapi.yaml "Idempotency"): the same
//! key, owner and request within 24 h gets the first answer again and reserves nothing
//! twice; the same key with another request is `409 invalid_state`. Two identical requests
//! racing with one key: the first claims the key (an INSERT … ON CONFLICT DO NOTHING), the
//! second waits for its answer. 2xx and 4xx answers are kept; a 5xx (or a batch answer
//! with an item that met an outage) forgets the key so a retry runs again.
//!
//! The workflow knows no framework: `http::idempotency` reads the header and sends the
//! [`Answer`].

use std::future::Future;
use std::time::Duration;

use ::http::StatusCode;
use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};
use sha2::{Digest, Sha256};

use crate::db::{Db, idempotency as db};
use crate::error::Error;

/// How long a duplicate waits for the first request's answer.
const WAIT: Duration = Duration::from_secs(10);

/// What a handler answers: a status and an optional JSON body, serialized once (it is sent
/// as is, and stored as is when the request has a key), and whether it is the request's
/// final outcome. A batch answer with an item that met an outage is not: a retry with the
/// same key must run again rather than replay `unavailable`.
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Box<RawValue>>,
    pub replayable: bool,
}

impl Reply {
    pub fn empty(status: StatusCode) -> Self {
        Self { status, body: None, replayable: true }
    }

    pub fn json(status: StatusCode, body: &impl Serialize) -> Result<Self, Error> {
        Ok(Self { status, body: Some(to_raw_value(body).map_err(anyhow::Error::from)?), replayable: true })
    }
}

/// The answer to send: this request's own, or the first one again (whose error body, if
/// any, has no request id yet: it is this request's to add).
pub enum Answer {
    Ran(Reply),
    Replayed { status: StatusCode, body: Option<serde_json::Value> },
}

/// A request's claim on an (owner, key): what the key is bound to.
pub struct Claim<'a> {
    pub owner: &'a str,
    pub key: &'a str,
    pub fingerprint: Vec<u8>,
}

/// The one rule of what a key is bound to: method, path and query, and the parsed body
/// serialized again (so spelling differences in the JSON do not make another request).
pub fn fingerprint(method: &str, path_and_query: &str, body: &impl Serialize) -> Result<Vec<u8>, Error> {
    let mut hash = Sha256::new();
    hash.update(method);
    hash.update(b" ");
    hash.update(path_and_query);
    hash.update(b"\n");
    hash.update(serde_json::to_vec(body).map_err(anyhow::Error::from)?);
    Ok(hash.finalize().to_vec())
}

/// Runs `work` at most once per claimed (owner, key); without a claim, just runs it.
pub async fn run<F, Fut>(db: &Db, claim: Option<Claim<'_>>, work: F) -> Result<Answer, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    let Some(Claim { owner, key, fingerprint }) = claim else { return work().await.map(Answer::Ran) };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if db::begin(db, owner, key, &fingerprint).await? {
            return first_run(db, owner, key, work).await.map(Answer::Ran);
        }
        let Some(existing) = db::get(db, owner, key).await? else { continue };
        if existing.stale {
            db::discard(db, owner, key).await?;
            continue;
        }
        if existing.request_hash != fingerprint {
            return Err(Error::invalid_state("this Idempotency-Key was used with a different request"));
        }
        if let Some(status) = existing.status {
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
            return Ok(Answer::Replayed { status, body: existing.response });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::invalid_state("a request with this Idempotency-Key is still in progress; retry later"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn first_run<F, Fut>(db: &Db, owner: &str, key: &str, work: F) -> Result<Reply, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, Error>>,
{
    let reply = match work().await {
        Ok(reply) => reply,
        Err(e) if e.status().is_server_error() => {
            forget(db, owner, key).await;
            return Err(e);
        }
        Err(e) => {
            // Stored without a request id: a replay carries its own.
            let body = to_raw_value(&e.envelope(None)).map_err(anyhow::Error::from)?;
            // Keep the client's answer even if recording it fails: the key then goes stale.
            let _ = db::finish(db, owner, key, e.status().as_u16() as i16, Some(&body)).await;
            return Err(e);
        }
    };
    if !reply.replayable {
        forget(db, owner, key).await;
    } else if let Err(e) = db::finish(db, owner, key, reply.status.as_u16() as i16, reply.body.as_deref()).await {
        tracing::warn!(error = %e, "could not record an idempotent answer");
    }
    Ok(reply)
}

/// Releases a claimed key whose answer is not final, so a retry runs again.
async fn forget(db: &Db, owner: &str, key: &str) {
    if db::discard(db, owner, key).await.is_ok() {
        return;
    }
    // The database is likely down too: keep trying in the background, so a retry that is
    // waiting on this key runs as soon as the database is back (instead of waiting for the
    // key to go stale).
    let (db, owner, key) = (db.clone(), owner.to_owned(), key.to_owned());
    tokio::spawn(async move {
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if db::discard(&db, &owner, &key).await.is_ok() {
                return;
            }
        }
        tracing::warn!("could not discard an idempotency key after a failure; it goes stale in 60 s");
    });
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn a_key_is_bound_to_method_target_and_the_parsed_body() {
        let body = serde_json::json!({"size": 10, "filename": "a.bin"});
        let same = serde_json::from_str::<serde_json::Value>(r#"{ "filename":"a.bin",  "size":10 }"#).unwrap();
        let print = |m, t, b: &serde_json::Value| fingerprint(m, t, b).unwrap();
        assert_eq!(print("POST", "/v1/uploads", &body), print("POST", "/v1/uploads", &same), "spelling aside");
        assert_ne!(print("POST", "/v1/uploads", &body), print("POST", "/v1/uploads?owner=x", &body));
        assert_ne!(print("POST", "/v1/uploads", &body), print("PUT", "/v1/uploads", &body));
        assert_ne!(print("POST", "/v1/uploads", &body), print("POST", "/v1/uploads", &serde_json::json!({"size": 11})));
    }
}
