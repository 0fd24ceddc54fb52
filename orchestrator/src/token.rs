//! A cancellation token with a reason, built on `tokio_util::sync::CancellationToken`.
//!
//! Invariants:
//! 1. The reason of a token is written at most once, and it and the token's `cancelled`
//!    flag are written *before* the underlying tokio-util token is cancelled, so
//!    whoever is woken by the cancellation also sees the flag and the reason.
//! 2. A token is cancelled iff its flag or an ancestor's is set: every cancellation
//!    goes through this type (the tokio-util token is never handed out to be
//!    cancelled directly), so `is_cancelled` is a few atomic loads, not a lock.
//! 3. A token cancelled by an ancestor reports the reason of the nearest cancelled
//!    ancestor; a token cancelled directly keeps its own reason even if an ancestor is
//!    cancelled later.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// A cheap-to-clone cancellation token with an optional reason and child tokens.
///
/// Every clone observes the same cancellation. Cancelling a token cancels all of its
/// children (recursively), never its parent. The [`Operations`](crate::Operations)
/// registry owns a root token that is the parent of every operation's token, so
/// [`Operations::cancel_all`](crate::Operations::cancel_all) reaches every operation.
///
/// # Examples
///
/// ```
/// use orchestrator::CancellationToken;
///
/// let parent = CancellationToken::new();
/// let child = parent.child_token();
/// parent.cancel_with_reason("shutting down");
/// assert!(child.is_cancelled());
/// assert_eq!(child.reason().as_deref(), Some("shutting down"));
/// ```
#[derive(Clone, Default)]
pub struct CancellationToken {
    inner: tokio_util::sync::CancellationToken,
    reason: Arc<ReasonNode>,
}

#[derive(Default)]
struct ReasonNode {
    cancelled: AtomicBool,
    reason: OnceLock<Arc<str>>,
    parent: Option<Arc<ReasonNode>>,
}

impl ReasonNode {
    /// This node and its ancestors, nearest first.
    fn lineage(&self) -> impl Iterator<Item = &ReasonNode> {
        std::iter::successors(Some(self), |n| n.parent.as_deref())
    }
}

impl CancellationToken {
    /// A new, uncancelled root token.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is cancelled when `self` is (but whose own cancellation does not
    /// affect `self`).
    pub fn child_token(&self) -> Self {
        Self {
            inner: self.inner.child_token(),
            reason: Arc::new(ReasonNode {
                cancelled: AtomicBool::new(false),
                reason: OnceLock::new(),
                parent: Some(self.reason.clone()),
            }),
        }
    }

    /// Whether `parent` is this token's parent.
    pub(crate) fn is_child_of(&self, parent: &Self) -> bool {
        self.reason
            .parent
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &parent.reason))
    }

    /// Cancels this token and its children, without a reason.
    pub fn cancel(&self) {
        self.reason.cancelled.store(true, Ordering::Release);
        self.inner.cancel();
    }

    /// Cancels this token and its children, recording `reason` unless a reason was
    /// already recorded (the first cancellation wins).
    pub fn cancel_with_reason(&self, reason: impl Into<Arc<str>>) {
        if !self.is_cancelled() {
            let _ = self.reason.reason.set(reason.into());
        }
        self.reason.cancelled.store(true, Ordering::Release);
        self.inner.cancel();
    }

    /// Whether the token is cancelled. Cheap (an atomic load per level of the token
    /// tree, two for an operation's token) and synchronous: callable from any thread,
    /// including blocking-pool threads, as often as every item of a loop.
    pub fn is_cancelled(&self) -> bool {
        self.reason
            .lineage()
            .any(|n| n.cancelled.load(Ordering::Acquire))
    }

    /// Why the token was cancelled: its own reason, or that of the nearest cancelled
    /// ancestor. `None` while not cancelled, or when cancelled without a reason.
    pub fn reason(&self) -> Option<Arc<str>> {
        if !self.is_cancelled() {
            return None;
        }
        self.reason.lineage().find_map(|n| n.reason.get().cloned())
    }

    /// Completes when the token is cancelled (at once if it already is).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub fn cancelled(&self) -> WaitForCancellation<'_> {
        WaitForCancellation {
            inner: self.inner.cancelled(),
        }
    }

    /// Like [`cancelled`](Self::cancelled), but owns a clone of the token so the future
    /// is `'static`.
    pub fn cancelled_owned(self) -> WaitForCancellationOwned {
        WaitForCancellationOwned {
            inner: self.inner.cancelled_owned(),
        }
    }

    /// Runs `fut` until it completes or the token is cancelled, whichever comes first.
    /// On cancellation `fut` is dropped and `None` is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use orchestrator::CancellationToken;
    ///
    /// let token = CancellationToken::new();
    /// token.cancel();
    /// let out = token.run_until_cancelled(std::future::pending::<()>()).await;
    /// assert_eq!(out, None);
    /// # }
    /// ```
    pub async fn run_until_cancelled<F: Future>(&self, fut: F) -> Option<F::Output> {
        self.inner.run_until_cancelled(fut).await
    }

    /// A tokio-util token that is cancelled when this one is, for APIs that take one.
    /// Cancelling the returned token does not cancel this one.
    pub fn to_tokio_util(&self) -> tokio_util::sync::CancellationToken {
        self.inner.child_token()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .field("reason", &self.reason())
            .finish()
    }
}

