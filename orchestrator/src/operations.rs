//! The registry: the single source of truth about operations.
//!
//! Locking rules:
//! 1. The map is split into 16 shards chosen by the id's last hex digit (uniform, as the
//!    suffix is a bijection of a counter). A shard lock is held only to insert, remove
//!    or clone an `Arc<Entry>` out; entry locks are never taken while a shard lock is
//!    held, except the status atomic read by `list` and `cleanup`.
//! 2. Per-entry rules are in `entry.rs`.
//! 3. `register` holds the root's read lock from creating the operation's child token
//!    until the entry is in its shard; `cancel_all` swaps the root under the write lock
//!    and only then scans the shards. So every operation under a root being cancelled
//!    is in the map when the scan runs. (Order: root, then shard; nothing takes the
//!    root while holding a shard.)

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::builder::OperationsBuilder;
use crate::driver::{Driver, Slot};
use crate::entry::{Ending, Entry, NewEntry};
use crate::id_hash::BuildIdHasher;
use crate::metrics::MetricsPage;
use crate::{
    CancellationToken, OperationContext, OperationFilter, OperationHandle, OperationId,
    OperationInfo, OperationList, OperationSpec, OperationStatus, OperationType, OrchestratorError,
    Outcome, Result,
};

const SHARDS: usize = 16;

/// The operations registry: create, run, observe, cancel and clean up operations.
///
/// A cheap `Clone` handle over shared state; every clone sees the same operations.
/// Building one needs no runtime; starting managed operations needs a Tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use orchestrator::{OperationContext, OperationSpec, OperationStatus, OperationType, Operations};
///
/// let ops = Operations::new();
/// let handle = ops.spawn(OperationSpec::new(OperationType::Dummy).with_total_steps(3), |ctx: OperationContext| async move {
///     for i in 1..=3 {
///         ctx.sleep(std::time::Duration::from_millis(1)).await?;
///         ctx.progress(i, format!("step {i}/3"));
///     }
///     Ok::<_, orchestrator::Cancelled>(3)
/// })?;
/// let info = ops.wait(handle.id()).await?;
/// assert_eq!(info.status, OperationStatus::Completed);
/// assert_eq!(info.result_summary, Some(3.into()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Operations {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    shards: [RwLock<HashMap<OperationId, Arc<Entry>, BuildIdHasher>>; SHARDS],
    seq: AtomicU64,
    /// Replaced by `cancel_all` (which cancels the old one), never by `shutdown`.
    root: RwLock<CancellationToken>,
    pub(crate) grace_period: Duration,
    retention: Duration,
    sweep_interval: Option<Duration>,
    sweeper_started: AtomicBool,
    max_metrics: usize,
    limits: HashMap<OperationType, Arc<Semaphore>>,
}

