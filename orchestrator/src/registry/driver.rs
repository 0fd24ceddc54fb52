//! Runs a managed operation's future and records its outcome.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt as _;
use pin_project_lite::pin_project;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::entry::{Ending, Entry};
use crate::{CancellationToken, Failure, OperationContext, Outcome};

pub(crate) struct Driver {
    pub(crate) entry: Arc<Entry>,
    pub(crate) grace: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) slot: Slot,
}

/// A queued wait for a permit that gives up when the operation is cancelled: `None`
/// then (or if the semaphore was closed).
type Acquire = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

/// A place under a per-type concurrency limit.
pub(crate) enum Slot {
    /// No limit applies.
    Unlimited,
    /// Holding a permit.
    Held(OwnedSemaphorePermit),
    /// Queued for a permit.
    Queued(Acquire),
}

impl Slot {
    /// Queues for a permit of `sem` now, so that operations get their turn in the
    /// order they were started (the semaphore is FIFO), not in the order their tasks
    /// are first polled. The wait gives up when `token` is cancelled; it is one box
    /// with the permit's own future, so the driver's future (every operation's task,
    /// most of which never queue) does not hold a cancellation wait of its own.
    pub(crate) fn queue(sem: Arc<Semaphore>, token: CancellationToken) -> Self {
        let mut acquire: Acquire = Box::pin(async move {
            tokio::select! {
                biased;
                () = token.cancelled() => None,
                permit = sem.acquire_owned() => permit.ok(),
            }
        });
        match acquire
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Some(permit)) => Self::Held(permit),
            // Cancelled already (the driver ends the operation), or a closed semaphore,
            // which is never created: run unlimited rather than hang.
            Poll::Ready(None) => Self::Unlimited,
            Poll::Pending => Self::Queued(acquire),
        }
    }
}

enum Ended<R> {
    Returned(R),
    Panicked(String),
    Aborted,
    DeadlineExceeded,
}

impl<R> Ended<R> {
    /// How work that returned, or panicked (caught by `catch_unwind`), ended.
    fn of(r: std::thread::Result<R>) -> Self {
        match r {
            Ok(r) => Self::Returned(r),
            Err(panic) => Self::Panicked(panic_message(&*panic)),
        }
    }
}

