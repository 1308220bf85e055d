//! Abort: idempotent. Unknown ids (another owner's included) and intents that already
//! ended answer 204 and touch nothing — except that an ended intent whose store cleanup
//! failed earlier is cleaned again, so retrying an abort after a 503 finishes the job.

use uuid::Uuid;

use super::{Status, clean_store, end_and_clean, load};
use crate::error::Error;
use crate::state::AppState;

pub async fn abort(state: &AppState, owner: &str, id: Uuid) -> Result<(), Error> {
    let Some(up) = load(state, owner, id).await? else { return Ok(()) };
    match up.status {
        Status::Completed => Err(Error::invalid_state("the upload is completed; delete the asset instead")),
        Status::Pending => {
            if !end_and_clean(state, &up, Status::Aborted).await? {
                // A concurrent complete or abort ended it first.
                return Box::pin(abort(state, owner, id)).await;
            }
            Ok(())
        }
        Status::Aborted | Status::Expired | Status::Failed => {
            if !up.cleaned {
                clean_store(state, &up).await?;
            }
            Ok(())
        }
    }
}
