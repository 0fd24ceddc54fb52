//! A cancellation token with a reason: one node per token, carrying its flag, its
//! reason and its waiters.
//!
//! Invariants:
//! 1. A token is cancelled iff its flag or an ancestor's is set (`is_cancelled` walks
//!    up: an atomic load per level, two for an operation's token). The reason is
//!    written at most once, before the flag, so whoever sees the flag sees the reason.
//! 2. A token cancelled by an ancestor reports the reason of the nearest cancelled
//!    ancestor; a token cancelled directly keeps its own reason even if an ancestor is
//!    cancelled later.
//! 3. A parent knows only the children somebody waits on. A waiter links its token
//!    into its parent's wake list (and that one into its own parent's, up to the
//!    root) before it first checks the flags; once linked, a node stays linked while
//!    it lives (dead links are swept when the list doubles). Linking happens under
//!    the parent's list lock, and a cancellation sets its flag before it takes that
//!    lock to walk the list, so a waiter either sees the flag or is on the list.
//! 4. A waiter enables its wake-up on its own node (a `Notified`, or the driver's
//!    waker) before it links and checks; a cancellation wakes its node and every
//!    linked descendant after setting its flag. So a waiter either sees the flag or
//!    is woken.
//! 5. The tokio-util view of a node is made on first use, as a child of its parent's
//!    view. Making it and cancelling are ordered by `SeqCst` fences: the maker sees
//!    the flag (and cancels the view itself), or the canceller sees the view.
//!
//! 6. A cancelled node stays cancelled, and so do its descendants: a node's wake list
//!    is emptied when the node is woken by a cancellation. A waiter that links after
//!    that finds the flag set (it takes the list lock after the canceller released
//!    it), so nothing needs the list again, and the dead children it held go at once.
//!
//! 7. A waiter polled with a waker that wakes the same task as the driver's kept waker
//!    needs no `Notified`, and does not link: the driver keeps its waker before it
//!    polls the work, and links and checks the flag after (in the same poll; if that
//!    check finds the flag, it polls the work again), and a cancellation wakes the
//!    kept waker after setting the flag, which re-polls the waiter's task. The check
//!    is made under the lock the canceller takes the waker under, so the waiter either
//!    sees the waker still kept (and the wake follows) or sees it taken (and then the
//!    flag, before arming its own `Notified`). An operation's work waiting on its own
//!    token then costs a cancellation one cache line less per operation (the waiter
//!    inside the task), and the work's wait no lock on the `Notify`.
//!
//! Creating a child token is one allocation and no lock; a token nobody waits on
//! never touches its parent's lock (a registry's root is the parent of every
//! operation's token, so this keeps spawning operations from contending on it).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};

use once_cell::race::OnceBox;
use parking_lot::Mutex;
use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

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
    node: Arc<Node>,
}

#[derive(Default)]
struct Node {
    cancelled: AtomicBool,
    /// On its parent's wake list (rule 3).
    linked: AtomicBool,
    /// Boxed once set (one word, where a `OnceLock` takes three): few tokens are
    /// cancelled with a reason of their own, and every operation has a node.
    reason: OnceBox<Arc<str>>,
    parent: Option<Arc<Node>>,
    /// This node's waiters.
    notify: Notify,
    /// The one waiter that keeps its waker here instead of on `notify`: an
    /// operation's driver (see `poll_cancelled_by_driver`), whose future stays smaller
    /// without a `Notified` in it. Taken when woken.
    driver: Mutex<Option<Waker>>,
    /// What only a parent of waited-on children, or a node with a tokio-util view,
    /// has.
    links: OnceBox<Links>,
}

#[derive(Default)]
struct Links {
    /// The children that somebody waits on (or that have such children): woken on
    /// cancellation (rule 3).
    children: Mutex<WakeList>,
    /// The tokio-util token that follows this one (rule 5).
    view: OnceLock<tokio_util::sync::CancellationToken>,
}

/// How many children's nodes a cancellation loads before it wakes them.
const TOUCH_AHEAD: usize = 8;

#[derive(Default)]
struct WakeList {
    nodes: Vec<Weak<Node>>,
    /// The length after the last sweep of dead links; the next sweep is at twice it.
    swept: usize,
}

impl WakeList {
    fn push(&mut self, node: Weak<Node>) {
        if self.nodes.len() >= (2 * self.swept).max(16) {
            self.nodes.retain(|n| n.strong_count() > 0);
            self.swept = self.nodes.len();
        }
        self.nodes.push(node);
    }
}

