//! Resuming an operation from its checkpoint: a new attempt of a `FAILED` or
//! `CANCELLED` operation, same id, run by the fn registered for its kind.
//!
//! Locking rules: the resumers' lock is held only to insert or clone one out. A
//! resume in memory replaces the finished entry in its shard only if the shard
//! still holds that very entry (under the root's read lock, as `register` does), so
//! of two resumes of one attempt exactly one wins; with a store, the store's guarded
//! `resume` decides.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;

use crate::driver::Driver;
use crate::durable::Durable;
use crate::entry::{Entry, NewEntry};
use crate::metrics::MetricsLog;
use crate::operations::shard_of;
use crate::store::StoredOperation;
use crate::{
    JsonMap, OperationContext, OperationError, OperationFuture, OperationId, OperationInfo,
    OperationStatus, OperationType, OperationValue, Operations, OrchestratorError, Result,
};

/// How long a resume waits for the previous attempt's end to reach the store.
const END_WAIT: Duration = Duration::from_secs(10);

type ResumeFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>>;
type ResumeFn = Arc<dyn Fn(Operations, OperationContext, JsonMap) -> ResumeFuture + Send + Sync>;

/// The fns that resume operations, by kind.
#[derive(Default)]
pub(crate) struct Resumers(RwLock<HashMap<OperationType, ResumeFn>>);

impl Resumers {
    fn get(&self, kind: &OperationType) -> Option<ResumeFn> {
        self.0.read().get(kind).cloned()
    }
}

/// Only these end states can be resumed.
fn check_status(id: &OperationId, status: OperationStatus) -> Result<()> {
    match status {
        OperationStatus::Failed | OperationStatus::Cancelled => Ok(()),
        status => Err(OrchestratorError::NotResumable {
            id: id.clone(),
            status,
        }),
    }
}

fn proxy(id: &OperationId, host: &str) -> OrchestratorError {
    OrchestratorError::NoResumer {
        id: id.clone(),
        reason: format!("it ran on the host service {host}; resume it there"),
    }
}

