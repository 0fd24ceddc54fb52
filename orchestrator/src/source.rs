//! Where an operation's state can be read from: the local registry or a remote service.

use std::future::Future;
use std::time::Duration;

use futures::Stream;
use futures::stream;

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
    fn get(
        &self,
        id: &OperationId,
    ) -> impl Future<Output = Result<OperationInfo, SourceError>> + Send;

    /// The operation's records as it changes, ending after the terminal one: what
    /// progress displays follow. Failures are items too (a display decides how many it
    /// tolerates); the stream goes on after [`SourceError::Unavailable`] and ends after
    /// any other error.
    ///
    /// The provided implementation polls [`get`](Self::get) every `poll`; sources
    /// that can push override it (the [`Operations`] registry wakes on each change, at
    /// most once per `poll`, and costs nothing while the operation is idle).
    fn updates<'a>(
        &'a self,
        id: &'a OperationId,
        poll: Duration,
    ) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
        poll_updates(self, id, poll)
    }

    /// Asks the source to cancel operation `id`, recording `reason`. Returns once the
    /// request is accepted, not when the operation has stopped: follow it with
    /// [`get`](Self::get) to see it end. An operation that already finished is not
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
        std::future::ready(Err(SourceError::Other(
            format!("cannot cancel {id}: this source is read-only").into(),
        )))
    }
}

/// The polling [`OperationSource::updates`]: a [`get`](OperationSource::get) at
/// once, then one every `poll` until a terminal record or an error that is not
/// [`SourceError::Unavailable`].
pub(crate) fn poll_updates<'a, S: OperationSource + ?Sized>(
    source: &'a S,
    id: &'a OperationId,
    poll: Duration,
) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
    stream::unfold(Some(true), move |state| async move {
        let first = state?;
        if !first {
            tokio::time::sleep(poll).await;
        }
        let item = source.get(id).await;
        let more = match &item {
            Ok(info) => !info.status.is_terminal(),
            Err(SourceError::Unavailable(_)) => true,
            Err(_) => false,
        };
        Some((item, more.then_some(false)))
    })
}

/// The boxed cause of a [`SourceError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an [`OperationSource`] could not report an operation.
///
/// The cause is kept as the [`source`](std::error::Error::source), not repeated in the
/// message: print the chain to show it.
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use orchestrator::SourceError;
///
/// let e = SourceError::Unavailable("connection refused".into());
/// assert_eq!(e.to_string(), "source unavailable");
/// assert_eq!(e.source().map(|c| c.to_string()).as_deref(), Some("connection refused"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The operation is unknown to the source (deleted, or never existed).
    #[error("operation not found: {0}")]
    NotFound(OperationId),
    /// The source could not answer this time (network error, overload); retrying may
    /// succeed.
    #[error("source unavailable")]
    Unavailable(#[source] BoxError),
    /// Any other failure; retrying will not help.
    #[error("cannot read the operation")]
    Other(#[source] BoxError),
}

impl OperationSource for Operations {
    fn updates<'a>(
        &'a self,
        id: &'a OperationId,
        poll: Duration,
    ) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
        enum Step {
            Start,
            Watching(crate::OperationWatch, tokio::time::Instant),
            Done,
        }
        stream::unfold(Step::Start, move |step| async move {
            let mut watch = match step {
                Step::Done => return None,
                Step::Start => match self.watch(id) {
                    Ok(watch) => watch,
                    Err(e) => return Some((Err(source_error(e)), Step::Done)),
                },
                Step::Watching(mut watch, last) => {
                    watch.changed().await;
                    // Coalesce: at most one record per `poll`.
                    tokio::time::sleep_until(last + poll).await;
                    watch
                }
            };
            // Take the version before the record, so a change in between is not lost.
            watch.mark_seen();
            let info = watch.get();
            let next = if info.status.is_terminal() {
                Step::Done
            } else {
                Step::Watching(watch, tokio::time::Instant::now())
            };
            Some((Ok(info), next))
        })
    }

    fn get(
        &self,
        id: &OperationId,
    ) -> impl Future<Output = Result<OperationInfo, SourceError>> + Send {
        std::future::ready(Operations::get(self, id).map_err(source_error))
    }

    fn cancel(
        &self,
        id: &OperationId,
        reason: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let result = match Operations::cancel(self, id, reason) {
            Ok(_) | Err(OrchestratorError::AlreadyFinished { .. }) => Ok(()),
            Err(OrchestratorError::NotFound(id)) => Err(SourceError::NotFound(id)),
            Err(other) => Err(SourceError::Other(other.into())),
        };
        std::future::ready(result)
    }
}

fn source_error(e: OrchestratorError) -> SourceError {
    match e {
        OrchestratorError::NotFound(id) => SourceError::NotFound(id),
        other => SourceError::Other(other.into()),
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
