//! Watching one operation for changes, pushed by the operation itself (no polling).

use std::sync::Arc;

use crate::entry::Entry;
use crate::{OperationId, OperationInfo, Operations, Result};

/// A subscription to one operation's changes: progress, status, cancel request,
/// partial result. Returned by [`Operations::watch`].
///
/// [`changed`](Self::changed) resolves when the record changed since the last call (or
/// since the watch was made); changes in between are coalesced, so a watcher that is
/// slower than the operation sees its latest state, never a backlog. A watch costs the
/// operation nothing while nobody awaits it, and an operation that nobody watches pays
/// one atomic load per change.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> orchestrator::Result<()> {
/// use orchestrator::{OperationSpec, Operations};
///
/// let ops = Operations::new();
/// let id = ops.create(OperationSpec::new("job").with_total_steps(2))?;
/// let mut watch = ops.watch(&id)?;
/// ops.start(&id)?;
/// watch.changed().await;
/// assert_eq!(watch.get().status, orchestrator::OperationStatus::Running);
/// ops.context(&id)?.progress(1, "half way");
/// watch.changed().await;
/// assert_eq!(watch.get().progress.steps_completed, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a watch does nothing unless `changed` is awaited"]
pub struct OperationWatch {
    entry: Arc<Entry>,
    seen: u64,
}

impl OperationWatch {
    pub(crate) fn new(entry: Arc<Entry>) -> Self {
        entry.watch();
        let seen = entry.version();
        Self { entry, seen }
    }

    /// The watched operation's id.
    pub fn id(&self) -> &OperationId {
        &self.entry.id
    }

    /// Waits until the record changed since the last call (at once if it already
    /// did). After the operation's terminal change it never resolves again: check
    /// [`get`](Self::get)`.status` after each wake-up.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: a change that happens while the future is dropped is reported by
    /// the next call.
    pub async fn changed(&mut self) {
        self.seen = self.entry.changed_since(self.seen).await;
    }

    /// Marks the current version as seen, so that [`changed`](Self::changed) waits for
    /// the next change: call it before [`get`](Self::get) when starting from the
    /// record as it is now (a change between the two is then reported again, never
    /// lost).
    pub fn mark_seen(&mut self) {
        self.seen = self.entry.version();
    }

    /// Waits until the operation's end is acknowledged: recorded, and with a store,
    /// written to it (as [`Operations::wait`] does).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) async fn finished(&self) {
        self.entry.finished().await;
    }

    /// The operation's current record (also when it was deleted from the registry
    /// meanwhile: the watch keeps it).
    pub fn get(&self) -> OperationInfo {
        self.entry.info()
    }
}

impl Drop for OperationWatch {
    fn drop(&mut self) {
        self.entry.unwatch();
    }
}

impl Operations {
    /// Watches operation `id` for changes (see [`OperationWatch`]): what event streams
    /// and progress displays wake on, instead of polling.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`](crate::OrchestratorError::NotFound).
    pub fn watch(&self, id: &OperationId) -> Result<OperationWatch> {
        Ok(OperationWatch::new(self.entry(id)?))
    }
}
