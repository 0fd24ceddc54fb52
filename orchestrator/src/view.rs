//! [`OperationView`]: a look at one operation's record without copying it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use crate::entry::Entry;
use crate::{OperationId, OperationInfo, OperationMetadata, OperationStatus, OperationType};

/// One operation's record as it stands, borrowed: what
/// [`Operations::with_info`](crate::Operations::with_info) and
/// [`Operations::wait_with`](crate::Operations::wait_with) hand their closure.
///
/// Each accessor reads the live record (an atomic load, or one short lock) and none
/// allocates, except where it says so; a caller that only looks (a status, a
/// percentage) copies nothing, where [`Operations::get`](crate::Operations::get)
/// builds a whole [`OperationInfo`]. Two accessors called one after the other may see
/// the operation move on in between; [`info`](Self::info) is the consistent snapshot.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> orchestrator::Result<()> {
/// use orchestrator::{OperationSpec, OperationStatus, Operations};
///
/// let ops = Operations::new();
/// let handle = ops.spawn(OperationSpec::new("nap").with_total_steps(4), |ctx| async move {
///     ctx.progress(1, "one of four");
///     ctx.cancelled().await;
///     Ok::<_, String>(())
/// })?;
/// tokio::task::yield_now().await;
/// let (status, percent) = ops.with_info(handle.id(), |op| (op.status(), op.progress().percentage))?;
/// assert_eq!((status, percent), (OperationStatus::Running, 25.0));
/// ops.with_info(handle.id(), |op| op.with_current_step(|step| assert_eq!(step, "one of four")))?;
///
/// ops.cancel(handle.id(), "enough")?;
/// let reason = ops.wait_with(handle.id(), |op| op.cancel_reason()).await?;
/// assert_eq!(reason.as_deref(), Some("enough"));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct OperationView<'a> {
    entry: &'a Entry,
}

/// The counters of an operation's progress (see [`OperationView::progress`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ProgressCounts {
    /// Overall completion, `0.0..=100.0`.
    pub percentage: f64,
    /// Steps done (of the phase that reported last, as in
    /// [`OperationProgress`](crate::OperationProgress)).
    pub steps_completed: u64,
    /// Total steps; `0` when unknown.
    pub steps_total: u64,
    /// Items processed so far.
    pub items_processed: u64,
    /// Items expected in all, when known.
    pub items_total: Option<u64>,
}

impl<'a> OperationView<'a> {
    pub(crate) const fn new(entry: &'a Entry) -> Self {
        Self { entry }
    }

    /// The id.
    pub fn id(&self) -> &'a OperationId {
        &self.entry.id
    }

    /// The kind.
    pub fn operation_type(&self) -> &'a OperationType {
        &self.entry.kind
    }

    /// The description as given; without one, the lower-cased type name (the one
    /// case that allocates).
    pub fn description(&self) -> Cow<'a, str> {
        self.entry.description_ref()
    }

    /// The lifecycle state now.
    pub fn status(&self) -> OperationStatus {
        self.entry.status()
    }

    /// Whether cancellation was requested (or the operation ended cancelled).
    pub fn is_cancelled(&self) -> bool {
        self.entry.token.is_cancelled()
    }

    /// Why it was cancelled, shared with the record (no copy); `None` if it was not.
    pub fn cancel_reason(&self) -> Option<Arc<str>> {
        self.entry.cancel_reason_shared()
    }

    /// When it was registered.
    pub fn created_at(&self) -> SystemTime {
        self.entry.created_at()
    }

    /// When it started running, if it did.
    pub fn started_at(&self) -> Option<SystemTime> {
        self.entry.times().0
    }

    /// When it reached a terminal state, if it did.
    pub fn completed_at(&self) -> Option<SystemTime> {
        self.entry.times().1
    }

    /// The progress counters (a proxy's: as last read from its host).
    pub fn progress(&self) -> ProgressCounts {
        match self.entry.remote() {
            Some(remote) => remote.counts(),
            None => self.entry.progress.counts(),
        }
    }

    /// Calls `f` with the current step message. A message of up to 96 bytes is
    /// copied onto the stack (no allocation); no lock is held while `f` runs, so it
    /// may use the registry freely.
    pub fn with_current_step<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self.entry.remote() {
            Some(remote) => remote.with_step(f),
            None => self.entry.progress.with_step(f),
        }
    }

    /// What it was started with.
    pub fn metadata(&self) -> Option<&'a OperationMetadata> {
        self.entry.metadata()
    }

    /// The operation it was started under, if any.
    pub fn parent_id(&self) -> Option<&'a OperationId> {
        self.entry.parent_id()
    }

    /// Which run of the operation this is (1, or more once resumed).
    pub fn attempt(&self) -> u32 {
        self.entry.attempt
    }

    /// For a proxy: the host service it runs on.
    pub fn host_url(&self) -> Option<&'a str> {
        self.entry.remote().map(|r| &*r.host_url)
    }

    /// The whole record as an owned snapshot (what
    /// [`Operations::get`](crate::Operations::get) returns).
    pub fn info(&self) -> OperationInfo {
        self.entry.info()
    }
}

impl std::fmt::Debug for OperationView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationView")
            .field("id", self.id())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}
