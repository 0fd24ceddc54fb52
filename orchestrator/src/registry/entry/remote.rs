//! The part of an entry that mirrors an operation running on a host service (a
//! *proxy*, feature `host`): where it runs and the progress last read from there.

// Only the `host` feature makes proxies.
#![cfg_attr(not(feature = "host"), allow(dead_code))]

use std::sync::Arc;

use parking_lot::Mutex;

use super::Entry;
use crate::OperationId;
use crate::info::OperationProgress;
use crate::view::ProgressCounts;

/// Where a proxy's operation runs, and what the host last said of its progress.
#[derive(Debug)]
pub(crate) struct Remote {
    /// The host service's URL, as configured.
    pub(crate) host_url: Arc<str>,
    /// The operation's id on the host.
    pub(crate) host_operation_id: OperationId,
    /// The host's progress, copied by the proxy's follower.
    progress: Mutex<OperationProgress>,
}

impl Remote {
    pub(crate) fn new(host_url: Arc<str>, host_operation_id: OperationId) -> Self {
        Self {
            host_url,
            host_operation_id,
            progress: Mutex::new(OperationProgress::default()),
        }
    }

    pub(crate) fn progress(&self) -> OperationProgress {
        self.progress.lock().clone()
    }

    /// The host's counters, clamped as a snapshot is.
    pub(crate) fn counts(&self) -> ProgressCounts {
        let p = self.progress.lock();
        ProgressCounts {
            percentage: p.percentage.clamp(0.0, 100.0),
            steps_completed: p.steps_completed,
            steps_total: p.steps_total,
            items_processed: p.items_processed,
            items_total: p.items_total,
        }
    }

    /// Calls `f` with the host's current step, copied out first (a proxy is rare:
    /// the copy may allocate).
    pub(crate) fn with_step<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let step = self.progress.lock().current_step.clone();
        f(&step)
    }
}

impl Entry {
    /// The host this proxy mirrors; `None` for a local operation.
    pub(crate) fn remote(&self) -> Option<&Remote> {
        self.rare.as_ref()?.remote.as_ref()
    }

    /// Replaces a proxy's progress with the host's (no-op for a local operation, or
    /// once it ended): bumps the version and wakes the watches.
    pub(crate) fn mirror_progress(&self, progress: OperationProgress) {
        let Some(remote) = self.remote() else { return };
        if self.status().is_terminal() {
            return;
        }
        let old = std::mem::replace(&mut *remote.progress.lock(), progress);
        drop(old);
        self.changed();
    }
}
