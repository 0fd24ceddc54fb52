//! What a managed operation receives: progress, cancellation, metrics, blocking work.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entry::{self, Entry};
use crate::progress_cell::{Reporter, Update};
use crate::progress_share::ProgressShares;
use crate::store::Checkpoint;
use crate::{
    CancellationToken, Cancelled, OperationError, OperationFn, OperationFuture, OperationHandle,
    OperationId, OperationProgress, OperationSpec, OperationType, OperationValue,
    OrchestratorError,
};

/// The handle a managed operation uses to report progress and observe cancellation.
///
/// Cheap to clone, `Send + Sync + 'static`: move clones into tasks or blocking threads
/// freely; every clone reports into the same operation. [`phase`](Self::phase) gives a
/// sub-reporter whose 0–100 % maps into a slice of its parent's range.
///
/// # Examples
///
/// Domain code stays a plain loop, and is unit-testable with a detached context:
///
/// ```
/// use orchestrator::{Cancelled, OperationContext};
///
/// async fn crunch(ctx: OperationContext, n: u64) -> Result<u64, Cancelled> {
///     ctx.set_total_steps(n);
///     for i in 1..=n {
///         ctx.checkpoint()?;
///         ctx.progress(i, format!("item {i}/{n}"));
///     }
///     Ok(n)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = OperationContext::detached();
/// assert_eq!(crunch(ctx.clone(), 4).await, Ok(4));
/// assert_eq!(ctx.progress_snapshot().percentage, 100.0);
/// # }
/// ```
#[derive(Clone)]
pub struct OperationContext {
    entry: Arc<Entry>,
    /// `None` for the root reporter (0–100 %, total kept in the entry).
    scope: Option<Arc<Scope>>,
}

/// The slice of the overall 0–100 % a reporter maps into, its step total and name.
#[derive(Debug)]
struct Scope {
    /// Unique per phase in the process (0 is the root reporter).
    id: usize,
    lo: f64,
    hi: f64,
    total: AtomicU64,
    name: Option<Arc<str>>,
    /// The phase's weighted children (allocated by the first).
    children: OnceLock<Arc<ProgressShares>>,
}

static NEXT_PHASE: AtomicUsize = AtomicUsize::new(1);

impl OperationContext {
    pub(crate) fn new(entry: Arc<Entry>) -> Self {
        Self { entry, scope: None }
    }

    fn total(&self) -> &AtomicU64 {
        self.scope
            .as_ref()
            .map_or(&self.entry.total_steps, |s| &s.total)
    }

    /// Maps a percentage of this reporter's range into the operation's 0–100 %.
    fn map(&self, pct: f64) -> f64 {
        let pct = if pct.is_nan() {
            0.0
        } else {
            pct.clamp(0.0, 100.0)
        };
        match &self.scope {
            None => pct,
            Some(s) => s.lo + (s.hi - s.lo) * pct / 100.0,
        }
    }

    /// A context attached to no registry, for unit-testing domain code: progress is
    /// recorded (see [`progress_snapshot`](Self::progress_snapshot)) and its token can be
    /// cancelled by hand.
    pub fn detached() -> Self {
        let entry = entry::unregistered(OperationType::DETACHED, 0, None);
        let _ = entry.start();
        Self::new(entry)
    }

    /// The operation's id.
    pub fn operation_id(&self) -> &OperationId {
        &self.entry.id
    }

    /// The operation's cancellation token (the same one the registry cancels).
    pub fn token(&self) -> &CancellationToken {
        &self.entry.token
    }

    /// Whether cancellation was requested. Cheap; callable from any thread.
    pub fn is_cancelled(&self) -> bool {
        self.entry.token.is_cancelled()
    }

