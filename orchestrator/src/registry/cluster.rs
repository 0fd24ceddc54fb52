//! Reads and cancels across replicas: [`Cluster`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::durable::Durable;
use crate::{
    MetricsPage, OperationFilter, OperationId, OperationInfo, OperationList, OperationStatus,
    Operations, OrchestratorError, Result,
};

/// How often [`Cluster::wait`] re-reads another replica's operation from the store.
const REMOTE_POLL: Duration = Duration::from_millis(100);

/// How long [`Cluster::delete`] waits for a local operation's end to reach the store.
const DELETE_WAIT: Duration = Duration::from_secs(10);

/// Every operation of the store a registry shares with its replicas, not only this
/// process's: from [`Operations::cluster`].
///
/// An operation of this process is answered from memory, as [`Operations`] does
/// (fresh progress, no database round trip); any other one from the store, at most
/// one flush interval stale. A cancel of another replica's operation is recorded in
/// the store and reaches its owner at once (PostgreSQL `NOTIFY`) or with its next
/// flush; it stays `RUNNING` with `cancel_reason` set until the owner records the end.
/// Without a store, a `Cluster` is the local registry.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use orchestrator::{OperationFilter, Operations, OperationSpec};
///
/// let ops = Operations::new();
/// let id = ops.create(OperationSpec::new("manual"))?;
/// let list = ops.cluster().list(&OperationFilter::default()).await?;
/// assert_eq!(list.operations[0].operation_id, id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    ops: &'a Operations,
}

impl Operations {
    /// The operations of every replica sharing this registry's store (see
    /// [`Cluster`]); this registry's alone when it has none.
    pub const fn cluster(&self) -> Cluster<'_> {
        Cluster { ops: self }
    }

    /// How the registry's store is doing (`None` without a store): for a health
    /// route.
    pub fn store_health(&self) -> Option<crate::store::StoreHealth> {
        self.durable()
            .map(|d| d.health.report(d.instance.to_string(), d.backlog()))
    }

    pub(crate) fn durable(&self) -> Option<&Arc<Durable>> {
        self.shared().ledger.durable.as_ref()
    }
}

impl Cluster<'_> {
    fn store(&self) -> Option<&Arc<Durable>> {
        self.ops.durable()
    }

    /// The store, when operation `id` is not this process's (`None` when it is, or
    /// when there is no store: then the local registry answers).
    ///
    /// A finished operation of this process may have been resumed by another replica
    /// since: its local record is then an older attempt, which is dropped here (one
    /// store read, for finished operations only), and the store answers.
    async fn elsewhere(&self, id: &OperationId) -> Result<Option<&Arc<Durable>>> {
        let Some(d) = self.store() else {
            return Ok(None);
        };
        let Ok(entry) = self.ops.entry(id) else {
            return Ok(Some(d));
        };
        if !entry.status().is_terminal() {
            return Ok(None);
        }
        match d.store.get(id).await? {
            Some(stored) if stored.fence.attempt > entry.attempt => {
                self.ops.forget_superseded(&entry);
                Ok(Some(d))
            }
            _ => Ok(None),
        }
    }

    /// The operation's record, wherever it runs.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`]; [`OrchestratorError::StoreUnavailable`] when
    /// it is not local and the store cannot be read.
    pub async fn get(&self, id: &OperationId) -> Result<OperationInfo> {
        let Some(d) = self.elsewhere(id).await? else {
            return self.ops.get(id);
        };
        match d.store.get(id).await? {
            Some(stored) => Ok(stored.info),
            None => Err(OrchestratorError::NotFound(id.clone())),
        }
    }

    /// One page of the operations of every replica, newest first: the store's list,
    /// with this process's records (fresher) in place of the stored ones.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::StoreUnavailable`] when the store cannot be read.
    pub async fn list(&self, filter: &OperationFilter) -> Result<OperationList> {
        let Some(d) = self.store() else {
            return Ok(self.ops.list(filter));
        };
        let mut list = d.store.list(filter).await?;
        for info in &mut list.operations {
            // Unless another replica resumed it since this process ran it.
            match self.ops.get(&info.operation_id) {
                Ok(local) if local.attempt >= info.attempt => *info = local,
                _ => {}
            }
        }
        Ok(list)
    }

    /// The operation's metric records after `cursor`, wherever it runs.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn metrics(&self, id: &OperationId, cursor: u64) -> Result<MetricsPage> {
        let Some(d) = self.elsewhere(id).await? else {
            return self.ops.metrics(id, cursor);
        };
        d.store
            .metrics(id, cursor)
            .await?
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))
    }

    /// Requests cancellation, wherever the operation runs; returns its status (still
    /// active for another replica's operation, until its owner records the end).
    ///
    /// # Errors
    ///
    /// As [`Operations::cancel`], and [`OrchestratorError::StoreUnavailable`].
    pub async fn cancel(&self, id: &OperationId, reason: &str) -> Result<OperationStatus> {
        let Some(d) = self.elsewhere(id).await? else {
            return self.ops.cancel(id, reason);
        };
        self.ops.check_cancel_reason(reason)?;
        let stored = d
            .store
            .request_cancel(id, reason, SystemTime::now())
            .await?;
        Ok(stored.info.status)
    }

    /// Waits until the operation ends, wherever it runs, and returns its final
    /// record (another replica's is re-read from the store every 100 ms).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    pub async fn wait(&self, id: &OperationId) -> Result<OperationInfo> {
        if self.elsewhere(id).await?.is_none() {
            let info = self.ops.wait(id).await?;
            // It may have ended here after another replica resumed it: look again.
            if self.elsewhere(id).await?.is_none() {
                return Ok(info);
            }
        }
        loop {
            let info = self.get(id).await?;
            if info.status.is_terminal() {
                return Ok(info);
            }
            tokio::time::sleep(REMOTE_POLL).await;
        }
    }

    /// Removes a finished operation, wherever it ran; returns its last record. A local
    /// one is removed from the store only once its end is written there (so that the
    /// queued end cannot bring the record back), waiting for at most 10 s.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], [`OrchestratorError::StillActive`],
    /// [`OrchestratorError::StoreUnavailable`].
    pub async fn delete(&self, id: &OperationId) -> Result<OperationInfo> {
        let Some(d) = self.store() else {
            return self.ops.delete(id);
        };
        if let Ok(entry) = self.ops.entry(id) {
            let status = entry.status();
            if status.is_active() {
                return Err(OrchestratorError::StillActive {
                    id: id.clone(),
                    status,
                });
            }
            if tokio::time::timeout(DELETE_WAIT, entry.finished())
                .await
                .is_err()
            {
                return Err(OrchestratorError::StoreUnavailable {
                    reason: d.health.last_error().unwrap_or_else(|| {
                        "the operation's end is not written to the store yet".to_owned()
                    }),
                });
            }
        }
        let stored = d.store.get(id).await?;
        match d.store.delete(id).await {
            Ok(()) | Err(crate::store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let local = match self.ops.delete(id) {
            Ok(info) => Some(info),
            Err(OrchestratorError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        local
            .or(stored.map(|s| s.info))
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))
    }
}