impl Node {
    /// This node and its ancestors, nearest first.
    fn lineage(&self) -> impl Iterator<Item = &Node> {
        std::iter::successors(Some(self), |n| n.parent.as_deref())
    }

    fn is_cancelled(&self) -> bool {
        self.lineage().any(|n| n.cancelled.load(Ordering::SeqCst))
    }

    fn links(&self) -> &Links {
        self.links.get_or_init(Box::default)
    }

    /// Puts this node, and each ancestor not yet there, on its parent's wake list
    /// (rule 3).
    fn link(self: &Arc<Self>) {
        let mut node = self;
        while let Some(parent) = &node.parent {
            if !node.linked.load(Ordering::Acquire) {
                let mut list = parent.links().children.lock();
                if !node.linked.load(Ordering::Relaxed) {
                    list.push(Arc::downgrade(node));
                    node.linked.store(true, Ordering::Release);
                }
            }
            node = parent;
        }
    }

    /// Sets the flag (after the reason, if given and first), then wakes the waiters
    /// of this node and of its linked descendants, and cancels the views.
    fn cancel(&self, reason: Option<Arc<str>>) {
        if let Some(reason) = reason {
            if !self.is_cancelled() {
                let _ = self.reason.set(Box::new(reason));
            }
        }
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        // Rule 5: the flag before the look at the views.
        fence(Ordering::SeqCst);
        self.wake();
    }

    /// The driver's kept waker, taken (outside the lock once this returns).
    fn take_driver(&self) -> Option<Waker> {
        self.driver.lock().take()
    }

    /// Wakes this node's waiters and its linked descendants' (rules 3–5).
    fn wake(&self) {
        self.notify.notify_waiters();
        if let Some(driver) = self.take_driver() {
            driver.wake();
        }
        let Some(links) = self.links.get() else {
            return;
        };
        if let Some(view) = links.view.get() {
            view.cancel();
        }
        // Rule 6: the list is not needed again, so it is taken, not copied; each child
        // is woken as it is reached (one pass over the nodes, not one to collect and
        // another to wake, which costs a second cache miss per child).
        let children = std::mem::take(&mut *links.children.lock());
        for batch in children.nodes.chunks(TOUCH_AHEAD) {
            // Each wake is a chain of locked instructions, and each of those waits for
            // every load before it: reached one by one, the children's nodes cost one
            // full cache miss each. Plain loads of a batch's nodes first let those
            // misses overlap.
            std::hint::black_box(
                batch
                    .iter()
                    .map(Weak::strong_count)
                    .fold(0, usize::wrapping_add),
            );
            for child in batch {
                if let Some(child) = child.upgrade() {
                    child.wake();
                }
            }
        }
    }

