//! Collections (sql/V7): their records, the reservation into one, and what a purge walks.
//! The counters settle in the uploads' and assets' own statements (completion.rs,
//! uploads.rs, reaper.rs, assets.rs, jobs.rs), always after the owner's row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Db, DbError};
use crate::owner::Owner;
use crate::profiles::Visibility;

/// A collection as stored, and as the API shows it (openapi.yaml `Collection`).
#[derive(Debug, Clone, Serialize)]
pub struct CollectionRow {
    pub id: Uuid,
    pub owner: Owner,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub max_bytes: Option<i64>,
    pub max_objects: Option<i64>,
    pub usage: CollectionUsage,
    /// Set while a purge is deleting it (one that was cut short resumes).
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub deleting_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CollectionUsage {
    pub used_bytes: i64,
    pub used_objects: i64,
    pub reserved_bytes: i64,
    pub reserved_objects: i64,
}

macro_rules! collection_columns {
    () => {
        "owner, id, name, description, visibility, max_bytes, max_objects, used_bytes, used_objects, \
         reserved_bytes, reserved_objects, deleting_at, created_at, updated_at"
    };
}

impl CollectionRow {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            owner: Owner::from(row.try_get::<_, String>("owner")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            visibility: super::uploads::parse_column(row, "visibility", Visibility::parse)?,
            max_bytes: row.try_get("max_bytes")?,
            max_objects: row.try_get("max_objects")?,
            usage: CollectionUsage {
                used_bytes: row.try_get("used_bytes")?,
                used_objects: row.try_get("used_objects")?,
                reserved_bytes: row.try_get("reserved_bytes")?,
                reserved_objects: row.try_get("reserved_objects")?,
            },
            deleting_at: row.try_get("deleting_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

fn one(row: Option<Row>) -> Result<Option<CollectionRow>, DbError> {
    row.map(|r| CollectionRow::from_row(&r)).transpose()
}

/// What a new collection (or a change to one) sets.
#[derive(Debug)]
pub struct CollectionFields<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub visibility: Visibility,
    pub max_bytes: Option<i64>,
    pub max_objects: Option<i64>,
}

pub const INSERT_COLLECTION: &str = concat!(
    "insert into collections (owner, id, name, description, visibility, max_bytes, max_objects) \
     values ($1, $2, $3, $4, $5, $6, $7) returning ",
    collection_columns!()
);

pub async fn insert(db: &Db, owner: &str, id: Uuid, f: &CollectionFields<'_>) -> Result<CollectionRow, DbError> {
    let row = db
        .query_one(
            INSERT_COLLECTION,
            &[&owner, &id, &f.name, &f.description, &f.visibility.as_str(), &f.max_bytes, &f.max_objects],
        )
        .await?;
    CollectionRow::from_row(&row)
}

pub const GET_COLLECTION: &str =
    concat!("select ", collection_columns!(), " from collections where owner = $1 and id = $2");

pub async fn get(db: &Db, owner: &str, id: Uuid) -> Result<Option<CollectionRow>, DbError> {
    one(db.query_opt(GET_COLLECTION, &[&owner, &id]).await?)
}

/// Newest first, keyset: `(created_at, id) < cursor`.
pub const LIST_COLLECTIONS: &str = concat!(
    "select ",
    collection_columns!(),
    " from collections where owner = $1 and (created_at, id) < ($2, $3) order by created_at desc, id desc limit $4"
);

pub async fn list(
    db: &Db,
    owner: &str,
    before: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<CollectionRow>, DbError> {
    let rows = db.query(LIST_COLLECTIONS, &[&owner, &before.0, &before.1, &limit]).await?;
    rows.iter().map(CollectionRow::from_row).collect()
}

/// Every field at once: the workflow merges a PATCH into the current row first.
pub const UPDATE_COLLECTION: &str = concat!(
    "update collections set name = $3, description = $4, visibility = $5, max_bytes = $6, max_objects = $7, \
            updated_at = now() \
      where owner = $1 and id = $2 returning ",
    collection_columns!()
);

pub async fn update(
    db: &Db,
    owner: &str,
    id: Uuid,
    f: &CollectionFields<'_>,
) -> Result<Option<CollectionRow>, DbError> {
    one(db
        .query_opt(
            UPDATE_COLLECTION,
            &[&owner, &id, &f.name, &f.description, &f.visibility.as_str(), &f.max_bytes, &f.max_objects],
        )
        .await?)
}

/// The collection's side of a reservation: run in the transaction of the owner's (after
/// it, so the owner's row is always locked first). The limit is re-checked on the newest
/// row version under the row lock, as the owner's quota is; a collection being purged
/// takes nothing.
pub const RESERVE_IN_COLLECTION: &str = "update collections \
        set reserved_bytes = reserved_bytes + $3, reserved_objects = reserved_objects + 1 \
      where owner = $1 and id = $2 and deleting_at is null \
        and (max_bytes is null or used_bytes + reserved_bytes + $3 <= max_bytes) \
        and (max_objects is null or used_objects + reserved_objects + 1 <= max_objects) \
      returning 1";

/// Marks a purge started (kept when one already is).
pub const START_PURGE: &str = concat!(
    "update collections set deleting_at = coalesce(deleting_at, now()), updated_at = now() \
      where owner = $1 and id = $2 returning ",
    collection_columns!()
);

pub async fn start_purge(db: &Db, owner: &str, id: Uuid) -> Result<Option<CollectionRow>, DbError> {
    one(db.query_opt(START_PURGE, &[&owner, &id]).await?)
}

/// Deletes a collection that holds nothing (no asset record, rejected ones included, and no
/// pending upload). False: it still does, or it is gone.
pub const DELETE_EMPTY: &str = "delete from collections c where owner = $1 and id = $2 \
        and used_objects = 0 and reserved_objects = 0 \
        and not exists (select 1 from assets a where a.owner = $1 and a.collection_id = $2)";

pub async fn delete_empty(db: &Db, owner: &str, id: Uuid) -> Result<bool, DbError> {
    Ok(db.execute(DELETE_EMPTY, &[&owner, &id]).await? > 0)
}

/// Up to $1 collections whose purge started and did not finish, longest waiting first.
pub const PURGING: &str =
    "select owner, id from collections where deleting_at is not null order by deleting_at limit $1";

pub async fn purging(db: &Db, batch: i64) -> Result<Vec<(String, Uuid)>, DbError> {
    let rows = db.query(PURGING, &[&batch]).await?;
    Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, tokio_postgres::Error>>()?)
}

/// Up to $3 pending uploads into the collection (a purge aborts them).
pub const PENDING_UPLOADS: &str = "select id from uploads \
      where owner = $1 and collection_id = $2 and status = 'pending' limit $3";

pub async fn pending_uploads(db: &Db, owner: &str, id: Uuid, limit: i64) -> Result<Vec<Uuid>, DbError> {
    let rows = db.query(PENDING_UPLOADS, &[&owner, &id, &limit]).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

/// Up to $3 of the collection's assets (a purge deletes them).
pub const ASSETS_IN: &str = "select id from assets where owner = $1 and collection_id = $2 limit $3";

pub async fn assets_in(db: &Db, owner: &str, id: Uuid, limit: i64) -> Result<Vec<Uuid>, DbError> {
    let rows = db.query(ASSETS_IN, &[&owner, &id, &limit]).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}