impl Driver {
    /// The operation's whole run, as a future for a task (or to await inline).
    ///
    /// Not an `async fn`: the arguments of one are kept in its future for its whole
    /// life, beside the copies its body moves them into, which would grow every
    /// operation's task. An `async` block uses what it captures in place.
    pub(crate) fn run<F, Fut, T, E>(self, f: F) -> impl Future<Output = Outcome<T, E>>
    where
        F: FnOnce(OperationContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize,
        E: std::fmt::Display,
    {
        let Self {
            entry,
            grace,
            deadline,
            slot,
        } = self;
        // If the future is dropped before the end is recorded (runtime shutdown, a
        // caller dropping an inline run), the operation must not stay active forever.
        // The guard also holds the concurrency slot, which is released only after the
        // end is recorded (or, for abandoned blocking work, when that work returns).
        let mut guard = FinishOnDrop { entry, slot };
        async move {
            // Wait PENDING for a slot (FIFO), unless cancelled first.
            if let Slot::Queued(acquire) = &mut guard.slot {
                guard.slot = acquire.as_mut().await.map_or(Slot::Unlimited, Slot::Held);
            }
            // The work and its timer live in this future only, so an aborted operation's
            // future is dropped (its resources released) before its end is recorded.
            // Built in a block of its own: what the block binds is not kept beside the
            // work while it runs (every operation's task would hold it).
            let ended = {
                let entry = &guard.entry;
                let token = &entry.token;
                if token.is_cancelled() || entry.start().is_err() {
                    let _ = entry.finish(Ending::Cancelled);
                    return Outcome::Cancelled(None);
                }
                tracing::debug!(operation_id = %entry.id, "operation started");
                let ctx = OperationContext::new(entry.clone());
                Supervise {
                    // `f` is called inside, so a panic before its future exists is caught
                    // too; `lazy(..).flatten()` keeps `f` and the future it makes in one
                    // place, where an `async` block would keep both.
                    work: AssertUnwindSafe(futures::future::lazy(move |_| f(ctx)).flatten())
                        .catch_unwind(),
                    token,
                    // One timer, boxed only when needed (a deadline, or a cancellation's
                    // grace period), so an idle operation's task stays small.
                    timer: deadline.map(|d| Box::pin(tokio::time::sleep(d))),
                    grace: &grace,
                    cancel_seen: false,
                    timer_is_grace: false,
                }
            }
            .await;
            let entry = &guard.entry;
            let token = &entry.token;
            // The kept waker holds this task: a finished operation's record (and its
            // token) must not keep it alive.
            token.drop_driver_waker();

            // Blocking closures cannot be stopped: until every one has returned, the
            // operation is not over (it keeps its slot and stays RUNNING, marked abandoned
            // if its async part was dropped). Boxed: the rare path must not grow every
            // operation's task.
            let ended = if entry.blocking_count() > 0 {
                Box::pin(outlive_blocking(entry, ended, grace)).await
            } else {
                ended
            };

            let (ending, outcome) = match ended {
                Ended::Returned(Ok(value)) => {
                    let summary = serde_json::to_value(&value)
                    .inspect_err(|e| {
                        tracing::warn!(operation_id = %entry.id, error = %e, "result summary is not serialisable");
                    })
                    .ok();
                    let outcome = if token.is_cancelled() {
                        Outcome::Cancelled(Some(value))
                    } else {
                        Outcome::Completed(value)
                    };
                    (Ending::Returned(summary), outcome)
                }
                Ended::Returned(Err(e)) => {
                    let outcome = if token.is_cancelled() {
                        Outcome::Cancelled(None)
                    } else {
                        Outcome::Failed(Failure::Error(e))
                    };
                    (Ending::Errored(outcome_message(&outcome)), outcome)
                }
                Ended::Panicked(msg) => {
                    let message = format!("panicked: {msg}");
                    (
                        Ending::Failed(message),
                        Outcome::Failed(Failure::Panicked(msg)),
                    )
                }
                Ended::Aborted => {
                    tracing::warn!(operation_id = %entry.id, ?grace, "operation ignored cancellation; aborted after grace period");
                    (Ending::Cancelled, Outcome::Cancelled(None))
                }
                Ended::DeadlineExceeded => {
                    // Stop blocking work that still holds the context, too.
                    entry.token.cancel_with_reason("deadline exceeded");
                    (
                        Ending::Failed("deadline exceeded".to_owned()),
                        Outcome::Failed(Failure::DeadlineExceeded),
                    )
                }
            };
            match entry.finish(ending) {
                Ok(status) => {
                    tracing::debug!(operation_id = %entry.id, %status, "operation finished");
                }
                Err(e) => {
                    tracing::debug!(operation_id = %entry.id, error = %e, "operation already ended");
                }
            }
            outcome
        }
    }
}

pin_project! {
    /// Runs the work until it ends, watching for cancellation (then the grace period)
    /// and the deadline. One future rather than a `select!` loop: it holds each part
    /// once, and waits for cancellation with the task's own waker kept in the token
    /// (`poll_cancelled_by_driver`), not a `Notified`, so every operation's task is
    /// smaller.
    struct Supervise<'a, W> {
        #[pin]
        work: W,
        token: &'a CancellationToken,
        timer: Option<Pin<Box<Sleep>>>,
        // Borrowed from the driver's own copy: a second one would grow every task.
        grace: &'a Duration,
        cancel_seen: bool,
        timer_is_grace: bool,
    }
}

impl<W, R> Future for Supervise<'_, W>
where
    W: Future<Output = std::thread::Result<R>>,
{
    type Output = Ended<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended<R>> {
        let this = self.project();
        let mut work = this.work;
        if !*this.cancel_seen {
            // The driver's waker is kept before the work is polled, so work that waits
            // on its token with this task's waker needs no waiter of its own (token
            // rule 7).
            this.token.keep_driver_waker(cx);
        }
        // Work first: an operation that ends as it is cancelled ends as it returned.
        if let Poll::Ready(r) = work.as_mut().poll(cx) {
            return Poll::Ready(Ended::of(r));
        }
        if !*this.cancel_seen && this.token.poll_cancelled_by_driver().is_ready() {
            *this.cancel_seen = true;
            // The cancellation came after the work looked: work waiting on this task's
            // waker alone (token rule 7) is woken by nobody else, so it is polled again
            // now that it can see the flag.
            if let Poll::Ready(r) = work.as_mut().poll(cx) {
                return Poll::Ready(Ended::of(r));
            }
            // Still running after it could see the cancellation: its grace period
            // starts now. Armed only here, so work that stops at once (most of it)
            // costs no timer.
            let abort_at = tokio::time::Instant::now() + **this.grace;
            match this.timer {
                Some(t) if t.deadline() <= abort_at => {}
                Some(t) => {
                    t.as_mut().reset(abort_at);
                    *this.timer_is_grace = true;
                }
                None => {
                    *this.timer = Some(Box::pin(tokio::time::sleep_until(abort_at)));
                    *this.timer_is_grace = true;
                }
            }
        }
        if let Some(t) = this.timer {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(if *this.timer_is_grace {
                    Ended::Aborted
                } else {
                    Ended::DeadlineExceeded
                });
            }
        }
        Poll::Pending
    }
}

