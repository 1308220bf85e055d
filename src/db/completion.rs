//! Completion: the intent becomes `completed`, the asset row is written and the
//! reservation turns into usage, in one statement — plus, in the same statement, the
//! asset's first job when its profile has any, and in the same transaction the
//! `asset.ready` event when it is ready at once and events are wanted.

use uuid::Uuid;

use super::assets::{AssetRow, asset_columns};
use super::{Db, DbError};
use crate::asset_state::AssetState;
use crate::events::{Event, EventType};
use crate::profiles::{JobStep, Visibility};

/// No row back means the intent was no longer pending (a concurrent complete won).
///
/// `$6` is the size HeadObject reported, already verified against the intent: equal to
/// `size` when the client declared it, at most `size` when it did not (`size` was then a
/// reservation). The reservation is released whole and usage grows by the stored size, so
/// the counters stay exact either way. `$7` is the asset's state (`processing` when `$8`,
/// its first job step, is given; `ready` otherwise).
pub const COMPLETE: &str = concat!(
    "with done as ( \
       update uploads set status = 'completed', asset_id = $3, finished_at = now() \
        where owner = $1 and id = $2 and status = 'pending' \
       returning owner, id, profile, key, filename, content_type, size, checksum_sha256, metadata), \
     usage as ( \
       update owners o set reserved_bytes = o.reserved_bytes - d.size, reserved_objects = o.reserved_objects - 1, \
                           used_bytes = o.used_bytes + $6, used_objects = o.used_objects + 1 \
         from done d where o.owner = d.owner), \
     asset as ( \
       insert into assets (owner, id, upload_id, profile, key, filename, content_type, size, checksum_sha256, etag, \
                           metadata, visibility, state) \
       select owner, $3::uuid, id, profile, key, filename, content_type, $6::bigint, checksum_sha256, $4::text, \
              metadata, $5::text, $7::text \
         from done \
       returning *), \
     job as ( \
       insert into asset_jobs (owner, asset_id, step) select owner, id, $8::text from asset where $8::text is not null) \
     select ",
    asset_columns!(),
    " from asset"
);

/// What `complete` records: the asset's id, the store's ETag, the visibility, the
/// verified stored size, and what happens next.
pub struct Completion<'a> {
    pub asset_id: Uuid,
    pub etag: Option<&'a str>,
    pub visibility: Visibility,
    pub stored_size: i64,
    /// The first job, when the profile has any (the asset is then `processing`).
    pub first_step: Option<JobStep>,
    /// Write `asset.ready` (the asset is ready at once and its profile's events go somewhere).
    pub ready_event: bool,
}

pub async fn complete(db: &Db, owner: &str, id: Uuid, c: &Completion<'_>) -> Result<Option<AssetRow>, DbError> {
    let state = if c.first_step.is_some() { AssetState::Processing } else { AssetState::Ready };
    let step = c.first_step.map(JobStep::as_str);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&owner, &id, &c.asset_id, &c.etag, &c.visibility.as_str(), &c.stored_size, &state.as_str(), &step];
    if !(c.ready_event && c.first_step.is_none()) {
        return db.query_opt(COMPLETE, &params).await?.map(|r| AssetRow::from_row(&r)).transpose();
    }
    db.run(async |conn| {
        let tx = conn.transaction().await?;
        let stmt = tx.prepare_cached(COMPLETE).await?;
        let Some(row) = tx.query_opt(&stmt, &params).await? else { return Ok(None) };
        let asset = AssetRow::from_row(&row)?;
        super::events::insert(&tx, owner, &asset.profile, &Event::new(EventType::AssetReady, &asset)).await?;
        tx.commit().await?;
        Ok(Some(asset))
    })
    .await
}
