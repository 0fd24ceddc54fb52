//! How a managed operation ended, as seen by the code that awaited it.

use std::fmt;

use crate::OperationStatus;

/// How an operation awaited inline (or through a handle) ended, with its typed value.
///
/// # Examples
///
/// ```
/// use orchestrator::Outcome;
///
/// let done: Outcome<u32, String> = Outcome::Completed(3);
/// assert!(done.is_completed());
/// let stopped: Outcome<u32, String> = Outcome::Cancelled(Some(1));
/// assert_eq!(stopped.status(), orchestrator::OperationStatus::Cancelled);
/// assert_eq!(stopped.value(), Some(&1));
/// ```
#[derive(Debug)]
#[must_use = "an outcome says whether the operation succeeded"]
pub enum Outcome<T, E> {
    /// Returned `Ok` without being cancelled: `COMPLETED`.
    Completed(T),
    /// Cancelled: the value it returned, when it returned `Ok` after the cancellation
    /// (a cooperative stop); `None` when it returned an error or was aborted.
    Cancelled(Option<T>),
    /// Ended `FAILED`.
    Failed(Failure<E>),
}

/// Why an operation failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// It returned this error.
    Error(E),
    /// It panicked with this message.
    Panicked(String),
    /// It ran past its deadline and was stopped.
    DeadlineExceeded,
    /// It never ran: the registry refused it (a limit was reached, see
    /// [`OrchestratorError::TooManyOperations`](crate::OrchestratorError::TooManyOperations)),
    /// so there is no record of it.
    Refused(crate::OrchestratorError),
    /// It failed on the host service it was routed to (feature `host`): the host's
    /// error message. The error value itself stayed on the host.
    Host(String),
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => e.fmt(f),
            Self::Panicked(msg) => write!(f, "panicked: {msg}"),
            Self::DeadlineExceeded => f.write_str("deadline exceeded"),
            Self::Refused(e) => write!(f, "not started: {e}"),
            Self::Host(msg) => write!(f, "failed on the host service: {msg}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Failure<E> {}

impl<T, E> Outcome<T, E> {
    /// The registry status this outcome corresponds to.
    pub const fn status(&self) -> OperationStatus {
        match self {
            Self::Completed(_) => OperationStatus::Completed,
            Self::Cancelled(_) => OperationStatus::Cancelled,
            Self::Failed(_) => OperationStatus::Failed,
        }
    }

    /// The returned value: the result, or the partial result of a cooperative cancel.
    pub const fn value(&self) -> Option<&T> {
        match self {
            Self::Completed(v) | Self::Cancelled(Some(v)) => Some(v),
            _ => None,
        }
    }

    /// `true` when the operation completed.
    pub const fn is_completed(&self) -> bool {
        matches!(self, Self::Completed(_))
    }

    /// `true` when the operation was cancelled.
    pub const fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }
}
