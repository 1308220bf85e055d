//! Upload intents and the quota reservation that comes with each.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Db, DbError};
use crate::owner::Owner;
use crate::profiles::{PartPlan, UploadMethod};

/// Upload status as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Completed,
    Aborted,
    Expired,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    const ALL: [Self; 5] = [Self::Pending, Self::Completed, Self::Aborted, Self::Expired, Self::Failed];

    /// The inverse of [`as_str`](Self::as_str), so the names are written once.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What a multipart intent records besides the common columns.
#[derive(Debug, Clone)]
pub struct Multipart {
    /// The plan made at create (`part_size`, `part_count`).
    pub plan: PartPlan,
    /// The store's UploadId (`multipart_upload_id`): None until CreateMultipartUpload has
    /// answered and `set_multipart_id` recorded it (or when that failed).
    pub store_upload_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub owner: Owner,
    pub id: Uuid,
    pub profile: String,
    pub method: UploadMethod,
    pub status: Status,
    pub key: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub checksum_sha256: Option<String>,
    pub metadata: serde_json::Value,
    /// Some exactly when `method` is multipart (checked when the row is read).
    pub multipart: Option<Multipart>,
    pub expires_at: DateTime<Utc>,
    pub complete_by: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub asset_id: Option<Uuid>,
    pub cleaned: bool,
    /// False when the client declared no size: `size` is then what was reserved, an upper
    /// bound (V4 migration).
    pub size_declared: bool,
}

/// `Type { field: row.try_get("field")?, … }` for the fields named like their columns, then
/// the fields read some other way (`name: expr`): each column name is written once.
macro_rules! from_columns {
    ($row:expr, $ty:ident { $($field:ident),* $(,)? } $($other:ident: $value:expr),* $(,)?) => {
        $ty { $($field: $row.try_get(stringify!($field))?,)* $($other: $value,)* }
    };
}
pub(super) use from_columns;

/// A text column read as one of the broker's types; a value it never writes is an error
/// (`DbError::Unexpected`), never a default.
pub(super) fn parse_column<T>(row: &Row, column: &'static str, parse: fn(&str) -> Option<T>) -> Result<T, DbError> {
    let text: &str = row.try_get(column)?;
    parse(text).ok_or_else(|| DbError::Unexpected { column, value: text.to_owned() })
}

impl UploadRow {
    pub(crate) fn from_row(row: &Row) -> Result<Self, DbError> {
        let method = parse_column(row, "method", UploadMethod::parse)?;
        let size: i64 = row.try_get("size")?;
        Ok(from_columns!(row, Self {
                id, profile, key, filename, content_type, checksum_sha256, metadata, expires_at, complete_by,
                created_at, asset_id, cleaned, size_declared,
            }
            owner: Owner::from(row.try_get::<_, String>("owner")?),
            method: method,
            status: parse_column(row, "status", Status::parse)?,
            size: size,
            multipart: multipart_of(
                method,
                size,
                row.try_get("multipart_upload_id")?,
                row.try_get("part_size")?,
                row.try_get("part_count")?,
            )?,
        ))
    }

    /// The store's multipart UploadId, once there is one.
    pub fn store_upload_id(&self) -> Option<&str> {
        self.multipart.as_ref()?.store_upload_id.as_deref()
    }
}

/// The multipart columns (`multipart_upload_id`, `part_size`, `part_count`): all null
/// unless `method` is multipart; then the plan is the one `PartPlan::new` makes for `size`
/// (whole parts of `part_size`, the last one shorter). No CHECK constraint ties them
/// together, so this is where a row that breaks the rule is refused.
fn multipart_of(
    method: UploadMethod,
    size: i64,
    store_upload_id: Option<String>,
    part_size: Option<i64>,
    part_count: Option<i32>,
) -> Result<Option<Multipart>, DbError> {
    match (method, part_size, part_count) {
        (UploadMethod::Multipart, Some(ps), Some(pc))
            if ps > 0 && pc > 0 && size >= 0 && (size as u64).div_ceil(ps as u64) == pc as u64 =>
        {
            let plan = PartPlan { part_size: ps as u64, part_count: pc as u64 };
            Ok(Some(Multipart { plan, store_upload_id }))
        }
        (UploadMethod::Put | UploadMethod::Post, None, None) if store_upload_id.is_none() => Ok(None),
        _ => Err(DbError::Unexpected {
            column: "part_size/part_count",
            value: format!("{part_size:?}/{part_count:?} for a {} upload of {size} bytes", method.as_str()),
        }),
    }
}

