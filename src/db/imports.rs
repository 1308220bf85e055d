//! `r2-broker import`: has this source already become an asset?
//!
//! An imported asset's `metadata` names its source (`source_path`, or `source_file` with
//! `source_id` / `source_line`) and its SHA-256 (`source_sha256`). No index of its own: the
//! owner's newest-first index narrows the scan to one owner's assets and the containment
//! test runs on those rows only — one statement per file, cheap next to the file's upload.
//! (An expression index would need a migration numbered around the lead's; not worth it
//! for a one-off operator command.)

use uuid::Uuid;

use super::{Db, DbError};

pub const FIND_IMPORTED: &str = "select id from assets where owner = $1 and metadata @> $2::jsonb limit 1";

/// The asset of `owner` whose metadata contains every field of `source` (an object of
/// strings: the source fields and `source_sha256`), if any.
pub async fn find_imported(db: &Db, owner: &str, source: &serde_json::Value) -> Result<Option<Uuid>, DbError> {
    Ok(db.query_opt(FIND_IMPORTED, &[&owner, source]).await?.map(|r| r.get(0)))
}
