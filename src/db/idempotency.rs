//! Idempotency keys: claim a key, finish it with the answer, or discard it.

use super::{Db, DbError};

/// Claims (owner, key) for a new request; no row back means the key already exists.
pub const BEGIN: &str = "insert into idempotency_keys (owner, key, request_hash) values ($1, $2, $3) \
     on conflict (owner, key) do nothing returning 1";

pub async fn begin(db: &Db, owner: &str, key: &str, hash: &[u8]) -> Result<bool, DbError> {
    Ok(db.query_opt(BEGIN, &[&owner, &key, &hash]).await?.is_some())
}

/// An existing key: its request hash, its answer when finished, and whether it is stale
/// (older than 24 h, or in flight for over a minute: its request died without finishing).
#[derive(Debug)]
pub struct Existing {
    pub request_hash: Vec<u8>,
    pub status: Option<i16>,
    pub response: Option<serde_json::Value>,
    pub stale: bool,
}

pub const GET: &str = "select request_hash, status, response, \
       created_at < now() - interval '24 hours' \
         or (status is null and created_at < now() - interval '60 seconds') as stale \
     from idempotency_keys where owner = $1 and key = $2";

pub async fn get(db: &Db, owner: &str, key: &str) -> Result<Option<Existing>, DbError> {
    Ok(db.query_opt(GET, &[&owner, &key]).await?.map(|r| Existing {
        request_hash: r.get(0),
        status: r.get(1),
        response: r.get(2),
        stale: r.get(3),
    }))
}

pub const FINISH: &str = "update idempotency_keys set status = $3, response = $4 where owner = $1 and key = $2";

pub async fn finish(
    db: &Db,
    owner: &str,
    key: &str,
    status: i16,
    response: Option<&serde_json::value::RawValue>,
) -> Result<(), DbError> {
    let response = response.map(tokio_postgres::types::Json);
    db.execute(FINISH, &[&owner, &key, &status, &response]).await?;
    Ok(())
}

/// Forgets a key whose request failed with a 5xx (so a retry runs again), or a stale one.
pub const DISCARD: &str = "delete from idempotency_keys where owner = $1 and key = $2";

pub async fn discard(db: &Db, owner: &str, key: &str) -> Result<(), DbError> {
    db.execute(DISCARD, &[&owner, &key]).await?;
    Ok(())
}
