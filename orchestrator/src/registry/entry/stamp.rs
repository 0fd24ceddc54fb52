//! A point in time in 8 bytes: an entry keeps several, and a registry many entries.

use std::time::{Duration, SystemTime};

/// A [`SystemTime`] as nanoseconds since the Unix epoch, or none (0). Covers
/// 1970–2554 at full precision; an earlier time is kept as the epoch's first
/// nanosecond, a later one as the last representable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp(u64);

impl Stamp {
    /// `at`, kept.
    pub(super) fn of(at: SystemTime) -> Self {
        let nanos = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self(nanos.max(1))
    }

    /// The current time.
    pub(super) fn now() -> Self {
        Self::of(SystemTime::now())
    }

    /// The time kept, if any.
    pub(super) fn get(self) -> Option<SystemTime> {
        (self.0 != 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_nanos(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_times_to_the_nanosecond() {
        assert_eq!(Stamp::default().get(), None);
        let now = SystemTime::now();
        assert_eq!(Stamp::of(now).get(), Some(now));
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(
            Stamp::of(epoch - Duration::from_secs(5)).get(),
            Some(epoch + Duration::from_nanos(1))
        );
        let far = epoch + Duration::from_secs(600 * 365 * 86_400);
        assert_eq!(
            Stamp::of(far).get(),
            Some(epoch + Duration::from_nanos(u64::MAX))
        );
    }
}
