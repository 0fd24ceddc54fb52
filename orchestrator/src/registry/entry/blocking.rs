//! Blocking work of an operation: counted while it runs, so that an operation whose
//! async part was dropped is not recorded as ended (rule 4 of the entry module).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::OwnedSemaphorePermit;

use super::{Abandoned, Ending, Entry};

impl Entry {
    /// A `spawn_blocking` closure of this operation starts; the guard says when it
    /// returned (or unwound, or was dropped unrun).
    pub(crate) fn blocking_started(self: &Arc<Self>) -> BlockingGuard {
        self.blocking.fetch_add(1, Ordering::AcqRel);
        BlockingGuard(self.clone())
    }

    /// How many `spawn_blocking` closures of this operation are running.
    pub(crate) fn blocking_count(&self) -> u32 {
        self.blocking.load(Ordering::Acquire)
    }

    /// Marks the operation abandoned (rule 4): its async part is gone while blocking
    /// work still runs. No-op once it ended or when no blocking work runs.
    pub(crate) fn abandon(&self, message: &str) {
        let mut st = self.state.lock();
        if self.status().is_terminal() || st.abandoned.is_some() || self.blocking_count() == 0 {
            return;
        }
        st.abandoned = Some(Box::new(Abandoned {
            since: SystemTime::now(),
            message: message.to_owned(),
            deferred: None,
        }));
        drop(st);
        if let Some(ledger) = &self.ledger {
            ledger.abandoned();
        }
        self.changed();
        tracing::warn!(
            operation_id = %self.id,
            blocking_tasks = self.blocking_count(),
            "{message}; its blocking work is still running, so it stays RUNNING until that returns"
        );
    }

    /// Records `ending` now if no blocking work runs, or else when the last blocking
    /// closure returns (keeping `permit` until then). For a driver that is dropped and
    /// cannot wait.
    pub(crate) fn finish_or_defer(
        self: &Arc<Self>,
        ending: Ending,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        {
            let mut st = self.state.lock();
            if self.blocking_count() > 0 && !self.status().is_terminal() {
                let abandoned = st.abandoned.get_or_insert_with(|| {
                    if let Some(ledger) = &self.ledger {
                        ledger.abandoned();
                    }
                    Box::new(Abandoned {
                        since: SystemTime::now(),
                        message: "operation dropped before it finished".to_owned(),
                        deferred: None,
                    })
                });
                abandoned.deferred = Some((ending, permit));
                return;
            }
        }
        drop(permit);
        let _ = self.finish(ending);
    }

    /// Waits until no blocking closure of this operation runs.
    pub(crate) async fn blocking_idle(&self) {
        let finished = self.finished_notify();
        loop {
            let notified = finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.blocking_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(super) fn last_blocking_returned(self: &Arc<Self>) {
        let deferred = self
            .state
            .lock()
            .abandoned
            .as_mut()
            .and_then(|a| a.deferred.take());
        // Wakes a driver waiting in `blocking_idle` (and, harmlessly, `finished` waiters,
        // which check the status again).
        self.wake_finished();
        if let Some((ending, permit)) = deferred {
            let _ = self.finish(ending);
            drop(permit);
        }
    }
}

/// Held by a running `spawn_blocking` closure (rule 4).
pub(crate) struct BlockingGuard(Arc<Entry>);

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        if self.0.blocking.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.last_blocking_returned();
        }
    }
}
