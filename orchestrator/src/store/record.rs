//! The operation records a store takes and gives back.

use std::time::SystemTime;

use crate::{
    OperationId, OperationInfo, OperationMetadata, OperationProgress, OperationStatus,
    OperationType,
};

use super::InstanceId;

/// Who may write an operation: its owner instance and the attempt it runs.
///
/// Every lifecycle write ([`start`](super::OperationStore::start),
/// [`finish`](super::OperationStore::finish), the progress of a
/// [`flush`](super::OperationStore::flush)) carries the writer's fence and is refused
/// with [`StoreError::Fenced`](super::StoreError::Fenced) unless it equals the stored
/// one, so a late writer (an instance declared dead, an older attempt) cannot
/// overwrite a newer state.
///
/// # Examples
///
/// ```
/// use orchestrator::store::{Fence, InstanceId};
///
/// let me = InstanceId::generate();
/// assert_eq!(Fence::first(me), Fence::new(me, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fence {
    /// The instance that runs the operation.
    pub owner: InstanceId,
    /// Which attempt (1 for the first run; a resume runs the next one).
    pub attempt: u32,
}

impl Fence {
    /// `owner`, running `attempt`.
    pub const fn new(owner: InstanceId, attempt: u32) -> Self {
        Self { owner, attempt }
    }

    /// The first attempt, run by `owner`.
    pub const fn first(owner: InstanceId) -> Self {
        Self::new(owner, 1)
    }
}

/// What [`create`](super::OperationStore::create) stores: a `PENDING` operation.
///
/// # Examples
///
/// ```
/// use orchestrator::store::{Fence, InstanceId, NewOperation};
/// use orchestrator::{OperationId, OperationMetadata, OperationType};
///
/// let kind = OperationType::DUMMY;
/// let op = NewOperation::new(OperationId::generate(&kind), kind, Fence::first(InstanceId::generate()))
///     .with_description("dummy task")
///     .with_metadata(OperationMetadata::new().with_label("team", "ml"));
/// assert_eq!(op.description, "dummy task");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewOperation {
    /// The id.
    pub operation_id: OperationId,
    /// The kind.
    pub operation_type: OperationType,
    /// The description.
    pub description: String,
    /// When it was registered.
    pub created_at: SystemTime,
    /// Its parameters and labels.
    pub metadata: OperationMetadata,
    /// The operation it was started under.
    pub parent_id: Option<OperationId>,
    /// The initial progress (e.g. `steps_total`).
    pub progress: OperationProgress,
    /// The instance that will run it, and the attempt.
    pub fence: Fence,
    /// For a proxy of an operation on a host service: the host's URL.
    pub host_url: Option<String>,
    /// For a proxy: the operation's id on the host.
    pub host_operation_id: Option<OperationId>,
}

impl NewOperation {
    /// An operation `id` of `kind` registered now by `fence.owner`, with no
    /// description, metadata, parent or progress.
    pub fn new(operation_id: OperationId, operation_type: OperationType, fence: Fence) -> Self {
        Self {
            operation_id,
            operation_type,
            description: String::new(),
            created_at: SystemTime::now(),
            metadata: OperationMetadata::new(),
            parent_id: None,
            progress: OperationProgress::default(),
            fence,
            host_url: None,
            host_operation_id: None,
        }
    }

