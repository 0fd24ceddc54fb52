//! The per-operation progress state shared by an operation's contexts and the registry.
//!
//! Locking rules:
//! 1. The lock is held only to copy plain fields in or out; no allocation, no user code
//!    and no other lock while it is held (up to the rare long message below, and the
//!    phase record, allocated once per operation at its first phase report). Writers
//!    build what they store before locking and drop what they replace after unlocking;
//!    readers copy a short message into a stack buffer and the context as an `Arc`,
//!    and build their owned snapshot after unlocking. So a reader never makes a writer
//!    wait for more than a few copies, and the reverse.
//! 2. Once `sealed` (the operation reached a terminal state), updates are ignored.
//! 3. The clock is read under the lock only when the reporting phase changes (to
//!    restart the rate the ETA is taken from), never on an ordinary update.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::info::{JsonMap, OperationProgress};
use crate::view::ProgressCounts;

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
    /// The items total, if one was reported (see `has_items_total`): a plain `u64`
    /// and a flag beside `sealed` take 8 bytes less than an `Option<u64>` in every
    /// operation's record.
    items_total: u64,
    has_items_total: bool,
    /// Copy-on-write: readers share it, a writer clones it only while a reader holds it.
    context: Option<Arc<JsonMap>>,
    sealed: bool,
    /// Boxed: most operations have no phases, and a registry holds many.
    phases: Option<Box<Phases>>,
    /// Bumped on every change of the record (progress here; status, cancel request and
    /// partial result through `bump`), so watchers can tell whether anything changed.
    version: u64,
}

impl State {
    fn items_total(&self) -> Option<u64> {
        self.has_items_total.then_some(self.items_total)
    }
}

/// What phased progress keeps besides the counters.
#[derive(Debug)]
struct Phases {
    /// The phase that reported last (0: the operation's own reporter), and its name.
    id: usize,
    name: Option<Arc<str>>,
    /// Where the current phase's rate is measured from: when it first reported and
    /// the percentage then.
    origin: (SystemTime, f64),
    /// The sum of the phases' step totals.
    total: u64,
}

impl Phases {
    fn new(percentage: f64) -> Box<Self> {
        Box::new(Self {
            id: 0,
            name: None,
            origin: (SystemTime::now(), percentage),
            total: 0,
        })
    }
}

/// Another phase reports: it becomes the current one, and its rate is measured from
/// this report on, so the ETA follows the work now being done (rule 3). Returns the
/// previous phase's name, to drop after unlocking. Off the hot path: an operation
/// without phases never gets here, one with phases once per phase change.
#[cold]
#[inline(never)]
fn restart_phase(s: &mut State, id: usize, name: Option<&Arc<str>>) -> Option<Arc<str>> {
    let percentage = s.percentage;
    // Allocated once per operation, at its first phase report (rule 1).
    let phases = s.phases.get_or_insert_with(|| Phases::new(percentage));
    phases.id = id;
    phases.origin = (SystemTime::now(), percentage);
    std::mem::replace(&mut phases.name, name.cloned())
}

/// Messages up to this many bytes are copied out under the lock without allocating.
const INLINE_MESSAGE: usize = 96;

/// One progress report; `None` fields are left as they are.
#[derive(Debug, Default)]
pub(crate) struct Update<'a> {
    pub(crate) percentage: Option<f64>,
    pub(crate) message: Option<String>,
    pub(crate) steps: Option<(u64, u64)>,
    pub(crate) steps_total: Option<u64>,
    pub(crate) items_processed: Option<u64>,
    pub(crate) items_total: Option<u64>,
    /// Who reports: `None` for the operation's own (root) reporter.
    pub(crate) phase: Option<Reporter<'a>>,
}

/// A phase that reports: its identity (stable while it lives) and name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reporter<'a> {
    pub(crate) id: usize,
    pub(crate) name: Option<&'a Arc<str>>,
}

impl ProgressCell {
    /// A cell that shows `0/steps_total` until the first report.
    pub(crate) fn with_total(steps_total: u64) -> Self {
        let cell = Self::default();
        cell.state.lock().steps_total = steps_total;
        cell
    }

