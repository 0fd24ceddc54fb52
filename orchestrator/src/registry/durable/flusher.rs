//! The periodic work of a registry with a store: the flush (progress, metrics, lease,
//! cancels), the orphan sweep and pruning, and the cancel listener.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::entry::Entry;
use crate::operations::Shared;
use crate::store::{CancelRequest, Flush, MetricBatch, OrphanScope, ProgressUpdate, Prune};
use tokio_util::sync::CancellationToken;

use crate::{OperationId, Operations};

use super::{Durable, Step};

/// Asks the flusher for an immediate flush and tells when one completed.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    now: Notify,
    done: Notify,
    generation: AtomicU64,
}

impl FlushSignal {
    /// Requests a flush now and waits until a flush that started after the request
    /// ended (successfully or not).
    pub(crate) async fn flush_now(&self) {
        let seen = self.generation.load(Ordering::Acquire);
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            // Two generations: the one running when asked may have built its batch
            // before the request.
            if self.generation.load(Ordering::Acquire) >= seen + 2 {
                return;
            }
            self.now.notify_one();
            done.await;
        }
    }

    fn completed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.done.notify_waiters();
    }
}

/// What the last successful flush wrote of one operation's progress.
type Flushed = HashMap<OperationId, u64>;

/// Flushes every `flush_interval` (or when asked) until `stop`.
pub(crate) async fn flush_loop(
    registry: Weak<Shared>,
    durable: Arc<Durable>,
    stop: CancellationToken,
) {
    let mut flushed = Flushed::new();
    let interval = durable.config.flush_interval;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = durable.signal.now.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        let Some(shared) = registry.upgrade() else {
            break;
        };
        let ops = Operations::from_shared(shared);
        flush_once(&ops, &durable, &mut flushed).await;
        drop(ops);
        durable.signal.completed();
    }
    // The entries in `tails` hold the ledger, which holds `durable`: let them go.
    durable.tails.lock().clear();
    durable.signal.completed();
}

async fn flush_once(ops: &Operations, d: &Durable, flushed: &mut Flushed) {
    let now = SystemTime::now();
    let mut flush = Flush::new(d.instance, d.config.lease, now);
    let mut progress_sent: Vec<(OperationId, u64)> = Vec::new();
    let mut metrics_sent: Vec<(Arc<Entry>, u64)> = Vec::new();
    let active = ops.active_entries();
    let tails = std::mem::take(&mut *d.tails.lock());
    for entry in &active {
        if entry.persisted() < Step::Start as u8 {
            // Its start is still queued: progress written now could be read with
            // the stored status still PENDING. (A pending operation has none.)
            continue;
        }
        let version = entry.version();
        if flushed.get(&entry.id) != Some(&version) {
            flush.progress.push(ProgressUpdate::new(
                entry.id.clone(),
                entry.attempt,
                entry.progress_snapshot(),
            ));
            progress_sent.push((entry.id.clone(), version));
        }
    }
    for entry in active.iter().chain(&tails) {
        if entry.persisted() < Step::Create as u8 {
            continue;
        }
        if let Some((first_index, records, upto)) = entry.unflushed_metrics() {
            flush.metrics.push(MetricBatch::new(
                entry.id.clone(),
                entry.attempt,
                first_index,
                records,
            ));
            metrics_sent.push((entry.clone(), upto));
        }
    }
    match d.store.flush(&flush).await {
        Ok(reply) => {
            d.health.flush_ok(now);
            // What the store now has, for the operations still active (linear: a
            // flush of 10k operations must not compare each with each).
            let sent: HashMap<OperationId, u64> = progress_sent.into_iter().collect();
            *flushed = active
                .iter()
                .filter_map(|e| {
                    let version = sent.get(&e.id).or_else(|| flushed.get(&e.id))?;
                    Some((e.id.clone(), *version))
                })
                .collect();
            for (entry, upto) in metrics_sent {
                entry.metrics_flushed(upto);
            }
            // Finished ones whose create was not written yet wait for the next flush.
            let unwritten: Vec<Arc<Entry>> = tails
                .into_iter()
                .filter(|e| e.persisted() < Step::Create as u8)
                .collect();
            d.tails.lock().extend(unwritten);
            for request in reply.cancels {
                trip(ops, &request);
            }
            for id in reply.rejected {
                disowned(ops, &id);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "operation store flush failed; retrying at the next interval");
            d.health.flush_failed(&e);
            d.tails.lock().extend(tails);
        }
    }
}

/// A cancel requested through the store (another replica, or a lost notification).
pub(crate) fn trip(ops: &Operations, request: &CancelRequest) {
    if let Ok(entry) = ops.entry(&request.operation_id) {
        let reason = ops.bounded_reason(&request.reason);
        if entry.cancel(&Arc::from(reason)).is_ok() {
            tracing::debug!(operation_id = %request.operation_id, reason, "cancel requested through the store");
        }
    }
}

/// The store no longer counts operation `id` as this instance's: another replica
/// found this instance's lease expired and declared its operations interrupted. The
/// local run stops; its end is refused by the store, whose record stands.
fn disowned(ops: &Operations, id: &OperationId) {
    if let Ok(entry) = ops.entry(id) {
        if entry.status().is_active() {
            tracing::warn!(operation_id = %id, "the operation store declared this operation interrupted (this instance's lease expired); stopping it");
            let _ = entry.cancel(&Arc::from(
                "interrupted: this instance's lease expired and another replica took over its record",
            ));
        }
    }
}

/// Every flush interval, fails the operations of instances whose lease expired (one
/// indexed update, so an orphan is found within the lease plus one flush interval);
/// every lease, prunes finished operations past the retention or the retained-count
/// cap.
pub(crate) async fn sweep_loop(
    durable: Arc<Durable>,
    retention: Duration,
    max_retained: usize,
    stop: CancellationToken,
) {
    let mut pruned_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(durable.config.flush_interval) => {}
        }
        let now = SystemTime::now();
        match durable
            .store
            .fail_orphans(OrphanScope::ExpiredLeases, now)
            .await
        {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(
                    count = ids.len(),
                    "operations of an instance whose lease expired were marked FAILED (interrupted)"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "orphan sweep failed; retrying at the next interval");
            }
        }
        if pruned_at.elapsed() < durable.config.lease {
            continue;
        }
        pruned_at = tokio::time::Instant::now();
        let policy = Prune::older_than(now, retention).with_max_finished(max_retained);
        match durable.store.prune(&policy, now).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "pruned finished operations from the store"),
            Err(e) => {
                tracing::warn!(error = %e, "store pruning failed; retrying at the next lease interval");
            }
        }
    }
}

/// Trips the token of each cancel the store pushes (PostgreSQL `NOTIFY`) at once;
/// re-opens the listener with backoff when its connection drops. The flush remains
/// the path that cannot lose a request.
pub(crate) async fn listen_loop(
    registry: Weak<Shared>,
    durable: Arc<Durable>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let opened = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            opened = durable.store.cancel_notifications(durable.instance) => opened,
        };
        match opened {
            Ok(None) => return,
            Ok(Some(mut notifications)) => {
                backoff = Duration::from_millis(100);
                loop {
                    let request = tokio::select! {
                        biased;
                        () = stop.cancelled() => return,
                        request = notifications.recv() => request,
                    };
                    let Some(request) = request else { break };
                    let Some(shared) = registry.upgrade() else {
                        return;
                    };
                    trip(&Operations::from_shared(shared), &request);
                }
                tracing::debug!("cancel listener lost its connection; re-opening it");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "could not open the cancel listener; cancels arrive with the flush meanwhile");
            }
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
