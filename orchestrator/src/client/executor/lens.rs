//! The source as an adapter words it, and the adapter that words nothing.

use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use parking_lot::Mutex;

use crate::client::adapter::{EmptyRequest, OperationAdapter};
use crate::{OperationId, OperationInfo, OperationSource, SourceError};

/// The adapter of [`OperationExecutor::follow_plain`]: default wording, and it starts
/// nothing (the executor never asks it to).
pub(super) struct Plain;

impl OperationAdapter for Plain {
    type Request = EmptyRequest;

    fn start_path(&self) -> &str {
        ""
    }

    fn request(&self) -> &Self::Request {
        &EmptyRequest {}
    }
}

/// The source as the adapter words it: the bar shows the adapter's progress message;
/// the unformatted record of the last read is kept for the report.
pub(super) struct Lens<'a, S: ?Sized, A: ?Sized> {
    pub(super) source: &'a S,
    pub(super) adapter: &'a A,
    pub(super) raw: Mutex<Option<OperationInfo>>,
}

impl<S, A> Lens<'_, S, A>
where
    S: OperationSource + ?Sized,
    A: OperationAdapter + ?Sized,
{
    fn view(&self, mut info: OperationInfo) -> OperationInfo {
        *self.raw.lock() = Some(info.clone());
        if let Some(message) = self.adapter.progress_message(&info) {
            info.progress.current_step = message;
        }
        info
    }
}

impl<S, A> OperationSource for Lens<'_, S, A>
where
    S: OperationSource + ?Sized,
    A: OperationAdapter + ?Sized,
{
    async fn get(&self, id: &OperationId) -> Result<OperationInfo, SourceError> {
        let info = self.source.get(id).await?;
        Ok(self.view(info))
    }

    /// The source's own updates (pushed where it can push), seen through the lens.
    fn updates<'a>(
        &'a self,
        id: &'a OperationId,
        poll: Duration,
    ) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
        self.source
            .updates(id, poll)
            .map(move |item| item.map(|info| self.view(info)))
    }

    fn cancel(
        &self,
        id: &OperationId,
        reason: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        self.source.cancel(id, reason)
    }
}
