//! The periodic flush: batched progress and metrics, the lease heartbeat, and the
//! cancel requests it brings back.

use std::time::{Duration, SystemTime};

use crate::{OperationId, OperationProgress};

use super::InstanceId;

/// One flush of an instance: the progress and metrics of its running operations since
/// the last flush, written in one batch. It doubles as the instance's heartbeat (it
/// renews, or first registers, its lease) and brings back the cancels requested for
/// its operations.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use orchestrator::store::{Flush, InstanceId, MetricBatch, ProgressUpdate};
/// use orchestrator::{OperationId, OperationProgress, OperationType};
///
/// let id = OperationId::generate(&OperationType::TRAINING);
/// let mut progress = OperationProgress::default();
/// progress.percentage = 40.0;
/// let flush = Flush::new(InstanceId::generate(), Duration::from_secs(10), SystemTime::now())
///     .with_progress(ProgressUpdate::new(id.clone(), 1, progress))
///     .with_metrics(MetricBatch::new(id, 1, 0, vec![serde_json::json!({"loss": 0.5})]));
/// assert_eq!((flush.progress.len(), flush.metrics.len()), (1, 1));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Flush {
    /// The flushing instance: the owner every update is fenced on.
    pub instance: InstanceId,
    /// How long its lease lasts from `now`.
    pub lease: Duration,
    /// The instance's clock when it flushed.
    pub now: SystemTime,
    /// Latest progress of its active operations.
    pub progress: Vec<ProgressUpdate>,
    /// Metric records appended since the last flush.
    pub metrics: Vec<MetricBatch>,
}

impl Flush {
    /// A flush by `instance` at `now` that renews its lease for `lease` and carries no
    /// updates yet (alone, it is a heartbeat).
    pub const fn new(instance: InstanceId, lease: Duration, now: SystemTime) -> Self {
        Self {
            instance,
            lease,
            now,
            progress: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// Adds one operation's progress.
    #[must_use]
    pub fn with_progress(mut self, update: ProgressUpdate) -> Self {
        self.progress.push(update);
        self
    }

    /// Adds one operation's new metric records.
    #[must_use]
    pub fn with_metrics(mut self, batch: MetricBatch) -> Self {
        self.metrics.push(batch);
        self
    }
}

/// The latest progress of one operation, in a [`Flush`]. Written only while the
/// operation is active and owned by the flushing instance at `attempt`; a late
/// update after the end is ignored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProgressUpdate {
    /// The operation.
    pub operation_id: OperationId,
    /// The attempt that reports it.
    pub attempt: u32,
    /// The progress.
    pub progress: OperationProgress,
}

impl ProgressUpdate {
    /// `progress` of `operation_id`'s `attempt`.
    pub const fn new(operation_id: OperationId, attempt: u32, progress: OperationProgress) -> Self {
        Self {
            operation_id,
            attempt,
            progress,
        }
    }
}

/// Metric records of one operation, in a [`Flush`], each with its cursor index.
///
/// Records are stored under `(operation, index)` and a record already stored under
/// an index is replaced, not appended again, so a flush retried after a timeout
/// (which may or may not have been written) never duplicates a record. Metrics are
/// accepted from the owner at `attempt` whatever the status, so the records a flush
/// carries after the operation ended are kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricBatch {
    /// The operation.
    pub operation_id: OperationId,
    /// The attempt that produced them.
    pub attempt: u32,
    /// The cursor index of `records[0]`: how many records the operation had appended
    /// before it (the registry's metrics cursor at the previous flush).
    pub first_index: u64,
    /// The records, oldest first.
    pub records: Vec<serde_json::Value>,
}

impl MetricBatch {
    /// `records` of `operation_id`'s `attempt`, the first at cursor index `first_index`.
    pub const fn new(
        operation_id: OperationId,
        attempt: u32,
        first_index: u64,
        records: Vec<serde_json::Value>,
    ) -> Self {
        Self {
            operation_id,
            attempt,
            first_index,
            records,
        }
    }
}

/// What a [`Flush`] brings back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReply {
    /// The instance's lease now runs until then.
    pub lease_expires_at: SystemTime,
    /// Cancels requested for the instance's active operations (only its own). Each
    /// comes back on every flush until the owner records the end, so one lost
    /// notification is made good by the next flush.
    pub cancels: Vec<CancelRequest>,
    /// Operations whose progress update was not written because the flushing instance
    /// no longer owns them at that attempt, or they already ended (for instance
    /// declared orphans while this instance could not reach the store). The owner
    /// should stop treating them as its own.
    pub rejected: Vec<OperationId>,
}

/// A cancel requested through the store (e.g. by another replica), returned to the
/// owner by [`FlushReply::cancels`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelRequest {
    /// The operation.
    pub operation_id: OperationId,
    /// The attempt it was requested for.
    pub attempt: u32,
    /// Why.
    pub reason: String,
    /// When.
    pub requested_at: SystemTime,
}
