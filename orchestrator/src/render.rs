//! A terminal progress bar that follows an operation through an [`OperationSource`].

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

use crate::{OperationId, OperationInfo, OperationSource, SourceError};

/// How often a followed operation that reports nothing is redrawn (its elapsed time).
const CLOCK_REFRESH: Duration = Duration::from_secs(1);

/// Settings of a [`ProgressRenderer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderOptions {
    /// How often the source is read (default 100 ms).
    pub poll_interval: Duration,
    /// Draw nothing (for tests and non-interactive use).
    pub hidden: bool,
    /// Give up after this many consecutive [`SourceError::Unavailable`] reads (default
    /// `None`: keep retrying at the poll interval). A source that retries on its own,
    /// like the HTTP client of the `client` feature, is followed with `Some(1)`.
    pub max_failures: Option<u32>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            hidden: false,
            max_failures: None,
        }
    }
}

/// Draws `description [bar] 42% 42/100 Iteration 42/100 [00:01:24, ETA 00:01:56]` on
/// stderr while following an operation until it ends.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use orchestrator::{OperationSpec, Operations, ProgressRenderer};
///
/// let ops = Operations::new();
/// let handle = ops.spawn(OperationSpec::new("dummy"), |ctx| async move {
///     ctx.sleep(std::time::Duration::from_secs(1)).await
/// })?;
/// let info = ProgressRenderer::new().follow(&ops, handle.id()).await?;
/// println!("{}", info.status);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProgressRenderer {
    options: RenderOptions,
}

impl ProgressRenderer {
    /// A renderer with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A renderer with `options`.
    pub const fn with_options(options: RenderOptions) -> Self {
        Self { options }
    }

    /// Reads the source every `poll_interval`, say how often.
    #[must_use]
    pub const fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.options.poll_interval = interval;
        self
    }

    /// Draws nothing.
    #[must_use]
    pub const fn hidden(mut self) -> Self {
        self.options.hidden = true;
        self
    }

    /// Gives up after `n` consecutive transient failures of the source (see
    /// [`RenderOptions::max_failures`]).
    #[must_use]
    pub const fn with_max_failures(mut self, n: u32) -> Self {
        self.options.max_failures = Some(n);
        self
    }

    /// The options in use.
    pub const fn options(&self) -> &RenderOptions {
        &self.options
    }

    /// A bar drawn as these options say, for [`follow_on`](Self::follow_on): keep a
    /// clone to print above it while it is followed.
    pub fn display(&self) -> ProgressDisplay {
        ProgressDisplay::new(self.options.hidden)
    }

    /// Follows operation `id` until it reaches a terminal state, drawing its progress,
    /// and returns the final record. Transient source failures are retried at the poll
    /// interval (up to [`RenderOptions::max_failures`] in a row).
    ///
    /// # Errors
    ///
    /// [`SourceError::NotFound`] or [`SourceError::Other`] from the source;
    /// [`SourceError::Unavailable`] once `max_failures` reads in a row failed.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future leaves the bar where it was.
    pub async fn follow<S: OperationSource>(
        &self,
        source: &S,
        id: &OperationId,
    ) -> Result<OperationInfo, SourceError> {
        self.follow_on(source, id, &self.display()).await
    }

    /// [`follow`](Self::follow), drawing on `display`; another clone of it can print
    /// lines above the bar meanwhile ([`ProgressDisplay::suspend`]) and read the last
    /// record seen ([`ProgressDisplay::last`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use orchestrator::{OperationSpec, Operations, ProgressRenderer};
    ///
    /// let ops = Operations::new();
    /// let handle = ops.spawn(OperationSpec::new("dummy"), |ctx| async move {
    ///     ctx.sleep(std::time::Duration::from_secs(5)).await
    /// })?;
    /// let renderer = ProgressRenderer::new();
    /// let display = renderer.display();
    /// let notes = display.clone();
    /// let follow = renderer.follow_on(&ops, handle.id(), &display);
    /// let note = async move {
    ///     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///     notes.suspend(|| eprintln!("one second in"));
    ///     std::future::pending::<()>().await
    /// };
    /// tokio::select! {
    ///     info = follow => println!("{}", info?.status),
    ///     () = note => unreachable!(),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`follow`](Self::follow).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future leaves the bar where it was.
    pub async fn follow_on<S: OperationSource>(
        &self,
        source: &S,
        id: &OperationId,
        display: &ProgressDisplay,
    ) -> Result<OperationInfo, SourceError> {
        let _guard = AbandonOnDrop(display);
        let updates = source.updates(id, self.options.poll_interval);
        let mut updates = std::pin::pin!(updates);
        let mut failures = 0_u32;
        let mut last: Option<OperationInfo> = None;
        loop {
            let next = tokio::select! {
                next = updates.next() => next,
                // Nothing changed: redraw the last record, so its elapsed time moves.
                () = tokio::time::sleep(CLOCK_REFRESH) => {
                    if let Some(info) = &last {
                        display.update(info);
                    }
                    continue;
                }
            };
            match next {
                Some(Ok(info)) => {
                    failures = 0;
                    display.update(&info);
                    if info.status.is_terminal() {
                        display.finish();
                        return Ok(info);
                    }
                    last = Some(info);
                }
                Some(Err(SourceError::Unavailable(e))) => {
                    failures = failures.saturating_add(1);
                    if self.options.max_failures.is_some_and(|max| failures >= max) {
                        return Err(SourceError::Unavailable(e));
                    }
                    tracing::debug!(operation_id = %id, error = %e, failures, "progress source unavailable; retrying");
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(SourceError::Other(
                        format!("the updates of {id} ended before it did").into(),
                    ));
                }
            }
        }
    }
}

