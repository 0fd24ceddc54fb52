//! Process shutdown: cancel everything, wait a bounded time, report what is left.

use std::time::{Duration, Instant};

use crate::{OperationInfo, Operations};

/// What [`Operations::shutdown`] did, and what it left behind.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use orchestrator::Operations;
///
/// let report = Operations::new().shutdown("process exit").await;
/// assert_eq!(report.cancelled, 0);
/// assert!(report.is_clean());
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// How many active operations were asked to cancel.
    pub cancelled: usize,
    /// The operations still active when the wait ended: typically abandoned ones
    /// whose blocking work ignores cancellation (see
    /// [`OperationInfo::abandoned`]). Their records say `RUNNING`.
    pub left_running: Vec<OperationInfo>,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// `true` when every operation ended before the wait was over.
    pub fn is_clean(&self) -> bool {
        self.left_running.is_empty()
    }
}

impl Operations {
    /// Shuts the registry down: cancels every active operation with `reason` (and
    /// the root token, so operations registered from now on start cancelled), then
    /// waits until they all ended, for at most the grace period plus the shutdown
    /// drain (2 s + 5 s by default; see
    /// [`OperationsBuilder::with_shutdown_drain`](crate::OperationsBuilder::with_shutdown_drain)),
    /// and reports what is left.
    ///
    /// Work left running is typically blocking work that ignores cancellation: no
    /// thread can be stopped from outside. Note that dropping a Tokio runtime waits
    /// for its blocking threads, so a process whose report is not
    /// [clean](ShutdownReport::is_clean) should end with [`std::process::exit`] (or drop
    /// its runtime with `Runtime::shutdown_timeout`) rather than return from a
    /// `#[tokio::main]` fn, which would hang until that work returns.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future only stops the wait (the cancellation is done
    /// when the first poll starts).
    pub async fn shutdown(&self, reason: &str) -> ShutdownReport {
        let started = Instant::now();
        let cancelled = self.cancel_under(&self.root_token(), reason);
        let limit = self.shared().grace_period + self.shared().shutdown_drain;
        let entries = self.active_entries();
        let all_ended = async {
            for entry in &entries {
                entry.finished().await;
            }
        };
        if tokio::time::timeout(limit, all_ended).await.is_err() {
            tracing::warn!(
                still_active = self.active_count(),
                abandoned = self.abandoned_count(),
                waited = ?limit,
                "shutdown: operations still running after the grace period and drain"
            );
        }
        // With a store: the ends and the last progress and metrics written before
        // the process goes (bounded by the same drain).
        if let Some(durable) = self.durable() {
            let rest = limit
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            let written = async {
                durable.signal.flush_now().await;
                durable.drained().await;
            };
            if tokio::time::timeout(rest, written).await.is_err() {
                tracing::warn!(
                    backlog = durable.backlog(),
                    "shutdown: the operation store did not take every write in time"
                );
            }
        }
        let left_running = entries
            .iter()
            .filter(|e| e.status().is_active())
            .map(|e| e.info())
            .collect();
        ShutdownReport {
            cancelled,
            left_running,
            elapsed: started.elapsed(),
        }
    }
}
