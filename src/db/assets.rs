//! Asset records: written by `uploads::COMPLETE`, read, listed and deleted here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::uploads::{from_columns, parse_column};
use super::{Db, DbError};
use crate::asset_state::{AssetState, Variant};
use crate::owner::Owner;
use crate::profiles::Visibility;

/// An asset as stored, and as the API shows it (openapi.yaml `Asset`): the JSON is this
/// struct's serialisation, fields in this order, so the two cannot drift apart.
#[derive(Debug, Clone, Serialize)]
pub struct AssetRow {
    pub id: Uuid,
    pub owner: Owner,
    /// Internal: the intent it came from (`complete` answers again with it).
    #[serde(skip)]
    pub upload_id: Uuid,
    pub profile: String,
    pub key: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub checksum_sha256: Option<String>,
    pub etag: Option<String>,
    pub metadata: serde_json::Value,
    pub visibility: Visibility,
    pub state: AssetState,
    /// Why it is `rejected` or `quarantined` (null otherwise).
    pub state_reason: Option<String>,
    pub variants: Vec<Variant>,
    /// The collection it was uploaded into.
    #[serde(rename = "collection")]
    pub collection_id: Option<Uuid>,
    /// When the reaper deletes it (its profile's `retention`); null: kept until deleted.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
}

/// The CTEs `usage` and `in_collection` giving the bytes of the assets the CTE `$from`
/// returns (those matching `$which`, on alias `a`) back to their owner's usage and then
/// their collection's (the owner's row first: sql/V7).
macro_rules! release_used {
    ($from:literal, $which:literal) => {
        concat!(
            "usage as ( \
               update owners o set used_bytes = o.used_bytes - a.size, used_objects = o.used_objects - 1 \
                 from ",
            $from,
            " a where o.owner = a.owner and ",
            $which,
            " returning o.owner), \
             in_collection as ( \
               update collections c set used_bytes = c.used_bytes - a.size, used_objects = c.used_objects - 1 \
                 from ",
            $from,
            " a, usage u where c.owner = u.owner and c.owner = a.owner and c.id = a.collection_id)"
        )
    };
}
pub(super) use release_used;

/// The columns [`AssetRow::from_row`] reads, for every statement that returns assets.
/// A macro rather than a `const` so that `concat!` can build each statement as a `const`.
macro_rules! asset_columns {
    () => {
        "owner, id, upload_id, profile, key, filename, content_type, size, checksum_sha256, etag, metadata, \
         visibility, state, state_reason, variants, collection_id, expires_at, created_at"
    };
}
pub(super) use asset_columns;

impl AssetRow {
    pub(crate) fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(from_columns!(row, Self {
                id, upload_id, profile, key, filename, content_type, size, checksum_sha256, etag, metadata, state_reason,
                collection_id, expires_at, created_at,
            }
            owner: Owner::from(row.try_get::<_, String>("owner")?),
            visibility: parse_column(row, "visibility", Visibility::parse)?,
            state: parse_column(row, "state", AssetState::parse)?,
            variants: row.try_get::<_, Json<Vec<Variant>>>("variants")?.0,
        ))
    }
}

fn rows(rows: Vec<Row>) -> Result<Vec<AssetRow>, DbError> {
    rows.iter().map(AssetRow::from_row).collect()
}

pub const GET_ASSET: &str = concat!("select ", asset_columns!(), " from assets where owner = $1 and id = $2");

pub async fn get(db: &Db, owner: &str, id: Uuid) -> Result<Option<AssetRow>, DbError> {
    db.query_opt(GET_ASSET, &[&owner, &id]).await?.map(|r| AssetRow::from_row(&r)).transpose()
}

pub const GET_ASSET_BY_UPLOAD: &str =
    concat!("select ", asset_columns!(), " from assets where owner = $1 and upload_id = $2");

pub async fn get_by_upload(db: &Db, owner: &str, upload_id: Uuid) -> Result<Option<AssetRow>, DbError> {
    db.query_opt(GET_ASSET_BY_UPLOAD, &[&owner, &upload_id]).await?.map(|r| AssetRow::from_row(&r)).transpose()
}

pub const GET_ASSETS: &str = concat!("select ", asset_columns!(), " from assets where owner = $1 and id = any($2)");

/// Several assets of one owner at once (gallery download URLs); unknown ids are skipped.
pub async fn get_many(db: &Db, owner: &str, ids: &[Uuid]) -> Result<Vec<AssetRow>, DbError> {
    rows(db.query(GET_ASSETS, &[&owner, &ids]).await?)
}

