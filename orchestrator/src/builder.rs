//! Configuration of an [`Operations`] registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::ledger::Limits;
use crate::{OperationType, Operations};

/// Builds an [`Operations`] registry with non-default settings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use orchestrator::{OperationType, Operations};
///
/// let ops = Operations::builder()
///     .with_retention(Duration::from_secs(3600))
///     .with_grace_period(Duration::from_millis(500))
///     .with_concurrency_limit(OperationType::TRAINING, 1)
///     .with_max_active(500)
///     .with_max_retained(2_000)
///     .build();
/// assert_eq!(ops.list(&Default::default()).total_count, 0);
/// ```
#[derive(Debug, Clone)]
#[must_use = "call `build()` to get the registry"]
pub struct OperationsBuilder {
    pub(crate) retention: Duration,
    pub(crate) sweep_interval: Option<Duration>,
    pub(crate) grace_period: Duration,
    pub(crate) shutdown_drain: Duration,
    pub(crate) limits: Limits,
    pub(crate) concurrency: HashMap<OperationType, usize>,
    pub(crate) flush_interval: Duration,
    pub(crate) lease: Duration,
    pub(crate) exclusive_store: bool,
    pub(crate) write_concurrency: usize,
}

impl Default for OperationsBuilder {
    fn default() -> Self {
        Self {
            retention: Self::DEFAULT_RETENTION,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            grace_period: Self::DEFAULT_GRACE_PERIOD,
            shutdown_drain: Self::DEFAULT_SHUTDOWN_DRAIN,
            limits: Limits::default(),
            concurrency: HashMap::new(),
            flush_interval: Self::DEFAULT_FLUSH_INTERVAL,
            lease: crate::store::DEFAULT_LEASE,
            exclusive_store: false,
            write_concurrency: Self::DEFAULT_WRITE_CONCURRENCY,
        }
    }
}

impl OperationsBuilder {
    /// The default [retention](Self::with_retention) of finished operations: 24 h.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
    /// The default [sweep interval](Self::with_sweep_interval): 10 minutes.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);
    /// The default [grace period](Self::with_grace_period) of a cancelled operation
    /// before it is aborted: 2 s. Also what an operation run outside any registry
    /// ([`OperationContext::run_observed`](crate::OperationContext::run_observed)) gets
    /// when its spec sets none.
    pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(2);
    /// The default [shutdown drain](Self::with_shutdown_drain): 5 s.
    pub const DEFAULT_SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
    /// The default [metric records kept per operation](Self::with_max_metrics_per_operation):
    /// 10 000.
    pub const DEFAULT_MAX_METRICS_PER_OPERATION: usize = 10_000;
    /// The default [most active operations](Self::with_max_active): 10 000.
    pub const DEFAULT_MAX_ACTIVE: usize = 10_000;
    /// The default [most finished operations kept](Self::with_max_retained): 10 000.
    pub const DEFAULT_MAX_RETAINED: usize = 10_000;
    /// The default [most abandoned operations](Self::with_max_abandoned): 64.
    pub const DEFAULT_MAX_ABANDONED: usize = 64;
    /// The default [largest metric record](Self::with_max_metric_bytes): 64 KiB.
    pub const DEFAULT_MAX_METRIC_BYTES: usize = 64 * 1024;
    /// The default [largest checkpoint](Self::with_max_checkpoint_bytes): 1 MiB.
    pub const DEFAULT_MAX_CHECKPOINT_BYTES: usize = 1024 * 1024;
    /// The default [longest cancel reason](Self::with_max_cancel_reason): 1 KiB.
    pub const DEFAULT_MAX_CANCEL_REASON: usize = 1024;
    /// The default [flush interval](Self::with_flush_interval) of a registry with a
    /// store: 1 s.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    /// The default [write concurrency](Self::with_write_concurrency) of a registry
    /// with a store: 8.
    pub const DEFAULT_WRITE_CONCURRENCY: usize = 8;

