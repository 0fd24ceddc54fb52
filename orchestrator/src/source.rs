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

    /// Asks the source to cancel operation `id`, recording `reason`. Returns once the
    /// request is accepted, not when the operation has stopped: follow it with
    /// [`fetch`](Self::fetch) to see it end. An operation that already finished is not
    /// an error.
    ///
    /// The provided implementation refuses: a read-only source cannot cancel.
    ///
    /// # Errors
    ///
    /// [`SourceError::NotFound`] for an unknown id; [`SourceError::Unavailable`] or
    /// [`SourceError::Other`] when the request could not be made.
    fn cancel(
        &self,
        id: &OperationId,
        reason: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = reason;
        std::future::ready(Err(SourceError::Other(format!(
            "cannot cancel {id}: this source is read-only"
        ))))
    }
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

    fn cancel(
        &self,
        id: &OperationId,
        reason: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let result = match Operations::cancel(self, id, reason) {
            Ok(_) | Err(OrchestratorError::AlreadyFinished { .. }) => Ok(()),
            Err(OrchestratorError::NotFound(id)) => Err(SourceError::NotFound(id)),
            Err(other) => Err(SourceError::Other(other.to_string())),
        };
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OperationSpec, OperationStatus};

    #[tokio::test]
    async fn the_registry_cancels_through_the_trait_and_ignores_finished_ones() {
        let ops = Operations::new();
        let id = ops.create(OperationSpec::new("dummy")).unwrap();
        OperationSource::cancel(&ops, &id, "test").await.unwrap();
        assert_eq!(ops.get(&id).unwrap().status, OperationStatus::Cancelled);
        // Already finished: still fine.
        OperationSource::cancel(&ops, &id, "again").await.unwrap();
        let missing = OperationId::generate(&"dummy".into());
        assert!(matches!(
            OperationSource::cancel(&ops, &missing, "x").await,
            Err(SourceError::NotFound(_))
        ));
    }
}