    /// Applies `update`; returns `false` when the cell is sealed.
    pub(crate) fn apply(&self, update: Update<'_>) -> bool {
        let old_message;
        let old_phase;
        {
            let mut s = self.state.lock();
            if s.sealed {
                return false;
            }
            if let Some(p) = update.percentage {
                s.percentage = p;
            }
            s.version += 1;
            let id = update.phase.map_or(0, |r| r.id);
            old_phase = if id == s.phases.as_ref().map_or(0, |p| p.id) {
                None
            } else {
                restart_phase(&mut s, id, update.phase.and_then(|r| r.name))
            };
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
                s.items_total = n;
                s.has_items_total = true;
            }
            old_message = update
                .message
                .map(|m| std::mem::replace(&mut s.current_step, m));
        }
        drop(old_message);
        drop(old_phase);
        true
    }

    /// The version of the record (see `State::version`).
    pub(crate) fn version(&self) -> u64 {
        self.state.lock().version
    }

    /// Something outside the progress changed (status, cancel request, result).
    pub(crate) fn bump(&self) {
        self.state.lock().version += 1;
    }

    /// A phase's step total changed from `old` to `new`: keeps the sum of the phases'
    /// totals, the whole run's steps when the operation has no total of its own.
    pub(crate) fn phase_total_changed(&self, old: u64, new: u64) {
        let mut s = self.state.lock();
        let percentage = s.percentage;
        let phases = s.phases.get_or_insert_with(|| Phases::new(percentage));
        phases.total = phases.total.saturating_sub(old).saturating_add(new);
    }

    pub(crate) fn set_context(&self, key: String, value: serde_json::Value) -> bool {
        let old = {
            let mut s = self.state.lock();
            if s.sealed {
                return false;
            }
            s.version += 1;
            Arc::make_mut(s.context.get_or_insert_with(Default::default)).insert(key, value)
        };
        drop(old);
        true
    }

    /// Freezes the progress; with `complete`, it is shown as 100 %, with the whole
    /// run's steps (the operation's own total `root_total`, or else the sum of its
    /// phases').
    pub(crate) fn seal(&self, complete: bool, root_total: u64) {
        let mut s = self.state.lock();
        s.sealed = true;
        s.version += 1;
        if complete {
            s.percentage = 100.0;
            let whole = if root_total > 0 {
                root_total
            } else if let Some(total) = s.phases.as_ref().map(|p| p.total).filter(|&t| t > 0) {
                total
            } else {
                s.steps_total
            };
            s.steps_total = whole;
            s.steps_completed = whole;
        }
    }

    /// The counters, clamped as a snapshot clamps them: one lock, no allocation.
    pub(crate) fn counts(&self) -> ProgressCounts {
        let s = self.state.lock();
        ProgressCounts {
            percentage: s.percentage.clamp(0.0, 100.0),
            steps_completed: s.steps_completed,
            steps_total: s.steps_total,
            items_processed: s.items_processed,
            items_total: s.items_total(),
        }
    }

    /// Calls `f` with the current step message, copied out under the lock onto the
    /// stack when it is short (no allocation, no lock held while `f` runs).
    pub(crate) fn with_step<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut inline = [0u8; INLINE_MESSAGE];
        let long = {
            let s = self.state.lock();
            let message = s.current_step.as_bytes();
            match inline.get_mut(..message.len()) {
                Some(buf) => {
                    buf.copy_from_slice(message);
                    Err(message.len())
                }
                None => Ok(s.current_step.clone()),
            }
        };
        match long {
            Ok(message) => f(&message),
            // A copy of a `String`'s bytes: always valid UTF-8.
            Err(len) => f(std::str::from_utf8(&inline[..len]).unwrap_or_default()),
        }
    }

    /// A copy of the progress; `running_since` (when the operation started) is where
    /// the rate for the ETA is measured from until a phase reports.
    pub(crate) fn snapshot(&self, running_since: Option<SystemTime>) -> OperationProgress {
        let mut inline = [0u8; INLINE_MESSAGE];
        let (mut p, message_len, context, sealed, phase, origin) = {
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
                    items_total: s.items_total(),
                    context: JsonMap::new(),
                    phase: None,
                    eta_seconds: None,
                },
                message_len,
                s.context.clone(),
                s.sealed,
                s.phases.as_ref().and_then(|p| p.name.clone()),
                s.phases.as_ref().filter(|p| p.id != 0).map(|p| p.origin),
            )
        };
        p.phase = phase.map(|name| name.to_string());
        if message_len > 0 {
            // A copy of a `String`'s bytes: always valid UTF-8.
            p.current_step = String::from_utf8_lossy(&inline[..message_len]).into_owned();
        }
        if let Some(context) = context {
            p.context = JsonMap::clone(&context);
        }
        p.percentage = p.percentage.clamp(0.0, 100.0);
        if !sealed && p.percentage < 100.0 {
            let (since, from) = match origin {
                Some((t, pct)) => (Some(t), pct),
                None => (running_since, 0.0),
            };
            let done = p.percentage - from;
            if let Some(elapsed) = since.and_then(|t| t.elapsed().ok()) {
                if done > 0.0 {
                    p.eta_seconds = Some(elapsed.as_secs_f64() * (100.0 - p.percentage) / done);
                }
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
        cell.seal(false, 0);
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
        cell.seal(true, 4);
        let p = cell.snapshot(None);
        assert_eq!(
            (p.percentage, p.steps_completed, p.eta_seconds),
            (100.0, 4, None)
        );
    }
}
