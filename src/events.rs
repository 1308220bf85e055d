//! The events r2-broker reports (openapi.yaml "Webhooks"): their types and the body each is
//! delivered with. Written to the outbox (`db::events`) in the same transaction as the state
//! change they report; delivered by `webhooks`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "asset.ready")]
    AssetReady,
    #[serde(rename = "asset.rejected")]
    AssetRejected,
    #[serde(rename = "asset.quarantined")]
    AssetQuarantined,
    #[serde(rename = "asset.deleted")]
    AssetDeleted,
    #[serde(rename = "upload.expired")]
    UploadExpired,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssetReady => "asset.ready",
            Self::AssetRejected => "asset.rejected",
            Self::AssetQuarantined => "asset.quarantined",
            Self::AssetDeleted => "asset.deleted",
            Self::UploadExpired => "upload.expired",
        }
    }
}

/// One event: `id` is its stable id (the `webhook-id` header, the same on every retry),
/// the body is `{id, type, timestamp, data}` (the Standard Webhooks shape).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(serialize_with = "crate::time::serialize")]
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl Event {
    /// A new event about `data` (an `Asset` or an upload), now.
    pub fn new(kind: EventType, data: &impl Serialize) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            timestamp: Utc::now(),
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }
}
