//! The confirmer's statements (src/confirm.rs): claim pending `put`/`post` intents due for
//! a HeadObject check, and schedule the next check. Claiming moves `next_check_at` past a
//! lease in one short statement (`FOR UPDATE SKIP LOCKED`), so several replicas never check
//! the same intent at once and no transaction stays open across store calls; a confirmer
//! that dies mid-batch leaves rows that come due again when the lease ends (the batch loop
//! is src/background.rs, shared with the reaper's store cleanup).

use uuid::Uuid;

use super::{Db, DbError};

/// Up to $1 intents due for a check, leased for $2 seconds. Multipart intents never have a
/// `next_check_at`; the method test only guards against a row written by hand.
pub const CLAIM_DUE: &str = "with due as ( \
       select owner, id from uploads \
        where status = 'pending' and next_check_at is not null and next_check_at <= now() \
          and method <> 'multipart' \
        order by next_check_at limit $1 for update skip locked) \
     update uploads u set next_check_at = now() + $2 * interval '1 second' \
       from due where u.owner = due.owner and u.id = due.id \
     returning u.owner, u.id";

pub async fn claim_due(db: &Db, batch: i64, lease_secs: f64) -> Result<Vec<(String, Uuid)>, DbError> {
    let rows = db.query(CLAIM_DUE, &[&batch, &lease_secs]).await?;
    Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, tokio_postgres::Error>>()?)
}

/// After a check that found no object: the next one waits as long as the intent is old
/// (so checks come at about 1, 2, 4, 8 … × $3 seconds after create), at least $3 and at most
/// $4 seconds, and never later than `complete_by - $3`, the last moment `complete` is still
/// sure to be accepted; once that has passed there is no further check (the reaper expires
/// the intent at `complete_by`, the existing behaviour).
pub const RESCHEDULE: &str = "update uploads set next_check_at = case \
       when complete_by - $3 * interval '1 second' > now() then \
         least(now() + least(greatest(now() - created_at, $3 * interval '1 second'), $4 * interval '1 second'), \
               complete_by - $3 * interval '1 second') \
       end \
     where owner = $1 and id = $2 and status = 'pending'";

pub async fn reschedule(db: &Db, owner: &str, id: Uuid, base_secs: f64, max_secs: f64) -> Result<(), DbError> {
    db.execute(RESCHEDULE, &[&owner, &id, &base_secs, &max_secs]).await?;
    Ok(())
}
