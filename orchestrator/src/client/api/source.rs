//! The [`OperationSource`] impl of [`ApiClient`]: follows an operation by its event
//! stream, falling back to polling, and maps client errors to source errors.

use std::time::Duration;

use futures::stream::{self, BoxStream, Stream, StreamExt};

use super::{ApiClient, OperationEvents};
use crate::client::error::ClientError;
use crate::source::poll_updates;
use crate::{ErrorCode, OperationId, OperationInfo, OperationSource, SourceError};

/// Whether opening the event stream failed in a way that polling can work around: a
/// server without the route (404 that is not about the operation, 405), one that
/// cannot stream now (503, 5xx), no answer, or an answer that is not a stream.
fn polling_helps(e: &ClientError) -> bool {
    match e {
        ClientError::Rejected { status, code, .. } => {
            (*status == 404 && *code != ErrorCode::OperationNotFound) || *status == 405
        }
        ClientError::Server { .. }
        | ClientError::Unreachable { .. }
        | ClientError::InvalidResponse { .. } => true,
        _ => false,
    }
}

impl OperationSource for ApiClient {
    /// Follows the operation by its event stream (`GET /operations/{id}/events`), so
    /// the bar moves as soon as the operation does; polls [`get`](Self::get)
    /// every `poll` instead when the server has no such route or cannot stream
    /// (404 for the route, 405, 503), and for the rest of the run when the stream
    /// breaks.
    fn updates<'a>(
        &'a self,
        id: &'a OperationId,
        poll: Duration,
    ) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
        enum Step<'a> {
            Open,
            Events(OperationEvents),
            Polling(BoxStream<'a, Result<OperationInfo, SourceError>>),
            Done,
        }
        stream::unfold(Step::Open, move |mut step| async move {
            loop {
                step = match step {
                    Step::Done => return None,
                    Step::Open => match self.events(id).await {
                        Ok(events) => Step::Events(events),
                        Err(e) if polling_helps(&e) => {
                            tracing::debug!(%id, error = %e, "no event stream; polling");
                            Step::Polling(poll_updates(self, id, poll).boxed())
                        }
                        Err(e) => return Some((Err(to_source_error(id, e)), Step::Done)),
                    },
                    Step::Events(mut events) => match events.next().await {
                        Some(Ok(info)) => {
                            let next = if info.status.is_terminal() {
                                Step::Done
                            } else {
                                Step::Events(events)
                            };
                            return Some((Ok(info), next));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(%id, error = %e, "event stream broke; polling");
                            Step::Polling(poll_updates(self, id, poll).boxed())
                        }
                        None => Step::Polling(poll_updates(self, id, poll).boxed()),
                    },
                    Step::Polling(mut polls) => {
                        let item = polls.next().await?;
                        return Some((item, Step::Polling(polls)));
                    }
                };
            }
        })
    }

    /// `GET /operations/{id}` with the retry policy: `NotFound` when the server
    /// answers `OPERATION_NOT_FOUND`, `Unavailable` once the retries are used up.
    async fn get(&self, id: &OperationId) -> Result<OperationInfo, SourceError> {
        ApiClient::get(self, id)
            .await
            .map_err(|e| to_source_error(id, e))
    }

    /// `POST /operations/{id}/cancel`; an operation that already finished is fine.
    async fn cancel(&self, id: &OperationId, reason: &str) -> Result<(), SourceError> {
        match ApiClient::cancel(self, id, Some(reason)).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&ErrorCode::OperationFinished) => Ok(()),
            Err(e) => Err(to_source_error(id, e)),
        }
    }
}

fn to_source_error(id: &OperationId, e: ClientError) -> SourceError {
    match e {
        ClientError::Rejected {
            code: ErrorCode::OperationNotFound,
            ..
        } => SourceError::NotFound(id.clone()),
        e @ (ClientError::Unreachable { .. } | ClientError::Server { .. }) => {
            SourceError::Unavailable(e.into())
        }
        e => SourceError::Other(e.into()),
    }
}