    /// The tokio-util token that follows this node (rule 5).
    fn view(&self) -> &tokio_util::sync::CancellationToken {
        let links = self.links();
        if let Some(view) = links.view.get() {
            return view;
        }
        let view = links.view.get_or_init(|| match &self.parent {
            Some(parent) => parent.view().child_token(),
            None => tokio_util::sync::CancellationToken::new(),
        });
        fence(Ordering::SeqCst);
        if self.is_cancelled() {
            view.cancel();
        }
        view
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
            node: Arc::new(Node {
                parent: Some(self.node.clone()),
                ..Node::default()
            }),
        }
    }

    /// Whether `parent` is this token's parent.
    pub(crate) fn is_child_of(&self, parent: &Self) -> bool {
        self.node
            .parent
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &parent.node))
    }

    /// Cancels this token and its children, without a reason.
    pub fn cancel(&self) {
        self.node.cancel(None);
    }

    /// Cancels this token and its children, recording `reason` unless a reason was
    /// already recorded (the first cancellation wins).
    pub fn cancel_with_reason(&self, reason: impl Into<Arc<str>>) {
        self.node.cancel(Some(reason.into()));
    }

    /// Whether the token is cancelled. Cheap (an atomic load per level of the token
    /// tree, two for an operation's token) and synchronous: callable from any thread,
    /// including blocking-pool threads, as often as every item of a loop.
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// Why the token was cancelled: its own reason, or that of the nearest cancelled
    /// ancestor. `None` while not cancelled, or when cancelled without a reason.
    pub fn reason(&self) -> Option<Arc<str>> {
        if !self.is_cancelled() {
            return None;
        }
        self.reason_ref().cloned()
    }

    /// [`reason`](Self::reason), borrowed.
    pub(crate) fn reason_ref(&self) -> Option<&Arc<str>> {
        if !self.is_cancelled() {
            return None;
        }
        self.node.lineage().find_map(|n| n.reason.get())
    }

    /// Whether [`reason`](Self::reason) can no longer change: the nearest node that
    /// holds a reason is the nearest cancelled one. A node takes a reason only while it
    /// is not cancelled (and once), so no node nearer than that one can take one later
    /// (it may still be flagged, without a reason), and `reason` returns this one for
    /// good. `false` while not cancelled, when cancelled without a reason, or while a
    /// nearer node may still take one (it was cancelled without a reason, or its
    /// reason is set and its flag not yet).
    ///
    /// One window stays: a cancellation of a nearer node that checked its flags just
    /// before the settling node's flag was set still stores its reason after. The
    /// reason then reported is that one, a request made before this call returned.
    pub(crate) fn reason_is_settled(&self) -> bool {
        for node in self.node.lineage() {
            let cancelled = node.cancelled.load(Ordering::SeqCst);
            let reason = node.reason.get();
            if cancelled || reason.is_some() {
                return cancelled && reason.is_some();
            }
        }
        false
    }

    /// Completes when the token is cancelled (at once if it already is).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub fn cancelled(&self) -> WaitForCancellation<'_> {
        WaitForCancellation {
            node: &self.node,
            notified: self.node.notify.notified(),
            armed: false,
        }
    }

    /// Keeps `cx`'s waker as the driver's (replacing one that wakes another task), to
    /// be woken on cancellation: the driver calls it before it polls the work, so work
    /// waiting on this token in the same task needs no `Notified` (rule 7), and
    /// [`poll_cancelled_by_driver`](Self::poll_cancelled_by_driver) after.
    pub(crate) fn keep_driver_waker(&self, cx: &Context<'_>) {
        let mut driver = self.node.driver.lock();
        match &mut *driver {
            Some(kept) if kept.will_wake(cx.waker()) => {}
            kept => *kept = Some(cx.waker().clone()),
        }
    }

    /// Lets go of the driver's waker (which holds the driver's task) once the driver
    /// stops waiting, so a finished operation's record does not keep its task alive.
    pub(crate) fn drop_driver_waker(&self) {
        drop(self.node.take_driver());
    }

    /// [`cancelled`](Self::cancelled) for the one driver of an operation, without a
    /// future, after [`keep_driver_waker`](Self::keep_driver_waker) in the same poll:
    /// ready once cancelled, else the kept waker is woken on cancellation (rules 3, 4
    /// and 7, with the driver's waker in place of a `Notified`). It links the node
    /// for a waiter of rule 7 too, which relies on this call after its own poll, and,
    /// if it is ready, on being polled again.
    pub(crate) fn poll_cancelled_by_driver(&self) -> Poll<()> {
        if self.is_cancelled() {
            return Poll::Ready(());
        }
        self.node.link();
        if self.is_cancelled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Like [`cancelled`](Self::cancelled), but owns a clone of the token so the future
    /// is `'static`. It allocates once (the borrowing future lives inside it).
    pub fn cancelled_owned(self) -> WaitForCancellationOwned {
        WaitForCancellationOwned {
            inner: Box::pin(async move { self.cancelled().await }),
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
        tokio::select! {
            biased;
            () = self.cancelled() => None,
            out = fut => Some(out),
        }
    }

    /// A tokio-util token that is cancelled when this one is, for APIs that take one.
    /// Cancelling the returned token does not cancel this one.
    pub fn to_tokio_util(&self) -> tokio_util::sync::CancellationToken {
        self.node.view().child_token()
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

/// One poll of a wait on `node`: ready once it is cancelled; else, the first time,
/// enables the wake-up, links the node (rules 3, 4) and checks again.
fn poll_wait<'n>(
    node: &'n Arc<Node>,
    mut notified: Pin<&mut Notified<'n>>,
    armed: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        if node.is_cancelled() {
            return Poll::Ready(());
        }
        if !*armed {
            // Rule 7: the driver's waker wakes this task.
            if node
                .driver
                .lock()
                .as_ref()
                .is_some_and(|driver| driver.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            notified.as_mut().enable();
            node.link();
            *armed = true;
            continue;
        }
        if notified.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Woken: only a cancellation wakes a node, so this is one; if not (a
        // spurious wake-up), wait again.
        if node.is_cancelled() {
            return Poll::Ready(());
        }
        notified.set(node.notify.notified());
        *armed = false;
    }
}

pin_project! {
    /// Future returned by [`CancellationToken::cancelled`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WaitForCancellation<'a> {
        node: &'a Arc<Node>,
        #[pin]
        notified: Notified<'a>,
        armed: bool,
    }
}

impl Future for WaitForCancellation<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        poll_wait(this.node, this.notified, this.armed, cx)
    }
}

