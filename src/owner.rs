//! The owner an upload or asset belongs to, as rows carry it: a newtype, so an owner
//! cannot be mixed up with the other strings of a row (key, profile, filename).

use serde::Serialize;

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