/// What a new intent needs; the id and key are made by the workflow.
#[derive(Debug)]
pub struct NewUpload<'a> {
    pub owner: &'a str,
    pub id: Uuid,
    pub profile: &'a str,
    pub method: UploadMethod,
    pub key: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub checksum_sha256: Option<&'a str>,
    pub metadata: &'a serde_json::Value,
    /// Some exactly for multipart.
    pub plan: Option<PartPlan>,
    pub expires_at: DateTime<Utc>,
    pub complete_by: DateTime<Utc>,
    /// False: `size` is a reservation, not the file's size (no `content-length` signed).
    pub size_declared: bool,
    /// The confirmer's first look for the object (`put`/`post`); None for multipart.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// The reservation and the upload row in one statement: the UPDATE takes the owner's row
/// lock and re-checks the quota on the newest row version, so concurrent creates cannot
/// overshoot; the INSERT only happens when the UPDATE matched, and both commit together.
/// No row back means: refused, or the owner has no row yet.
pub const RESERVE_AND_INSERT: &str = "with reserved as ( \
       update owners set reserved_bytes = reserved_bytes + $8, reserved_objects = reserved_objects + 1 \
        where owner = $1 \
          and used_bytes + reserved_bytes + $8 <= coalesce(quota_bytes, $15) \
          and used_objects + reserved_objects + 1 <= coalesce(quota_objects, $16) \
       returning owner) \
     insert into uploads (owner, id, profile, method, key, filename, content_type, size, checksum_sha256, \
                          metadata, part_size, part_count, expires_at, complete_by, size_declared, next_check_at) \
     select owner, $2::uuid, $3::text, $4::text, $5::text, $6::text, $7::text, $8::bigint, $9::text, $10::jsonb, \
            $11::bigint, $12::int, $13::timestamptz, $14::timestamptz, $17::boolean, $18::timestamptz from reserved \
     returning created_at";

#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    Refused,
}

pub async fn reserve_and_insert(
    db: &Db,
    u: &NewUpload<'_>,
    default_quota_bytes: i64,
    default_quota_objects: i64,
) -> Result<Reservation, DbError> {
    let method = u.method.as_str();
    // PartPlan::new bounds both by S3's limits (5 GiB parts, 10,000 of them).
    let part_size = u.plan.map(|p| p.part_size as i64);
    let part_count = u.plan.map(|p| p.part_count as i32);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 18] = [
        &u.owner,
        &u.id,
        &u.profile,
        &method,
        &u.key,
        &u.filename,
        &u.content_type,
        &u.size,
        &u.checksum_sha256,
        u.metadata,
        &part_size,
        &part_count,
        &u.expires_at,
        &u.complete_by,
        &default_quota_bytes,
        &default_quota_objects,
        &u.size_declared,
        &u.next_check_at,
    ];
    // Up to three statements on one connection, under one deadline.
    db.run(async |client| {
        let stmt = client.prepare_cached(RESERVE_AND_INSERT).await?;
        if client.query_opt(&stmt, &params).await?.is_some() {
            return Ok(Reservation::Reserved);
        }
        // Refused, or the owner has no row yet: make sure it exists (a concurrent first
        // request may have just created it) and try once more.
        let ensure = client.prepare_cached(super::owners::ENSURE_OWNER).await?;
        client.execute(&ensure, &[&u.owner]).await?;
        Ok(match client.query_opt(&stmt, &params).await? {
            Some(_) => Reservation::Reserved,
            None => Reservation::Refused,
        })
    })
    .await
}

pub const GET_UPLOAD: &str = "select owner, id, profile, method, status, key, filename, content_type, size, \
     checksum_sha256, metadata, multipart_upload_id, part_size, part_count, expires_at, complete_by, created_at, asset_id, \
     cleaned_at is not null as cleaned, size_declared from uploads where owner = $1 and id = $2";

