//! The registry: the single source of truth about operations.
//!
//! Locking rules:
//! 1. The map is split into 16 shards chosen by the id's sequence number, the counter
//!    its suffix is a bijection of (uniform; see `shard_of`). A shard lock is held only
//!    to insert, remove or clone an `Arc<Entry>` out; entry locks are never taken while
//!    a shard lock is held, except the status atomic read by `list` and `cleanup`.
//! 2. Per-entry rules are in `entry.rs`.
//! 3. `register` holds the root's read lock from creating the operation's child token
//!    until the entry is in its shard; `cancel_all` swaps the root under the write lock
//!    and only then scans the shards. So every operation under a root being cancelled
//!    is in the map when the scan runs. (Order: root, then shard; nothing takes the
//!    root while holding a shard.)
//! 4. The ledger (`ledger.rs`) counts active and retained operations with atomics; its
//!    queue of finished ids is never locked while a shard lock is held, nor the
//!    reverse: eviction pops ids from the queue, then removes them shard by shard.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::builder::OperationsBuilder;
use crate::driver::{Driver, Slot};
use crate::durable::{Durable, Step};
use crate::entry::Remote;
use crate::entry::{Ending, Entry, NewEntry};
use crate::ledger::{Ledger, Refusal};
use crate::metrics::MetricsPage;
use crate::registry::shard::Shard;
use crate::{
    CancellationToken, Failure, OperationContext, OperationFilter, OperationHandle, OperationId,
    OperationInfo, OperationList, OperationSpec, OperationStatus, OperationType, OrchestratorError,
    Outcome, Result,
};
use crate::{OperationError, OperationFn, OperationFuture, OperationValue, OperationView};

pub(crate) const SHARDS: usize = 16;

/// An entry ordered by its sequence number alone (for `list`'s top-k heap).
struct Newest(u64, Arc<Entry>);

