//! Housekeeping any replica may run: the orphan sweep and retention pruning.

use std::time::{Duration, SystemTime};

use super::InstanceId;

/// Whose active operations [`fail_orphans`](super::OperationStore::fail_orphans)
/// declares orphans.
///
/// # Examples
///
/// ```
/// use orchestrator::store::{InstanceId, OrphanScope};
///
/// // Replicas sharing a database: only dead instances' operations.
/// let shared = OrphanScope::ExpiredLeases;
/// // A single-node server at start: every instance but this one is dead.
/// let at_start = OrphanScope::AllBut(InstanceId::generate());
/// assert_ne!(shared, at_start);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrphanScope {
    /// Operations of instances whose lease expired (or that never registered one):
    /// what live replicas sweep periodically.
    ExpiredLeases,
    /// Operations of every instance but this one, lease or not: what a process that
    /// knows it is the store's only user (a single-node SQLite server) runs at start,
    /// when its previous run may have died a moment ago with its lease still valid.
    AllBut(InstanceId),
}

/// Which terminal operations [`prune`](super::OperationStore::prune) removes (with
/// their metrics). Active operations are never removed.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use orchestrator::store::Prune;
///
/// // Finished more than a day ago, and beyond the newest 10 000 finished ones.
/// let prune = Prune::older_than(SystemTime::now(), Duration::from_secs(86_400))
///     .with_max_finished(10_000);
/// assert_eq!(prune.max_finished, Some(10_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Prune {
    /// Remove terminal operations that completed before this time.
    pub finished_before: Option<SystemTime>,
    /// Keep at most this many terminal operations: the most recently completed.
    pub max_finished: Option<usize>,
}

impl Prune {
    /// Nothing: a policy to add rules to.
    pub const fn nothing() -> Self {
        Self {
            finished_before: None,
            max_finished: None,
        }
    }

    /// Terminal operations that completed more than `retention` before `now`.
    pub fn older_than(now: SystemTime, retention: Duration) -> Self {
        Self {
            finished_before: Some(now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH)),
            max_finished: None,
        }
    }

    /// Also keeps at most `max` terminal operations, removing the oldest.
    #[must_use]
    pub const fn with_max_finished(mut self, max: usize) -> Self {
        self.max_finished = Some(max);
        self
    }
}
