//! Whether the store keeps up: what a health route reports.

use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

/// The state of a registry's store, from [`Operations::store_health`](crate::Operations::store_health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum StoreState {
    /// Every write and the last flush succeeded.
    Ok,
    /// The store is failing: operations keep running in memory, their writes and
    /// flushes are retried with backoff, and new operations are refused (503
    /// `STORE_UNAVAILABLE`) until it is back.
    Degraded,
}

/// How a registry's store is doing.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use orchestrator::Operations;
/// use orchestrator::store::{MemoryStore, StoreState};
///
/// let ops = Operations::builder().open(Arc::new(MemoryStore::new())).await?;
/// let health = ops.store_health().expect("a store is attached");
/// assert_eq!(health.state, StoreState::Ok);
/// assert!(Operations::new().store_health().is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct StoreHealth {
    /// `OK` or `DEGRADED`.
    pub state: StoreState,
    /// This process's instance id in the store.
    pub instance_id: String,
    /// Lifecycle writes (create, start, end) queued and not yet applied.
    pub backlog: usize,
    /// When the store started failing (`None` while it is `OK`).
    #[serde(with = "crate::timefmt::option")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub failing_since: Option<SystemTime>,
    /// The last error, while it is failing.
    pub last_error: Option<String>,
    /// When the last flush succeeded (which renewed this instance's lease).
    #[serde(with = "crate::timefmt::option")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub last_flush_at: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Failing {
    writer: Option<(SystemTime, String)>,
    flusher: Option<(SystemTime, String)>,
    last_flush_at: Option<SystemTime>,
}

/// Updated by the writer and the flusher.
#[derive(Debug, Default)]
pub(crate) struct Health(Mutex<Failing>);

/// Marks `slot` failing with `error`, keeping the time it first failed.
fn fail(slot: &mut Option<(SystemTime, String)>, error: &dyn std::fmt::Display) {
    let since = slot.as_ref().map_or_else(SystemTime::now, |s| s.0);
    *slot = Some((since, error.to_string()));
}

impl Health {
    pub(crate) fn writer_failed(&self, error: &dyn std::fmt::Display) {
        fail(&mut self.0.lock().writer, error);
    }

    pub(crate) fn writer_ok(&self) {
        self.0.lock().writer = None;
    }

    pub(crate) fn flush_failed(&self, error: &dyn std::fmt::Display) {
        fail(&mut self.0.lock().flusher, error);
    }

    pub(crate) fn flush_ok(&self, at: SystemTime) {
        let mut f = self.0.lock();
        f.flusher = None;
        f.last_flush_at = Some(at);
    }

    /// The last error while degraded.
    pub(crate) fn last_error(&self) -> Option<String> {
        let f = self.0.lock();
        f.writer
            .as_ref()
            .or(f.flusher.as_ref())
            .map(|(_, e)| e.clone())
    }

    pub(crate) fn report(&self, instance_id: String, backlog: usize) -> StoreHealth {
        let f = self.0.lock();
        // The one failing longest.
        let failing = [&f.writer, &f.flusher]
            .into_iter()
            .flatten()
            .min_by_key(|(since, _)| *since);
        StoreHealth {
            state: if failing.is_some() {
                StoreState::Degraded
            } else {
                StoreState::Ok
            },
            instance_id,
            backlog,
            failing_since: failing.map(|f| f.0),
            last_error: failing.map(|f| f.1.clone()),
            last_flush_at: f.last_flush_at,
        }
    }
}
