//! Change notification of an entry (rule 5 of the entry module).

use std::sync::atomic::Ordering;

use super::Entry;

impl Entry {
    /// Something other than progress changed: bumps the version, wakes the watches.
    pub(super) fn changed(&self) {
        self.progress.bump();
        self.wake_watchers();
    }

    pub(super) fn wake_watchers(&self) {
        if self.watchers.load(Ordering::Relaxed) > 0 {
            if let Some(lazy) = self.lazy.get() {
                lazy.changes.notify_waiters();
            }
        }
    }

    /// Registers a watch (rule 5); undone by `unwatch`.
    pub(crate) fn watch(&self) {
        self.lazy();
        self.watchers.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn is_watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Its token was cancelled from outside `cancel` (the registry's root): the
    /// record's cancel reason changed.
    pub(crate) fn cancel_requested(&self) {
        self.changed();
    }

    pub(crate) fn unwatch(&self) {
        self.watchers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits until the version differs from `seen`; returns the new version.
    pub(crate) async fn changed_since(&self, seen: u64) -> u64 {
        let Some(changes) = self.lazy.get().map(|l| &l.changes) else {
            // Never watched: nothing will wake us (callers register first).
            return self.progress.version();
        };
        loop {
            let notified = changes.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.progress.version();
            if now != seen {
                return now;
            }
            notified.await;
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.progress.version()
    }
}
