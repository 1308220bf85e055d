//! Batch create: up to 100 intents in one round trip. The body is parsed and its shape
//! checked whole (one bad item shape refuses the request), then each item is validated and
//! reserved on its own, in order, so the quota holds exactly across items and across
//! concurrent batches.

use serde::{Deserialize, Serialize};

use super::UploadIntent;
use super::create::{CreateUploadRequest, check_rules, reserve};
use crate::auth::Caller;
use crate::error::Error;
use crate::state::AppState;

pub const MAX_BATCH: usize = 100;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub uploads: Vec<CreateUploadRequest>,
}

#[derive(Debug, Serialize)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip)]
    pub server_side: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchItem {
    Upload(UploadIntent),
    Error(ItemError),
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

impl BatchResponse {
    /// Whether some item failed on the server side (a dependency or a bug): such an answer
    /// is not the request's final outcome, so it is never stored for replay.
    pub fn has_server_errors(&self) -> bool {
        self.results.iter().any(|r| matches!(r, BatchItem::Error(e) if e.server_side))
    }
}

fn item_error(e: &Error) -> BatchItem {
    BatchItem::Error(ItemError {
        code: e.code(),
        message: e.body().message.into_owned(),
        server_side: e.status().is_server_error(),
    })
}

/// A shape error of item `i`, named as `uploads[i].field`.
fn in_item(i: usize, e: Error) -> Error {
    match e {
        Error::InvalidRequest(m) => Error::invalid(format!("uploads[{i}].{m}")),
        other => other,
    }
}

/// Shape errors refuse the whole request (400). Then each item is validated and reserved
/// in order. Once one item finds a dependency unavailable, the rest are not tried (each
/// would wait for the same deadline): they answer `unavailable` too, unless their own
/// validation already fails. When no item could be reserved and the cause was an outage,
/// the whole request is the same `503` as a single create, so clients retry it.
pub async fn create_batch(state: &AppState, caller: &Caller, req: BatchRequest) -> Result<BatchResponse, Error> {
    if req.uploads.is_empty() || req.uploads.len() > MAX_BATCH {
        return Err(Error::invalid("uploads: 1 to 100 items"));
    }
    for (i, item) in req.uploads.iter().enumerate() {
        item.check_shape().map_err(|e| in_item(i, e))?;
    }
    let mut outage: Option<Error> = None;
    let mut reserved = 0;
    let mut results = Vec::with_capacity(req.uploads.len());
    for item in req.uploads {
        let result = match (check_rules(state, caller, item), &outage) {
            (Err(e), _) => item_error(&e),
            (Ok(_), Some(down)) => item_error(down),
            (Ok(spec), None) => match reserve(state, spec).await {
                Ok(intent) => {
                    reserved += 1;
                    BatchItem::Upload(intent)
                }
                Err(e) => {
                    let result = item_error(&e);
                    if matches!(e, Error::Unavailable { .. }) {
                        outage = Some(e);
                    } else if e.status().is_server_error() {
                        tracing::warn!(error = ?e, "batch item failed");
                    }
                    result
                }
            },
        };
        results.push(result);
    }
    match outage {
        Some(down) if reserved == 0 => Err(down),
        _ => Ok(BatchResponse { results }),
    }
}
