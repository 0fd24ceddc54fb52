//! When the client tries a request again: connection errors back off, 5xx answers are
//! tried a few times, 4xx answers never.

use std::time::Duration;

/// Why one attempt at a request failed, as far as retrying is concerned.
///
/// # Examples
///
/// ```
/// use orchestrator::client::{FailureKind, RetryPolicy};
///
/// // 4xx: the request itself is wrong; asking again cannot help.
/// assert_eq!(RetryPolicy::new().delay(FailureKind::Rejected, 1), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// No answer: the connection was refused, broke, or timed out.
    Connection,
    /// The server answered 5xx.
    ServerError,
    /// The server answered 4xx.
    Rejected,
}

/// How many times a request is tried and how long to wait in between.
///
/// The defaults are the operations CLI contract: connection errors are tried 5 times
/// in all, waiting 1, 2, 4 and 8 s in between (exponential from the base delay);
/// 5xx answers are tried 3 times (waiting 1 and 2 s); 4xx answers are never retried.
/// Tests shrink the base delay to milliseconds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use orchestrator::client::{FailureKind, RetryPolicy};
///
/// let policy = RetryPolicy::new();
/// let waits: Vec<_> = (1..=5).map(|n| policy.delay(FailureKind::Connection, n)).collect();
/// let s = Duration::from_secs;
/// assert_eq!(waits, [Some(s(1)), Some(s(2)), Some(s(4)), Some(s(8)), None]);
/// assert_eq!(policy.delay(FailureKind::ServerError, 3), None);
///
/// const FAST: RetryPolicy = RetryPolicy::new().with_base_delay(Duration::from_millis(5));
/// assert_eq!(FAST.total_delay(FailureKind::Connection), Duration::from_millis(75));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    base_delay: Duration,
    connection_attempts: u32,
    server_error_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// Connection errors: 5 tries, 1-2-4-8 s apart; 5xx: 3 tries; 4xx: 1.
    pub const fn new() -> Self {
        Self {
            base_delay: Duration::from_secs(1),
            connection_attempts: 5,
            server_error_attempts: 3,
        }
    }

    /// One try for everything.
    pub const fn never() -> Self {
        Self::new()
            .with_connection_attempts(1)
            .with_server_error_attempts(1)
    }

    /// The first wait; each further wait doubles it (default 1 s).
    #[must_use]
    pub const fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Tries in all when there is no answer (default 5; at least 1).
    #[must_use]
    pub const fn with_connection_attempts(mut self, attempts: u32) -> Self {
        self.connection_attempts = if attempts == 0 { 1 } else { attempts };
        self
    }

    /// Tries in all when the server answers 5xx (default 3; at least 1).
    #[must_use]
    pub const fn with_server_error_attempts(mut self, attempts: u32) -> Self {
        self.server_error_attempts = if attempts == 0 { 1 } else { attempts };
        self
    }

    /// The first wait.
    pub const fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// Tries in all for a failure of `kind`.
    pub const fn attempts(&self, kind: FailureKind) -> u32 {
        match kind {
            FailureKind::Connection => self.connection_attempts,
            FailureKind::ServerError => self.server_error_attempts,
            FailureKind::Rejected => 1,
        }
    }

    /// How long to wait after the `failed`-th try (counting from 1) failed with `kind`
    /// before trying again; `None` when that was the last try.
    pub const fn delay(&self, kind: FailureKind, failed: u32) -> Option<Duration> {
        if failed == 0 || failed >= self.attempts(kind) {
            return None;
        }
        let factor = match 1_u32.checked_shl(failed - 1) {
            Some(f) => f,
            None => u32::MAX,
        };
        Some(self.base_delay.saturating_mul(factor))
    }

    /// The time spent waiting when every try fails with `kind`.
    pub const fn total_delay(&self, kind: FailureKind) -> Duration {
        let mut total = Duration::ZERO;
        let mut failed = 1;
        while let Some(d) = self.delay(kind, failed) {
            total = total.saturating_add(d);
            if total.as_secs() == u64::MAX {
                break;
            }
            failed += 1;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn defaults_are_the_cli_contract() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts(FailureKind::Connection), 5);
        assert_eq!(p.attempts(FailureKind::ServerError), 3);
        assert_eq!(p.attempts(FailureKind::Rejected), 1);
        assert_eq!(
            p.total_delay(FailureKind::Connection),
            Duration::from_secs(15)
        );
        assert_eq!(
            p.total_delay(FailureKind::ServerError),
            Duration::from_secs(3)
        );
        assert_eq!(p.total_delay(FailureKind::Rejected), Duration::ZERO);
    }

    #[test]
    fn delays_double_from_the_base_and_stop_at_the_last_try() {
        let p = RetryPolicy::new().with_base_delay(3 * MS);
        assert_eq!(p.delay(FailureKind::Connection, 0), None);
        assert_eq!(p.delay(FailureKind::Connection, 1), Some(3 * MS));
        assert_eq!(p.delay(FailureKind::Connection, 4), Some(24 * MS));
        assert_eq!(p.delay(FailureKind::Connection, 5), None);
        assert_eq!(p.delay(FailureKind::ServerError, 2), Some(6 * MS));
        assert_eq!(p.delay(FailureKind::ServerError, 3), None);
    }

    #[test]
    fn attempts_are_at_least_one_and_huge_counts_saturate() {
        let p = RetryPolicy::never();
        assert_eq!(p.delay(FailureKind::Connection, 1), None);
        assert_eq!(
            p.with_connection_attempts(0)
                .attempts(FailureKind::Connection),
            1
        );
        let p = RetryPolicy::new()
            .with_base_delay(Duration::from_secs(1))
            .with_connection_attempts(u32::MAX);
        assert_eq!(
            p.delay(FailureKind::Connection, 40),
            Some(Duration::from_secs(u64::from(u32::MAX)))
        );
        assert_eq!(p.total_delay(FailureKind::Rejected), Duration::ZERO);
    }
}
