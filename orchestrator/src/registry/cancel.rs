//! Cancellation: of one operation, of all, under a root token.

use std::sync::Arc;

use crate::{
    CancellationToken, OperationId, OperationStatus, Operations, OrchestratorError, Result,
};

impl Operations {
    /// Requests cancellation with `reason` and returns the resulting status: a
    /// `PENDING` operation is `CANCELLED` at once; a `RUNNING` one stays `RUNNING` (with
    /// `cancel_reason` set) until it returns or its grace period ends. Cheap: no
    /// snapshot is built (call [`get`](Self::get) for one).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], [`OrchestratorError::AlreadyFinished`] when it
    /// already reached a terminal state, [`OrchestratorError::CancelReasonTooLong`]
    /// when `reason` is longer than the registry accepts (1 KiB by default).
    pub fn cancel(&self, id: &OperationId, reason: &str) -> Result<OperationStatus> {
        let entry = self.entry(id)?;
        self.check_cancel_reason(reason)?;
        entry.cancel(&Arc::from(reason))
    }

    /// [`OrchestratorError::CancelReasonTooLong`] when `reason` is longer than the
    /// registry accepts.
    pub(crate) fn check_cancel_reason(&self, reason: &str) -> Result<()> {
        let limit = self.shared.ledger.limits.max_cancel_reason;
        if reason.len() > limit {
            return Err(OrchestratorError::CancelReasonTooLong {
                len: reason.len(),
                limit,
            });
        }
        Ok(())
    }

    /// `reason`, cut at a character boundary to the registry's cancel-reason limit.
    pub(crate) fn bounded_reason<'a>(&self, reason: &'a str) -> &'a str {
        let mut end = self
            .shared
            .ledger
            .limits
            .max_cancel_reason
            .min(reason.len());
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        &reason[..end]
    }

    /// Requests cancellation of every active operation with `reason` (operations
    /// already cancelled keep their first reason); returns how many active operations
    /// it reached. Operations registered afterwards are not affected.
    ///
    /// It cancels the root token, which reaches every operation token in one pass,
    /// and puts a fresh root in its place; pending operations end `CANCELLED` at once.
    /// A `reason` longer than the registry's limit is truncated.
    pub fn cancel_all(&self, reason: &str) -> usize {
        let old = std::mem::take(&mut *self.shared.root.write());
        self.cancel_under(&old, reason)
    }

    pub(crate) fn cancel_under(&self, root: &CancellationToken, reason: &str) -> usize {
        let reason = self.bounded_reason(reason);
        // Count first: cancelled operations end (and stop being active) right away.
        let mut reached = 0;
        let mut pending = Vec::new();
        let mut watched = Vec::new();
        for shard in &self.shared.shards {
            for entry in shard.read().values() {
                let status = entry.status();
                if status.is_active() && entry.token.is_child_of(root) {
                    reached += 1;
                    if status == OperationStatus::Pending {
                        pending.push(entry.clone());
                    } else if entry.is_watched() {
                        watched.push(entry.clone());
                    }
                }
            }
        }
        root.cancel_with_reason(reason);
        // Hand-driven pending operations have no driver to notice their token.
        for entry in pending {
            entry.end_if_pending();
        }
        for entry in watched {
            entry.cancel_requested();
        }
        reached
    }
}