impl Operations {
    /// Registers `f` as the fn that [resumes](Self::resume) operations of `kind`: it
    /// receives this registry, the new attempt's context (whose
    /// [`resume_state`](OperationContext::resume_state) is the last checkpoint) and
    /// the operation's recorded parameters
    /// ([`metadata.parameters`](crate::OperationMetadata::parameters), which
    /// `#[managed_operation]` fills with the fn's arguments), and runs like the first
    /// attempt did. A later registration for the same kind replaces it.
    ///
    /// Register at start-up, before resumes come in: after a restart, this is how the
    /// registry knows what to run. `f` gets the registry as an argument rather than
    /// capturing it (or a service that holds it): the registry keeps `f`, and a
    /// registry that (through `f`) kept itself would never be dropped; rebuild a
    /// service from it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), orchestrator::OrchestratorError> {
    /// use orchestrator::{OperationContext, OperationSpec, OperationStatus, Operations};
    ///
    /// async fn count(ctx: OperationContext, to: u64) -> Result<u64, String> {
    ///     let from = ctx.resume_state::<u64>().map_err(|e| e.to_string())?.unwrap_or(0);
    ///     for i in from + 1..=to {
    ///         ctx.save_checkpoint(&i).await.map_err(|e| e.to_string())?;
    ///         if i == 2 && ctx.attempt() == 1 {
    ///             return Err("disk full".into()); // the first attempt fails after 2
    ///         }
    ///     }
    ///     Ok(to - from) // counted by this attempt
    /// }
    ///
    /// let ops = Operations::new();
    /// ops.resumable("count", |_ops, ctx, params| {
    ///     let to = params["to"].as_u64().unwrap_or(0);
    ///     count(ctx, to)
    /// });
    /// let spec = OperationSpec::new("count").with_parameter("to", 5);
    /// let first = ops.spawn(spec, |ctx| count(ctx, 5))?;
    /// assert_eq!(ops.wait(first.id()).await?.status, OperationStatus::Failed);
    ///
    /// let resumed = ops.resume(first.id()).await?;
    /// assert_eq!(resumed.attempt, 2);
    /// let done = ops.wait(first.id()).await?;
    /// assert_eq!(done.status, OperationStatus::Completed);
    /// assert_eq!(done.result_summary, Some(3.into())); // 3, 4 and 5: not 1 and 2 again
    /// # Ok(()) }
    /// ```
    pub fn resumable<F, Fut, T, E>(&self, kind: impl Into<OperationType>, f: F)
    where
        F: Fn(Operations, OperationContext, JsonMap) -> Fut + Send + Sync + 'static,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
        let resume: ResumeFn = Arc::new(move |ops, ctx, params| {
            let work = f(ops, ctx, params);
            Box::pin(async move {
                match work.await {
                    Ok(value) => Ok(serde_json::to_value(&value).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "result summary is not serialisable");
                        serde_json::Value::Null
                    })),
                    Err(e) => Err(e.to_string()),
                }
            })
        });
        self.shared.resumers.0.write().insert(kind.into(), resume);
    }

    /// Starts a new attempt of a `FAILED` (an error, or `interrupted` by a crash) or
    /// `CANCELLED` operation from its last checkpoint: same id, `attempt` + 1, run by
    /// the fn registered for its kind ([`resumable`](Self::resumable)), which reads the
    /// checkpoint with [`OperationContext::resume_state`]. Returns the new attempt's
    /// record at once (`PENDING` or `RUNNING`); [`wait`](Self::wait) for its end.
    ///
    /// With a store, any replica can resume any replica's operation (the one it ran
    /// on may be gone); of two resumes of the same attempt, here or on two replicas,
    /// exactly one wins. The new attempt keeps the operation's metadata, parent and
    /// metric records (their cursor continues), and runs with the registry's grace
    /// period and no deadline.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`]; [`OrchestratorError::NotResumable`] unless it is
    /// `FAILED` or `CANCELLED`; [`OrchestratorError::NoCheckpoint`] when it never saved
    /// one; [`OrchestratorError::NoResumer`] when no fn is registered for its kind (or
    /// it is a proxy); [`OrchestratorError::AlreadyResumed`] when another resume won;
    /// [`OrchestratorError::TooManyOperations`] and the other admission refusals;
    /// [`OrchestratorError::StoreUnavailable`]; [`OrchestratorError::NoRuntime`]
    /// outside a Tokio runtime. Nothing is started then.
    pub async fn resume(&self, id: &OperationId) -> Result<OperationInfo> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| OrchestratorError::NoRuntime)?;
        let local = self.entry(id).ok();
        let (entry, resume) = match self.durable() {
            None => self.resume_in_memory(id, local)?,
            Some(d) => self.resume_in_store(d, id, local).await?,
        };
        self.ensure_sweeper();
        let info = entry.info();
        tracing::info!(operation_id = %entry.id, attempt = entry.attempt, "operation resumed");
        let params = entry
            .metadata()
            .map(|m| m.parameters.clone())
            .unwrap_or_default();
        let driver = Driver {
            slot: self.slot(&entry),
            entry,
            grace: self.shared.grace_period,
            deadline: None,
        };
        let ops = self.clone();
        runtime.spawn(driver.run(move |ctx| resume(ops, ctx, params)));
        Ok(info)
    }

    /// Drops this process's record of a finished attempt that another replica
    /// resumed since (the store holds the newer one).
    pub(crate) fn forget_superseded(&self, old: &Arc<Entry>) {
        let mut shard = self.shared().shards[shard_of(&old.id)].write();
        if shard
            .get(&old.id)
            .is_some_and(|current| Arc::ptr_eq(current, old))
        {
            shard.remove(&old.id);
            drop(shard);
            self.shared().ledger.removed(1);
        }
    }

    fn resumer(&self, id: &OperationId, kind: &OperationType) -> Result<ResumeFn> {
        self.shared
            .resumers
            .get(kind)
            .ok_or_else(|| OrchestratorError::NoResumer {
                id: id.clone(),
                reason: format!(
                    "no function is registered to resume {kind} operations in this process \
                     (see Operations::resumable)"
                ),
            })
    }

    fn resume_in_memory(
        &self,
        id: &OperationId,
        local: Option<Arc<Entry>>,
    ) -> Result<(Arc<Entry>, ResumeFn)> {
        let old = local.ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        if let Some(remote) = old.remote() {
            return Err(proxy(id, &remote.host_url));
        }
        check_status(id, old.status())?;
        let checkpoint = old
            .checkpoint()
            .ok_or_else(|| OrchestratorError::NoCheckpoint(id.clone()))?;
        let resume = self.resumer(id, &old.kind)?;
        self.admit()?;
        let ledger = &self.shared().ledger;
        let root = self.shared().root.read();
        let entry = Arc::new(Entry::new(NewEntry {
            id: old.id.clone(),
            created_at: old.created_at(),
            kind: old.kind.clone(),
            description: old.given_description(),
            seq: old.seq,
            metadata: old.metadata().cloned().unwrap_or_default(),
            parent_id: old.parent_id().cloned(),
            total_steps: old.total_steps.load(std::sync::atomic::Ordering::Relaxed),
            token: root.child_token(),
            ledger: Some(ledger.clone()),
            observer: None,
            remote: None,
            attempt: old.attempt.saturating_add(1),
            resumed_from: Some(checkpoint),
            in_store: false,
            metrics: None,
        }));
        {
            let mut shard = self.shared().shards[shard_of(id)].write();
            match shard.get(id) {
                Some(current) if Arc::ptr_eq(current, &old) => {}
                current => {
                    let attempt = current.map(|c| c.attempt);
                    drop(shard);
                    drop(root);
                    ledger.unadmit();
                    return Err(match attempt {
                        Some(attempt) => OrchestratorError::AlreadyResumed {
                            id: id.clone(),
                            attempt,
                        },
                        None => OrchestratorError::NotFound(id.clone()),
                    });
                }
            }
            shard.insert(entry.clone());
        }
        drop(root);
        // The finished attempt is no longer kept; its metric records go on.
        ledger.removed(1);
        entry.adopt_metrics(old.take_metrics());
        Ok((entry, resume))
    }

    async fn resume_in_store(
        &self,
        d: &Arc<Durable>,
        id: &OperationId,
        local: Option<Arc<Entry>>,
    ) -> Result<(Arc<Entry>, ResumeFn)> {
        let (kind, attempt) = match &local {
            Some(old) => {
                if let Some(remote) = old.remote() {
                    return Err(proxy(id, &remote.host_url));
                }
                check_status(id, old.status())?;
                // The store must hold its end (and its last metric records) first.
                if tokio::time::timeout(END_WAIT, old.finished())
                    .await
                    .is_err()
                {
                    return Err(OrchestratorError::StoreUnavailable {
                        reason: d.health.last_error().unwrap_or_else(|| {
                            "the operation's end is not written to the store yet".to_owned()
                        }),
                    });
                }
                if old.has_metrics() {
                    d.signal.flush_now().await;
                }
                (old.kind.clone(), old.attempt)
            }
            None => {
                let stored = d
                    .store
                    .get(id)
                    .await?
                    .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
                if let Some(host) = &stored.info.host_url {
                    return Err(proxy(id, host));
                }
                check_status(id, stored.info.status)?;
                (stored.info.operation_type, stored.fence.attempt)
            }
        };
        let resume = self.resumer(id, &kind)?;
        // Read before the resume, so that nothing fails between it and the start.
        let metrics = d.store.metrics(id, 0).await?;
        self.admit()?;
        let stored = match d
            .store
            .resume(id, d.instance, attempt, SystemTime::now())
            .await
        {
            Ok(stored) => stored,
            Err(e) => {
                self.shared().ledger.unadmit();
                return Err(e.into());
            }
        };
        let capacity = self.shared().ledger.limits.max_metrics;
        let metrics =
            metrics.map(|page| Box::new(MetricsLog::seeded(capacity, page.metrics, page.cursor)));
        let entry = self.successor(stored, local.as_ref(), metrics);
        Ok((entry, resume))
    }

    /// The entry of a new attempt the store just resumed, in place of the finished
    /// one (if this process has it).
    fn successor(
        &self,
        stored: StoredOperation,
        local: Option<&Arc<Entry>>,
        metrics: Option<Box<MetricsLog>>,
    ) -> Arc<Entry> {
        let ledger = &self.shared().ledger;
        let info = stored.info;
        let root = self.shared().root.read();
        let entry = Arc::new(Entry::new(NewEntry {
            created_at: info.created_at,
            kind: info.operation_type,
            description: match local {
                Some(old) => old.given_description(),
                None => Some(Cow::Owned(info.description)),
            },
            seq: local.map_or_else(|| self.next_seq(), |old| old.seq),
            metadata: info.metadata,
            parent_id: info.parent_id,
            total_steps: local.map_or(info.progress.steps_total, |old| {
                old.total_steps.load(std::sync::atomic::Ordering::Relaxed)
            }),
            token: root.child_token(),
            ledger: Some(ledger.clone()),
            observer: None,
            remote: None,
            attempt: stored.fence.attempt,
            resumed_from: stored.checkpoint,
            in_store: true,
            metrics,
            id: info.operation_id,
        }));
        let replaced = self.shared().shards[shard_of(&entry.id)]
            .write()
            .insert(entry.clone());
        drop(root);
        if replaced.is_some_and(|old| old.status().is_terminal()) {
            ledger.removed(1);
        }
        entry
    }
}