impl fmt::Debug for WaitForCancellation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellation")
            .finish_non_exhaustive()
    }
}

/// Future returned by [`CancellationToken::cancelled_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct WaitForCancellationOwned {
    inner: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl Future for WaitForCancellationOwned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
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

    /// Every operation has a node: what few tokens use (a reason of their own,
    /// children to wake, a tokio-util view) takes a pointer each, allocated when
    /// first needed. With its two reference counts, a node of up to 88 bytes is
    /// served from glibc's 112-byte chunks (it was 112 bytes, a 144-byte chunk, with
    /// `OnceLock`s for the reason and the links).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_node_stays_small() {
        assert!(
            size_of::<Node>() <= 88,
            "Node is {} bytes",
            size_of::<Node>()
        );
    }

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
    fn a_reason_is_settled_once_no_nearer_node_can_take_one() {
        let root = CancellationToken::new();
        let parent = root.child_token();
        let child = parent.child_token();
        assert!(!child.reason_is_settled());
        // Cancelled without a reason: the parent could still take one.
        child.cancel();
        assert!(!child.reason_is_settled());
        assert_eq!(child.reason_ref().map(|r| &**r), None);
        parent.cancel_with_reason("parent");
        assert_eq!(child.reason_ref().map(|r| &**r), Some("parent"));
        // The parent holds the reason and is the nearest cancelled node above a
        // fresh child: nothing nearer can take one, even when flagged.
        let fresh = parent.child_token();
        assert!(fresh.reason_is_settled());
        fresh.cancel_with_reason("too late");
        assert_eq!(fresh.reason_ref().map(|r| &**r), Some("parent"));
        assert_eq!(fresh.reason().as_deref(), Some("parent"));
        root.cancel_with_reason("root");
        assert_eq!(fresh.reason_ref().map(|r| &**r), Some("parent"));
        // A reason of its own settles a token at once.
        let own = CancellationToken::new().child_token();
        own.cancel_with_reason("own");
        assert!(own.reason_is_settled());
        assert_eq!(own.reason_ref().map(|r| &**r), Some("own"));
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

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Counting {
        /// A task's stand-in and a waker that wakes it.
        fn task() -> (Arc<Self>, Waker) {
            let task = Arc::new(Self::default());
            let waker = Waker::from(task.clone());
            (task, waker)
        }

        fn woken(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn a_waiter_in_the_drivers_task_is_woken_through_the_drivers_waker() {
        let root = CancellationToken::new();
        let token = root.child_token();
        let (task, waker) = Counting::task();
        let mut cx = Context::from_waker(&waker);
        // One poll of the driver: keep its waker, poll the work, then check.
        token.keep_driver_waker(&cx);
        let mut work = std::pin::pin!(token.cancelled());
        assert!(work.as_mut().poll(&mut cx).is_pending());
        assert!(token.poll_cancelled_by_driver().is_pending());
        assert_eq!(linked_children(&root), 1, "linked by the driver");
        std::thread::scope(|s| {
            s.spawn(|| root.cancel_with_reason("stop"));
        });
        // Rule 7: one wake-up, the driver's (a `Notified` armed with the same waker
        // would make it two).
        assert_eq!(task.woken(), 1);
        assert!(work.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_waiter_in_another_task_arms_its_own_notified() {
        let token = CancellationToken::new();
        let (driver, driver_waker) = Counting::task();
        token.keep_driver_waker(&Context::from_waker(&driver_waker));
        assert!(token.poll_cancelled_by_driver().is_pending());
        let (other, other_waker) = Counting::task();
        let mut cx = Context::from_waker(&other_waker);
        let mut wait = std::pin::pin!(token.cancelled());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        token.cancel();
        assert_eq!((driver.woken(), other.woken()), (1, 1));
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_dropped_driver_waker_lets_go_of_its_task() {
        let token = CancellationToken::new();
        let (task, waker) = Counting::task();
        token.keep_driver_waker(&Context::from_waker(&waker));
        token.keep_driver_waker(&Context::from_waker(&waker));
        drop(waker);
        assert_eq!(Arc::strong_count(&task), 2, "kept once, not twice");
        token.drop_driver_waker();
        assert_eq!(Arc::strong_count(&task), 1);
        token.cancel();
        assert_eq!(task.woken(), 0);
    }

    /// What `root` keeps on its wake list.
    fn linked_children(root: &CancellationToken) -> usize {
        root.node
            .links
            .get()
            .map_or(0, |l| l.children.lock().nodes.len())
    }

    #[tokio::test]
    async fn a_waiter_on_a_grandchild_is_woken_by_the_root() {
        let root = CancellationToken::new();
        let grandchild = root.child_token().child_token();
        let waiter = tokio::spawn(grandchild.clone().cancelled_owned());
        tokio::task::yield_now().await;
        root.cancel_with_reason("root");
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("waiter woke")
            .expect("no panic");
        assert_eq!(grandchild.reason().as_deref(), Some("root"));
    }

    #[test]
    fn a_token_nobody_waits_on_never_touches_its_parent() {
        let root = CancellationToken::new();
        let children: Vec<_> = (0..100).map(|_| root.child_token()).collect();
        children[0].cancel();
        let _ = children[1].to_tokio_util();
        assert_eq!(linked_children(&root), 0, "a view is not a waiter");
        root.cancel();
        assert!(children.iter().all(CancellationToken::is_cancelled));
    }

    #[test]
    fn a_cancelled_token_lets_go_of_its_wake_list() {
        let root = CancellationToken::new();
        let parent = root.child_token();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let children: Vec<_> = (0..10).map(|_| parent.child_token()).collect();
        let mut waits: Vec<_> = children.iter().map(|t| Box::pin(t.cancelled())).collect();
        for w in &mut waits {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(linked_children(&root), 1);
        assert_eq!(linked_children(&parent), 10);
        root.cancel();
        assert_eq!(linked_children(&root), 0);
        assert_eq!(linked_children(&parent), 0);
        assert!(
            waits
                .iter_mut()
                .all(|w| w.as_mut().poll(&mut cx).is_ready())
        );
        // A waiter that comes later finds the flag, not the list.
        let late = parent.child_token();
        assert!(Box::pin(late.cancelled()).as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn dead_links_are_swept() {
        let root = CancellationToken::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..10_000 {
            let child = root.child_token();
            let mut wait = std::pin::pin!(child.cancelled());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert!(linked_children(&root) <= 32, "{}", linked_children(&root));
        // Live waiters are kept through sweeps and still woken.
        let live: Vec<_> = (0..100).map(|_| root.child_token()).collect();
        let mut waits: Vec<_> = live.iter().map(|t| Box::pin(t.cancelled())).collect();
        for w in &mut waits {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        for _ in 0..1_000 {
            let child = root.child_token();
            let mut wait = std::pin::pin!(child.cancelled());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        root.cancel();
        assert!(
            waits
                .iter_mut()
                .all(|w| w.as_mut().poll(&mut cx).is_ready())
        );
    }

    /// Waiters that link while their parent or root is being cancelled on another
    /// thread are all woken (rules 3 and 4).
    #[test]
    fn waiters_racing_a_cancellation_are_all_woken() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for round in 0..2_000 {
                let root = CancellationToken::new();
                let parent = root.child_token();
                let child = parent.child_token();
                let waiters: Vec<_> = (0..4)
                    .map(|_| tokio::spawn(child.clone().cancelled_owned()))
                    .collect();
                let canceller = if round % 2 == 0 { root } else { parent };
                let cancel = tokio::spawn(async move { canceller.cancel() });
                for waiter in waiters {
                    tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
                        .await
                        .unwrap_or_else(|_| panic!("round {round}: a waiter was not woken"))
                        .expect("no panic");
                }
                cancel.await.expect("no panic");
            }
        });
    }

    #[test]
    fn a_view_made_after_the_cancellation_is_cancelled() {
        let root = CancellationToken::new();
        let child = root.child_token();
        root.cancel();
        assert!(child.to_tokio_util().is_cancelled());
        let other = CancellationToken::new().child_token();
        let view = other.to_tokio_util();
        other.cancel();
        assert!(view.is_cancelled());
    }
}