/// The bar a [`ProgressRenderer`] draws on, shared by its clones: update it with
/// records, write lines above it, read the last record it showed.
///
/// # Examples
///
/// ```
/// use orchestrator::{OperationSpec, Operations, ProgressRenderer};
///
/// let ops = Operations::new();
/// let id = ops.create(OperationSpec::new("dummy").with_total_steps(10))?;
/// let display = ProgressRenderer::new().hidden().display();
/// display.update(&ops.get(&id)?);
/// display.suspend(|| eprintln!("started"));
/// assert_eq!(display.last().map(|info| info.operation_id), Some(id));
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProgressDisplay {
    bar: ProgressBar,
    last: Arc<Mutex<Option<OperationInfo>>>,
}

impl ProgressDisplay {
    fn new(hidden: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(1000),
            if hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(style());
        Self {
            bar,
            last: Arc::default(),
        }
    }

    /// Draws `info`: its description, percentage, steps, current step, elapsed time
    /// and ETA.
    pub fn update(&self, info: &OperationInfo) {
        update(&self.bar, info);
        *self.last.lock() = Some(info.clone());
    }

    /// Runs `f` with the bar cleared, then redraws it: write a line to the terminal
    /// (stderr, stdout, a log) without tearing the bar. The display itself never
    /// prints anything but the bar.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use orchestrator::ProgressRenderer;
    ///
    /// let display = ProgressRenderer::new().hidden().display();
    /// let mut out = Vec::new();
    /// display.suspend(|| writeln!(out, "Cancelling…"))?;
    /// assert_eq!(out, b"Cancelling\xe2\x80\xa6\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// The last record drawn, if any.
    pub fn last(&self) -> Option<OperationInfo> {
        self.last.lock().clone()
    }

    /// Leaves the bar drawn as it is (at its last position: a cancelled operation's
    /// bar stays part-way) and stops redrawing it.
    pub fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}

struct AbandonOnDrop<'a>(&'a ProgressDisplay);

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if !self.0.bar.is_finished() {
            self.0.bar.abandon();
        }
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn update(bar: &ProgressBar, info: &OperationInfo) {
    bar.set_prefix(if info.description.is_empty() {
        info.operation_type.as_str().to_ascii_lowercase()
    } else {
        info.description.clone()
    });
    bar.set_position((info.progress.percentage.clamp(0.0, 100.0) * 10.0) as u64);
    bar.set_message(status_line(info));
}