impl Default for Operations {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

fn shard_of(id: &str) -> usize {
    id.as_bytes()
        .last()
        .and_then(|&b| char::from(b).to_digit(16))
        .map_or(0, |d| d as usize % SHARDS)
}

impl Operations {
    /// A registry with default settings (24 h retention, 2 s grace, no limits).
    pub fn new() -> Self {
        OperationsBuilder::default().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> OperationsBuilder {
        OperationsBuilder::default()
    }

    pub(crate) fn from_builder(
        b: &OperationsBuilder,
        limits: HashMap<OperationType, Arc<Semaphore>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
                seq: AtomicU64::new(0),
                root: RwLock::new(CancellationToken::new()),
                grace_period: b.grace_period,
                retention: b.retention,
                sweep_interval: b.sweep_interval,
                sweeper_started: AtomicBool::new(false),
                max_metrics: b.max_metrics,
                limits,
            }),
        }
    }

    /// The current root token: the parent of every operation's token registered from
    /// now on. [`cancel_all`](Self::cancel_all) cancels it (reaching every operation
    /// under it at once) and puts a fresh root in its place; cancelling it yourself (see
    /// [`shutdown`](Self::shutdown)) cancels every current and future operation.
    pub fn root_token(&self) -> CancellationToken {
        self.shared.root.read().clone()
    }

    pub(crate) fn register(&self, spec: OperationSpec) -> Arc<Entry> {
        let OperationSpec {
            operation_type,
            description,
            metadata,
            total_steps,
            parent_id,
            ..
        } = spec;
        let now = SystemTime::now();
        let id = OperationId::generate_at(&operation_type, now);
        // Held until the entry is in the map (rule 3).
        let root = self.shared.root.read();
        let entry = Arc::new(Entry::new(NewEntry {
            id,
            created_at: now,
            kind: operation_type,
            description,
            seq: self.shared.seq.fetch_add(1, Ordering::Relaxed),
            metadata,
            parent_id,
            total_steps,
            token: root.child_token(),
            metrics_capacity: self.shared.max_metrics,
            observer: None,
        }));
        self.shared.shards[shard_of(entry.id.as_str())]
            .write()
            .insert(entry.id.clone(), entry.clone());
        entry
    }

    pub(crate) fn entry(&self, id: &OperationId) -> Result<Arc<Entry>> {
        self.shared.shards[shard_of(id.as_str())]
            .read()
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))
    }

    /// Registers an operation `PENDING` without running anything: for work driven by
    /// hand (see [`start`](Self::start), [`complete`](Self::complete),
    /// [`fail`](Self::fail), [`context`](Self::context)) or tracked elsewhere.
    pub fn create(&self, spec: OperationSpec) -> OperationId {
        self.register(spec).id.clone()
    }

    /// `PENDING → RUNNING` for an operation driven by hand.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], or [`OrchestratorError::IllegalTransition`] when
    /// it is not `PENDING`.
    pub fn start(&self, id: &OperationId) -> Result<()> {
        self.entry(id)?.start()
    }

    /// Ends a running operation driven by hand with `summary`: `COMPLETED`, or
    /// `CANCELLED` (summary kept) if cancellation was requested. Returns the new status.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], [`OrchestratorError::IllegalTransition`] when it
    /// is not `RUNNING`, [`OrchestratorError::Serialize`] if `summary` cannot be
    /// serialised.
    pub fn complete(&self, id: &OperationId, summary: impl Serialize) -> Result<OperationStatus> {
        let entry = self.entry(id)?;
        let value = serde_json::to_value(summary)?;
        entry.finish(Ending::Returned(Some(value)))
    }

    /// Ends an operation driven by hand as `FAILED` with `message` (or `CANCELLED` if
    /// cancellation was requested). Returns the new status.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], or [`OrchestratorError::IllegalTransition`] when
    /// it already ended.
    pub fn fail(&self, id: &OperationId, message: impl Into<String>) -> Result<OperationStatus> {
        self.entry(id)?.finish(Ending::Errored(message.into()))
    }

    /// A context for reporting progress of an operation driven by hand.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    pub fn context(&self, id: &OperationId) -> Result<OperationContext> {
        Ok(OperationContext::new(self.entry(id)?))
    }

    /// The cancellation token of an operation (every holder sees the same cancellation).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    pub fn token(&self, id: &OperationId) -> Result<CancellationToken> {
        Ok(self.entry(id)?.token.clone())
    }

    /// Registers and spawns a managed operation on the current Tokio runtime, returning
    /// at once. `f` receives the operation's [`OperationContext`]; its result decides
    /// the terminal status (see the crate docs for the outcome rules).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NoRuntime`] outside a Tokio runtime (nothing is registered).
    pub fn spawn<F, Fut, T, E>(&self, spec: OperationSpec, f: F) -> Result<OperationHandle<T, E>>
    where
        F: FnOnce(OperationContext) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
        T: Serialize + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| OrchestratorError::NoRuntime)?;
        self.ensure_sweeper(&runtime);
        let driver = self.driver(spec);
        let entry = driver.entry.clone();
        let join = runtime.spawn(driver.run(f));
        Ok(OperationHandle::new(entry, self.clone(), join))
    }

    /// Registers a managed operation and runs it inline, in the calling task: it is
    /// listed, observable and cancellable like a spawned one, and its typed outcome is
    /// returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use orchestrator::{Operations, OperationSpec, Outcome};
    ///
    /// let ops = Operations::new();
    /// let outcome = ops
    ///     .run(OperationSpec::new("answer"), |_ctx| async { Ok::<_, String>(42) })
    ///     .await;
    /// assert!(matches!(outcome, Outcome::Completed(42)));
    /// # }
    /// ```
    pub async fn run<F, Fut, T, E>(&self, spec: OperationSpec, f: F) -> Outcome<T, E>
    where
        F: FnOnce(OperationContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        T: Serialize,
        E: std::fmt::Display,
    {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.ensure_sweeper(&runtime);
        }
        self.driver(spec).run(f).await
    }

    fn driver(&self, spec: OperationSpec) -> Driver {
        let grace = spec.grace_period.unwrap_or(self.shared.grace_period);
        let deadline = spec.deadline;
        let slot = match self.shared.limits.get(&spec.operation_type) {
            Some(sem) => Slot::queue(sem.clone()),
            None => Slot::Unlimited,
        };
        Driver {
            entry: self.register(spec),
            grace,
            deadline,
            slot,
        }
    }

    /// A snapshot of one operation.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    pub fn get(&self, id: &OperationId) -> Result<OperationInfo> {
        Ok(self.entry(id)?.info())
    }

    /// Waits until the operation reaches a terminal state and returns its final record.
    /// Wakes on the transition itself (no polling).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: wrap it in `tokio::time::timeout` for a bounded wait.
    pub async fn wait(&self, id: &OperationId) -> Result<OperationInfo> {
        let entry = self.entry(id)?;
        entry.finished().await;
        Ok(entry.info())
    }

    /// Operations matching `filter`, newest first, with the total match count and the
    /// registry's active count.
    pub fn list(&self, filter: &OperationFilter) -> OperationList {
        let mut matched: Vec<Arc<Entry>> = Vec::new();
        let mut active_count = 0;
        for shard in &self.shared.shards {
            let shard = shard.read();
            for entry in shard.values() {
                let status = entry.status();
                active_count += usize::from(status.is_active());
                if filter.matches(status, &entry.kind, entry.metadata()) {
                    matched.push(entry.clone());
                }
            }
        }
        let total_count = matched.len();
        let page = filter.limit.min(total_count.saturating_sub(filter.offset));
        let end = (filter.offset + page).min(total_count);
        if filter.offset < total_count && page > 0 {
            // Only the page needs ordering: partition the newest `end` to the front.
            let by_newest = |a: &Arc<Entry>, b: &Arc<Entry>| b.seq.cmp(&a.seq);
            if end < total_count {
                matched.select_nth_unstable_by(end - 1, by_newest);
                matched.truncate(end);
            }
            matched.sort_unstable_by(by_newest);
        }
        let operations = matched
            .get(filter.offset.min(matched.len())..end.min(matched.len()))
            .unwrap_or_default()
            .iter()
            .map(|e| e.info())
            .collect();
        OperationList {
            operations,
            total_count,
            active_count,
        }
    }

    /// How many operations are `PENDING` or `RUNNING`.
    pub fn active_count(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|s| s.read().values().filter(|e| e.status().is_active()).count())
            .sum()
    }

    /// How many operations are registered.
    pub fn len(&self) -> usize {
        self.shared.shards.iter().map(|s| s.read().len()).sum()
    }

    /// `true` when no operation is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests cancellation with `reason` and returns the resulting status: a
    /// `PENDING` operation is `CANCELLED` at once; a `RUNNING` one stays `RUNNING` (with
    /// `cancel_reason` set) until it returns or its grace period ends. Cheap: no
    /// snapshot is built (call [`get`](Self::get) for one).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], or [`OrchestratorError::AlreadyFinished`] when
    /// it already reached a terminal state.
    pub fn cancel(&self, id: &OperationId, reason: &str) -> Result<OperationStatus> {
        self.entry(id)?.cancel(&Arc::from(reason))
    }

    /// Requests cancellation of every active operation with `reason` (operations
    /// already cancelled keep their first reason); returns how many active operations
    /// it reached. Operations registered afterwards are not affected.
    ///
    /// It cancels the root token, which reaches every operation token in one pass,
    /// and puts a fresh root in its place; pending operations end `CANCELLED` at once.
    pub fn cancel_all(&self, reason: &str) -> usize {
        let old = std::mem::take(&mut *self.shared.root.write());
        self.cancel_under(&old, reason)
    }

    /// Cancels the root token and every active operation: operations registered from
    /// now on start cancelled. For process shutdown.
    pub fn shutdown(&self, reason: &str) -> usize {
        let root = self.root_token();
        self.cancel_under(&root, reason)
    }

    fn cancel_under(&self, root: &CancellationToken, reason: &str) -> usize {
        // Count first: cancelled operations end (and stop being active) right away.
        let mut reached = 0;
        let mut pending = Vec::new();
        for shard in &self.shared.shards {
            for entry in shard.read().values() {
                let status = entry.status();
                if status.is_active() && entry.token.is_child_of(root) {
                    reached += 1;
                    if status == OperationStatus::Pending {
                        pending.push(entry.clone());
                    }
                }
            }
        }
        root.cancel_with_reason(reason);
        // Hand-driven pending operations have no driver to notice their token.
        for entry in pending {
            entry.end_if_pending();
        }
        reached
    }

    /// Removes a finished operation and returns its final record.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`], or [`OrchestratorError::StillActive`] for a
    /// `PENDING` or `RUNNING` operation.
    pub fn delete(&self, id: &OperationId) -> Result<OperationInfo> {
        let mut shard = self.shared.shards[shard_of(id.as_str())].write();
        let entry = shard
            .get(id.as_str())
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        let status = entry.status();
        if status.is_active() {
            return Err(OrchestratorError::StillActive {
                id: id.clone(),
                status,
            });
        }
        let entry = shard
            .remove(id.as_str())
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        drop(shard);
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
            shard.retain(|_, e| !e.completed_before(cutoff));
            removed += before - shard.len();
        }
        removed
    }

    /// Metric records of an operation after `cursor` (see [`MetricsPage`]).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    pub fn metrics(&self, id: &OperationId, cursor: u64) -> Result<MetricsPage> {
        Ok(self.entry(id)?.metrics(cursor))
    }

    fn ensure_sweeper(&self, runtime: &tokio::runtime::Handle) {
        let Some(interval) = self.shared.sweep_interval else {
            return;
        };
        if self.shared.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(shared) = weak.upgrade() else { break };
                let ops = Operations { shared };
                let removed = ops.cleanup(ops.shared.retention);
                if removed > 0 {
                    tracing::debug!(removed, "swept finished operations");
                }
            }
        });
    }
}