    /// The registry's record of a just-created operation, to be owned by `fence`:
    /// what the registry passes on create.
    pub fn from_info(info: &OperationInfo, fence: Fence) -> Self {
        Self {
            operation_id: info.operation_id.clone(),
            operation_type: info.operation_type.clone(),
            description: info.description.clone(),
            created_at: info.created_at,
            metadata: info.metadata.clone(),
            parent_id: info.parent_id.clone(),
            progress: info.progress.clone(),
            fence,
            host_url: info.host_url.clone(),
            host_operation_id: info.host_operation_id.clone(),
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the creation time.
    #[must_use]
    pub const fn with_created_at(mut self, created_at: SystemTime) -> Self {
        self.created_at = created_at;
        self
    }

    /// Sets the parameters and labels.
    #[must_use]
    pub fn with_metadata(mut self, metadata: OperationMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the parent.
    #[must_use]
    pub fn with_parent(mut self, parent: OperationId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// Sets the initial progress.
    #[must_use]
    pub fn with_progress(mut self, progress: OperationProgress) -> Self {
        self.progress = progress;
        self
    }

    /// Marks it a proxy of operation `host_operation_id` on the host service at
    /// `host_url`.
    #[must_use]
    pub fn with_host(
        mut self,
        host_url: impl Into<String>,
        host_operation_id: OperationId,
    ) -> Self {
        self.host_url = Some(host_url.into());
        self.host_operation_id = Some(host_operation_id);
        self
    }

    /// The record as stored right after [`create`](super::OperationStore::create).
    pub(crate) fn to_stored(&self) -> StoredOperation {
        StoredOperation {
            info: OperationInfo {
                operation_id: self.operation_id.clone(),
                operation_type: self.operation_type.clone(),
                description: self.description.clone(),
                status: OperationStatus::Pending,
                created_at: self.created_at,
                started_at: None,
                completed_at: None,
                progress: self.progress.clone(),
                metadata: self.metadata.clone(),
                error_message: None,
                result_summary: None,
                parent_id: self.parent_id.clone(),
                cancel_reason: None,
                abandoned: None,
                host_url: self.host_url.clone(),
                host_operation_id: self.host_operation_id.clone(),
                attempt: self.fence.attempt,
                checkpoint_at: None,
                checkpoint_step: None,
                instance_id: Some(self.fence.owner),
            },
            fence: self.fence,
            cancel_requested_at: None,
            checkpoint: None,
        }
    }
}

/// An operation as a store holds it: the record the API serves, plus who owns it.
///
/// [`OperationInfo::abandoned`] is never stored (it describes threads of the owner's
/// process) and reads back `None`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredOperation {
    /// The record, with the progress of the last flush.
    pub info: OperationInfo,
    /// Its owner instance and attempt.
    pub fence: Fence,
    /// When a cancel was requested ([`OperationInfo::cancel_reason`] says why); it
    /// stays set, and the operation active, until the owner records the end.
    pub cancel_requested_at: Option<SystemTime>,
    /// The last checkpoint saved by any attempt
    /// ([`save_checkpoint`](super::OperationStore::save_checkpoint)), `None` when none
    /// was; a [`resume`](super::OperationStore::resume) keeps it for the new attempt.
    /// Read by [`get`](super::OperationStore::get) and the calls that return a record;
    /// [`list`](super::OperationStore::list) returns only the [`OperationInfo`] and
    /// does not read checkpoints.
    pub checkpoint: Option<Checkpoint>,
}

/// An operation's resumable state, as
/// [`save_checkpoint`](super::OperationStore::save_checkpoint) stores it: the state
/// the operation's function needs to continue, which step it reached, and when it
/// was saved. Each save replaces the previous checkpoint.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use orchestrator::store::Checkpoint;
///
/// let saved = Checkpoint::new(serde_json::json!({"epoch": 4, "best_loss": 0.25}), 4, SystemTime::now());
/// assert_eq!(saved.step, 4);
/// assert_eq!(saved.state["epoch"], 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The operation's state, as JSON.
    pub state: serde_json::Value,
    /// The step it reached (the operation's own count; stored up to `i64::MAX` by the
    /// SQL backends).
    pub step: u64,
    /// When it was saved (the caller's clock).
    pub saved_at: SystemTime,
}

impl Checkpoint {
    /// `state` at `step`, saved at `saved_at`.
    pub const fn new(state: serde_json::Value, step: u64, saved_at: SystemTime) -> Self {
        Self {
            state,
            step,
            saved_at,
        }
    }
}

/// A terminal transition for [`finish`](super::OperationStore::finish).
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use orchestrator::store::Finish;
/// use orchestrator::OperationStatus;
///
/// let done = Finish::completed(SystemTime::now(), serde_json::json!({"rows": 42}));
/// assert_eq!(done.status, OperationStatus::Completed);
/// let failed = Finish::failed(SystemTime::now(), "disk full");
/// assert_eq!(failed.error_message.as_deref(), Some("disk full"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Finish {
    /// `COMPLETED`, `FAILED` or `CANCELLED` (anything else is an illegal transition).
    pub status: OperationStatus,
    /// When it ended.
    pub completed_at: SystemTime,
    /// The final progress; `None` keeps the last flushed one.
    pub progress: Option<OperationProgress>,
    /// The error (`FAILED`, or the error returned after a cancellation).
    pub error_message: Option<String>,
    /// The returned value as JSON.
    pub result_summary: Option<serde_json::Value>,
    /// Why it was cancelled; `None` keeps a reason already stored by
    /// [`request_cancel`](super::OperationStore::request_cancel).
    pub cancel_reason: Option<String>,
}

impl Finish {
    fn new(status: OperationStatus, completed_at: SystemTime) -> Self {
        Self {
            status,
            completed_at,
            progress: None,
            error_message: None,
            result_summary: None,
            cancel_reason: None,
        }
    }

    /// `COMPLETED` at `completed_at` with `result_summary`.
    pub fn completed(completed_at: SystemTime, result_summary: serde_json::Value) -> Self {
        Self::new(OperationStatus::Completed, completed_at).with_result(result_summary)
    }

    /// `FAILED` at `completed_at` with `error_message`.
    pub fn failed(completed_at: SystemTime, error_message: impl Into<String>) -> Self {
        Self::new(OperationStatus::Failed, completed_at).with_error(error_message)
    }

    /// `CANCELLED` at `completed_at`; the stored cancel reason is kept unless
    /// [`with_cancel_reason`](Self::with_cancel_reason) gives one.
    pub fn cancelled(completed_at: SystemTime) -> Self {
        Self::new(OperationStatus::Cancelled, completed_at)
    }

    /// Sets the final progress.
    #[must_use]
    pub fn with_progress(mut self, progress: OperationProgress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Sets the result summary.
    #[must_use]
    pub fn with_result(mut self, result_summary: serde_json::Value) -> Self {
        self.result_summary = Some(result_summary);
        self
    }

    /// Sets the error message.
    #[must_use]
    pub fn with_error(mut self, error_message: impl Into<String>) -> Self {
        self.error_message = Some(error_message.into());
        self
    }

    /// Sets the cancel reason.
    #[must_use]
    pub fn with_cancel_reason(mut self, reason: impl Into<String>) -> Self {
        self.cancel_reason = Some(reason.into());
        self
    }
}
