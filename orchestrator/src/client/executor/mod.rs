//! `OperationExecutor`: start an operation, follow it with the progress bar, cancel it
//! on request, report how it ended. Knows nothing about any domain.
//!
//! | file         | holds                                                          |
//! | ------------ | -------------------------------------------------------------- |
//! | `mod.rs`     | the executor: its settings, following, cancelling, starting    |
//! | `output.rs`  | what it writes and where: [`Output`], notices, the result line |
//! | `outcome.rs` | what a run came to: [`ExecutorOutcome`], [`Execution`]         |
//! | `lens.rs`    | the source as the adapter words it; the plain adapter          |

use std::fmt;
use std::io;
use std::time::Duration;

use parking_lot::Mutex;

use super::adapter::{OperationAdapter, default_result_message};
use super::api::ApiClient;
use super::error::ClientError;
use super::trigger::CancelTrigger;
use crate::{OperationId, OperationSource, ProgressDisplay, ProgressRenderer};

mod lens;
mod outcome;
mod output;

use lens::{Lens, Plain};
pub use outcome::{Execution, ExecutorOutcome};
pub use output::Output;
use output::Writer;

/// Runs operations for a CLI: starts one through an [`OperationAdapter`], follows it
/// through an [`OperationSource`] with the same [`ProgressRenderer`] bar as anywhere
/// else, and on a [`CancelTrigger`] request (Ctrl+C) cancels it and follows it to its
/// end, so the report is the operation's own (`Cancelled after 7 iterations`).
///
/// The source is an [`ApiClient`] for an operation on a server, or the in-process
/// [`Operations`](crate::Operations) registry: one code path for both.
///
/// | when                         | what happens                                                         |
/// | ---------------------------- | -------------------------------------------------------------------- |
/// | the operation changes        | redraw the bar: pushed by the source where it can ([`ApiClient`]: the event stream; [`Operations`](crate::Operations): its watch), else read every poll interval (300 ms) |
/// | a read fails                 | [`ApiClient`] retries it per its [`RetryPolicy`](super::RetryPolicy); once those are used up the run ends with the error |
/// | the operation vanishes (404) | the run ends with [`ClientError::Vanished`]                          |
/// | first cancel request         | ask the source to cancel (at most 5 s), keep following it (at most 10 s) |
/// | second cancel request        | stop waiting at once: [`ExecutorOutcome::Cancelled`]                 |
///
/// # Examples
///
/// Against a server, with Ctrl+C:
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<std::process::ExitCode, orchestrator::client::ClientError> {
/// use orchestrator::client::{ApiClient, CancelTrigger, OperationAdapter, OperationExecutor};
///
/// struct Nap;
/// impl OperationAdapter for Nap {
///     type Request = orchestrator::client::EmptyRequest;
///     fn start_path(&self) -> &str { "/nap/start" }
///     fn request(&self) -> &Self::Request { &orchestrator::client::EmptyRequest {} }
/// }
///
/// let executor = OperationExecutor::new(ApiClient::new("http://127.0.0.1:8000")?)
///     .with_cancel_trigger(CancelTrigger::ctrl_c().map_err(|e| {
///         orchestrator::client::ClientError::Setup(e.into())
///     })?);
/// let run = executor.execute(&Nap).await?;
/// Ok(run.outcome.into())
/// # }
/// ```
///
/// In process, following an operation of the local registry:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use orchestrator::client::{ExecutorOutcome, OperationExecutor, Output};
/// use orchestrator::{OperationSpec, Operations};
///
/// let ops = Operations::new();
/// let handle = ops.spawn(OperationSpec::new("nap"), |ctx| async move {
///     ctx.sleep(Duration::from_millis(5)).await
/// })?;
/// let executor = OperationExecutor::new(ops.clone())
///     .with_output(Output::Silent)
///     .with_poll_interval(Duration::from_millis(1));
/// let run = executor.follow_plain(handle.id()).await?;
/// assert_eq!(run.outcome, ExecutorOutcome::Completed);
/// # Ok(()) }
/// ```
pub struct OperationExecutor<S> {
    source: S,
    poll_interval: Duration,
    poll_failures: u32,
    cancel_timeout: Duration,
    cancel_wait: Duration,
    cancel_reason: String,
    output: Output,
    trigger: Option<tokio::sync::Mutex<CancelTrigger>>,
    writer: Option<Writer>,
    notices: Option<Writer>,
}

impl<S: fmt::Debug> fmt::Debug for OperationExecutor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationExecutor")
            .field("source", &self.source)
            .field("poll_interval", &self.poll_interval)
            .field("poll_failures", &self.poll_failures)
            .field("cancel_timeout", &self.cancel_timeout)
            .field("cancel_wait", &self.cancel_wait)
            .field("cancel_reason", &self.cancel_reason)
            .field("output", &self.output)
            .field("has_trigger", &self.trigger.is_some())
            .field("has_writer", &self.writer.is_some())
            .field("has_notices", &self.notices.is_some())
            .finish()
    }
}