impl PartialEq for Newest {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Newest {}

impl PartialOrd for Newest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Newest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

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
/// let handle = ops.spawn(OperationSpec::new(OperationType::DUMMY).with_total_steps(3), |ctx: OperationContext| async move {
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
    pub(super) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(super) shards: [RwLock<Shard>; SHARDS],
    seq: AtomicU64,
    /// Replaced by `cancel_all` (which cancels the old one), never by `shutdown`.
    pub(super) root: RwLock<CancellationToken>,
    pub(crate) grace_period: Duration,
    pub(crate) shutdown_drain: Duration,
    pub(crate) retention: Duration,
    sweep_interval: Option<Duration>,
    sweeper_started: AtomicBool,
    pub(crate) sweeper: crate::registry::sweeper::Stop,
    pub(crate) ledger: Arc<Ledger>,
    limits: HashMap<OperationType, Arc<Semaphore>>,
    /// The fns that resume operations, by kind.
    pub(crate) resumers: crate::registry::resume::Resumers,
    /// Stops the store thread when the registry is dropped.
    _store_stop: Option<tokio_util::sync::DropGuard>,
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

/// The shard of an id: its sequence number's remainder, so that the ids one shard
/// holds are every `SHARDS`-th in the order they were generated, which the shard's
/// hash (`id_hash`) places in blocks of consecutive buckets.
pub(crate) fn shard_of(id: &OperationId) -> usize {
    id.sequence() as usize % SHARDS
}

impl Operations {
    /// A registry with default settings: 24 h retention, 2 s grace, at most 10 000
    /// active and 10 000 retained finished operations, no per-type concurrency limit
    /// (see [`OperationsBuilder`] for each).
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
        durable: Option<(Arc<Durable>, tokio_util::sync::DropGuard)>,
    ) -> Self {
        let (durable, store_stop) = durable.unzip();
        Self {
            shared: Arc::new_cyclic(|registry| Shared {
                shards: std::array::from_fn(|_| RwLock::new(Shard::default())),
                seq: AtomicU64::new(0),
                root: RwLock::new(CancellationToken::new()),
                grace_period: b.grace_period,
                shutdown_drain: b.shutdown_drain,
                retention: b.retention,
                sweep_interval: b.sweep_interval,
                sweeper_started: AtomicBool::new(false),
                sweeper: crate::registry::sweeper::Stop::default(),
                ledger: Arc::new(Ledger::new(b.limits, durable, registry.clone())),
                limits,
                resumers: crate::registry::resume::Resumers::default(),
                _store_stop: store_stop,
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

    /// Registers a new `PENDING` entry, unless a limit refuses it.
    pub(crate) fn register(&self, spec: OperationSpec) -> Result<Arc<Entry>> {
        self.register_entry(spec, None)
    }

    /// [`register`](Self::register), for a proxy when `remote` is set.
    pub(crate) fn register_entry(
        &self,
        spec: OperationSpec,
        remote: Option<Box<Remote>>,
    ) -> Result<Arc<Entry>> {
        self.register_with(spec, remote, None)
    }

    /// [`register_entry`](Self::register_entry), as a child of `parent` (its token a
    /// child of the parent's, its progress told to `observer`) when given.
    pub(crate) fn register_with(
        &self,
        spec: OperationSpec,
        remote: Option<Box<Remote>>,
        parent: Option<(&CancellationToken, Option<crate::entry::ProgressObserver>)>,
    ) -> Result<Arc<Entry>> {
        let ledger = &self.shared.ledger;
        // While the store fails (it has a last error), new operations are refused.
        if let Some(reason) = ledger.durable.as_ref().and_then(|d| d.health.last_error()) {
            return Err(OrchestratorError::StoreUnavailable { reason });
        }
        self.admit()?;
        let OperationSpec {
            operation_type,
            description,
            metadata,
            total_steps,
            parent_id,
            ..
        } = spec;
        let (parent_token, observer) = parent.unzip();
        let now = SystemTime::now();
        let id = OperationId::generate_at(&operation_type, now);
        // Held until the entry is in the map (rule 3).
        let root = self.shared.root.read();
        let entry = Arc::new(Entry::new(NewEntry {
            id,
            created_at: now,
            kind: operation_type,
            description,
            seq: self.next_seq(),
            metadata,
            parent_id,
            total_steps,
            token: parent_token.unwrap_or(&root).child_token(),
            ledger: Some(ledger.clone()),
            observer: observer.flatten(),
            remote,
            attempt: 1,
            resumed_from: None,
            in_store: false,
            metrics: None,
        }));
        self.shared.shards[shard_of(&entry.id)]
            .write()
            .insert(entry.clone());
        drop(root);
        if let Some(durable) = &ledger.durable {
            durable.record(Step::Create, entry.clone());
            crate::durable::ack::created(&entry);
        }
        Ok(entry)
    }

    /// Counts one more active operation, unless a limit refuses it (evicting the
    /// oldest finished ones first when too many are kept).
    pub(crate) fn admit(&self) -> Result<()> {
        let ledger = &self.shared.ledger;
        if ledger.over_retained() {
            self.evict_excess();
        }
        ledger.admit().map_err(|refusal| match refusal {
            Refusal::Active { active, limit } => {
                OrchestratorError::TooManyOperations { active, limit }
            }
            Refusal::Abandoned { abandoned, limit } => {
                OrchestratorError::AbandonedWorkLimit { abandoned, limit }
            }
        })
    }

    /// The next sequence number (list order).
    pub(crate) fn next_seq(&self) -> u64 {
        self.shared.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn entry(&self, id: &OperationId) -> Result<Arc<Entry>> {
        self.shared.shards[shard_of(id)]
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))
    }

    /// Registers an operation `PENDING` without running anything: for work driven by
    /// hand (see [`start`](Self::start), [`complete`](Self::complete),
    /// [`fail`](Self::fail), [`context`](Self::context)) or tracked elsewhere.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::TooManyOperations`] or
    /// [`OrchestratorError::AbandonedWorkLimit`] when a limit is reached (nothing is
    /// registered).
    pub fn create(&self, spec: OperationSpec) -> Result<OperationId> {
        Ok(self.register(spec)?.id.clone())
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
    /// [`OrchestratorError::NoRuntime`] outside a Tokio runtime;
    /// [`OrchestratorError::TooManyOperations`] or
    /// [`OrchestratorError::AbandonedWorkLimit`] when a limit is reached. Nothing is
    /// registered then.
    pub fn spawn<F, Fut, T, E>(&self, spec: OperationSpec, f: F) -> Result<OperationHandle<T, E>>
    where
        F: OperationFn<Fut>,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
        self.spawn_with(spec, None, f)
    }

    /// [`spawn`](Self::spawn), as a child when `parent` is given: its token a child
    /// of the parent's, its progress told to the observer.
    pub(crate) fn spawn_with<F, Fut, T, E>(
        &self,
        spec: OperationSpec,
        parent: Option<(&CancellationToken, Option<crate::entry::ProgressObserver>)>,
        f: F,
    ) -> Result<OperationHandle<T, E>>
    where
        F: OperationFn<Fut>,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| OrchestratorError::NoRuntime)?;
        self.ensure_sweeper();
        let driver = self.driver_with(spec, parent)?;
        let entry = driver.entry.clone();
        let join = runtime.spawn(driver.run(f));
        Ok(OperationHandle::new(entry, self.clone(), join))
    }

    /// Registers a managed operation and runs it inline, in the calling task: it is
    /// listed, observable and cancellable like a spawned one, and its typed outcome is
    /// returned. When a limit refuses it, the outcome is
    /// [`Failure::Refused`](crate::Failure::Refused) and nothing is registered.
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
        self.ensure_sweeper();
        match self.driver(spec) {
            Ok(driver) => driver.run(f).await,
            Err(e) => Outcome::Failed(Failure::Refused(e)),
        }
    }

