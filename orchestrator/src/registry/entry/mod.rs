//! One registered operation and its state machine.
//!
//! Locking rules:
//! 1. `state` guards the lifecycle fields; `status` mirrors `state.status` so filters and
//!    hot-path checks read it without locking. It is written only while `state` is held.
//! 2. The progress cell and the metrics log have their own locks; neither is ever taken
//!    while `state` is held, except `ProgressCell::seal`, which is taken after the state
//!    lock when a terminal transition commits (progress never takes the state lock, so
//!    this order cannot deadlock).
//! 3. A terminal transition happens exactly once; waiters are woken after it commits,
//!    and the registry's ledger is told after it commits (no lock held).
//! 4. `blocking` counts the operation's running `spawn_blocking` closures. A driver
//!    that drops the async part while some still run either waits for them (the
//!    operation stays `RUNNING`, marked abandoned) or, when it is itself dropped, leaves
//!    its ending in `state.deferred`: the closure that brings the count to zero records
//!    it. The check of the count and the store of the deferred ending happen under the
//!    state lock, and the last closure takes the state lock after its decrement, so the
//!    ending is recorded exactly once.
//! 5. Every change bumps the progress cell's version under its lock, then, only if a
//!    watch is registered (`watchers > 0`), wakes `changes`. A watch registers before
//!    it first reads the version, and enables its wake-up before each read, so it never
//!    misses a change; an unwatched operation pays one atomic load per change.
//! 6. With a store (`Ledger::durable`), `register`, `start` and `finish` queue their
//!    write after they commit (no lock held); the writer marks the entry `persisted`
//!    when it is applied and, for the end, wakes `finished` waiters, which wait for
//!    both the terminal status and its write (a `COMPLETED` is acknowledged only once
//!    it is durable). Without a store, nothing of this runs.
//! 7. The `finished` notification is allocated by the first waiter. A waiter
//!    allocates it, enables its wake-up, then (after a `SeqCst` fence) reads the
//!    condition; a change stores the condition, then (after a `SeqCst` fence) wakes
//!    the notification if it exists. The fences forbid both missing each other: the
//!    waiter sees the change, or the change sees the notification and wakes it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use once_cell::race::OnceBox;
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::durable::{Durable, Step};
use crate::info::{AbandonedWork, OperationInfo, OperationProgress};
use crate::ledger::{Ledger, Limits};
use crate::metrics::{MetricsLog, MetricsPage};
use crate::progress_cell::ProgressCell;
use crate::progress_share::ProgressShares;
use crate::store::Checkpoint;
use crate::{
    CancellationToken, OperationId, OperationMetadata, OperationStatus, OperationType,
    OrchestratorError, Result,
};

pub(crate) type ProgressObserver = Box<dyn Fn(&OperationProgress) + Send + Sync>;

/// One operation. Kept small: a registry may hold hundreds of thousands, so rarely
/// used parts (metadata, metrics, the recorded result) are boxed only when present.
pub(crate) struct Entry {
    pub(crate) id: OperationId,
    pub(crate) kind: OperationType,
    description: Option<Cow<'static, str>>,
    pub(crate) seq: u64,
    created_at: Stamp,
    metadata: Option<Box<OperationMetadata>>,
    /// Which run of the operation this entry is (1, or more once resumed).
    pub(crate) attempt: u32,
    /// The root reporter's step total (phases keep their own).
    pub(crate) total_steps: AtomicU64,
    pub(crate) token: CancellationToken,
    pub(crate) progress: ProgressCell,
    /// What few operations have, set at creation (boxed: a proxy, a child, a resumed
    /// attempt); `None` for most.
    rare: Option<Box<Rare>>,
    status: AtomicU8,
    /// How far the operation's lifecycle is written to the registry's store, if it
    /// has one (rule 6): a [`Step`] as `u8`, 0 before the create is written.
    persisted: AtomicU8,
    /// Set when the operation ended cancelled with a reason its token keeps for good
    /// ([`CancellationToken::reason_is_settled`]): the final reason is read from the
    /// token, not copied into `Recorded` (no copy of a shared reason, and no record,
    /// for each of the operations a `cancel_all` ends). Written and read under `state`.
    reason_in_token: AtomicBool,
    /// Running `spawn_blocking` closures (rule 4).
    blocking: AtomicU32,
    /// Live [`OperationWatch`](crate::OperationWatch)es (rule 5).
    watchers: AtomicU32,
    /// What is allocated on first use only: the watches' notification and the
    /// weighted children's shares.
    lazy: OnceBox<Lazy>,
    /// The registry's counts and limits; `None` for a detached entry.
    ledger: Option<Arc<Ledger>>,
    state: Mutex<State>,
}