    /// How long finished operations are kept before the sweeper removes them
    /// (default 24 h).
    pub const fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often the background sweeper runs (default every 10 minutes). The sweeper
    /// starts with the first managed operation and stops when the registry is dropped.
    pub const fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = Some(interval);
        self
    }

    /// No background sweeper; call [`Operations::cleanup`] yourself.
    pub const fn without_sweeper(mut self) -> Self {
        self.sweep_interval = None;
        self
    }

    /// How long a cancelled operation may take to return before it is aborted
    /// (default 2 s).
    pub const fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// How long [`Operations::shutdown`] waits, after the grace period, for cancelled
    /// operations to end before it reports what is left (default 5 s).
    pub const fn with_shutdown_drain(mut self, drain: Duration) -> Self {
        self.shutdown_drain = drain;
        self
    }

    /// At most `max` metric records are kept per operation; older ones are dropped
    /// first (default 10 000).
    pub const fn with_max_metrics_per_operation(mut self, max: usize) -> Self {
        self.limits.max_metrics = max;
        self
    }

    /// At most `max` operations are active (`PENDING` or `RUNNING`, abandoned ones
    /// included) at once; creating or starting one more fails with
    /// [`OrchestratorError::TooManyOperations`](crate::OrchestratorError::TooManyOperations)
    /// (429 over HTTP) and registers nothing (default 10 000).
    pub const fn with_max_active(mut self, max: usize) -> Self {
        self.limits.max_active = max;
        self
    }

    /// At most `max` finished operations are kept; when one more finishes, the one that
    /// finished first is removed (default 10 000). This is on top of the age-based
    /// [retention](Self::with_retention).
    pub const fn with_max_retained(mut self, max: usize) -> Self {
        self.limits.max_retained = max;
        self
    }

    /// While `max` or more operations are abandoned (cancelled, but with
    /// `spawn_blocking` work that ignored it still running; see
    /// [`OperationContext::spawn_blocking`](crate::OperationContext::spawn_blocking)), new
    /// operations are refused with
    /// [`OrchestratorError::AbandonedWorkLimit`](crate::OrchestratorError::AbandonedWorkLimit)
    /// (503 over HTTP) instead of queueing behind stuck threads (default 64; Tokio's
    /// blocking pool has 512 threads unless configured otherwise).
    pub const fn with_max_abandoned(mut self, max: usize) -> Self {
        self.limits.max_abandoned = max;
        self
    }

    /// Metric records whose JSON is larger than `bytes` are refused (default 64 KiB).
    pub const fn with_max_metric_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_metric_bytes = bytes;
        self
    }

    /// Checkpoints whose JSON is larger than `bytes` are refused by
    /// [`OperationContext::save_checkpoint`](crate::OperationContext::save_checkpoint)
    /// (default 1 MiB): a checkpoint is written through at every save, so keep large
    /// state (model weights) in files and checkpoint their paths.
    pub const fn with_max_checkpoint_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_checkpoint_bytes = bytes;
        self
    }

    /// Cancel reasons longer than `bytes` are refused by [`Operations::cancel`]
    /// (default 1 KiB); `cancel_all` and `shutdown` truncate theirs instead.
    pub const fn with_max_cancel_reason(mut self, bytes: usize) -> Self {
        self.limits.max_cancel_reason = bytes;
        self
    }

    /// At most `limit` operations of `kind` run at once; further starts wait `PENDING`
    /// and run in FIFO order. A limit of 0 is treated as 1.
    pub fn with_concurrency_limit(mut self, kind: impl Into<OperationType>, limit: usize) -> Self {
        self.concurrency.insert(kind.into(), limit.max(1));
        self
    }

    /// With a store ([`open`](Self::open)): how often the progress and metrics of
    /// running operations are written, in one batch, and the cancels requested by
    /// other replicas are picked up (default 1 s). Progress updates never wait on it.
    /// A zero interval is taken as 1 ms.
    pub const fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = if interval.is_zero() {
            Duration::from_millis(1)
        } else {
            interval
        };
        self
    }

    /// With a store: how long this process's lease lasts (default 10 s, renewed by
    /// every flush). Once it expired, another replica declares this process's
    /// operations interrupted. Keep it several flush intervals long. A lease shorter
    /// than twice the flush interval is raised to that.
    pub const fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// With a store: this process is the only one using it (one node, the embedded
    /// SQLite case). At [`open`](Self::open), every operation an earlier run left
    /// `PENDING` or `RUNNING` is failed as `interrupted` at once, without waiting for
    /// its lease to expire. Do not set it when replicas share the store: it would
    /// interrupt theirs.
    pub const fn with_exclusive_store(mut self) -> Self {
        self.exclusive_store = true;
        self
    }

    /// With a store: how many operations' lifecycle writes (create, start, end) are
    /// applied at once (default 8; PostgreSQL's pool has 8 connections). The writes
    /// of one operation are always applied one after another, in order. 0 is taken
    /// as 1.
    pub const fn with_write_concurrency(mut self, writers: usize) -> Self {
        self.write_concurrency = if writers == 0 { 1 } else { writers };
        self
    }

    /// Builds the registry. Needs no runtime.
    pub fn build(self) -> Operations {
        Operations::from_builder(&self, self.semaphores(), None)
    }

    fn semaphores(&self) -> HashMap<OperationType, Arc<Semaphore>> {
        self.concurrency
            .iter()
            .map(|(k, &n)| (k.clone(), Arc::new(Semaphore::new(n))))
            .collect()
    }

    /// Builds a registry whose operations are kept in `store`: they outlive the
    /// process, and every replica on the same store sees and can cancel them (see
    /// [`store`](crate::store) for the model, and [`Operations::cluster`] for the
    /// reads across replicas).
    ///
    /// It registers a fresh instance (a random id, with the [lease](Self::with_lease)),
    /// then fails the operations that were left running by dead instances: all
    /// earlier ones with [`with_exclusive_store`](Self::with_exclusive_store), else
    /// those whose lease expired. Then it starts the store thread: the lifecycle
    /// writer, the [flush](Self::with_flush_interval), the orphan sweep (every flush
    /// interval) and pruning (every lease), and the cancel listener where the store
    /// has one.
    ///
    /// # Errors
    ///
    /// The store's error when it cannot be reached at start (the caller should exit
    /// rather than serve an empty registry), or [`StoreError::Database`](crate::store::StoreError::Database) when the
    /// store thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use orchestrator::store::MemoryStore;
    /// use orchestrator::{Operations, OperationSpec, OperationStatus};
    ///
    /// // Two replicas sharing one store (a `PostgresStore` in production).
    /// let store = Arc::new(MemoryStore::new());
    /// let a = Operations::builder().open(store.clone()).await?;
    /// let b = Operations::builder().open(store).await?;
    ///
    /// let handle = a.spawn(OperationSpec::new("nap"), |ctx| async move {
    ///     ctx.sleep(std::time::Duration::from_secs(60)).await
    /// })?;
    /// let id = handle.id().clone();
    /// handle.persisted().await; // the create is in the store
    ///
    /// // B sees A's operation and cancels it; A's flush picks the request up.
    /// assert_eq!(b.cluster().get(&id).await?.status.is_active(), true);
    /// b.cluster().cancel(&id, "not needed").await?;
    /// let done = b.cluster().wait(&id).await?;
    /// assert_eq!(done.status, OperationStatus::Cancelled);
    /// assert_eq!(done.cancel_reason.as_deref(), Some("not needed"));
    /// # Ok(()) }
    /// ```
    pub async fn open(
        self,
        store: Arc<dyn crate::store::OperationStore>,
    ) -> Result<Operations, crate::store::StoreError> {
        use crate::store::{InstanceId, OrphanScope};
        let me = InstanceId::generate();
        let lease = self.lease.max(self.flush_interval.saturating_mul(2));
        let now = std::time::SystemTime::now();
        store.register_instance(me, lease, now).await?;
        let scope = if self.exclusive_store {
            OrphanScope::AllBut(me)
        } else {
            OrphanScope::ExpiredLeases
        };
        let failed = store.fail_orphans(scope, now).await?;
        if !failed.is_empty() {
            tracing::warn!(
                count = failed.len(),
                "operations left running by an earlier instance were marked FAILED (interrupted)"
            );
        }
        let config = crate::durable::DurableConfig {
            flush_interval: self.flush_interval,
            lease,
            write_lanes: self.write_concurrency,
        };
        let (durable, writes) = crate::durable::Durable::new(store, me, config);
        // Cancelled when the registry is dropped: the store thread's loops end.
        let stop = tokio_util::sync::CancellationToken::new();
        let ops = Operations::from_builder(
            &self,
            self.semaphores(),
            Some((durable.clone(), stop.clone().drop_guard())),
        );
        crate::durable::start_thread(
            ops.downgrade(),
            durable,
            writes,
            self.retention,
            self.limits.max_retained,
            stop,
        )
        .map_err(|e| crate::store::StoreError::Database(Box::new(e)))?;
        Ok(ops)
    }
}
