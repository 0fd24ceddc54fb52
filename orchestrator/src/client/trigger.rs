//! `CancelTrigger`: what tells the executor the user wants to stop (Ctrl+C in a CLI,
//! anything in a test).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use futures::stream::{self, Stream, StreamExt};

use crate::CancellationToken;

/// The "stop" requests an [`OperationExecutor`](super::OperationExecutor) listens to
/// while it follows an operation: the first one cancels the operation (and the
/// executor keeps following it to its end), a second one stops waiting at once.
///
/// A CLI uses [`ctrl_c`](Self::ctrl_c); tests inject their own with
/// [`from_token`](Self::from_token), [`from_future`](Self::from_future) or
/// [`from_stream`](Self::from_stream), so no signal is ever sent.
///
/// # Examples
///
/// ```
/// use orchestrator::CancellationToken;
/// use orchestrator::client::CancelTrigger;
///
/// let token = CancellationToken::new();
/// let trigger = CancelTrigger::from_token(token.clone());
/// // … hand `trigger` to an executor; later, from anywhere:
/// token.cancel();
/// # drop(trigger);
/// ```
pub struct CancelTrigger {
    events: Pin<Box<dyn Stream<Item = ()> + Send>>,
}

impl fmt::Debug for CancelTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelTrigger").finish_non_exhaustive()
    }
}

impl CancelTrigger {
    /// Each Ctrl+C (SIGINT on Unix) is a request. The handler is installed now, so
    /// from this call on Ctrl+C no longer kills the process: it reaches the executor.
    ///
    /// # Errors
    ///
    /// When the signal handler cannot be installed.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with I/O enabled.
    pub fn ctrl_c() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let sig = signal(SignalKind::interrupt())?;
            Ok(Self::from_stream(stream::unfold(
                sig,
                |mut sig| async move { sig.recv().await.map(|()| ((), sig)) },
            )))
        }
        #[cfg(windows)]
        {
            let sig = tokio::signal::windows::ctrl_c()?;
            Ok(Self::from_stream(stream::unfold(
                sig,
                |mut sig| async move { sig.recv().await.map(|()| ((), sig)) },
            )))
        }
        #[cfg(not(any(unix, windows)))]
        {
            Ok(Self::from_stream(stream::unfold((), |()| async {
                tokio::signal::ctrl_c().await.ok().map(|()| ((), ()))
            })))
        }
    }

    /// Each item of `events` is a request.
    pub fn from_stream(events: impl Stream<Item = ()> + Send + 'static) -> Self {
        Self {
            events: Box::pin(events),
        }
    }

    /// One request, when `fut` completes.
    pub fn from_future(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Self::from_stream(stream::once(fut))
    }

    /// One request, when `token` is cancelled.
    pub fn from_token(token: CancellationToken) -> Self {
        Self::from_future(token.cancelled_owned())
    }

    /// No requests ever.
    pub fn never() -> Self {
        Self::from_stream(stream::pending())
    }

    /// Resolves at the next request; never once the requests have run out.
    pub(crate) async fn fired(&mut self) {
        if self.events.next().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_token_fires_once_then_never_again() {
        let token = CancellationToken::new();
        let mut trigger = CancelTrigger::from_token(token.clone());
        let early = tokio::time::timeout(Duration::from_millis(20), trigger.fired()).await;
        assert!(early.is_err(), "fired before the token was cancelled");
        token.cancel();
        trigger.fired().await;
        let again = tokio::time::timeout(Duration::from_millis(20), trigger.fired()).await;
        assert!(again.is_err(), "a token is one request");
    }

    #[tokio::test]
    async fn a_stream_fires_per_item() {
        let mut trigger = CancelTrigger::from_stream(stream::iter([(), ()]));
        trigger.fired().await;
        trigger.fired().await;
        let never = CancelTrigger::never();
        let mut never = never;
        assert!(
            tokio::time::timeout(Duration::from_millis(10), never.fired())
                .await
                .is_err()
        );
    }
}