pin_project! {
    /// Future returned by [`CancellationToken::cancelled`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WaitForCancellation<'a> {
        #[pin]
        inner: tokio_util::sync::WaitForCancellationFuture<'a>,
    }
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future returned by [`CancellationToken::cancelled_owned`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WaitForCancellationOwned {
        #[pin]
        inner: tokio_util::sync::WaitForCancellationFutureOwned,
    }
}

impl Future for WaitForCancellationOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl fmt::Debug for WaitForCancellationOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellationOwned")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_follows_parent_not_the_reverse() {
        let parent = CancellationToken::new();
        let child = parent.child_token();
        child.cancel_with_reason("child only");
        assert!(child.is_cancelled());
        assert!(!parent.is_cancelled());
        assert_eq!(parent.reason(), None);

        let other = parent.child_token();
        parent.cancel_with_reason("parent");
        assert!(other.is_cancelled());
        assert_eq!(other.reason().as_deref(), Some("parent"));
        // The child's own, earlier reason wins over the parent's.
        assert_eq!(child.reason().as_deref(), Some("child only"));
    }

    #[test]
    fn first_reason_wins_and_clones_share_state() {
        let token = CancellationToken::new();
        let clone = token.clone();
        token.cancel_with_reason("first");
        clone.cancel_with_reason("second");
        assert_eq!(clone.reason().as_deref(), Some("first"));
        assert!(token.is_cancelled() && clone.is_cancelled());
    }

    #[test]
    fn grandchildren_see_ancestors_and_tokio_util_view_follows() {
        let root = CancellationToken::new();
        let grandchild = root.child_token().child_token();
        let view = grandchild.to_tokio_util();
        view.cancel();
        assert!(!grandchild.is_cancelled(), "the view is one-way");
        let view = grandchild.to_tokio_util();
        root.cancel_with_reason("root");
        assert!(grandchild.is_cancelled() && view.is_cancelled());
        assert_eq!(grandchild.reason().as_deref(), Some("root"));
        let born_cancelled = grandchild.child_token();
        assert!(born_cancelled.is_cancelled());
    }

    #[test]
    fn reasonless_cancel() {
        let token = CancellationToken::new();
        assert_eq!(token.reason(), None);
        token.cancel();
        assert!(token.is_cancelled());
        assert_eq!(token.reason(), None);
    }

    #[tokio::test]
    async fn cancelled_wakes_waiters() {
        let token = CancellationToken::new();
        let child = token.child_token();
        let waiter = tokio::spawn(child.cancelled_owned());
        tokio::task::yield_now().await;
        token.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("waiter woke")
            .expect("no panic");
    }
}
