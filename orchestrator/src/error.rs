//! Error types of the runtime.

use crate::{OperationId, OperationStatus};

/// Returned by [`OperationContext::checkpoint`](crate::OperationContext::checkpoint),
/// [`OperationContext::sleep`](crate::OperationContext::sleep) and friends once the
/// operation has been cancelled.
///
/// Implement `From<Cancelled>` for your error type (or use a boxed/`anyhow` error) so
/// that `ctx.checkpoint()?` reads naturally in domain code. An operation that returns
/// any error after its token was cancelled ends `CANCELLED`, not `FAILED`.
///
/// # Examples
///
/// ```
/// use orchestrator::{Cancelled, OperationContext};
///
/// let ctx = OperationContext::detached();
/// assert_eq!(ctx.checkpoint(), Ok(()));
/// ctx.token().cancel();
/// assert_eq!(ctx.checkpoint(), Err(Cancelled));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, thiserror::Error)]
#[error("operation cancelled")]
pub struct Cancelled;

/// Errors of the [`Operations`](crate::Operations) registry and the orchestration helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// The id is not registered (never was, or was deleted or cleaned up).
    #[error("operation not found: {0}")]
    NotFound(OperationId),
    /// The requested transition is not allowed by the state machine
    /// (`PENDING → RUNNING → COMPLETED | FAILED | CANCELLED`).
    #[error("operation {id}: illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The operation.
        id: OperationId,
        /// Its status when the transition was attempted.
        from: OperationStatus,
        /// The status that was asked for.
        to: OperationStatus,
    },
    /// The operation already reached a terminal state, so it cannot be cancelled.
    #[error("operation {id} already finished ({status})")]
    AlreadyFinished {
        /// The operation.
        id: OperationId,
        /// Its terminal status.
        status: OperationStatus,
    },
    /// The operation is still pending or running, so it cannot be deleted.
    #[error("operation {id} is still active ({status}); cancel it first")]
    StillActive {
        /// The operation.
        id: OperationId,
        /// Its current status.
        status: OperationStatus,
    },
    /// A managed operation was started outside a Tokio runtime.
    #[error("no Tokio runtime is running; start managed operations from within a runtime")]
    NoRuntime,
    /// A runtime for a synchronous run could not be built.
    #[error("could not build a Tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A value could not be serialised to JSON (result summaries, metrics, context).
    #[error("could not serialise to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The registry already has as many active operations as it allows (see
    /// [`OperationsBuilder::with_max_active`](crate::OperationsBuilder::with_max_active)).
    /// Nothing was registered; retry once some have ended.
    #[error("too many active operations ({active}; at most {limit}); retry once some have ended")]
    TooManyOperations {
        /// Active operations when the new one was refused.
        active: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many operations were abandoned with blocking work still running (see
    /// [`OperationsBuilder::with_max_abandoned`](crate::OperationsBuilder::with_max_abandoned)),
    /// so new operations are refused until some of that work returns. Nothing was
    /// registered.
    #[error(
        "{abandoned} cancelled operations still run blocking work that ignored cancellation \
         (at most {limit}); new operations are refused until some of it returns"
    )]
    AbandonedWorkLimit {
        /// Abandoned operations when the new one was refused.
        abandoned: usize,
        /// The limit.
        limit: usize,
    },
    /// A cancel reason is longer than the registry accepts (1 KiB by default, see
    /// [`OperationsBuilder::with_max_cancel_reason`](crate::OperationsBuilder::with_max_cancel_reason)).
    #[error("the cancel reason has {len} bytes; at most {limit} are accepted")]
    CancelReasonTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A metric record's JSON is larger than the registry accepts (64 KiB by default,
    /// see [`OperationsBuilder::with_max_metric_bytes`](crate::OperationsBuilder::with_max_metric_bytes)).
    #[error("the metric record has {size} bytes of JSON; at most {limit} are accepted")]
    MetricTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A host service (feature `host`) could not be reached, answered 5xx, or answered
    /// something that is not the operations API, when an operation was routed to it.
    /// Nothing was registered.
    #[error("host service {host} is unavailable: {reason}")]
    HostUnavailable {
        /// The host's URL, as configured.
        host: String,
        /// What went wrong, e.g. `cannot reach http://…: is the server running?`.
        reason: String,
    },
    /// A host service refused an operation routed to it (a 4xx answer to the start),
    /// with its own status, code and message. Nothing was registered.
    #[error("host service {host} refused the operation: {message} ({status} {code})")]
    HostRejected {
        /// The host's URL, as configured.
        host: String,
        /// The host's HTTP status (4xx).
        status: u16,
        /// `error.code` of the host's envelope, e.g. `INVALID_REQUEST`.
        code: String,
        /// `error.message` of the host's envelope.
        message: String,
    },
    /// A checkpoint was saved while the operation was not `RUNNING` (an operation
    /// driven by hand that was not started, or one that already ended).
    #[error("operation {id} is {status}: a checkpoint is saved while it runs")]
    NotRunning {
        /// The operation.
        id: OperationId,
        /// Its status.
        status: OperationStatus,
    },
    /// A checkpoint's JSON is larger than the registry accepts (1 MiB by default, see
    /// [`OperationsBuilder::with_max_checkpoint_bytes`](crate::OperationsBuilder::with_max_checkpoint_bytes)):
    /// keep large state (model weights) in files and checkpoint their paths.
    #[error("the checkpoint has {size} bytes of JSON; at most {limit} are accepted")]
    CheckpointTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The checkpoint a resumed attempt continues from does not read as the state type
    /// asked for ([`OperationContext::resume_state`](crate::OperationContext::resume_state)).
    #[error("the checkpoint to resume from does not read as the state type: {0}")]
    InvalidCheckpoint(#[source] serde_json::Error),
    /// [`Operations::resume`](crate::Operations::resume) of an operation that is not
    /// `FAILED` or `CANCELLED`: it completed, or it is still `PENDING` or `RUNNING`.
    #[error("operation {id} is {status}: only a FAILED or CANCELLED operation can be resumed")]
    NotResumable {
        /// The operation.
        id: OperationId,
        /// Its status.
        status: OperationStatus,
    },
    /// [`Operations::resume`](crate::Operations::resume) of an operation that never saved
    /// a checkpoint: there is nothing to resume from (start it anew instead).
    #[error(
        "operation {0} never saved a checkpoint, so there is nothing to resume from;          start it anew instead"
    )]
    NoCheckpoint(OperationId),
    /// [`Operations::resume`](crate::Operations::resume) of an operation whose kind no
    /// function is registered to resume in this process (see
    /// [`Operations::resumable`](crate::Operations::resumable)), or of a proxy (resume
    /// it on its host service).
    #[error("operation {id} cannot be resumed here: {reason}")]
    NoResumer {
        /// The operation.
        id: OperationId,
        /// Why, e.g. `no function is registered to resume TRAINING operations`.
        reason: String,
    },
    /// [`Operations::resume`](crate::Operations::resume) lost to another resume of the
    /// same attempt (here or on another replica): the operation already runs its next
    /// attempt, which the caller can follow instead.
    #[error("operation {id} was already resumed: it runs attempt {attempt}")]
    AlreadyResumed {
        /// The operation.
        id: OperationId,
        /// The attempt it runs now.
        attempt: u32,
    },
    /// The registry's store (see [`OperationsBuilder::open`](crate::OperationsBuilder::open))
    /// cannot be reached or failed: a new operation is refused while it is degraded
    /// (running ones go on, their writes retried), and a read of another replica's
    /// operation fails. Retry later.
    #[error("the operation store is unavailable: {reason}")]
    StoreUnavailable {
        /// The store's last error.
        reason: String,
    },
}

impl From<crate::store::StoreError> for OrchestratorError {
    /// A store failure as the registry reports it: `NotFound` and the refusals keep
    /// their meaning, the rest is [`OrchestratorError::StoreUnavailable`].
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(id) => Self::NotFound(id),
            StoreError::AlreadyFinished { id, status } => Self::AlreadyFinished { id, status },
            StoreError::StillActive { id, status } => Self::StillActive { id, status },
            StoreError::IllegalTransition { id, from, to } => {
                Self::IllegalTransition { id, from, to }
            }
            StoreError::NotRunning { id, status } => Self::NotRunning { id, status },
            StoreError::NotResumable { id, status } => Self::NotResumable { id, status },
            StoreError::NoCheckpoint(id) => Self::NoCheckpoint(id),
            StoreError::AttemptMoved { id, current, .. } => Self::AlreadyResumed {
                id,
                attempt: current.attempt,
            },
            other => Self::StoreUnavailable {
                reason: other.to_string(),
            },
        }
    }
}

/// `Result` with [`OrchestratorError`] as the default error.
pub type Result<T, E = OrchestratorError> = std::result::Result<T, E>;
