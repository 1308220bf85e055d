//! The reaper's statements: small batches, `FOR UPDATE SKIP LOCKED` so several replicas
//! can reap at once and each item is handled by exactly one of them. Each is one short
//! statement: store cleanup happens between them, on rows leased by [`claim_to_clean`]
//! (src/background.rs), never inside a transaction.

use super::events::expired_events;
use super::uploads::UploadRow;
use super::{Db, DbError};

/// Expires up to $1 pending intents past their deadline and releases their reservations
/// (summed per owner: one owner may have many intents in a batch), writing `upload.expired`
/// for those of the profiles in $2 (whose events go somewhere). Returns how many.
pub const EXPIRE_DUE: &str = concat!(
    "with due as ( \
       select owner, id from uploads where status = 'pending' and complete_by < now() \
        order by complete_by limit $1 for update skip locked), \
     ended as ( \
       update uploads u set status = 'expired', finished_at = now() from due \
        where u.owner = due.owner and u.id = due.id \
       returning u.owner, u.id, u.profile, u.key, u.filename, u.content_type, u.size, u.metadata, u.created_at, \
                 u.expires_at), \
     released as ( \
       update owners o set reserved_bytes = o.reserved_bytes - s.bytes, reserved_objects = o.reserved_objects - s.n \
         from (select owner, sum(size)::bigint as bytes, count(*) as n from ended group by owner) s \
        where o.owner = s.owner), ",
    expired_events!("$2"),
    " select count(*) from ended"
);

pub async fn expire_due(db: &Db, batch: i64, event_profiles: &[&str]) -> Result<i64, DbError> {
    Ok(db.query_one(EXPIRE_DUE, &[&batch, &event_profiles]).await?.get(0))
}

/// Up to $1 ended intents whose store cleanup is still to do and that no reaper holds,
/// leased for $2 seconds (sql/V5). Every column, so the row reads as an [`UploadRow`].
pub const CLAIM_TO_CLEAN: &str = "with due as ( \
       select owner, id from uploads \
        where status in ('aborted', 'expired', 'failed') and cleaned_at is null \
          and (clean_lease_until is null or clean_lease_until < now()) \
        order by finished_at limit $1 for update skip locked) \
     update uploads u set clean_lease_until = now() + $2 * interval '1 second' \
       from due where u.owner = due.owner and u.id = due.id \
     returning u.*, false as cleaned";

pub async fn claim_to_clean(db: &Db, batch: i64, lease_secs: f64) -> Result<Vec<UploadRow>, DbError> {
    let rows = db.query(CLAIM_TO_CLEAN, &[&batch, &lease_secs]).await?;
    rows.iter().map(UploadRow::from_row).collect()
}

/// Forgets idempotency keys older than 24 hours, at most $1 at a time.
pub const FORGET_KEYS: &str = "delete from idempotency_keys where ctid in ( \
       select ctid from idempotency_keys where created_at < now() - interval '24 hours' limit $1)";

pub async fn forget_keys(db: &Db, batch: i64) -> Result<u64, DbError> {
    db.execute(FORGET_KEYS, &[&batch]).await
}
