//! Append-only, bounded per-operation metric records with a monotonic cursor.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A page of metric records returned by [`Operations::metrics`](crate::Operations::metrics).
///
/// The cursor counts every record ever appended to the operation, so it only grows:
/// pass the returned `cursor` back to get only newer records. When old records were
/// dropped to respect the per-operation bound, `dropped` says how many the caller missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct MetricsPage {
    /// Records after the requested cursor, oldest first.
    pub metrics: Vec<serde_json::Value>,
    /// The cursor to pass next time.
    pub cursor: u64,
    /// Records after the requested cursor that were already dropped (bound reached).
    #[serde(default)]
    pub dropped: u64,
}

#[derive(Debug)]
pub(crate) struct MetricsLog {
    records: VecDeque<serde_json::Value>,
    /// Number of records ever appended; the cursor of the newest record.
    appended: u64,
    capacity: usize,
    /// The cursor up to which records were flushed to the registry's store.
    flushed: u64,
}

impl MetricsLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            appended: 0,
            capacity: capacity.max(1),
            flushed: 0,
        }
    }

    /// A log that continues after `records`, the last of them at cursor `cursor`,
    /// already in the store (a resumed attempt's, read back from it).
    pub(crate) fn seeded(capacity: usize, records: Vec<serde_json::Value>, cursor: u64) -> Self {
        let mut log = Self::new(capacity);
        let kept = records.len().min(log.capacity);
        let skip = records.len() - kept;
        log.records.extend(records.into_iter().skip(skip));
        log.appended = cursor.max(log.records.len() as u64);
        log.flushed = log.appended;
        log
    }

    /// The records not yet flushed to a store: the cursor index of the first, the
    /// records, and the cursor after them; `None` when every record was flushed.
    pub(crate) fn unflushed(&self) -> Option<(u64, Vec<serde_json::Value>, u64)> {
        if self.flushed >= self.appended {
            return None;
        }
        let page = self.page(self.flushed);
        let first_index = page.cursor - page.metrics.len() as u64;
        Some((first_index, page.metrics, page.cursor))
    }

    /// Records up to cursor `upto` are in the store.
    pub(crate) fn mark_flushed(&mut self, upto: u64) {
        self.flushed = self.flushed.max(upto);
    }

    pub(crate) fn push(&mut self, record: serde_json::Value) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
        self.appended += 1;
    }

    pub(crate) fn page(&self, cursor: u64) -> MetricsPage {
        let first = self.appended - self.records.len() as u64;
        let from = cursor.clamp(first, self.appended);
        let skip = usize::try_from(from - first).unwrap_or(usize::MAX);
        MetricsPage {
            metrics: self.records.iter().skip(skip).cloned().collect(),
            cursor: self.appended,
            dropped: first.saturating_sub(cursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_is_monotonic_and_bound_drops_oldest() {
        let mut log = MetricsLog::new(3);
        for i in 0..5 {
            log.push(i.into());
        }
        let all = log.page(0);
        assert_eq!(all.metrics, [2, 3, 4].map(serde_json::Value::from));
        assert_eq!((all.cursor, all.dropped), (5, 2));
        let none = log.page(all.cursor);
        assert!(none.metrics.is_empty());
        assert_eq!(none.cursor, 5);
        log.push(5.into());
        let next = log.page(5);
        assert_eq!(next.metrics, [serde_json::Value::from(5)]);
        assert_eq!((next.cursor, next.dropped), (6, 0));
        // A cursor from the future gives nothing and the true cursor.
        assert_eq!(log.page(100).cursor, 6);
    }
}