    /// `Err(Cancelled)` once cancellation was requested: put `ctx.checkpoint()?` where
    /// your loop can stop.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] when the operation was cancelled.
    pub fn checkpoint(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Completes when the operation is cancelled.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    pub async fn cancelled(&self) {
        self.entry.token.cancelled().await;
    }

    /// Sleeps for `duration`, waking early if the operation is cancelled.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if cancellation was requested before or during the sleep.
    pub async fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        self.checkpoint()?;
        tokio::select! {
            biased;
            () = self.entry.token.cancelled() => Err(Cancelled),
            () = tokio::time::sleep(duration) => Ok(()),
        }
    }

    /// Sets the number of steps this reporter counts towards (its phase's total, or
    /// the operation's for the root context, which snapshots show at once).
    pub fn set_total_steps(&self, total: u64) {
        let old = self.total().swap(total, Ordering::Relaxed);
        if self.scope.is_none() {
            // The operation's own total shows at once; a phase's with its first report.
            self.apply(Update {
                steps_total: Some(total),
                ..Update::default()
            });
        } else {
            self.entry.progress.phase_total_changed(old, total);
        }
    }

    /// Reports that `step` steps (of the total) are done and what is happening now.
    /// The percentage follows from the total and, in a phase, maps into its range.
    /// Ignored after the operation ended.
    ///
    /// A `step` beyond the total is clamped to it (`150` of `100` shows `100/100`,
    /// 100 %), as a percentage beyond 100 is; with no total set, the step is shown as
    /// given.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::OperationContext;
    ///
    /// let ctx = OperationContext::detached().with_total_steps(100);
    /// ctx.progress(150, "past the end");
    /// let p = ctx.progress_snapshot();
    /// assert_eq!((p.steps_completed, p.steps_total, p.percentage), (100, 100, 100.0));
    /// ```
    pub fn progress(&self, step: u64, message: impl Into<String>) {
        let total = self.total().load(Ordering::Relaxed);
        let step = if total > 0 { step.min(total) } else { step };
        let percentage = (total > 0).then(|| self.map(step as f64 * 100.0 / total as f64));
        self.apply(Update {
            percentage,
            message: Some(message.into()),
            steps: Some((step, total)),
            ..Update::default()
        });
    }

    /// Sets the completion of this reporter directly, `0.0..=100.0` of its range.
    pub fn set_percentage(&self, percentage: f64) {
        self.apply(Update {
            percentage: Some(self.map(percentage)),
            ..Update::default()
        });
    }

    /// Reports that `processed` items (rows, samples, bytes…) are done.
    pub fn items(&self, processed: u64) {
        self.apply(Update {
            items_processed: Some(processed),
            ..Update::default()
        });
    }

    /// Sets the number of items expected in all.
    pub fn set_items_total(&self, total: u64) {
        self.apply(Update {
            items_total: Some(total),
            ..Update::default()
        });
    }

    /// Sets one key of the progress `context` object (e.g. `("epoch", 3)`).
    pub fn set_context(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.entry.set_context(key.into(), value.into());
    }

