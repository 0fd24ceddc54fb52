//! The registry's link to an [`OperationStore`]: what makes its operations outlive
//! the process and visible to other replicas.
//!
//! - [`journal`]: the lifecycle writes (create, start, end), queued by the entries as
//!   they commit in memory and applied in order by writer lanes (an operation's
//!   writes in one lane, one after another), retried with backoff
//!   while the store is unreachable: nothing lost, nothing applied twice.
//! - [`flusher`]: every flush interval, one batched write of progress and metrics that
//!   renews this instance's lease and brings back cancel requests; the orphan sweep
//!   and pruning every lease; the push listener for cancels (PostgreSQL).
//! - [`health`]: whether the store is keeping up, for the health route.
//! - [`checkpoint`]: checkpoints, written through by the operation that saves them.
//!
//! All of it runs on one thread of its own with a current-thread Tokio runtime, so a
//! runtime that goes away (`run_sync`'s, a test's) does not take it along; it ends
//! when the registry is dropped.
//!
//! Locking rules: nothing here is locked while an entry's or a shard's lock is held;
//! `record` only sends on an unbounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use crate::entry::Entry;
use crate::operations::shard_of;
use crate::store::{Fence, InstanceId, OperationStore};

pub(crate) mod ack;
pub(crate) mod checkpoint;
pub(crate) mod flusher;
pub(crate) mod health;
pub(crate) mod journal;

/// A step of an operation's lifecycle that is written through to the store, in the
/// order they happen (`Entry::persisted` holds the last one applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Step {
    Create = 1,
    Start = 2,
    Finish = 3,
}

/// How a registry uses its store (from the builder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurableConfig {
    pub(crate) flush_interval: Duration,
    pub(crate) lease: Duration,
    /// How many operations' writes are applied at once (each operation's in order).
    pub(crate) write_lanes: usize,
}

/// One queued lifecycle write.
pub(crate) struct Write {
    pub(crate) step: Step,
    pub(crate) entry: Arc<Entry>,
}

/// Shared by the registry's ledger (so every entry reaches it) and the store thread.
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn OperationStore>,
    pub(crate) instance: InstanceId,
    pub(crate) config: DurableConfig,
    /// One queue per lane; an operation's writes all go to one lane, in order.
    writes: Vec<mpsc::UnboundedSender<Write>>,
    /// Writes queued and not yet applied.
    queued: AtomicUsize,
    /// Woken when `queued` drops to zero.
    drained: Notify,
    /// Finished entries whose last metric records are still to be flushed.
    pub(crate) tails: Mutex<Vec<Arc<Entry>>>,
    pub(crate) health: health::Health,
    pub(crate) signal: flusher::FlushSignal,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("store", &self.store)
            .field("instance", &self.instance)
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Durable {
    pub(crate) fn new(
        store: Arc<dyn OperationStore>,
        instance: InstanceId,
        config: DurableConfig,
    ) -> (Arc<Self>, Vec<mpsc::UnboundedReceiver<Write>>) {
        let (writes, rx): (Vec<_>, Vec<_>) = (0..config.write_lanes.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        let durable = Arc::new(Self {
            store,
            instance,
            config,
            writes,
            queued: AtomicUsize::new(0),
            drained: Notify::new(),
            tails: Mutex::new(Vec::new()),
            health: health::Health::default(),
            signal: flusher::FlushSignal::default(),
        });
        (durable, rx)
    }

    /// The fence of this instance's run of `entry`: its attempt, owned by this
    /// instance.
    pub(crate) const fn fence(&self, entry: &Entry) -> Fence {
        Fence::new(self.instance, entry.attempt)
    }

    /// Queues `step` of `entry` for the writer. Never blocks.
    pub(crate) fn record(&self, step: Step, entry: Arc<Entry>) {
        if step == Step::Finish && entry.has_metrics() {
            self.tails.lock().push(entry.clone());
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        // By the registry's shard of the id (uniform), so one operation, one lane.
        let lane = &self.writes[shard_of(&entry.id) % self.writes.len()];
        if lane.send(Write { step, entry }).is_err() {
            // The writer is gone (the store thread could not start): nothing will
            // apply it, so do not let waiters hang on it.
            self.applied();
        }
    }

    /// The writer applied (or gave up on) one write.
    pub(crate) fn applied(&self) {
        if self.queued.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    /// How many lifecycle writes wait to be applied.
    pub(crate) fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until every write queued so far is applied.
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.backlog() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Starts the store thread of a registry: the writer, the flusher, the sweeper and the
/// cancel listener, on a current-thread runtime of its own. It ends once the registry
/// is dropped (`stop` is cancelled) and every queued write was applied.
pub(crate) fn start_thread(
    registry: std::sync::Weak<crate::operations::Shared>,
    durable: Arc<Durable>,
    writes: Vec<mpsc::UnboundedReceiver<Write>>,
    retention: Duration,
    max_retained: usize,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let weak = Arc::downgrade(&durable);
    std::thread::Builder::new()
        .name("orchestrator-store".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let writers = futures::future::join_all(
                    writes
                        .into_iter()
                        .map(|lane| journal::run(weak.clone(), lane)),
                );
                let flush = flusher::flush_loop(registry.clone(), durable.clone(), stop.clone());
                let sweep =
                    flusher::sweep_loop(durable.clone(), retention, max_retained, stop.clone());
                let listen = flusher::listen_loop(registry, durable, stop);
                tokio::join!(writers, flush, sweep, listen);
            });
        })
        .map(drop)
}
