//! The per-operation progress state shared by an operation's contexts and the registry.
//!
//! Locking rules:
//! 1. The lock is held only to copy plain fields in or out; no allocation, no user code
//!    and no other lock while it is held (up to the rare long message below). Writers
//!    build what they store before locking and drop what they replace after unlocking;
//!    readers copy a short message into a stack buffer and the context as an `Arc`,
//!    and build their owned snapshot after unlocking. So a reader never makes a writer
//!    wait for more than a few copies, and the reverse.
//! 2. Once `sealed` (the operation reached a terminal state), updates are ignored.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::info::{JsonMap, OperationProgress};

#[derive(Debug, Default)]
pub(crate) struct ProgressCell {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    percentage: f64,
    current_step: String,
    steps_completed: u64,
    steps_total: u64,
    items_processed: u64,
    items_total: Option<u64>,
    /// Copy-on-write: readers share it, a writer clones it only while a reader holds it.
    context: Option<Arc<JsonMap>>,
    sealed: bool,
}

/// Messages up to this many bytes are copied out under the lock without allocating.
const INLINE_MESSAGE: usize = 96;

/// One progress report; `None` fields are left as they are.
#[derive(Debug, Default)]
pub(crate) struct Update {
    pub(crate) percentage: Option<f64>,
    pub(crate) message: Option<String>,
    pub(crate) steps: Option<(u64, u64)>,
    pub(crate) steps_total: Option<u64>,
    pub(crate) items_processed: Option<u64>,
    pub(crate) items_total: Option<u64>,
}

impl ProgressCell {
    /// A cell that shows `0/steps_total` until the first report.
    pub(crate) fn with_total(steps_total: u64) -> Self {
        let cell = Self::default();
        cell.state.lock().steps_total = steps_total;
        cell
    }

    /// Applies `update`; returns `false` when the cell is sealed.
    pub(crate) fn apply(&self, update: Update) -> bool {
        let old_message;
        {
            let mut s = self.state.lock();
            if s.sealed {
                return false;
            }
            if let Some(p) = update.percentage {
                s.percentage = p;
            }
            if let Some((done, total)) = update.steps {
                s.steps_completed = done;
                s.steps_total = total;
            }
            if let Some(total) = update.steps_total {
                s.steps_total = total;
            }
            if let Some(n) = update.items_processed {
                s.items_processed = n;
            }
            if let Some(n) = update.items_total {
                s.items_total = Some(n);
            }
            old_message = update
                .message
                .map(|m| std::mem::replace(&mut s.current_step, m));
        }
        drop(old_message);
        true
    }

    pub(crate) fn set_context(&self, key: String, value: serde_json::Value) -> bool {
        let old = {
            let mut s = self.state.lock();
            if s.sealed {
                return false;
            }
            Arc::make_mut(s.context.get_or_insert_with(Default::default)).insert(key, value)
        };
        drop(old);
        true
    }

    /// Freezes the progress; with `complete`, it is shown as 100 %.
    pub(crate) fn seal(&self, complete: bool) {
        let mut s = self.state.lock();
        s.sealed = true;
        if complete {
            s.percentage = 100.0;
            if s.steps_total > 0 {
                s.steps_completed = s.steps_total;
            }
        }
    }

    /// A copy of the progress; `running_since` (when the operation started) gives the
    /// rate for the ETA.
    pub(crate) fn snapshot(&self, running_since: Option<SystemTime>) -> OperationProgress {
        let mut inline = [0u8; INLINE_MESSAGE];
        let (mut p, message_len, context, sealed) = {
            let s = self.state.lock();
            let message = s.current_step.as_bytes();
            let (current_step, message_len) = match inline.get_mut(..message.len()) {
                Some(buf) => {
                    buf.copy_from_slice(message);
                    (String::new(), message.len())
                }
                None => (s.current_step.clone(), 0),
            };
            (
                OperationProgress {
                    percentage: s.percentage,
                    current_step,
                    steps_completed: s.steps_completed,
                    steps_total: s.steps_total,
                    items_processed: s.items_processed,
                    items_total: s.items_total,
                    context: JsonMap::new(),
                    eta_seconds: None,
                },
                message_len,
                s.context.clone(),
                s.sealed,
            )
        };
        if message_len > 0 {
            // A copy of a `String`'s bytes: always valid UTF-8.
            p.current_step = String::from_utf8_lossy(&inline[..message_len]).into_owned();
        }
        if let Some(context) = context {
            p.context = JsonMap::clone(&context);
        }
        p.percentage = p.percentage.clamp(0.0, 100.0);
        if !sealed && p.percentage > 0.0 && p.percentage < 100.0 {
            if let Some(elapsed) = running_since.and_then(|t| t.elapsed().ok()) {
                let elapsed = elapsed.as_secs_f64();
                p.eta_seconds = Some(elapsed * (100.0 - p.percentage) / p.percentage);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cell_ignores_updates() {
        let cell = ProgressCell::default();
        assert!(cell.apply(Update {
            percentage: Some(40.0),
            message: Some("a".into()),
            ..Update::default()
        }));
        cell.seal(false);
        assert!(!cell.apply(Update {
            percentage: Some(90.0),
            message: Some("late".into()),
            ..Update::default()
        }));
        assert!(!cell.set_context("k".into(), 1.into()));
        let p = cell.snapshot(None);
        assert_eq!((p.percentage, p.current_step.as_str()), (40.0, "a"));
        assert!(p.context.is_empty());
    }

    #[test]
    fn short_long_and_non_ascii_messages_read_back_intact() {
        let cell = ProgressCell::default();
        for message in ["", "Iteration 3/100", "épreuve ✓ 100 %", &"x".repeat(500)] {
            cell.apply(Update {
                message: Some(message.to_owned()),
                ..Update::default()
            });
            assert_eq!(cell.snapshot(None).current_step, message);
        }
        cell.set_context("a".into(), 1.into());
        let held = cell.snapshot(None);
        cell.set_context("b".into(), 2.into());
        assert_eq!(
            held.context.len(),
            1,
            "snapshots are not affected by later writes"
        );
        assert_eq!(cell.snapshot(None).context.len(), 2);
    }

    #[test]
    fn completion_shows_full_progress_and_eta_from_rate() {
        let cell = ProgressCell::default();
        let since = SystemTime::now() - std::time::Duration::from_secs(10);
        cell.apply(Update {
            percentage: Some(25.0),
            steps: Some((1, 4)),
            ..Update::default()
        });
        let eta = cell
            .snapshot(Some(since))
            .eta_seconds
            .expect("eta while running");
        assert!((29.0..40.0).contains(&eta), "{eta}");
        cell.seal(true);
        let p = cell.snapshot(None);
        assert_eq!(
            (p.percentage, p.steps_completed, p.eta_seconds),
            (100.0, 4, None)
        );
    }
}
