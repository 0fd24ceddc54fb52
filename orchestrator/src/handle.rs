//! The handle returned when a managed operation is spawned.

use std::fmt;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::entry::Entry;
use crate::{
    OperationId, OperationInfo, OperationStatus, Operations, Outcome, Result, StartedOperation,
};

/// A spawned managed operation: its id, and its typed outcome once it ends.
///
/// Dropping the handle does not stop the operation; it keeps running in the background
/// and stays observable and cancellable through the registry.
#[must_use = "dropping the handle detaches the operation; keep it to await the outcome"]
pub struct OperationHandle<T, E> {
    entry: Arc<Entry>,
    ops: Operations,
    join: JoinHandle<Outcome<T, E>>,
}

impl<T, E> OperationHandle<T, E> {
    pub(crate) fn new(entry: Arc<Entry>, ops: Operations, join: JoinHandle<Outcome<T, E>>) -> Self {
        Self { entry, ops, join }
    }

    /// The operation's id.
    pub fn id(&self) -> &OperationId {
        &self.entry.id
    }

    /// The operation's current record, as [`Operations::get`] reads it.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`](crate::OrchestratorError::NotFound) if it was
    /// deleted meanwhile.
    pub fn get(&self) -> Result<OperationInfo> {
        self.ops.get(self.id())
    }

    /// Requests cancellation (see [`Operations::cancel`]).
    ///
    /// # Errors
    ///
    /// As [`Operations::cancel`].
    pub fn cancel(&self, reason: &str) -> Result<OperationStatus> {
        self.ops.cancel(self.id(), reason)
    }

    /// The `started` record for an API response.
    pub fn started(&self) -> StartedOperation {
        StartedOperation::new(self.entry.id.clone(), &self.entry.description())
    }

    /// Waits until the operation's record is in the registry's store (its create was
    /// written: it survives a crash of this process and other replicas see it); at
    /// once for a registry without a store. The HTTP layer does this for every
    /// operation a request starts before it answers.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: wrap it in `tokio::time::timeout` for a bounded wait.
    pub async fn persisted(&self) {
        self.entry.persisted_to(crate::durable::Step::Create).await;
    }

    /// Waits for the operation to end and returns its typed outcome.
    ///
    /// If the runtime shuts down first, the operation is reported cancelled.
    pub async fn outcome(self) -> Outcome<T, E> {
        crate::join::joined(self.join.await).unwrap_or(Outcome::Cancelled(None))
    }
}

impl<T, E> fmt::Debug for OperationHandle<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationHandle")
            .field("id", self.id())
            .finish_non_exhaustive()
    }
}
