//! A terminal progress bar that follows an operation through an [`OperationSource`].

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{OperationId, OperationInfo, OperationSource, SourceError};

/// Settings of a [`ProgressRenderer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderOptions {
    /// How often the source is read (default 100 ms).
    pub poll_interval: Duration,
    /// Draw nothing (for tests and non-interactive use).
    pub hidden: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            hidden: false,
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

    /// Follows operation `id` until it reaches a terminal state, drawing its progress,
    /// and returns the final record. Transient source failures are retried at the poll
    /// interval.
    ///
    /// # Errors
    ///
    /// [`SourceError::NotFound`] or [`SourceError::Other`] from the source.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future clears the bar.
    pub async fn follow<S: OperationSource + ?Sized>(
        &self,
        source: &S,
        id: &OperationId,
    ) -> Result<OperationInfo, SourceError> {
        let bar = ProgressBar::with_draw_target(
            Some(1000),
            if self.options.hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(style());
        let bar = ClearOnDrop(bar);
        loop {
            match source.fetch(id).await {
                Ok(info) => {
                    update(&bar.0, &info);
                    if info.status.is_terminal() {
                        bar.0.finish();
                        return Ok(info);
                    }
                }
                Err(SourceError::Unavailable(e)) => {
                    tracing::debug!(operation_id = %id, error = %e, "progress source unavailable; retrying");
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }
}

struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.abandon();
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
        let id = ops.create(OperationSpec::new("dummy").with_total_steps(100));
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
}