pub async fn get(db: &Db, owner: &str, id: Uuid) -> Result<Option<UploadRow>, DbError> {
    db.query_opt(GET_UPLOAD, &[&owner, &id]).await?.map(|r| UploadRow::from_row(&r)).transpose()
}

/// Ends a pending intent (aborted, expired or failed) and releases its reservation, in one
/// statement; an expiry of a profile in $4 (whose events go somewhere) writes
/// `upload.expired` in it too. Returns false when the intent was no longer pending
/// (someone else ended it).
pub const END_PENDING: &str = concat!(
    "with ended as ( \
       update uploads set status = $3, finished_at = now() \
        where owner = $1 and id = $2 and status = 'pending' \
       returning owner, id, profile, key, filename, content_type, size, metadata, created_at, expires_at), \
     released as ( \
       update owners o set reserved_bytes = o.reserved_bytes - e.size, reserved_objects = o.reserved_objects - 1 \
         from ended e where o.owner = e.owner), ",
    super::events::expired_events!("case when $3 = 'expired' then $4::text[] end"),
    " select 1 from ended"
);

pub async fn end_pending(
    db: &Db,
    owner: &str,
    id: Uuid,
    status: Status,
    event_profiles: &[&str],
) -> Result<bool, DbError> {
    Ok(!db.query(END_PENDING, &[&owner, &id, &status.as_str(), &event_profiles]).await?.is_empty())
}

/// Records the store's multipart UploadId right after CreateMultipartUpload.
pub const SET_MULTIPART_ID: &str = "update uploads set multipart_upload_id = $3 where owner = $1 and id = $2";

pub async fn set_multipart_id(db: &Db, owner: &str, id: Uuid, store_upload_id: &str) -> Result<(), DbError> {
    db.execute(SET_MULTIPART_ID, &[&owner, &id, &store_upload_id]).await?;
    Ok(())
}

/// The store no longer holds anything for this ended intent.
pub const MARK_CLEANED: &str = "update uploads set cleaned_at = now(), clean_lease_until = null \
     where owner = $1 and id = $2 and cleaned_at is null";

pub async fn mark_cleaned(db: &Db, owner: &str, id: Uuid) -> Result<(), DbError> {
    db.execute(MARK_CLEANED, &[&owner, &id]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_columns_are_all_or_nothing() {
        let mib = 1 << 20;
        let plan = |r: Result<Option<Multipart>, DbError>| r.unwrap().map(|m| (m.plan, m.store_upload_id));
        let p = PartPlan { part_size: 5 * mib, part_count: 3 };
        let id = || Some("VXBsb2FkSWQ/x".to_owned());
        let size = (12 * mib) as i64;
        assert_eq!(
            plan(multipart_of(UploadMethod::Multipart, size, id(), Some(5 * mib as i64), Some(3))),
            Some((p, id()))
        );
        // Not started in the store (yet, or it failed): still a multipart intent.
        assert_eq!(
            plan(multipart_of(UploadMethod::Multipart, size, None, Some(5 * mib as i64), Some(3))),
            Some((p, None))
        );
        assert_eq!(plan(multipart_of(UploadMethod::Put, size, None, None, None)), None);
        assert_eq!(plan(multipart_of(UploadMethod::Post, 0, None, None, None)), None);
        for (method, id, ps, pc) in [
            (UploadMethod::Multipart, id(), None, Some(3)),
            (UploadMethod::Multipart, id(), Some(5 * mib as i64), None),
            (UploadMethod::Multipart, id(), Some(0), Some(3)),
            (UploadMethod::Multipart, id(), Some(5 * mib as i64), Some(4)),
            (UploadMethod::Put, None, Some(5 * mib as i64), Some(3)),
            (UploadMethod::Put, id(), None, None),
        ] {
            let got = multipart_of(method, size, id, ps, pc);
            assert!(matches!(got, Err(DbError::Unexpected { .. })), "{method:?} {ps:?} {pc:?}");
        }
    }

    #[test]
    fn statuses_read_back_as_written_and_shown_as_stored() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Status::parse("Pending"), None);
    }
}
