//! What can go wrong on the client side, each as one clear line.

use crate::{OperationId, SourceError};

/// The boxed cause of a [`ClientError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request to the operations API, or following an operation, failed.
///
/// Every variant displays as one line meant for the person at the terminal; the CLI
/// prints it and exits with [`exit_code`](Self::exit_code).
///
/// # Examples
///
/// ```
/// use orchestrator::client::ClientError;
///
/// let e = ClientError::Unreachable {
///     url: "http://127.0.0.1:8000".into(),
///     attempts: 5,
///     source: "connection refused".into(),
/// };
/// assert_eq!(e.to_string(), "cannot reach http://127.0.0.1:8000: is the server running?");
/// assert_eq!(e.exit_code(), 1);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No answer after every try of the retry policy.
    #[error("cannot reach {url}: is the server running?")]
    Unreachable {
        /// The server's URL as configured.
        url: String,
        /// How many times the request was tried.
        attempts: u32,
        /// The last connection error.
        #[source]
        source: BoxError,
    },
    /// The server refused the request (4xx); never retried.
    #[error("{message} ({status} {code})")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// `error.code` of the envelope (`OPERATION_NOT_FOUND`, `INVALID_REQUEST`, …).
        code: String,
        /// `error.message` of the envelope.
        message: String,
    },
    /// The server kept answering 5xx.
    #[error(
        "server error after {attempts} tries: {message} ({status} {code}); check the server's logs"
    )]
    Server {
        /// The last HTTP status.
        status: u16,
        /// `error.code` of the last envelope.
        code: String,
        /// `error.message` of the last envelope.
        message: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The operation being followed no longer exists (deleted, or the server restarted).
    #[error("operation {0} vanished: the server no longer knows it")]
    Vanished(OperationId),
    /// The answer is not the operations API's (wrong URL or prefix, another service).
    #[error("unexpected answer from {url}: {reason}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// The cancel trigger fired before the operation was started.
    #[error("interrupted before the operation started")]
    Interrupted,
    /// Following the operation failed (the source's own words).
    #[error("{0}")]
    Source(String),
    /// A local I/O failure: listening for Ctrl+C ([`CancelTrigger::ctrl_c`](super::CancelTrigger::ctrl_c)),
    /// writing the output.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The process exit code for this error: 130 for [`Interrupted`](Self::Interrupted),
    /// 1 otherwise.
    pub const fn exit_code(&self) -> i32 {
        match self {
            Self::Interrupted => 130,
            _ => 1,
        }
    }

    /// The envelope's `error.code` of a refused request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } | Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<SourceError> for ClientError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(id) => Self::Vanished(id),
            SourceError::Unavailable(msg) | SourceError::Other(msg) => Self::Source(msg),
        }
    }
}
