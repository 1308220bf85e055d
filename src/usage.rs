//! Usage and quotas: what an owner uses, reserves and may use; admins set quotas.

use serde::{Deserialize, Serialize};

use crate::db::owners::UsageRow;
use crate::error::Error;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize)]
pub struct Usage {
    pub owner: String,
    pub used_bytes: i64,
    pub reserved_bytes: i64,
    pub quota_bytes: i64,
    pub object_count: i64,
    pub reserved_objects: i64,
    pub quota_objects: i64,
}

impl Usage {
    fn from_row(state: &AppState, owner: String, r: UsageRow) -> Self {
        Self {
            owner,
            used_bytes: r.used_bytes,
            reserved_bytes: r.reserved_bytes,
            quota_bytes: r.quota_bytes.unwrap_or(state.config.default_quota_bytes),
            object_count: r.used_objects,
            reserved_objects: r.reserved_objects,
            quota_objects: r.quota_objects.unwrap_or(state.config.default_quota_objects),
        }
    }
}

/// A field left out keeps its value (an explicit `null` never gets here: no request field
/// is nullable, http/json.rs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    #[serde(default)]
    pub quota_bytes: Option<i64>,
    #[serde(default)]
    pub quota_objects: Option<i64>,
}

pub async fn get(state: &AppState, owner: String) -> Result<Usage, Error> {
    let row = crate::db::owners::get_usage(&state.db, &owner).await?;
    Ok(Usage::from_row(state, owner, row))
}

pub async fn set_quota(state: &AppState, owner: String, update: QuotaUpdate) -> Result<Usage, Error> {
    crate::owner::check(&owner)?;
    for (name, v) in [("quota_bytes", update.quota_bytes), ("quota_objects", update.quota_objects)] {
        if v.is_some_and(|v| v < 0) {
            return Err(Error::invalid(format!("{name}: must be an integer >= 0")));
        }
    }
    let row = crate::db::owners::set_quota(&state.db, &owner, update.quota_bytes, update.quota_objects).await?;
    Ok(Usage::from_row(state, owner, row))
}
