//! Owner rows: quotas and running totals.

use super::uploads::from_columns;
use super::{Db, DbError};

/// Usage as stored; `quota_*` are null when the owner has none set (the default applies).
#[derive(Debug, Clone, Default)]
pub struct UsageRow {
    pub used_bytes: i64,
    pub used_objects: i64,
    pub reserved_bytes: i64,
    pub reserved_objects: i64,
    pub quota_bytes: Option<i64>,
    pub quota_objects: Option<i64>,
}

impl UsageRow {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(from_columns!(
            row,
            Self { used_bytes, used_objects, reserved_bytes, reserved_objects, quota_bytes, quota_objects }
        ))
    }
}

/// Creates the owner's row on first use; a no-op afterwards.
pub const ENSURE_OWNER: &str = "insert into owners (owner) values ($1) on conflict (owner) do nothing";

pub const GET_USAGE: &str = "select used_bytes, used_objects, reserved_bytes, reserved_objects, quota_bytes, quota_objects \
     from owners where owner = $1";

/// An owner never seen has no row: all zeros and the default quota.
pub async fn get_usage(db: &Db, owner: &str) -> Result<UsageRow, DbError> {
    match db.query_opt(GET_USAGE, &[&owner]).await? {
        Some(row) => Ok(UsageRow::from_row(&row)?),
        None => Ok(UsageRow::default()),
    }
}

/// A null parameter keeps the current value (openapi.yaml: a field left out is unchanged).
pub const SET_QUOTA: &str = "insert into owners as o (owner, quota_bytes, quota_objects) values ($1, $2, $3) \
     on conflict (owner) do update set quota_bytes = coalesce($2, o.quota_bytes), \
                                       quota_objects = coalesce($3, o.quota_objects) \
     returning used_bytes, used_objects, reserved_bytes, reserved_objects, quota_bytes, quota_objects";

pub async fn set_quota(
    db: &Db,
    owner: &str,
    quota_bytes: Option<i64>,
    quota_objects: Option<i64>,
) -> Result<UsageRow, DbError> {
    let row = db.query_one(SET_QUOTA, &[&owner, &quota_bytes, &quota_objects]).await?;
    Ok(UsageRow::from_row(&row)?)
}
