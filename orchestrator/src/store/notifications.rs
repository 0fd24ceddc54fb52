//! Cancel requests pushed to their owner as they happen (where a backend can).

use tokio::sync::mpsc;

use super::CancelRequest;

/// A stream of the cancel requests for one instance's operations, pushed by the
/// backend as they are recorded (PostgreSQL `LISTEN`/`NOTIFY`), from
/// [`OperationStore::cancel_notifications`](super::OperationStore::cancel_notifications).
///
/// A shortcut, not the source of truth: a notification can be lost (a dropped
/// connection), so the owner keeps acting on [`FlushReply::cancels`](super::FlushReply::cancels)
/// as well; tripping a token twice is harmless.
#[derive(Debug)]
pub struct CancelNotifications {
    receiver: mpsc::Receiver<CancelRequest>,
}

impl CancelNotifications {
    /// A stream fed by `receiver`; for backends.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) const fn new(receiver: mpsc::Receiver<CancelRequest>) -> Self {
        Self { receiver }
    }

    /// The next request; `None` once the backend's listener stopped (its connection
    /// was lost): then only the flush brings cancels, until a new stream is opened.
    ///
    /// # Cancellation safety
    ///
    /// Cancellation safe: a request is never lost by dropping this future.
    pub async fn recv(&mut self) -> Option<CancelRequest> {
        self.receiver.recv().await
    }
}