    /// A place under the concurrency limit of `entry`'s kind, queued now.
    pub(crate) fn slot(&self, entry: &Entry) -> Slot {
        match self.shared.limits.get(&entry.kind) {
            Some(sem) => Slot::queue(sem.clone(), entry.token.clone()),
            None => Slot::Unlimited,
        }
    }

    fn driver(&self, spec: OperationSpec) -> Result<Driver> {
        self.driver_with(spec, None)
    }

    /// The driver of a new operation, a child of `parent` when given.
    pub(crate) fn driver_with(
        &self,
        spec: OperationSpec,
        parent: Option<(&CancellationToken, Option<crate::entry::ProgressObserver>)>,
    ) -> Result<Driver> {
        let grace = spec.grace_period.unwrap_or(self.shared.grace_period);
        let deadline = spec.deadline;
        let entry = self.register_with(spec, None, parent)?;
        Ok(Driver {
            slot: self.slot(&entry),
            entry,
            grace,
            deadline,
        })
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

    /// Lets `f` look at one operation's record without copying it: no allocation
    /// for what a caller reads through the [`OperationView`] (a status, a
    /// percentage, the step message), where [`get`](Self::get) builds a whole
    /// [`OperationInfo`]. `f` runs with no registry lock held.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> orchestrator::Result<()> {
    /// use orchestrator::{OperationSpec, Operations};
    ///
    /// let ops = Operations::new();
    /// let handle = ops.spawn(OperationSpec::new("nap"), |ctx| async move {
    ///     ctx.cancelled().await;
    ///     Ok::<_, String>(())
    /// })?;
    /// assert!(ops.with_info(handle.id(), |op| op.status().is_active())?);
    /// # Ok(()) }
    /// ```
    pub fn with_info<R>(
        &self,
        id: &OperationId,
        f: impl FnOnce(&OperationView<'_>) -> R,
    ) -> Result<R> {
        let entry = self.entry(id)?;
        Ok(f(&OperationView::new(&entry)))
    }

    /// Waits until the operation reaches a terminal state, then lets `f` look at its
    /// final record without copying it (see [`with_info`](Self::with_info)): many
    /// waiters on one operation each read what they need, none builds a snapshot.
    /// Wakes on the transition itself (no polling).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe, as [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> orchestrator::Result<()> {
    /// use orchestrator::{OperationSpec, OperationStatus, Operations};
    ///
    /// let ops = Operations::new();
    /// let handle = ops.spawn(OperationSpec::new("quick"), |_ctx| async { Ok::<_, String>(()) })?;
    /// let status = ops.wait_with(handle.id(), |op| op.status()).await?;
    /// assert_eq!(status, OperationStatus::Completed);
    /// # Ok(()) }
    /// ```
    pub async fn wait_with<R>(
        &self,
        id: &OperationId,
        f: impl FnOnce(&OperationView<'_>) -> R,
    ) -> Result<R> {
        let entry = self.entry(id)?;
        entry.finished().await;
        Ok(f(&OperationView::new(&entry)))
    }

    /// Operations matching `filter`, newest first, with the total match count and the
    /// registry's active count.
    pub fn list(&self, filter: &OperationFilter) -> OperationList {
        // Only the newest `offset + limit` matches can be on the page: keep those in a
        // min-heap by sequence number while counting every match, so a page of 100
        // out of 10,000 matches holds (and clones) a few hundred entries, not all.
        let keep = filter.offset.saturating_add(filter.limit);
        let mut newest: BinaryHeap<Reverse<Newest>> = BinaryHeap::new();
        let mut total_count = 0;
        let mut active_count = 0;
        for shard in &self.shared.shards {
            let shard = shard.read();
            for entry in shard.values() {
                let status = entry.status();
                active_count += usize::from(status.is_active());
                if !filter.matches(status, &entry.kind, entry.metadata(), entry.parent_id()) {
                    continue;
                }
                total_count += 1;
                if keep == 0 {
                    continue;
                }
                if newest.len() < keep {
                    newest.push(Reverse(Newest(entry.seq, entry.clone())));
                } else if newest.peek().is_some_and(|Reverse(min)| min.0 < entry.seq) {
                    newest.pop();
                    newest.push(Reverse(Newest(entry.seq, entry.clone())));
                }
            }
        }
        // Ascending by `Reverse`: newest first.
        let operations = newest
            .into_sorted_vec()
            .iter()
            .skip(filter.offset)
            .take(filter.limit)
            .map(|Reverse(Newest(_, entry))| entry.info())
            .collect();
        OperationList {
            operations,
            total_count,
            active_count,
        }
    }

    /// How many operations are `PENDING` or `RUNNING` (abandoned ones included: see
    /// [`abandoned_count`](Self::abandoned_count)).
    pub fn active_count(&self) -> usize {
        self.shared.ledger.active()
    }

    /// How many operations are abandoned: cancelled, their async part dropped after
    /// the grace period, with `spawn_blocking` work that ignored the cancellation still
    /// running (see [`OperationInfo::abandoned`]). They stay `RUNNING` until it returns.
    pub fn abandoned_count(&self) -> usize {
        self.shared.ledger.abandoned_count()
    }

    /// How many operations are registered.
    pub fn len(&self) -> usize {
        self.shared.shards.iter().map(|s| s.read().len()).sum()
    }

    /// `true` when no operation is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries of every active operation.
    pub(crate) fn active_entries(&self) -> Vec<Arc<Entry>> {
        let mut active = Vec::new();
        for shard in &self.shared.shards {
            active.extend(
                shard
                    .read()
                    .values()
                    .filter(|e| e.status().is_active())
                    .cloned(),
            );
        }
        active
    }

    /// Metric records of an operation after `cursor` (see [`MetricsPage`]).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NotFound`].
    pub fn metrics(&self, id: &OperationId, cursor: u64) -> Result<MetricsPage> {
        Ok(self.entry(id)?.metrics(cursor))
    }

    /// Starts the background sweeper with the first managed operation. It runs on a
    /// thread of its own, not on a runtime: a runtime that goes away (the temporary one
    /// of [`run_sync`](Self::run_sync), a test's) must not take the sweeper with it.
    pub(crate) fn ensure_sweeper(&self) {
        let Some(interval) = self.shared.sweep_interval else {
            return;
        };
        if self.shared.sweeper_started.load(Ordering::Acquire)
            || self.shared.sweeper_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        crate::registry::sweeper::start(Arc::downgrade(&self.shared), interval);
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}
