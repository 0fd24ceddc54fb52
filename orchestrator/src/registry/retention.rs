//! Retention: removing finished operations by id, by age and by count.

use std::time::{Duration, SystemTime};

use crate::registry::operations::shard_of;
use crate::{OperationId, OperationInfo, Operations, OrchestratorError, Result};

impl Operations {
    /// Removes the oldest finished operations beyond the retained limit.
    pub(super) fn evict_excess(&self) {
        self.shared.ledger.evict_excess(|id| {
            let mut shard = self.shared.shards[shard_of(id)].write();
            // An id comes back only for a resumed attempt: while that runs, the
            // finished attempt it replaced is gone already.
            match shard.get(id) {
                Some(entry) if entry.status().is_terminal() => shard.remove(id).is_some(),
                _ => false,
            }
        });
    }

    /// Bookkeeping after `n` finished operations were removed by id or by age.
    fn removed(&self, n: usize) {
        if n == 0 {
            return;
        }
        let ledger = &self.shared.ledger;
        ledger.removed(n);
        ledger.compact(|id| self.shared.shards[shard_of(id)].read().contains(id));
    }

    /// Removes a finished operation and returns its final record.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], or [`OrchestratorError::StillActive`] for a
    /// `PENDING` or `RUNNING` operation.
    pub fn delete(&self, id: &OperationId) -> Result<OperationInfo> {
        let mut shard = self.shared.shards[shard_of(id)].write();
        let entry = shard
            .get(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        let status = entry.status();
        if status.is_active() {
            return Err(OrchestratorError::StillActive {
                id: id.clone(),
                status,
            });
        }
        let entry = shard
            .remove(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        drop(shard);
        self.removed(1);
        Ok(entry.info())
    }

    /// Removes operations that finished more than `older_than` ago; returns how many.
    /// Active operations are never removed.
    pub fn cleanup(&self, older_than: Duration) -> usize {
        let Some(cutoff) = SystemTime::now().checked_sub(older_than) else {
            return 0;
        };
        let mut removed = 0;
        for shard in &self.shared.shards {
            let mut shard = shard.write();
            let before = shard.len();
            shard.retain(|e| !e.completed_before(cutoff));
            removed += before - shard.len();
        }
        self.removed(removed);
        removed
    }
}
