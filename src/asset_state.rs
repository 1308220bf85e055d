//! An asset's place in its lifecycle (openapi.yaml "Asset lifecycle"), and the image
//! variants recorded on it. Leaf values: the database reads and writes them, the workflows
//! decide them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetState {
    /// Verified by `complete`; the profile's jobs (scan, variants) are not done yet. No
    /// download URL.
    Processing,
    /// Usable: download URLs, variants, `asset.ready`.
    Ready,
    /// The content failed a check: the object is deleted and its usage released; the record
    /// stays with the reason.
    Rejected,
    /// A scanner flagged it: the object stays in the store for review, but nobody gets a
    /// download URL.
    Quarantined,
}

impl AssetState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Processing, Self::Ready, Self::Rejected, Self::Quarantined].into_iter().find(|v| v.as_str() == s)
    }
}

/// One image variant as recorded on its asset (the `variants` column, the API's
/// `Asset.variants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub key: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}
