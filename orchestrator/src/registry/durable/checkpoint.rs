//! Checkpoints, written through: the operation that saves one waits until the store
//! has it, so a checkpoint it was told is saved survives a crash right after.

use std::time::{Duration, Instant};

use crate::entry::Entry;
use crate::store::{Checkpoint, StoreError};
use crate::{OrchestratorError, Result};

use super::{Durable, Step};

/// The first retry of a failed save waits this long; each next one twice as long, up
/// to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Durable {
    /// Writes `checkpoint` of `entry` to the store, once its start is written there.
    /// A failure of the store is retried for up to one lease (a blip must not fail a
    /// training run); then, or when the store refuses the write (the operation was
    /// declared an orphan by another replica, or it ended), the error is returned.
    pub(crate) async fn save_checkpoint(
        &self,
        entry: &Entry,
        checkpoint: &Checkpoint,
    ) -> Result<()> {
        entry.persisted_to(Step::Start).await;
        let fence = self.fence(entry);
        let give_up = Instant::now() + self.config.lease;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self
                .store
                .save_checkpoint(&entry.id, fence, checkpoint)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e @ (StoreError::Database(_) | StoreError::Connect { .. }))
                    if Instant::now() + backoff < give_up =>
                {
                    tracing::warn!(operation_id = %entry.id, error = %e, retry_in = ?backoff, "saving a checkpoint failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(StoreError::Fenced { id, current, .. }) => {
                    return Err(OrchestratorError::StoreUnavailable {
                        reason: format!(
                            "operation {id} is no longer this instance's to write (attempt {} \
                             of instance {}): it was declared interrupted or resumed elsewhere",
                            current.attempt, current.owner
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
