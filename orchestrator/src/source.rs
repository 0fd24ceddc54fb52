//! Where an operation's state can be read from: the local registry or a remote service.

use std::future::Future;

use crate::{OperationId, OperationInfo, Operations, OrchestratorError};

/// Something that can report the current state of an operation by id.
///
/// The in-process [`Operations`] registry is one; an HTTP client of a remote
/// operations API is another. Progress renderers and executors follow an operation
/// through this trait, so local and remote operations look the same to a user.
pub trait OperationSource: Send + Sync {
    /// The operation's current record.
    ///
    /// # Errors
    ///
    /// [`SourceError::NotFound`] when the source does not know the id;
    /// [`SourceError::Unavailable`] for a failure worth retrying.
    fn fetch(
        &self,
        id: &OperationId,
    ) -> impl Future<Output = Result<OperationInfo, SourceError>> + Send;
}

/// Why an [`OperationSource`] could not report an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The operation is unknown to the source (deleted, or never existed).
    #[error("operation not found: {0}")]
    NotFound(OperationId),
    /// The source could not answer this time (network error, overload); retrying may
    /// succeed.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// Any other failure; retrying will not help.
    #[error("{0}")]
    Other(String),
}

impl OperationSource for Operations {
    fn fetch(
        &self,
        id: &OperationId,
    ) -> impl Future<Output = Result<OperationInfo, SourceError>> + Send {
        let result = self.get(id).map_err(|e| match e {
            OrchestratorError::NotFound(id) => SourceError::NotFound(id),
            other => SourceError::Other(other.to_string()),
        });
        std::future::ready(result)
    }
}