    fn apply<'a>(&'a self, mut update: Update<'a>) {
        update.phase = self.scope.as_deref().map(|s| Reporter {
            id: s.id,
            name: s.name.as_ref(),
        });
        if self.entry.progress.apply(update) {
            self.entry.notify_observer();
        }
    }

    /// A sub-reporter for one phase of the work: its 0–100 % maps into `range` (in
    /// percent) of this reporter's range, and it counts its own steps.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::OperationContext;
    ///
    /// let ctx = OperationContext::detached();
    /// let training = ctx.phase(10.0..90.0).with_total_steps(4);
    /// training.progress(2, "epoch 2/4");
    /// assert_eq!(ctx.progress_snapshot().percentage, 50.0);
    /// ```
    #[must_use]
    pub fn phase(&self, range: Range<f64>) -> Self {
        let clamp = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(0.0, 100.0) };
        let (start, end) = (clamp(range.start), clamp(range.end));
        let (start, end) = (start.min(end), start.max(end));
        Self {
            entry: self.entry.clone(),
            scope: Some(Arc::new(Scope {
                id: NEXT_PHASE.fetch_add(1, Ordering::Relaxed),
                lo: self.map(start),
                hi: self.map(end),
                total: AtomicU64::new(0),
                name: None,
                children: OnceLock::new(),
            })),
        }
    }

    /// Names this reporter's phase, shown as
    /// [`OperationProgress::phase`](crate::OperationProgress::phase) while it reports
    /// (`prepare`, `train`, `save`…). On the operation's own context it names a phase
    /// over its whole range.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::OperationContext;
    ///
    /// let ctx = OperationContext::detached();
    /// let train = ctx.phase(10.0..90.0).named("train").with_total_steps(4);
    /// train.progress(1, "epoch 1/4");
    /// assert_eq!(ctx.progress_snapshot().phase.as_deref(), Some("train"));
    /// ```
    #[must_use]
    pub fn named(self, name: impl Into<Arc<str>>) -> Self {
        let phase = if self.scope.is_some() {
            self
        } else {
            self.phase(0.0..100.0)
        };
        let Some(scope) = phase.scope.as_deref() else {
            return phase;
        };
        Self {
            entry: phase.entry.clone(),
            scope: Some(Arc::new(Scope {
                id: scope.id,
                lo: scope.lo,
                hi: scope.hi,
                total: AtomicU64::new(scope.total.load(Ordering::Relaxed)),
                name: Some(name.into()),
                children: OnceLock::new(),
            })),
        }
    }

    /// Sets this reporter's step total and returns it (for chaining after
    /// [`phase`](Self::phase)).
    #[must_use]
    pub fn with_total_steps(self, total: u64) -> Self {
        self.set_total_steps(total);
        self
    }

    /// Appends a metric record (e.g. `{"epoch": 3, "loss": 0.12}`), readable through
    /// [`Operations::metrics`](crate::Operations::metrics). A record that fails to
    /// serialise, or whose JSON is larger than the registry's limit (64 KiB by default,
    /// see [`OperationsBuilder::with_max_metric_bytes`](crate::OperationsBuilder::with_max_metric_bytes)),
    /// is logged and skipped; call [`try_metric`](Self::try_metric) to handle that
    /// yourself.
    pub fn metric(&self, record: impl Serialize) {
        if let Err(e) = self.try_metric(record) {
            tracing::warn!(operation_id = %self.entry.id, error = %e, "metric record skipped");
        }
    }

    /// Appends a metric record like [`metric`](Self::metric), or says why it could not.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Serialize`] if `record` cannot be serialised,
    /// [`OrchestratorError::MetricTooLarge`] if its JSON exceeds the registry's limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationContext, OrchestratorError};
    ///
    /// let ctx = OperationContext::detached();
    /// ctx.try_metric(serde_json::json!({"epoch": 1, "loss": 0.5}))?;
    /// let huge = "x".repeat(100 * 1024);
    /// assert!(matches!(
    ///     ctx.try_metric(serde_json::json!({"blob": huge})),
    ///     Err(OrchestratorError::MetricTooLarge { .. })
    /// ));
    /// # Ok::<(), OrchestratorError>(())
    /// ```
    pub fn try_metric(&self, record: impl Serialize) -> Result<(), OrchestratorError> {
        let value = serde_json::to_value(record)?;
        let mut size = ByteCount(0);
        serde_json::to_writer(&mut size, &value)?;
        self.entry.push_metric(value, size.0)
    }

    /// Publishes the result so far (e.g. `{"epochs_completed": 3, "loss": 0.2}`): it is
    /// the record's `result_summary` while the operation runs, and stays its summary
    /// when the operation ends without returning a value — cancelled through `?` on
    /// [`checkpoint`](Self::checkpoint) or [`sleep`](Self::sleep), failed, aborted. A
    /// value the operation returns replaces it. A value that fails to serialise is
    /// logged and skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use orchestrator::{Cancelled, OperationContext, OperationSpec, OperationStatus, Operations};
    ///
    /// async fn train(ctx: OperationContext, epochs: u32) -> Result<u32, Cancelled> {
    ///     for epoch in 1..=epochs {
    ///         ctx.checkpoint()?; // cancelled: the partial result below is kept
    ///         ctx.set_partial_result(serde_json::json!({ "epochs_completed": epoch }));
    ///         if epoch == 2 { ctx.token().cancel(); }
    ///     }
    ///     Ok(epochs)
    /// }
    ///
    /// let ops = Operations::new();
    /// let handle = ops.spawn(OperationSpec::new("training"), |ctx| train(ctx, 10)).unwrap();
    /// let info = ops.wait(handle.id()).await.unwrap();
    /// assert_eq!(info.status, OperationStatus::Cancelled);
    /// assert_eq!(info.result_summary, Some(serde_json::json!({ "epochs_completed": 2 })));
    /// # }
    /// ```
    pub fn set_partial_result(&self, result: impl Serialize) {
        match serde_json::to_value(result) {
            Ok(v) => self.entry.set_partial_result(v),
            Err(e) => {
                tracing::warn!(operation_id = %self.entry.id, error = %e, "partial result is not serialisable");
            }
        }
    }

    /// Saves `state` as the operation's checkpoint: what a later attempt continues
    /// from when the operation is [resumed](crate::Operations::resume) after it failed
    /// (an error, or `interrupted` by a crash) or was cancelled. Each save replaces
    /// the last one; the record shows when it was saved
    /// ([`checkpoint_at`](crate::OperationInfo::checkpoint_at)) and at which step (the
    /// progress's `steps_completed` then: report the step, then save it).
    ///
    /// With a store ([`OperationsBuilder::open`](crate::OperationsBuilder::open)) the
    /// checkpoint is written through: when this returns `Ok`, it is in the database
    /// (one write, cheap enough for every epoch; store failures are retried for up to
    /// one lease). Without one it is kept in memory, for a resume in this process.
    ///
    /// Not to be confused with [`checkpoint`](Self::checkpoint), the cancellation check.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Serialize`] if `state` does not serialise;
    /// [`OrchestratorError::CheckpointTooLarge`] over the registry's limit (1 MiB by
    /// default); [`OrchestratorError::NotRunning`] unless the operation runs;
    /// [`OrchestratorError::StoreUnavailable`] if the store failed for a whole lease or
    /// no longer lets this process write the operation. Nothing is saved then.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), orchestrator::OrchestratorError> {
    /// use orchestrator::OperationContext;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Trained { epoch: u32, best_loss: f64 }
    ///
    /// let ctx = OperationContext::detached().with_total_steps(10);
    /// ctx.progress(3, "epoch 3/10");
    /// ctx.save_checkpoint(&Trained { epoch: 3, best_loss: 0.4 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_checkpoint<S: Serialize + ?Sized>(
        &self,
        state: &S,
    ) -> Result<(), OrchestratorError> {
        let value = serde_json::to_value(state)?;
        let mut size = ByteCount(0);
        serde_json::to_writer(&mut size, &value)?;
        let limit = self.entry.limits().max_checkpoint_bytes;
        if size.0 > limit {
            return Err(OrchestratorError::CheckpointTooLarge {
                size: size.0,
                limit,
            });
        }
        let status = self.entry.status();
        if status != crate::OperationStatus::Running {
            return Err(OrchestratorError::NotRunning {
                id: self.entry.id.clone(),
                status,
            });
        }
        let step = self.entry.progress_snapshot().steps_completed;
        let checkpoint = Checkpoint::new(value, step, std::time::SystemTime::now());
        if let Some(durable) = self.entry.durable() {
            durable.save_checkpoint(&self.entry, &checkpoint).await?;
        }
        self.entry.set_checkpoint(checkpoint)
    }

    /// The state saved by the last [`save_checkpoint`](Self::save_checkpoint) of an
    /// earlier attempt, when this attempt is a [resume](crate::Operations::resume):
    /// `Ok(None)` on a first attempt. Read it first, and skip the work it covers.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::InvalidCheckpoint`] when the saved state does not read as
    /// an `S` (the state type changed between attempts).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationContext, OrchestratorError};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Trained { epoch: u32 }
    ///
    /// fn first_epoch(ctx: &OperationContext) -> Result<u32, OrchestratorError> {
    ///     Ok(ctx.resume_state::<Trained>()?.map_or(1, |s| s.epoch + 1))
    /// }
    ///
    /// assert_eq!(first_epoch(&OperationContext::detached())?, 1);
    /// # Ok::<(), OrchestratorError>(())
    /// ```
    pub fn resume_state<S: DeserializeOwned>(&self) -> Result<Option<S>, OrchestratorError> {
        self.entry
            .resumed_from()
            .map(|checkpoint| S::deserialize(&checkpoint.state))
            .transpose()
            .map_err(OrchestratorError::InvalidCheckpoint)
    }

    /// Which run of the operation this is: 1, and one more for each resume.
    pub fn attempt(&self) -> u32 {
        self.entry.attempt
    }

    /// Registers and spawns a child operation: its `parent_id` is this operation, its
    /// token a child of this one's (cancelling this operation cancels it, with the
    /// same reason; cancelling the child leaves this one running), and it is listed,
    /// observed and cancelled like any other ([`GET /operations/{id}/children`] lists
    /// them). Await the handle to handle its outcome: a child that fails or panics
    /// ends `FAILED` and this operation decides what follows.
    ///
    /// With [`OperationSpec::with_progress_weight`], the child's progress moves this
    /// reporter's: it shows the weighted mean of its weighted children, so spawn from
    /// a [`phase`](Self::phase) to give the children a slice of the range. On a
    /// [`detached`](Self::detached) context the child runs in a registry of its own.
    ///
    /// [`GET /operations/{id}/children`]: crate::http
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::AlreadyFinished`] once this operation ended, and the
    /// errors of [`Operations::spawn`](crate::Operations::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), orchestrator::OrchestratorError> {
    /// use orchestrator::{OperationFilter, OperationSpec, Operations, Outcome};
    ///
    /// let ops = Operations::new();
    /// let parent = ops.spawn(OperationSpec::new("load_all"), |ctx| async move {
    ///     let mut rows = 0;
    ///     for file in ["a.csv", "b.csv"] {
    ///         let spec = OperationSpec::new("load").with_parameter("file", file).with_progress_weight(1.0);
    ///         let child = ctx
    ///             .spawn_child(spec, |child| async move {
    ///                 child.set_percentage(100.0);
    ///                 Ok::<_, String>(10)
    ///             })
    ///             .map_err(|e| e.to_string())?;
    ///         match child.outcome().await {
    ///             Outcome::Completed(n) => rows += n,
    ///             _ => return Err(format!("{file} did not load")),
    ///         }
    ///     }
    ///     Ok::<_, String>(rows)
    /// })?;
    /// let info = ops.wait(parent.id()).await?;
    /// assert_eq!(info.result_summary, Some(20.into()));
    /// assert_eq!(info.progress.percentage, 100.0);
    /// let children = ops.list(&OperationFilter::new().with_parent(parent.id().clone()));
    /// assert_eq!(children.total_count, 2);
    /// # Ok(()) }
    /// ```
    pub fn spawn_child<F, Fut, T, E>(
        &self,
        spec: OperationSpec,
        f: F,
    ) -> Result<OperationHandle<T, E>, OrchestratorError>
    where
        F: OperationFn<Fut>,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
        let status = self.entry.status();
        if status.is_terminal() {
            return Err(OrchestratorError::AlreadyFinished {
                id: self.entry.id.clone(),
                status,
            });
        }
        let ops = self.entry.registry().unwrap_or_default();
        let observer = spec.progress_weight.map(|weight| {
            let shares = self.child_shares().clone();
            let slot = shares.join(weight);
            let reporter = self.clone();
            Box::new(move |p: &OperationProgress| {
                reporter.set_percentage(shares.report(slot, p.percentage));
            }) as entry::ProgressObserver
        });
        let spec = spec.with_parent(self.entry.id.clone());
        ops.spawn_with(spec, Some((&self.entry.token, observer)), f)
    }

    fn child_shares(&self) -> &Arc<ProgressShares> {
        match &self.scope {
            Some(scope) => scope.children.get_or_init(Arc::default),
            None => self.entry.child_shares(),
        }
    }

    /// Runs `f` on Tokio's blocking pool with a clone of this context, for CPU-bound or
    /// blocking work: progress and cancellation work from that thread as they do here.
    /// A panic in `f` is resumed in the caller (so the operation ends `FAILED`).
    ///
    /// # Cancellation
    ///
    /// A thread cannot be stopped from outside: cancellation reaches `f` only through
    /// the context, so check [`is_cancelled`](Self::is_cancelled) (or
    /// [`checkpoint`](Self::checkpoint)) between chunks of work, often enough that the
    /// operation stops within its grace period. What happens when `f` does not:
    ///
    /// - the operation's async part is dropped when its grace period ends, but the
    ///   operation is **not** recorded as ended while `f` still runs: it stays
    ///   `RUNNING`, with [`OperationInfo::abandoned`](crate::OperationInfo::abandoned)
    ///   set, counts as active, and keeps its concurrency slot (so a limit of 1 never
    ///   runs two at once). When `f` returns, the operation ends `CANCELLED` (or
    ///   `FAILED` after a deadline) and the slot goes to the next one.
    /// - the registry refuses new operations while too many are abandoned
    ///   ([`OperationsBuilder::with_max_abandoned`](crate::OperationsBuilder::with_max_abandoned)),
    ///   so stuck work cannot silently fill Tokio's blocking pool.
    /// - [`Operations::shutdown`](crate::Operations::shutdown) reports such work as left
    ///   behind instead of waiting for it for ever.
    ///
    /// The same holds for an `async fn` that never reaches an `.await` (a long loop
    /// with no yield point): Tokio cannot interrupt it at all, not even to drop it, so
    /// keep CPU-bound loops in `spawn_blocking` and check the context there.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the runtime shut down before `f` could run.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), orchestrator::Cancelled> {
    /// use orchestrator::OperationContext;
    ///
    /// let ctx = OperationContext::detached();
    /// let sum = ctx.spawn_blocking(|ctx| {
    ///     let mut sum = 0u64;
    ///     for i in 0..1_000u64 {
    ///         if i % 100 == 0 && ctx.is_cancelled() { break; }
    ///         sum += i;
    ///         ctx.items(i + 1);
    ///     }
    ///     sum
    /// }).await?;
    /// assert_eq!(sum, 499_500);
    /// # Ok(()) }
    /// ```
    pub async fn spawn_blocking<F, R>(&self, f: F) -> Result<R, Cancelled>
    where
        F: FnOnce(OperationContext) -> R + Send + 'static,
        R: Send + 'static,
    {
        let ctx = self.clone();
        // Counted from now until `f` returns (or is dropped unrun), whatever happens to
        // this future: the registry knows the work runs even if nobody awaits it.
        let guard = self.entry.blocking_started();
        let joined = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            f(ctx)
        })
        .await;
        crate::join::joined(joined).ok_or(Cancelled)
    }

    /// A snapshot of the operation's progress.
    pub fn progress_snapshot(&self) -> OperationProgress {
        self.entry.progress_snapshot()
    }
}

/// Counts the bytes of a serialisation without keeping them.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for OperationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationContext")
            .field("operation_id", &self.entry.id)
            .field("range", &(self.map(0.0)..self.map(100.0)))
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}