/// Keyset pagination, newest first: `(created_at, id) < cursor`. The first page uses a
/// cursor past every row (see `Cursor::START`), so there is one statement per filter.
pub const LIST_NEWEST: &str = concat!(
    "select ",
    asset_columns!(),
    " from assets where owner = $1 and (created_at, id) < ($2, $3) order by created_at desc, id desc limit $4"
);

pub const LIST_NEWEST_IN_PROFILE: &str = concat!(
    "select ",
    asset_columns!(),
    " from assets where owner = $1 and profile = $5 and (created_at, id) < ($2, $3) \
      order by created_at desc, id desc limit $4"
);

pub const LIST_NEWEST_IN_COLLECTION: &str = concat!(
    "select ",
    asset_columns!(),
    " from assets where owner = $1 and collection_id = $5 and (created_at, id) < ($2, $3) \
      order by created_at desc, id desc limit $4"
);

/// Any other combination of filters (`$5` profile, `$6` state, `$7` collection; null
/// matches any): filters on one of the indexes above. Most of an owner's assets are
/// `ready`, so a state alone narrows little.
pub const LIST_NEWEST_FILTERED: &str = concat!(
    "select ",
    asset_columns!(),
    " from assets where owner = $1 and ($5::text is null or profile = $5) and ($6::text is null or state = $6) \
        and ($7::uuid is null or collection_id = $7) and (created_at, id) < ($2, $3) \
      order by created_at desc, id desc limit $4"
);

/// One page's query: rows before `before`, at most `limit`, narrowed by the filters.
pub struct Listing<'a> {
    pub before: (DateTime<Utc>, Uuid),
    pub limit: i64,
    pub profile: Option<&'a str>,
    pub state: Option<AssetState>,
    pub collection: Option<Uuid>,
}

pub async fn list(db: &Db, owner: &str, q: &Listing<'_>) -> Result<Vec<AssetRow>, DbError> {
    let (t, id, limit) = (&q.before.0, &q.before.1, &q.limit);
    let found = match (q.profile, q.state, q.collection) {
        (None, None, None) => db.query(LIST_NEWEST, &[&owner, t, id, limit]).await?,
        (Some(p), None, None) => db.query(LIST_NEWEST_IN_PROFILE, &[&owner, t, id, limit, &p]).await?,
        (None, None, Some(c)) => db.query(LIST_NEWEST_IN_COLLECTION, &[&owner, t, id, limit, &c]).await?,
        (p, st, c) => {
            let st = st.map(AssetState::as_str);
            db.query(LIST_NEWEST_FILTERED, &[&owner, t, id, limit, &p, &st, &c]).await?
        }
    };
    rows(found)
}

/// Up to $1 assets past their retention (`expires_at`), soonest first.
pub const EXPIRED: &str = "select owner, id from assets where expires_at <= now() order by expires_at limit $1";

pub async fn expired(db: &Db, batch: i64) -> Result<Vec<(String, Uuid)>, DbError> {
    let rows = db.query(EXPIRED, &[&batch]).await?;
    Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, tokio_postgres::Error>>()?)
}

/// Deletes the record (and its job, if it was still processing) and gives its bytes back
/// to the owner's usage, in one statement; a rejected asset's usage was released when it
/// was rejected.
pub const DELETE_ASSET: &str = concat!(
    "with gone as (delete from assets where owner = $1 and id = $2 returning *), \
     job as (delete from asset_jobs where owner = $1 and asset_id = $2), \
     ",
    release_used!("gone", "a.state <> 'rejected'"),
    " select ",
    asset_columns!(),
    " from gone"
);

/// Deletes the record; with `event`, writes `asset.deleted` in the same transaction.
/// Returns what was deleted (`None`: nothing was there).
pub async fn delete(db: &Db, owner: &str, id: Uuid, event: bool) -> Result<Option<AssetRow>, DbError> {
    if !event {
        return db.query_opt(DELETE_ASSET, &[&owner, &id]).await?.map(|r| AssetRow::from_row(&r)).transpose();
    }
    db.run(async |conn| {
        let tx = conn.transaction().await?;
        let stmt = tx.prepare_cached(DELETE_ASSET).await?;
        let Some(row) = tx.query_opt(&stmt, &[&owner, &id]).await? else { return Ok(None) };
        let asset = AssetRow::from_row(&row)?;
        let ev = crate::events::Event::new(crate::events::EventType::AssetDeleted, &asset);
        super::events::insert(&tx, owner, &asset.profile, &ev).await?;
        tx.commit().await?;
        Ok(Some(asset))
    })
    .await
}
