//! The reaper's statements: small batches, `FOR UPDATE SKIP LOCKED` so several replicas
//! can reap at once and each item is handled by exactly one of them.

use super::uploads::UploadRow;
use super::{Db, DbError};

/// Expires up to $1 pending intents past their deadline and releases their reservations
/// (summed per owner: one owner may have many intents in a batch). Returns how many.
pub const EXPIRE_DUE: &str = "with due as ( \
       select owner, id from uploads where status = 'pending' and complete_by < now() \
        order by complete_by limit $1 for update skip locked), \
     ended as ( \
       update uploads u set status = 'expired', finished_at = now() from due \
        where u.owner = due.owner and u.id = due.id returning u.owner, u.size), \
     released as ( \
       update owners o set reserved_bytes = o.reserved_bytes - s.bytes, reserved_objects = o.reserved_objects - s.n \
         from (select owner, sum(size)::bigint as bytes, count(*) as n from ended group by owner) s \
        where o.owner = s.owner) \
     select count(*) from ended";

pub async fn expire_due(db: &Db, batch: i64) -> Result<i64, DbError> {
    Ok(db.query_one(EXPIRE_DUE, &[&batch]).await?.get(0))
}

/// Ended intents whose store cleanup is still to do, locked for this transaction.
pub const CLAIM_TO_CLEAN: &str = "select owner, id, profile, method, status, key, filename, content_type, size, \
     checksum_sha256, metadata, multipart_upload_id, part_size, part_count, expires_at, complete_by, created_at, \
     asset_id, false as cleaned, size_declared from uploads \
     where status in ('aborted', 'expired', 'failed') and cleaned_at is null \
     order by finished_at limit $1 for update skip locked";

pub const SET_CLEANED: &str = "update uploads set cleaned_at = now() where owner = $1 and id = $2";

/// Runs `clean` on each claimed row inside one transaction and marks the ones it cleaned.
/// Rows stay locked meanwhile, so another reaper skips them.
///
/// The transaction spans store calls (each bounded by the store's own timeouts), so the
/// deadline applies to each database step rather than to the whole batch. Any error or
/// timeout drops the connection unreleased: it is closed and PostgreSQL rolls back, so the
/// rows are claimed again by the next pass. `idle_bound` is the longest one `clean` may
/// take: the server ends the transaction itself when it sits idle longer (a reaper that
/// vanished behind a black-holed network would otherwise keep the rows locked until the
/// server's TCP keepalive notices, two hours by default).
pub async fn clean_batch<F, Fut>(
    db: &Db,
    batch: i64,
    idle_bound: std::time::Duration,
    mut clean: F,
) -> Result<(i64, i64), DbError>
where
    F: FnMut(UploadRow) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut conn = db.checkout().await?;
    let tx = db.bounded(conn.transaction()).await?;
    let idle = format!("set local idle_in_transaction_session_timeout = {}", idle_bound.as_millis().max(1));
    db.bounded(tx.batch_execute(&idle)).await?;
    let claim = db.bounded(tx.prepare_cached(CLAIM_TO_CLEAN)).await?;
    let set = db.bounded(tx.prepare_cached(SET_CLEANED)).await?;
    let rows = db.bounded(tx.query(&claim, &[&batch])).await?;
    let (mut cleaned, mut failed) = (0, 0);
    for row in &rows {
        let up = UploadRow::from_row(row)?;
        let (owner, id) = (up.owner.clone(), up.id);
        if clean(up).await {
            db.bounded(tx.execute(&set, &[&owner.as_str(), &id])).await?;
            cleaned += 1;
        } else {
            failed += 1;
        }
    }
    db.bounded(tx.commit()).await?;
    conn.release();
    Ok((cleaned, failed))
}

/// Forgets idempotency keys older than 24 hours, at most $1 at a time.
pub const FORGET_KEYS: &str = "delete from idempotency_keys where ctid in ( \
       select ctid from idempotency_keys where created_at < now() - interval '24 hours' limit $1)";

pub async fn forget_keys(db: &Db, batch: i64) -> Result<u64, DbError> {
    db.execute(FORGET_KEYS, &[&batch]).await
}