/// The text after the bar: `42% 42/100 Iteration 42/100 [00:01:24, ETA 00:01:56]`.
pub(crate) fn status_line(info: &OperationInfo) -> String {
    let p = &info.progress;
    let mut line = format!("{:>3.0}%", p.percentage.clamp(0.0, 100.0));
    if p.steps_total > 0 {
        line.push_str(&format!(" {}/{}", p.steps_completed, p.steps_total));
    }
    if !p.current_step.is_empty() {
        line.push(' ');
        line.push_str(&p.current_step);
    }
    let elapsed = info.elapsed().unwrap_or_default();
    line.push_str(&format!(" [{}", clock(elapsed)));
    match (info.status.is_terminal(), p.eta_seconds) {
        (false, Some(eta)) if eta.is_finite() => {
            line.push_str(&format!(
                ", ETA {}",
                clock(Duration::from_secs_f64(eta.max(0.0)))
            ));
        }
        (true, _) => line.push_str(&format!(", {}", info.status)),
        _ => {}
    }
    line.push(']');
    line
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OperationSpec, Operations};

    #[tokio::test]
    async fn status_line_shows_percent_steps_message_elapsed_and_eta() {
        let ops = Operations::new();
        let id = ops
            .create(OperationSpec::new("dummy").with_total_steps(100))
            .unwrap();
        ops.start(&id).unwrap();
        ops.context(&id).unwrap().progress(42, "Iteration 42/100");
        let line = status_line(&ops.get(&id).unwrap());
        assert!(
            line.starts_with(" 42% 42/100 Iteration 42/100 [00:00:00"),
            "{line}"
        );
        assert!(line.contains("ETA "), "{line}");
        ops.complete(&id, 1).unwrap();
        let line = status_line(&ops.get(&id).unwrap());
        assert!(line.starts_with("100% 100/100 "), "{line}");
        assert!(line.ends_with(", COMPLETED]"), "{line}");
    }

    #[tokio::test]
    async fn follow_returns_the_terminal_record() {
        let ops = Operations::new();
        let handle = ops
            .spawn(
                OperationSpec::new("dummy").with_total_steps(3),
                |ctx| async move {
                    for i in 1..=3 {
                        ctx.sleep(Duration::from_millis(5)).await?;
                        ctx.progress(i, "tick");
                    }
                    Ok::<_, crate::Cancelled>(3)
                },
            )
            .unwrap();
        let renderer = ProgressRenderer::new()
            .hidden()
            .with_poll_interval(Duration::from_millis(2));
        let info = renderer.follow(&ops, handle.id()).await.unwrap();
        assert_eq!(info.status, crate::OperationStatus::Completed);
        let missing = OperationId::generate(&"dummy".into());
        assert!(matches!(
            renderer.follow(&ops, &missing).await,
            Err(SourceError::NotFound(_))
        ));
    }

    /// Unavailable for the first `fail` reads, then the registry's answer.
    struct Flaky {
        ops: Operations,
        fail: u32,
        reads: std::sync::atomic::AtomicU32,
    }

    impl OperationSource for Flaky {
        async fn get(&self, id: &OperationId) -> Result<OperationInfo, SourceError> {
            let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < self.fail {
                return Err(SourceError::Unavailable(format!("blip {n}").into()));
            }
            OperationSource::get(&self.ops, id).await
        }
    }

    #[tokio::test]
    async fn transient_failures_are_tolerated_up_to_max_failures() {
        let ops = Operations::new();
        let id = ops.create(OperationSpec::new("dummy")).unwrap();
        ops.start(&id).unwrap();
        ops.complete(&id, 1).unwrap();
        let flaky = |fail| Flaky {
            ops: ops.clone(),
            fail,
            reads: Default::default(),
        };
        let fast = ProgressRenderer::new()
            .hidden()
            .with_poll_interval(Duration::from_millis(1));
        // Unlimited by default.
        let info = fast.follow(&flaky(5), &id).await.unwrap();
        assert_eq!(info.status, crate::OperationStatus::Completed);
        // Two failures in a row are fine with a limit of three…
        let source = flaky(2);
        let display = fast.clone().with_max_failures(3).display();
        let info = fast
            .clone()
            .with_max_failures(3)
            .follow_on(&source, &id, &display)
            .await
            .unwrap();
        assert_eq!(display.last(), Some(info));
        // …three are not.
        let err = fast
            .with_max_failures(3)
            .follow(&flaky(3), &id)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SourceError::Unavailable(ref m) if m.to_string() == "blip 2"),
            "{err}"
        );
    }
}