/// Why the executor stopped following before the operation ended.
enum CutShort {
    /// A second cancel request.
    Interrupted,
    /// The operation did not stop within the cancel wait.
    TimedOut,
}

impl<S: OperationSource> OperationExecutor<S> {
    /// An executor following operations through `source`, with the defaults: poll
    /// every 300 ms, give up at the first failed read (an [`ApiClient`] read has
    /// already been retried), 5 s for the cancel request, then up to 10 s for the
    /// operation to stop; [`Output::Terminal`]; no cancel trigger; no writers (so
    /// nothing is written but the bar).
    pub fn new(source: S) -> Self {
        Self {
            source,
            poll_interval: Duration::from_millis(300),
            poll_failures: 1,
            cancel_timeout: Duration::from_secs(5),
            cancel_wait: Duration::from_secs(10),
            cancel_reason: "cancelled by user".to_owned(),
            output: Output::Terminal,
            trigger: None,
            writer: None,
            notices: None,
        }
    }

    /// Writes the result line (or, with [`Output::Json`], the final record) to
    /// `writer`: a CLI passes `std::io::stdout()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io::Write;
    /// use std::sync::{Arc, Mutex};
    /// use orchestrator::client::OperationExecutor;
    /// use orchestrator::{OperationSpec, Operations};
    ///
    /// /// A writer the test can read afterwards.
    /// #[derive(Clone, Default)]
    /// struct Shared(Arc<Mutex<Vec<u8>>>);
    /// impl Write for Shared {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
    ///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// }
    ///
    /// let ops = Operations::new();
    /// let handle = ops.spawn(OperationSpec::new("nap").with_description("nap"), |_ctx| async { Ok::<_, String>(()) })?;
    /// let out = Shared::default();
    /// OperationExecutor::new(ops.clone()).with_writer(out.clone()).follow_plain(handle.id()).await?;
    /// assert!(String::from_utf8(out.0.lock().unwrap().clone())?.starts_with("Completed nap"));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_writer(mut self, writer: impl io::Write + Send + 'static) -> Self {
        self.writer = Some(Mutex::new(Box::new(writer)));
        self
    }

    /// Writes notices (`Started op_…`, `Cancelling op_…`, warnings about the cancel
    /// request) to `writer`, above the bar while one is drawn: a CLI passes
    /// `std::io::stderr()`. Notices are best effort: a failed write is ignored.
    #[must_use]
    pub fn with_notices(mut self, writer: impl io::Write + Send + 'static) -> Self {
        self.notices = Some(Mutex::new(Box::new(writer)));
        self
    }

    /// Reads the operation every `interval` (default 300 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Ends the run after `n` failed reads in a row (default 1, at least 1). A read
    /// through an [`ApiClient`] fails only once its retry policy is used up; raise
    /// this for a source that does not retry by itself.
    #[must_use]
    pub fn with_poll_failures(mut self, n: u32) -> Self {
        self.poll_failures = n.max(1);
        self
    }

    /// Gives the cancel request `timeout` to be accepted (default 5 s); it is best
    /// effort: on a timeout the executor still waits for the operation to stop.
    #[must_use]
    pub fn with_cancel_timeout(mut self, timeout: Duration) -> Self {
        self.cancel_timeout = timeout;
        self
    }

    /// After the cancel request, waits at most `wait` for the operation to stop
    /// (default 10 s) before reporting it cancelled anyway.
    #[must_use]
    pub fn with_cancel_wait(mut self, wait: Duration) -> Self {
        self.cancel_wait = wait;
        self
    }

    /// The reason recorded with the cancellation (default `cancelled by user`).
    #[must_use]
    pub fn with_cancel_reason(mut self, reason: impl Into<String>) -> Self {
        self.cancel_reason = reason.into();
        self
    }

    /// Prints as `output` says (default [`Output::Terminal`]).
    #[must_use]
    pub fn with_output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Listens to `trigger` while following: the first request cancels the
    /// operation, a second stops waiting. Without one (the default), nothing cancels.
    #[must_use]
    pub fn with_cancel_trigger(mut self, trigger: CancelTrigger) -> Self {
        self.trigger = Some(tokio::sync::Mutex::new(trigger));
        self
    }

    /// The source operations are followed through.
    pub const fn source(&self) -> &S {
        &self.source
    }

    /// The output mode.
    pub const fn output(&self) -> Output {
        self.output
    }

    /// Follows operation `id` until it ends, drawing it and wording the end with
    /// `adapter`; prints as the [`Output`] says and returns the result.
    ///
    /// # Errors
    ///
    /// [`ClientError::Vanished`] when the source no longer knows the operation;
    /// [`ClientError::Source`] when reading it failed `poll_failures` times in a row
    /// (through an [`ApiClient`]: `cannot reach …: is the server running?` once its
    /// retries are used up).
    pub async fn follow<A: OperationAdapter + ?Sized>(
        &self,
        id: &OperationId,
        adapter: &A,
    ) -> Result<Execution, ClientError> {
        let mut trigger = self.lock_trigger().await;
        self.follow_with(id, adapter, trigger.as_deref_mut(), false)
            .await
    }

    /// [`follow`](Self::follow) with the default wording, for any operation.
    ///
    /// # Errors
    ///
    /// As [`follow`](Self::follow).
    pub async fn follow_plain(&self, id: &OperationId) -> Result<Execution, ClientError> {
        self.follow(id, &Plain).await
    }

    async fn lock_trigger(&self) -> Option<tokio::sync::MutexGuard<'_, CancelTrigger>> {
        match &self.trigger {
            Some(trigger) => Some(trigger.lock().await),
            None => None,
        }
    }

    async fn follow_with<A: OperationAdapter + ?Sized>(
        &self,
        id: &OperationId,
        adapter: &A,
        trigger: Option<&mut CancelTrigger>,
        cancel_requested: bool,
    ) -> Result<Execution, ClientError> {
        let mut renderer = ProgressRenderer::new()
            .with_poll_interval(self.poll_interval)
            .with_max_failures(self.poll_failures);
        if self.output != Output::Terminal {
            renderer = renderer.hidden();
        }
        let display = renderer.display();
        let lens = Lens {
            source: &self.source,
            adapter,
            raw: Mutex::new(None),
        };
        let followed = tokio::select! {
            result = renderer.follow_on(&lens, id, &display) => Ok(result),
            cut = self.on_cancel_request(id, &display, trigger, cancel_requested) => Err(cut),
        };
        let last = lens.raw.lock().take();
        let execution = match followed {
            Ok(Ok(_formatted)) => {
                let info = last.ok_or_else(|| ClientError::Executor {
                    what: format!("no record of {id} was read"),
                    source: "the source's updates ended without a record".into(),
                })?;
                let outcome =
                    ExecutorOutcome::from_status(info.status).unwrap_or(ExecutorOutcome::Failed);
                let message = adapter
                    .result_message(&info)
                    .unwrap_or_else(|| default_result_message(&info));
                Execution {
                    operation_id: id.clone(),
                    outcome,
                    info: Some(info),
                    message,
                }
            }
            // The caller says it, once; the bar stays where it stopped.
            Ok(Err(e)) => return Err(e.into()),
            Err(cut) => {
                let lead = match cut {
                    CutShort::Interrupted => "Stopped waiting".to_owned(),
                    CutShort::TimedOut => format!(
                        "Still not stopped {:.0}s after the cancel request",
                        self.cancel_wait.as_secs_f64()
                    ),
                };
                let message = match &last {
                    Some(info) if info.status.is_terminal() => adapter
                        .result_message(info)
                        .unwrap_or_else(|| default_result_message(info)),
                    Some(info) => format!("{lead}: {}", default_result_message(info)),
                    None => format!("{lead}: {id}"),
                };
                Execution {
                    operation_id: id.clone(),
                    outcome: ExecutorOutcome::Cancelled,
                    info: last,
                    message,
                }
            }
        };
        display.finish();
        self.report(&execution).map_err(|e| ClientError::Executor {
            what: "cannot write the result".to_owned(),
            source: e.into(),
        })?;
        Ok(execution)
    }

    /// Waits for a cancel request (unless one was `already` made), asks the source to
    /// cancel, then waits for a second request or the end of the cancel wait. Never
    /// resolves without a trigger; while it runs, the follow keeps going, so it usually
    /// wins.
    async fn on_cancel_request(
        &self,
        id: &OperationId,
        display: &ProgressDisplay,
        trigger: Option<&mut CancelTrigger>,
        already: bool,
    ) -> CutShort {
        let Some(trigger) = trigger else {
            return std::future::pending().await;
        };
        if !already {
            trigger.fired().await;
        }
        self.notice(
            Some(display),
            &format!("Cancelling {id}… (again to stop waiting)"),
        );
        let request = tokio::time::timeout(
            self.cancel_timeout,
            self.source.cancel(id, &self.cancel_reason),
        );
        tokio::select! {
            sent = request => match sent {
                Ok(Ok(())) => self.notice(Some(display), "Cancellation requested; waiting for the operation to stop"),
                Ok(Err(e)) => self.notice(Some(display), &format!("warning: the cancel request failed: {e}")),
                Err(_) => self.notice(Some(display), &format!(
                    "warning: no answer to the cancel request within {:.0}s",
                    self.cancel_timeout.as_secs_f64()
                )),
            },
            () = trigger.fired() => return CutShort::Interrupted,
        }
        tokio::select! {
            () = trigger.fired() => CutShort::Interrupted,
            () = tokio::time::sleep(self.cancel_wait) => CutShort::TimedOut,
        }
    }
}