/// The parts of an entry few operations have, fixed at creation.
struct Rare {
    /// Told of every progress change (a weighted child's parent follows it).
    observer: Option<ProgressObserver>,
    /// Set for a proxy of an operation on a host service.
    remote: Option<Remote>,
    /// The checkpoint this attempt resumed from (`None` for a first attempt): what
    /// `OperationContext::resume_state` reads.
    resumed_from: Option<Checkpoint>,
    /// The operation this one was started under (a child's parent).
    parent_id: Option<OperationId>,
}

/// The parts of an entry allocated on first use.
#[derive(Default)]
struct Lazy {
    /// Woken on every change while `watchers > 0` (allocated by the first watch).
    changes: Notify,
    /// Woken when the operation ends, a step is written to the store, or its last
    /// blocking closure returns (allocated by the first to wait for one; rule 7).
    finished: Notify,
    /// The metric records (allocated by the first, or by a resumed attempt that
    /// continues an earlier one's).
    metrics: Mutex<Option<Box<MetricsLog>>>,
    /// The weighted children of the operation's own reporter (allocated by the first).
    child_shares: OnceLock<Arc<ProgressShares>>,
}

#[derive(Debug, Default)]
struct State {
    started_at: Stamp,
    completed_at: Stamp,
    recorded: Option<Box<Recorded>>,
    /// The last checkpoint saved (by this attempt or, until it saves one, the one
    /// it resumed from).
    checkpoint: Option<Box<Checkpoint>>,
    /// Set while the async part is gone but blocking work still runs.
    abandoned: Option<Box<Abandoned>>,
}

#[derive(Debug)]
struct Abandoned {
    since: SystemTime,
    message: String,
    /// The ending to record when the last blocking closure returns, if nobody waits
    /// for it (the driver itself was dropped), and the concurrency slot to keep until
    /// then.
    deferred: Option<(Ending, Option<OwnedSemaphorePermit>)>,
}

/// What a finished operation returned (or, while it runs, its partial result).
#[derive(Debug, Default)]
struct Recorded {
    error_message: Option<String>,
    result_summary: Option<serde_json::Value>,
    /// The cancel reason as it stood when the operation ended: a finished record does
    /// not change when its token is cancelled later (by `cancel_all`, say).
    final_cancel_reason: Option<Arc<str>>,
}

/// The result to record when an operation ends.
#[derive(Debug)]
pub(crate) enum Ending {
    /// Returned a value; `CANCELLED` instead of `COMPLETED` if cancellation was requested.
    Returned(Option<serde_json::Value>),
    /// Returned an error; `CANCELLED` instead of `FAILED` if cancellation was requested.
    Errored(String),
    /// Failed regardless of cancellation (panic, deadline).
    Failed(String),
    /// Cancelled (aborted after the grace period, or never ran).
    Cancelled,
    /// Cancelled while still `PENDING`; refused once it started.
    NeverStarted,
    /// A host service's terminal record, copied as it is (a proxy's end): the status
    /// the host reached, whatever was requested locally.
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    Mirrored {
        status: OperationStatus,
        summary: Option<serde_json::Value>,
        error: Option<String>,
    },
}

pub(crate) struct NewEntry {
    pub(crate) id: OperationId,
    pub(crate) created_at: SystemTime,
    pub(crate) kind: OperationType,
    pub(crate) description: Option<Cow<'static, str>>,
    pub(crate) seq: u64,
    pub(crate) metadata: OperationMetadata,
    pub(crate) parent_id: Option<OperationId>,
    pub(crate) total_steps: u64,
    pub(crate) token: CancellationToken,
    pub(crate) ledger: Option<Arc<Ledger>>,
    pub(crate) observer: Option<ProgressObserver>,
    pub(crate) remote: Option<Box<Remote>>,
    /// Which run this is: 1, or more for a resumed operation.
    pub(crate) attempt: u32,
    /// For a resumed attempt: the checkpoint it continues from.
    pub(crate) resumed_from: Option<Checkpoint>,
    /// The store already holds the operation (a resume re-registers one): its
    /// create is not written again.
    pub(crate) in_store: bool,
    /// The metric records of earlier attempts, continued by this one.
    pub(crate) metrics: Option<Box<MetricsLog>>,
}

