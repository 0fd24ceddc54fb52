//! A parent's progress as the weighted mean of its children's: each weighted child
//! reports its percentage into a slot, and the reporter that spawned it shows
//! `Σ weight × percentage / Σ weight`.
//!
//! Locking rules: the slots' lock is held only to write one slot and sum them; the
//! parent's progress is set after it is released.

use parking_lot::Mutex;

/// The weighted children of one reporter.
#[derive(Debug, Default)]
pub(crate) struct ProgressShares {
    /// `(weight, percentage)` of each weighted child, in spawn order.
    slots: Mutex<Vec<(f64, f64)>>,
}

impl ProgressShares {
    /// Adds a child of `weight` at 0 %; returns its slot.
    pub(crate) fn join(&self, weight: f64) -> usize {
        let mut slots = self.slots.lock();
        slots.push((weight, 0.0));
        slots.len() - 1
    }

    /// Child `slot` is at `percentage`: returns the weighted mean of all of them.
    pub(crate) fn report(&self, slot: usize, percentage: f64) -> f64 {
        let mut slots = self.slots.lock();
        if let Some(s) = slots.get_mut(slot) {
            s.1 = if percentage.is_nan() {
                0.0
            } else {
                percentage.clamp(0.0, 100.0)
            };
        }
        let (weighted, total) = slots
            .iter()
            .fold((0.0, 0.0), |(sum, total), (w, p)| (sum + w * p, total + w));
        if total > 0.0 { weighted / total } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::ProgressShares;

    #[test]
    fn weighted_mean_of_the_children() {
        let shares = ProgressShares::default();
        let (a, b) = (shares.join(1.0), shares.join(3.0));
        assert_eq!(shares.report(a, 100.0), 25.0);
        assert_eq!(shares.report(b, 50.0), 62.5);
        assert_eq!(shares.report(b, f64::NAN), 25.0);
        assert_eq!(shares.report(b, 250.0), 100.0);
    }
}
