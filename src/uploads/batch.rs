//! Batch create: up to 100 intents in one round trip. The body is parsed whole (one bad
//! item shape refuses the request), then each item is validated and reserved on its own,
//! in order, so the quota holds exactly across items and across concurrent batches.

use serde::{Deserialize, Serialize};

use super::UploadIntent;
use super::create::{CreateUploadRequest, reserve, validate};
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

pub async fn create_batch(state: &AppState, caller: &Caller, req: BatchRequest) -> Result<BatchResponse, Error> {
    if req.uploads.is_empty() || req.uploads.len() > MAX_BATCH {
        return Err(Error::invalid("uploads: 1 to 100 items"));
    }
    let mut results = Vec::with_capacity(req.uploads.len());
    for item in req.uploads {
        let outcome = match validate(state, caller, item) {
            Ok(spec) => reserve(state, spec).await,
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(intent) => BatchItem::Upload(intent),
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::warn!(error = ?e, "batch item failed");
                }
                BatchItem::Error(ItemError { code: e.code(), message: e.body().message.into_owned() })
            }
        });
    }
    Ok(BatchResponse { results })
}
