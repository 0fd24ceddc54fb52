//! What can go wrong on the client side, each as one clear line.

use crate::{ErrorCode, OperationId, SourceError};

/// The boxed cause of a [`ClientError`].
pub use crate::source::BoxError;

/// Why a request to the operations API, or following an operation, failed.
///
/// Every variant displays as one line meant for the person at the terminal; a cause
/// (a connection error, a broken stream) is the [`source`](std::error::Error::source),
/// never repeated in the line, so print the chain to show it. The CLI prints it and
/// exits with [`exit_code`](Self::exit_code).
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
        /// `error.code` of the envelope (`OPERATION_NOT_FOUND`, `INVALID_REQUEST`, …;
        /// `HTTP_<status>` for an answer without one).
        code: ErrorCode,
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
        code: ErrorCode,
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
        /// The parse error behind it, when there was one.
        #[source]
        source: Option<BoxError>,
    },
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A request body could not be serialised as JSON, or serialised to `null`;
    /// nothing was sent.
    #[error("cannot send the request to {path}: its body is not a JSON value")]
    RequestBody {
        /// The request path (relative to the API prefix).
        path: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The event stream of an operation broke off or was not the operations API's.
    #[error("the event stream from {url} failed")]
    EventStream {
        /// The URL of the stream.
        url: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// An `https://` URL, but this build has no TLS.
    #[error(
        "cannot use {url}: HTTPS needs the `client-tls` feature of orchestrator (this build speaks plain HTTP only)"
    )]
    TlsUnavailable {
        /// The URL as given.
        url: String,
    },
    /// The HTTP client (or the listener for a cancel request) could not be set up.
    #[error("cannot set up the client")]
    Setup(#[source] BoxError),
    /// The cancel trigger fired before the operation was started.
    #[error("interrupted before the operation started")]
    Interrupted,
    /// Following the operation failed (the source's error as it is).
    #[error(transparent)]
    Source(SourceError),
    /// The executor could not do its part (serialise a request, write its output).
    #[error("{what}")]
    Executor {
        /// What it could not do.
        what: String,
        /// Why.
        #[source]
        source: BoxError,
    },
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
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::ErrorCode;
    /// use orchestrator::client::ClientError;
    ///
    /// let e = ClientError::Rejected { status: 409, code: ErrorCode::OperationFinished, message: "done".into() };
    /// assert_eq!(e.code(), Some(&ErrorCode::OperationFinished));
    /// ```
    pub fn code(&self) -> Option<&ErrorCode> {
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
            // An `ApiClient`'s own error, passed through the trait: unwrap it again.
            SourceError::Unavailable(inner) => match inner.downcast::<Self>() {
                Ok(client) => *client,
                Err(other) => Self::Source(SourceError::Unavailable(other)),
            },
            SourceError::Other(inner) => match inner.downcast::<Self>() {
                Ok(client) => *client,
                Err(other) => Self::Source(SourceError::Other(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// thiserror's advice: a cause is either in the message or the `source()`, never
    /// both, so printing the chain says each thing once.
    #[test]
    fn a_cause_is_printed_once() {
        let cause = || -> BoxError { "connection refused".into() };
        let id = OperationId::generate(&"dummy".into());
        let errors = [
            ClientError::Unreachable {
                url: "http://127.0.0.1:1".into(),
                attempts: 5,
                source: cause(),
            },
            ClientError::EventStream {
                url: "http://127.0.0.1:1".into(),
                source: cause(),
            },
            ClientError::InvalidResponse {
                url: "http://127.0.0.1:1".into(),
                reason: "not the operations API".into(),
                source: Some(cause()),
            },
            ClientError::RequestBody {
                path: "/x".into(),
                source: cause(),
            },
            ClientError::Setup(cause()),
            ClientError::Source(SourceError::Unavailable(cause())),
            ClientError::Source(SourceError::Other(cause())),
            ClientError::Executor {
                what: "cannot write the result".into(),
                source: cause(),
            },
        ];
        for e in errors {
            assert!(!e.to_string().contains("refused"), "{e}");
            let mut chain = e.source();
            let mut seen = false;
            while let Some(c) = chain {
                seen |= c.to_string() == "connection refused";
                chain = c.source();
            }
            assert!(seen, "{e:?}");
        }
        assert!(ClientError::Vanished(id).source().is_none());
    }

    #[test]
    fn an_api_clients_error_comes_back_out_of_a_source_error() {
        let e = ClientError::Rejected {
            status: 401,
            code: ErrorCode::Unauthorized,
            message: "no token".into(),
        };
        let back = ClientError::from(SourceError::Other(e.into()));
        assert!(
            matches!(back, ClientError::Rejected { status: 401, .. }),
            "{back:?}"
        );
    }
}
