//! What following an operation came to: how it ended, as a CLI reports it (and the
//! process exit code for that), and the run's record.

use std::process::ExitCode;

use crate::{OperationId, OperationInfo, OperationStatus};

/// How a followed operation ended, as a CLI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutorOutcome {
    /// It ended `COMPLETED`.
    Completed,
    /// It ended `FAILED`.
    Failed,
    /// It ended `CANCELLED`, or the user stopped waiting after asking it to cancel.
    Cancelled,
}

impl ExecutorOutcome {
    /// The conventional process exit code: 0 completed, 1 failed, 130 cancelled
    /// (128 + SIGINT, as a shell reports Ctrl+C).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::client::ExecutorOutcome;
    ///
    /// assert_eq!(ExecutorOutcome::Cancelled.exit_code(), 130);
    /// ```
    pub const fn exit_code(self) -> i32 {
        match self {
            Self::Completed => 0,
            Self::Failed => 1,
            Self::Cancelled => 130,
        }
    }

    /// The outcome of a terminal status; `None` for `PENDING` and `RUNNING`.
    pub const fn from_status(status: OperationStatus) -> Option<Self> {
        match status {
            OperationStatus::Completed => Some(Self::Completed),
            OperationStatus::Failed => Some(Self::Failed),
            OperationStatus::Cancelled => Some(Self::Cancelled),
            _ => None,
        }
    }
}

impl From<ExecutorOutcome> for ExitCode {
    fn from(outcome: ExecutorOutcome) -> Self {
        match outcome {
            ExecutorOutcome::Completed => Self::SUCCESS,
            ExecutorOutcome::Failed => Self::FAILURE,
            ExecutorOutcome::Cancelled => Self::from(130),
        }
    }
}

/// What following an operation came to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Execution {
    /// The operation.
    pub operation_id: OperationId,
    /// How it ended.
    pub outcome: ExecutorOutcome,
    /// Its final record, straight from the source; the last one seen when the wait was
    /// cut short (see [`is_settled`](Self::is_settled)); `None` only when it was cut
    /// short before any record arrived.
    pub info: Option<OperationInfo>,
    /// The result line: the adapter's, or [`default_result_message`](crate::client::default_result_message).
    pub message: String,
}

impl Execution {
    /// The exit code of the [`outcome`](Self::outcome).
    pub const fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }

    /// `true` when the operation was seen in a terminal state; `false` when the user
    /// stopped waiting (second request) or it did not stop within the cancel wait.
    pub fn is_settled(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.status.is_terminal())
    }
}
