//! The owner an upload or asset belongs to, as rows carry it: a newtype, so an owner
//! cannot be mixed up with the other strings of a row (key, profile, filename), and the one
//! rule for what may name an owner.

use serde::Serialize;

use crate::error::Error;

/// Owners are at most 255 bytes (openapi.yaml).
pub const MAX_LEN: usize = 255;

/// Whether `owner` can name an owner: 1 to 255 bytes, and no U+0000 (PostgreSQL's `text`
/// cannot hold it). The one rule for a token's `sub`, a body's `owner`, `?owner=` and the
/// admin path.
pub fn is_valid(owner: &str) -> bool {
    (1..=MAX_LEN).contains(&owner.len()) && !owner.contains('\0')
}

/// `400 invalid_request` unless `owner` is valid.
pub fn check(owner: &str) -> Result<(), Error> {
    if is_valid(owner) { Ok(()) } else { Err(Error::invalid("owner: must be 1 to 255 bytes, without U+0000")) }
}

/// An owner id as stored (and shown in an asset's `owner`): serialises as the bare string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Owner(String);

impl Owner {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Owner {
    fn from(s: String) -> Self {
        Self(s)
    }
}