/// Waits for the operation's blocking closures after its async part ended, marking it
/// abandoned if that part was dropped (grace period over, deadline).
async fn outlive_blocking<R>(entry: &Entry, ended: Ended<R>, grace: Duration) -> Ended<R> {
    match &ended {
        Ended::Aborted => entry.abandon(&format!(
            "ignored cancellation for {}",
            humantime::format_duration(grace)
        )),
        Ended::DeadlineExceeded => {
            entry.token.cancel_with_reason("deadline exceeded");
            entry.abandon("deadline exceeded");
        }
        Ended::Returned(_) | Ended::Panicked(_) => {}
    }
    entry.blocking_idle().await;
    ended
}

/// The running operation's entry and its concurrency slot: records a cancelled end if
/// dropped while the operation is still active, then releases the slot.
struct FinishOnDrop {
    entry: Arc<Entry>,
    slot: Slot,
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if self.entry.status().is_active() {
            self.entry
                .token
                .cancel_with_reason("operation dropped before it finished");
            let permit = match std::mem::replace(&mut self.slot, Slot::Unlimited) {
                Slot::Held(permit) => Some(permit),
                Slot::Unlimited | Slot::Queued(_) => None,
            };
            // Blocking work still running records the end (and frees the slot) itself.
            self.entry.finish_or_defer(Ending::Cancelled, permit);
        }
    }
}

fn outcome_message<T, E: std::fmt::Display>(outcome: &Outcome<T, E>) -> String {
    match outcome {
        Outcome::Failed(f) => f.to_string(),
        _ => String::new(),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod size_probe {
    use std::sync::Arc;

    use crate::{OperationContext, OperationSpec, Operations};

    /// Work that waits on its token, as a sleeping operation's does.
    async fn sleep_on(ctx: OperationContext, held: Arc<()>) -> Result<(), String> {
        let _held = held;
        ctx.cancelled().await;
        Ok(())
    }

    /// What the driver adds to the work's own future is in every operation's task
    /// (tokio sizes a task in steps of 128 bytes, so a few bytes more can cost 128).
    /// It was 168 bytes before the work was called through `lazy(..).flatten()` (which
    /// holds the closure and the future it makes in one place), the grace period
    /// borrowed rather than copied, and the references the driver takes before the
    /// work starts left out of the state the work runs in.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_driver_adds_little_to_the_works_future() {
        let work = size_of_val(&sleep_on(OperationContext::detached(), Arc::new(())));
        let ops = Operations::new();
        let driver = ops
            .driver_with(OperationSpec::new("probe"), None)
            .expect("registered");
        let held = Arc::new(());
        let run = size_of_val(&driver.run(move |ctx| sleep_on(ctx, held)));
        assert!(
            run - work <= OVERHEAD,
            "the driver adds {} bytes to a {work}-byte work future",
            run - work
        );
    }

    const OVERHEAD: usize = 120;

    /// A no-op operation's driver future: 128 bytes makes a 256-byte tokio task (a
    /// header and trailer of 80 bytes, the core's 24, in steps of 128). It was 192
    /// bytes (a 384-byte task) while the driver held the wait for a concurrency slot,
    /// a cancellation future of 64 bytes and more, in every operation's state; the wait
    /// is now in the slot's own box, made only for kinds with a limit.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_no_op_operations_driver_fits_a_small_task() {
        let ops = Operations::new();
        let driver = ops
            .driver_with(OperationSpec::new("probe"), None)
            .expect("registered");
        let run = driver.run(|_ctx| async { Ok::<_, String>(()) });
        assert!(
            size_of_val(&run) <= 128,
            "a no-op operation's driver future is {} bytes",
            size_of_val(&run)
        );
    }
}