impl OperationExecutor<ApiClient> {
    /// Starts an operation through `adapter` (`POST {start_path}` with its
    /// [`request`](OperationAdapter::request) as JSON) and returns its id without
    /// following it: fire and forget.
    ///
    /// # Errors
    ///
    /// [`ClientError::RequestBody`] when the request does not serialise (or
    /// serialises to `null`); the request's [`ClientError`];
    /// [`ClientError::InvalidResponse`] when the adapter finds no id in the answer.
    pub async fn start<A: OperationAdapter + ?Sized>(
        &self,
        adapter: &A,
    ) -> Result<OperationId, ClientError> {
        let path = adapter.start_path();
        let response = self.source.start(path, adapter.request()).await?;
        adapter
            .operation_id(&response)
            .ok_or_else(|| ClientError::InvalidResponse {
                url: format!("{}{path}", self.source.url()),
                reason: "no operation id in the answer (`data.operation_id`)".to_owned(),
                source: None,
            })
    }

    /// Starts an operation through `adapter`, then [`follow`](Self::follow)s it. A
    /// cancel request while the start request is under way waits for its answer (at
    /// most the cancel timeout) and cancels what it started, as a cancel during the
    /// follow would; when no answer comes (say, during the retries of an unreachable
    /// server) or a second request arrives, it ends with [`ClientError::Interrupted`].
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start) and [`follow`](Self::follow).
    pub async fn execute<A: OperationAdapter + ?Sized>(
        &self,
        adapter: &A,
    ) -> Result<Execution, ClientError> {
        let mut trigger = self.lock_trigger().await;
        let mut cancel_requested = false;
        let id = match trigger.as_deref_mut() {
            Some(t) => {
                let start = self.start(adapter);
                tokio::pin!(start);
                tokio::select! {
                    id = &mut start => id?,
                    () = t.fired() => {
                        // The request may already have started the operation on the
                        // server: finish it (bounded; a second request gives up) so
                        // that what it started is cancelled, not left running.
                        let answer = tokio::select! {
                            answer = tokio::time::timeout(self.cancel_timeout, &mut start) => answer,
                            () = t.fired() => return Err(ClientError::Interrupted),
                        };
                        match answer {
                            Ok(Ok(id)) => {
                                cancel_requested = true;
                                id
                            }
                            _ => return Err(ClientError::Interrupted),
                        }
                    }
                }
            }
            None => self.start(adapter).await?,
        };
        self.notice(None, &format!("Started {id}"));
        self.follow_with(&id, adapter, trigger.as_deref_mut(), cancel_requested)
            .await
    }
}