mod blocking;
mod remote;
mod stamp;
mod watchers;

use stamp::Stamp;

pub(crate) use remote::Remote;

impl Entry {
    pub(crate) fn new(n: NewEntry) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            description: n.description,
            seq: n.seq,
            created_at: Stamp::of(n.created_at),
            metadata: (!n.metadata.is_empty()).then(|| Box::new(n.metadata)),
            attempt: n.attempt,
            total_steps: AtomicU64::new(n.total_steps),
            token: n.token,
            progress: ProgressCell::with_total(n.total_steps),
            rare: (n.observer.is_some()
                || n.remote.is_some()
                || n.resumed_from.is_some()
                || n.parent_id.is_some())
            .then(|| {
                Box::new(Rare {
                    observer: n.observer,
                    remote: n.remote.map(|r| *r),
                    resumed_from: n.resumed_from.clone(),
                    parent_id: n.parent_id,
                })
            }),
            status: AtomicU8::new(OperationStatus::Pending.to_u8()),
            persisted: AtomicU8::new(if n.in_store { Step::Create as u8 } else { 0 }),
            reason_in_token: AtomicBool::new(false),
            blocking: AtomicU32::new(0),
            watchers: AtomicU32::new(0),
            lazy: OnceBox::new(),
            ledger: n.ledger,
            state: Mutex::new(State {
                checkpoint: n.resumed_from.map(Box::new),
                ..State::default()
            }),
        }
        .with_metrics(n.metrics)
    }

    fn with_metrics(self, log: Option<Box<MetricsLog>>) -> Self {
        self.adopt_metrics(log);
        self
    }

    /// The operation this one was started under, if any.
    pub(crate) fn parent_id(&self) -> Option<&OperationId> {
        self.rare.as_ref().and_then(|r| r.parent_id.as_ref())
    }

    pub(crate) fn status(&self) -> OperationStatus {
        OperationStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn limits(&self) -> Limits {
        self.ledger
            .as_ref()
            .map_or_else(Limits::default, |l| l.limits)
    }

    fn set_status(&self, st: OperationStatus) {
        self.status.store(st.to_u8(), Ordering::Release);
    }

    fn illegal(&self, from: OperationStatus, to: OperationStatus) -> OrchestratorError {
        OrchestratorError::IllegalTransition {
            id: self.id.clone(),
            from,
            to,
        }
    }

    /// `PENDING → RUNNING`.
    pub(crate) fn start(self: &Arc<Self>) -> Result<()> {
        let mut st = self.state.lock();
        let from = self.status();
        if !from.can_become(OperationStatus::Running) {
            return Err(self.illegal(from, OperationStatus::Running));
        }
        st.started_at = Stamp::now();
        self.set_status(OperationStatus::Running);
        drop(st);
        if let Some(durable) = self.durable() {
            durable.record(Step::Start, self.clone());
        }
        self.changed();
        Ok(())
    }

    /// The registry the operation belongs to, while it exists (`None` when detached).
    pub(crate) fn registry(&self) -> Option<crate::Operations> {
        self.ledger.as_ref().and_then(|l| l.registry())
    }

    /// The parts allocated on first use, allocating them now if needed.
    fn lazy(&self) -> &Lazy {
        self.lazy.get_or_init(Box::default)
    }

    /// The progress observer, if the operation has one.
    pub(crate) fn observer(&self) -> Option<&ProgressObserver> {
        self.rare.as_ref()?.observer.as_ref()
    }

    /// The weighted children of the operation's own reporter.
    pub(crate) fn child_shares(&self) -> &Arc<ProgressShares> {
        self.lazy().child_shares.get_or_init(Arc::default)
    }

    /// The registry's link to its store, if it has one.
    pub(crate) fn durable(&self) -> Option<&Arc<Durable>> {
        self.ledger.as_ref().and_then(|l| l.durable.as_ref())
    }

    /// The writer applied (or gave up on) `step` of this operation's lifecycle.
    pub(crate) fn mark_persisted(&self, step: Step) {
        self.persisted.fetch_max(step as u8, Ordering::AcqRel);
        // `finished` waiters re-check their condition: waiting for the end, or (see
        // `persisted_to`) for this step.
        self.wake_finished();
    }

    /// How far the lifecycle is written to the store (0: not even the create).
    pub(crate) fn persisted(&self) -> u8 {
        self.persisted.load(Ordering::Acquire)
    }

    /// Waits until `step` is written to the store (at once without a store).
    pub(crate) async fn persisted_to(&self, step: Step) {
        if self.durable().is_none() {
            return;
        }
        let finished = self.finished_notify();
        loop {
            let notified = finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            fence(Ordering::SeqCst);
            if self.persisted() >= step as u8 {
                return;
            }
            notified.await;
        }
    }

    /// The end is recorded where it must be: in memory, and in the store if any.
    fn end_is_acknowledged(&self) -> bool {
        self.status().is_terminal()
            && (self.durable().is_none() || self.persisted() >= Step::Finish as u8)
    }

    /// Records the end of the operation. Returns the terminal status, or an error if the
    /// operation already ended (or, for a value or error, never started).
    pub(crate) fn finish(self: &Arc<Self>, ending: Ending) -> Result<OperationStatus> {
        let status = {
            let mut st = self.state.lock();
            let from = self.status();
            let cancel_requested = self.token.is_cancelled();
            let (to, summary, error) = match ending {
                Ending::Returned(v) if cancel_requested => (OperationStatus::Cancelled, v, None),
                Ending::Returned(v) => (OperationStatus::Completed, v, None),
                Ending::Errored(_) if cancel_requested => (OperationStatus::Cancelled, None, None),
                Ending::Errored(e) | Ending::Failed(e) => (OperationStatus::Failed, None, Some(e)),
                Ending::Cancelled => (OperationStatus::Cancelled, None, None),
                Ending::NeverStarted if from != OperationStatus::Pending => {
                    return Err(self.illegal(from, OperationStatus::Cancelled));
                }
                Ending::NeverStarted => (OperationStatus::Cancelled, None, None),
                Ending::Mirrored {
                    status,
                    summary,
                    error,
                } => (status, summary, error),
            };
            if !from.can_become(to) {
                return Err(self.illegal(from, to));
            }
            st.completed_at = Stamp::now();
            // Without a returned value, the partial result published so far stands.
            let partial = st.recorded.take().and_then(|r| r.result_summary);
            // `null` (a `()` result) reads back the same as no summary: don't box it.
            let summary = summary.filter(|v| !v.is_null()).or(partial);
            let cancelled = to != OperationStatus::Completed && self.token.is_cancelled();
            let in_token = cancelled && self.token.reason_is_settled();
            self.reason_in_token.store(in_token, Ordering::Relaxed);
            let final_cancel_reason = (cancelled && !in_token).then(|| {
                self.token
                    .reason()
                    .unwrap_or_else(|| Arc::from("cancelled"))
            });
            if summary.is_some() || error.is_some() || final_cancel_reason.is_some() {
                st.recorded = Some(Box::new(Recorded {
                    error_message: error,
                    result_summary: summary,
                    final_cancel_reason,
                }));
            }
            let was_abandoned = st.abandoned.take().is_some();
            self.set_status(to);
            (to, was_abandoned)
        };
        let (status, was_abandoned) = status;
        // What an observer saw last, to tell it the final progress if sealing changed
        // it (a completed operation shows 100 %): a parent following its child.
        let seen = self
            .observer()
            .map(|_| self.progress.snapshot(None).percentage);
        self.progress.seal(
            status == OperationStatus::Completed,
            self.total_steps.load(Ordering::Relaxed),
        );
        if seen.is_some_and(|p| p != self.progress.snapshot(None).percentage) {
            self.notify_observer();
        }
        if let Some(ledger) = &self.ledger {
            ledger.finished(&self.id, was_abandoned);
            if let Some(durable) = &ledger.durable {
                durable.record(Step::Finish, self.clone());
            }
        }
        self.wake_finished();
        self.wake_watchers();
        Ok(status)
    }

    /// Publishes the result so far: shown while running, and kept as the summary when
    /// the operation ends without returning a value (cancelled, failed). Ignored once
    /// it ended.
    pub(crate) fn set_partial_result(&self, value: serde_json::Value) {
        let old = {
            let mut st = self.state.lock();
            if self.status().is_terminal() {
                return;
            }
            let recorded = st.recorded.get_or_insert_with(Box::default);
            recorded.result_summary.replace(value)
        };
        drop(old);
        self.changed();
    }

    /// Keeps `checkpoint` as the operation's last one, while it runs.
    pub(crate) fn set_checkpoint(&self, checkpoint: Checkpoint) -> Result<()> {
        let old = {
            let mut st = self.state.lock();
            let status = self.status();
            if status != OperationStatus::Running {
                return Err(OrchestratorError::NotRunning {
                    id: self.id.clone(),
                    status,
                });
            }
            st.checkpoint.replace(Box::new(checkpoint))
        };
        drop(old);
        self.changed();
        Ok(())
    }

    /// The last checkpoint saved, if any (a clone).
    pub(crate) fn checkpoint(&self) -> Option<Checkpoint> {
        self.state.lock().checkpoint.as_deref().cloned()
    }

    /// The checkpoint this attempt resumed from.
    pub(crate) fn resumed_from(&self) -> Option<&Checkpoint> {
        self.rare.as_ref()?.resumed_from.as_ref()
    }

    /// Takes the metric records away, for the next attempt of the operation.
    pub(crate) fn take_metrics(&self) -> Option<Box<MetricsLog>> {
        self.lazy.get()?.metrics.lock().take()
    }

    /// Continues the metric records of an earlier attempt (`None`: there were none).
    pub(crate) fn adopt_metrics(&self, log: Option<Box<MetricsLog>>) {
        if let Some(log) = log {
            *self.lazy().metrics.lock() = Some(log);
        }
    }

    /// The description as given (`None` when the type name stands in for it).
    pub(crate) fn given_description(&self) -> Option<Cow<'static, str>> {
        self.description.clone()
    }

    /// Requests cancellation. A `PENDING` operation ends `CANCELLED` at once; a `RUNNING`
    /// one keeps running until it observes its token (or is aborted after its grace).
    ///
    /// The reason lives in the token (the first one given wins), so every holder of
    /// the token and every snapshot see the same one.
    pub(crate) fn cancel(self: &Arc<Self>, reason: &Arc<str>) -> Result<OperationStatus> {
        let status = self.status();
        if status.is_terminal() {
            return Err(OrchestratorError::AlreadyFinished {
                id: self.id.clone(),
                status,
            });
        }
        self.token.cancel_with_reason(reason.clone());
        self.changed();
        if status == OperationStatus::Pending {
            // Only if it is still pending: if it started meanwhile, its driver sees the
            // token and records the end.
            self.end_if_pending();
        }
        Ok(self.status())
    }

    /// Ends a cancelled operation that never started (`CANCELLED`); no-op otherwise.
    pub(crate) fn end_if_pending(self: &Arc<Self>) {
        let _ = self.finish(Ending::NeverStarted);
    }

    /// Why the operation was cancelled: while active, the token's reason (`cancelled`
    /// if none was given); once ended, the reason as it stood then (never one for a
    /// completed operation).
    fn live_cancel_reason(&self) -> Option<String> {
        self.live_reason().map(|r| r.to_string())
    }

    /// The reason cancellation was requested for, while it is (`cancelled` when none
    /// was given).
    fn live_reason(&self) -> Option<Arc<str>> {
        self.token.is_cancelled().then(|| {
            self.token
                .reason()
                .unwrap_or_else(|| Arc::from("cancelled"))
        })
    }

    /// Why it was cancelled, shared (no copy): the reason it ended with once
    /// terminal, else the token's while cancellation is requested.
    pub(crate) fn cancel_reason_shared(&self) -> Option<Arc<str>> {
        if self.status().is_terminal() {
            let st = self.state.lock();
            return self.final_reason(&st).cloned();
        }
        if !self.token.is_cancelled() {
            return None;
        }
        Some(
            self.token
                .reason()
                .unwrap_or_else(|| Arc::from("cancelled")),
        )
    }

    /// The reason a finished operation ended cancelled with, borrowed (`st` is its
    /// locked state).
    fn final_reason<'a>(&'a self, st: &'a State) -> Option<&'a Arc<str>> {
        if self.reason_in_token.load(Ordering::Relaxed) {
            return self.token.reason_ref();
        }
        st.recorded
            .as_ref()
            .and_then(|r| r.final_cancel_reason.as_ref())
    }

    /// The description as given (borrowed), or the lower-cased type name.
    pub(crate) fn description_ref(&self) -> Cow<'_, str> {
        match &self.description {
            Some(d) => Cow::Borrowed(d.as_ref()),
            None => Cow::Owned(self.kind.as_str().to_ascii_lowercase()),
        }
    }

    /// When it started and ended, under one lock.
    pub(crate) fn times(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let st = self.state.lock();
        (st.started_at.get(), st.completed_at.get())
    }

    /// Waits until the operation reaches a terminal state (and, with a store, until
    /// that state is written to it).
    pub(crate) async fn finished(&self) {
        if self.end_is_acknowledged() {
            return;
        }
        let finished = self.finished_notify();
        loop {
            let notified = finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            fence(Ordering::SeqCst);
            if self.end_is_acknowledged() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn completed_before(&self, cutoff: SystemTime) -> bool {
        if !self.status().is_terminal() {
            return false;
        }
        self.state
            .lock()
            .completed_at
            .get()
            .is_some_and(|t| t < cutoff)
    }

    /// Appends a metric record of `size` bytes (as JSON), unless it exceeds the limit.
    pub(crate) fn push_metric(&self, record: serde_json::Value, size: usize) -> Result<()> {
        let limits = self.limits();
        if size > limits.max_metric_bytes {
            return Err(OrchestratorError::MetricTooLarge {
                size,
                limit: limits.max_metric_bytes,
            });
        }
        self.lazy()
            .metrics
            .lock()
            .get_or_insert_with(|| Box::new(MetricsLog::new(limits.max_metrics)))
            .push(record);
        Ok(())
    }

    /// Whether any metric record was appended.
    pub(crate) fn has_metrics(&self) -> bool {
        self.lazy
            .get()
            .is_some_and(|lazy| lazy.metrics.lock().is_some())
    }

    /// The metric records not yet flushed to the store (see `MetricsLog::unflushed`).
    pub(crate) fn unflushed_metrics(&self) -> Option<(u64, Vec<serde_json::Value>, u64)> {
        self.lazy
            .get()?
            .metrics
            .lock()
            .as_ref()
            .and_then(|log| log.unflushed())
    }

    /// Records up to cursor `upto` were flushed to the store.
    pub(crate) fn metrics_flushed(&self, upto: u64) {
        if let Some(lazy) = self.lazy.get() {
            if let Some(log) = lazy.metrics.lock().as_mut() {
                log.mark_flushed(upto);
            }
        }
    }

    pub(crate) fn metrics(&self, cursor: u64) -> MetricsPage {
        let empty = || MetricsLog::new(1).page(cursor);
        match self.lazy.get() {
            Some(lazy) => lazy
                .metrics
                .lock()
                .as_ref()
                .map_or_else(empty, |log| log.page(cursor)),
            None => empty(),
        }
    }

    /// The metadata given at creation (`None` when it was empty); read by list filters.
    pub(crate) fn metadata(&self) -> Option<&OperationMetadata> {
        self.metadata.as_deref()
    }

    /// The description, or the lower-cased type name when none was given.
    pub(crate) fn description(&self) -> Cow<'static, str> {
        match &self.description {
            Some(d) => d.clone(),
            None => Cow::Owned(self.kind.as_str().to_ascii_lowercase()),
        }
    }

    pub(crate) fn set_context(&self, key: String, value: serde_json::Value) {
        if self.progress.set_context(key, value) {
            self.notify_observer();
        }
    }

    pub(crate) fn progress_snapshot(&self) -> OperationProgress {
        if let Some(remote) = self.remote() {
            return remote.progress();
        }
        self.progress.snapshot(self.started_at())
    }

    /// When it started running.
    pub(crate) fn started_at(&self) -> Option<SystemTime> {
        self.state.lock().started_at.get()
    }

    /// When it was created.
    pub(crate) fn created_at(&self) -> SystemTime {
        self.created_at.get().unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// The notification of the end (and of store writes and blocking work), allocated
    /// now if nobody waited before (rule 7).
    fn finished_notify(&self) -> &Notify {
        &self.lazy().finished
    }

    /// Wakes whoever waits in `finished_notify` (rule 7).
    fn wake_finished(&self) {
        fence(Ordering::SeqCst);
        if let Some(lazy) = self.lazy.get() {
            lazy.finished.notify_waiters();
        }
    }

    /// After a progress change: tells the observer and the watches.
    pub(crate) fn notify_observer(&self) {
        if let Some(observer) = self.observer() {
            observer(&self.progress_snapshot());
        }
        self.wake_watchers();
    }

    pub(crate) fn info(&self) -> OperationInfo {
        let (
            status,
            started_at,
            completed_at,
            error_message,
            result_summary,
            final_reason,
            abandoned,
            checkpoint,
        ) = {
            let st = self.state.lock();
            (
                self.status(),
                st.started_at.get(),
                st.completed_at.get(),
                st.recorded.as_ref().and_then(|r| r.error_message.clone()),
                st.recorded.as_ref().and_then(|r| r.result_summary.clone()),
                self.final_reason(&st).map(|r| r.to_string()),
                st.abandoned.as_ref().map(|a| AbandonedWork {
                    since: a.since,
                    blocking_tasks: self.blocking_count(),
                    message: a.message.clone(),
                }),
                st.checkpoint.as_ref().map(|c| (c.saved_at, c.step)),
            )
        };
        OperationInfo {
            operation_id: self.id.clone(),
            operation_type: self.kind.clone(),
            description: self.description().into_owned(),
            status,
            created_at: self.created_at(),
            started_at,
            completed_at,
            progress: match self.remote() {
                Some(remote) => remote.progress(),
                None => self.progress.snapshot(started_at),
            },
            metadata: self.metadata.as_deref().cloned().unwrap_or_default(),
            error_message,
            result_summary,
            parent_id: self.parent_id().cloned(),
            cancel_reason: if status.is_terminal() {
                final_reason
            } else {
                self.live_cancel_reason()
            },
            abandoned,
            host_url: self.remote().map(|r| r.host_url.to_string()),
            host_operation_id: self.remote().map(|r| r.host_operation_id.clone()),
            attempt: self.attempt,
            checkpoint_at: checkpoint.map(|c| c.0),
            checkpoint_step: checkpoint.map(|c| c.1),
            instance_id: self
                .ledger
                .as_ref()
                .and_then(|l| l.durable.as_ref())
                .map(|d| d.instance),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// An entry that belongs to no registry (`PENDING`).
pub(crate) fn unregistered(
    kind: OperationType,
    total_steps: u64,
    observer: Option<ProgressObserver>,
) -> Arc<Entry> {
    unregistered_as(OperationId::generate(&kind), kind, total_steps, observer)
}

/// [`unregistered`], with the id given.
pub(crate) fn unregistered_as(
    id: OperationId,
    kind: OperationType,
    total_steps: u64,
    observer: Option<ProgressObserver>,
) -> Arc<Entry> {
    Arc::new(Entry::new(NewEntry {
        id,
        created_at: SystemTime::now(),
        description: None,
        kind,
        seq: 0,
        metadata: OperationMetadata::default(),
        parent_id: None,
        total_steps,
        token: CancellationToken::new(),
        ledger: None,
        observer,
        remote: None,
        attempt: 1,
        resumed_from: None,
        in_store: false,
        metrics: None,
    }))
}

#[cfg(test)]
mod size_probe {
    /// Every operation holds one entry: what few operations use is boxed (`Rare`,
    /// `Lazy`) so the common one stays small. A field added to the entry for a rare
    /// feature belongs there. With the `Arc`'s two counts (16 bytes) and the chunk's
    /// header (8), 328 bytes is the most glibc's malloc serves from a 352-byte chunk.
    /// (It was 312, a 336-byte chunk, while the id was a separate 48-byte one: the id
    /// held inline costs the entry 32 bytes and saves that chunk, so an operation is
    /// 32 bytes and one allocation lighter.)
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_stays_small() {
        assert!(
            size_of::<super::Entry>() <= 328,
            "Entry is {} bytes",
            size_of::<super::Entry>()
        );
    }
}
