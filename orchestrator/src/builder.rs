//! Configuration of an [`Operations`] registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

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
///     .with_concurrency_limit(OperationType::Training, 1)
///     .build();
/// assert_eq!(ops.list(&Default::default()).total_count, 0);
/// ```
#[derive(Debug, Clone)]
#[must_use = "call `build()` to get the registry"]
pub struct OperationsBuilder {
    pub(crate) retention: Duration,
    pub(crate) sweep_interval: Option<Duration>,
    pub(crate) grace_period: Duration,
    pub(crate) max_metrics: usize,
    pub(crate) limits: HashMap<OperationType, usize>,
}

impl Default for OperationsBuilder {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 60 * 60),
            sweep_interval: Some(Duration::from_secs(10 * 60)),
            grace_period: Duration::from_secs(2),
            max_metrics: 10_000,
            limits: HashMap::new(),
        }
    }
}

impl OperationsBuilder {
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

    /// At most `max` metric records are kept per operation; older ones are dropped
    /// first (default 10 000).
    pub const fn with_max_metrics_per_operation(mut self, max: usize) -> Self {
        self.max_metrics = max;
        self
    }

    /// At most `limit` operations of `kind` run at once; further starts wait `PENDING`
    /// and run in FIFO order. A limit of 0 is treated as 1.
    pub fn with_concurrency_limit(mut self, kind: impl Into<OperationType>, limit: usize) -> Self {
        self.limits.insert(kind.into(), limit.max(1));
        self
    }

    /// Builds the registry. Needs no runtime.
    pub fn build(self) -> Operations {
        let limits = self
            .limits
            .iter()
            .map(|(k, &n)| (k.clone(), Arc::new(Semaphore::new(n))))
            .collect();
        Operations::from_builder(&self, limits)
    }
}
