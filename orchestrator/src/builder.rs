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
    /// The default [longest cancel reason](Self::with_max_cancel_reason): 1 KiB.
    pub const DEFAULT_MAX_CANCEL_REASON: usize = 1024;

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

    /// Builds the registry. Needs no runtime.
    pub fn build(self) -> Operations {
        let limits = self
            .concurrency
            .iter()
            .map(|(k, &n)| (k.clone(), Arc::new(Semaphore::new(n))))
            .collect();
        Operations::from_builder(&self, limits)
    }
}
