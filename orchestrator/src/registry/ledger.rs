//! What every entry of a registry shares with it: the counts behind its resource
//! limits, and the order in which operations finished (for evicting the oldest).
//!
//! Locking rules:
//! 1. The counters are atomics, read and written without a lock.
//! 2. `finished` is locked only to push or pop ids; no other lock is taken while it is
//!    held (eviction pops the ids first, then removes them from the shards).
//! 3. What both an operation's start and its end write (`active`, `retained`,
//!    `finished`) lives apart from what a start only reads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::durable::Durable;
use crate::operations::Shared;
use crate::{OperationId, Operations, OperationsBuilder};

/// The registry-wide counts and limits an [`Entry`](crate::entry::Entry) updates when
/// it ends.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// What every start and end writes, on cache lines of its own (rule 3).
    counts: Counts,
    /// Operations whose async part was dropped while blocking work still runs.
    abandoned: AtomicUsize,
    pub(crate) limits: Limits,
    /// The registry's store, if it has one: entries queue their lifecycle writes here.
    pub(crate) durable: Option<Arc<Durable>>,
    /// The registry itself, for an operation that starts children.
    registry: Weak<Shared>,
}

/// The counts an operation's start (on the spawner's thread) and end (on the worker
/// that ran it) both write, apart from what each admission only reads (the limits,
/// the abandoned count, the `Arc`'s own reference counts): sharing a cache line with
/// these, every admission's reads would miss after every end elsewhere. 128 bytes:
/// x86 fetches lines in pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counts {
    /// `PENDING` and `RUNNING` operations (abandoned ones included).
    active: AtomicUsize,
    /// Finished operations still in the map.
    retained: AtomicUsize,
    /// Ids in the order their operations finished; may hold ids already removed
    /// (deleted, swept), which eviction skips.
    finished: Mutex<VecDeque<OperationId>>,
}

/// The resource limits of a registry (see [`OperationsBuilder`](crate::OperationsBuilder)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_active: usize,
    pub(crate) max_retained: usize,
    pub(crate) max_abandoned: usize,
    pub(crate) max_metrics: usize,
    pub(crate) max_metric_bytes: usize,
    pub(crate) max_checkpoint_bytes: usize,
    pub(crate) max_cancel_reason: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_active: OperationsBuilder::DEFAULT_MAX_ACTIVE,
            max_retained: OperationsBuilder::DEFAULT_MAX_RETAINED,
            max_abandoned: OperationsBuilder::DEFAULT_MAX_ABANDONED,
            max_metrics: OperationsBuilder::DEFAULT_MAX_METRICS_PER_OPERATION,
            max_metric_bytes: OperationsBuilder::DEFAULT_MAX_METRIC_BYTES,
            max_checkpoint_bytes: OperationsBuilder::DEFAULT_MAX_CHECKPOINT_BYTES,
            max_cancel_reason: OperationsBuilder::DEFAULT_MAX_CANCEL_REASON,
        }
    }
}

/// Why a new operation was refused.
pub(crate) enum Refusal {
    Active { active: usize, limit: usize },
    Abandoned { abandoned: usize, limit: usize },
}

impl Ledger {
    /// The registry, while it exists.
    pub(crate) fn registry(&self) -> Option<Operations> {
        self.registry.upgrade().map(Operations::from_shared)
    }

    pub(crate) fn new(
        limits: Limits,
        durable: Option<Arc<Durable>>,
        registry: Weak<Shared>,
    ) -> Self {
        Self {
            counts: Counts::default(),
            abandoned: AtomicUsize::new(0),
            limits,
            durable,
            registry,
        }
    }

    /// Counts a new active operation, unless a limit refuses it.
    pub(crate) fn admit(&self) -> Result<(), Refusal> {
        let abandoned = self.abandoned.load(Ordering::Acquire);
        if abandoned >= self.limits.max_abandoned {
            return Err(Refusal::Abandoned {
                abandoned,
                limit: self.limits.max_abandoned,
            });
        }
        let before = self.counts.active.fetch_add(1, Ordering::AcqRel);
        if before >= self.limits.max_active {
            self.counts.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Active {
                active: before,
                limit: self.limits.max_active,
            });
        }
        Ok(())
    }

    /// Takes back an admission that registered nothing.
    pub(crate) fn unadmit(&self) {
        self.counts.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// An operation reached its terminal state (exactly once per operation).
    pub(crate) fn finished(&self, id: &OperationId, was_abandoned: bool) {
        if was_abandoned {
            self.abandoned.fetch_sub(1, Ordering::AcqRel);
        }
        self.counts.finished.lock().push_back(id.clone());
        self.counts.retained.fetch_add(1, Ordering::AcqRel);
        self.counts.active.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::AcqRel);
    }

    /// Finished operations were removed from the map (deleted or swept).
    pub(crate) fn removed(&self, n: usize) {
        self.counts.retained.fetch_sub(n, Ordering::AcqRel);
    }

    pub(crate) fn active(&self) -> usize {
        self.counts.active.load(Ordering::Acquire)
    }

    pub(crate) fn abandoned_count(&self) -> usize {
        self.abandoned.load(Ordering::Acquire)
    }

    /// More finished operations are retained than the limit allows.
    pub(crate) fn over_retained(&self) -> bool {
        self.counts.retained.load(Ordering::Acquire) > self.limits.max_retained
    }

    /// Evicts finished operations, oldest first, until at most `max_retained` stay:
    /// `remove` is called for each queued id and says whether it was still in the map.
    pub(crate) fn evict_excess(&self, mut remove: impl FnMut(&OperationId) -> bool) {
        while self.over_retained() {
            let Some(id) = self.counts.finished.lock().pop_front() else {
                break;
            };
            if remove(&id) {
                self.counts.retained.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// After removals by id or age, drops queued ids of operations that are gone
    /// (`contains` says which are still there) once they outnumber the retained ones,
    /// so the queue stays bounded.
    pub(crate) fn compact(&self, contains: impl Fn(&OperationId) -> bool) {
        let queued = self.counts.finished.lock().len();
        if queued <= 2 * self.counts.retained.load(Ordering::Acquire) + 1024 {
            return;
        }
        // Filter outside the lock; ids pushed meanwhile stay behind the kept ones.
        let old = std::mem::take(&mut *self.counts.finished.lock());
        let kept: Vec<OperationId> = old.into_iter().filter(|id| contains(id)).collect();
        let mut queue = self.counts.finished.lock();
        for id in kept.into_iter().rev() {
            queue.push_front(id);
        }
    }
}
