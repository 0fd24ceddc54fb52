//! The records a registry hands out: progress, metadata, the full operation info.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{OperationId, OperationStatus, OperationType};

/// JSON object used for free-form `context` and `parameters` fields.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// A snapshot of how far an operation got.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationProgress;
///
/// let p: OperationProgress = serde_json::from_str(r#"{"percentage": 40.0, "steps_completed": 4, "steps_total": 10}"#)?;
/// assert_eq!(p.steps_completed, 4);
/// assert_eq!(p.current_step, "");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct OperationProgress {
    /// Overall completion, `0.0..=100.0`.
    pub percentage: f64,
    /// What the operation is doing now, e.g. `Iteration 3/100`.
    pub current_step: String,
    /// Steps done, of the phase that reported last while running; once `COMPLETED`,
    /// of the whole operation (its own total, or else the sum of its phases' totals).
    pub steps_completed: u64,
    /// Total steps, counted as `steps_completed` is; `0` when unknown.
    pub steps_total: u64,
    /// Items (rows, samples, bytes, …) processed so far.
    pub items_processed: u64,
    /// Items expected in all, when known.
    pub items_total: Option<u64>,
    /// Free-form domain context (`{"symbol": "AAPL", "epoch": 3}`).
    #[cfg_attr(feature = "http", schema(value_type = Object))]
    pub context: JsonMap,
    /// The name of the phase that reported last (see
    /// [`OperationContext::named`](crate::OperationContext::named)), e.g. `train`;
    /// `None` for the operation's own reports and unnamed phases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Estimated seconds to completion: the remaining percentage at the rate of the
    /// current phase (a fast first phase does not make a slow second one look short).
    /// `None` until the current phase has made progress.
    pub eta_seconds: Option<f64>,
}

/// Descriptive data attached to an operation when it is created: what it was started
/// with ([`parameters`](Self::parameters)) and how it is grouped
/// ([`labels`](Self::labels), which [`OperationFilter::with_label`] selects on).
///
/// Domain fields (a symbol, a timeframe) are parameters, not fields of this record.
///
/// [`OperationFilter::with_label`]: crate::OperationFilter::with_label
///
/// # Examples
///
/// ```
/// use orchestrator::OperationMetadata;
///
/// let meta = OperationMetadata::new()
///     .with_parameter("symbol", "AAPL")
///     .with_parameter("rows", 1_000)
///     .with_label("team", "ml");
/// assert_eq!(meta.parameters["rows"], 1_000);
/// assert_eq!(meta.label("team"), Some("ml"));
/// assert_eq!(
///     serde_json::to_value(&meta)?,
///     serde_json::json!({"parameters": {"rows": 1000, "symbol": "AAPL"}, "labels": {"team": "ml"}}),
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct OperationMetadata {
    /// What the operation was started with, e.g. `{"symbol": "AAPL", "rows": 1000}`.
    /// `#[managed_operation]` records here every argument that serialises.
    #[cfg_attr(feature = "http", schema(value_type = Object))]
    pub parameters: JsonMap,
    /// String labels for grouping and filtering, e.g. `{"team": "ml"}`.
    pub labels: BTreeMap<String, String>,
}

impl OperationMetadata {
    /// Empty metadata: no parameters, no labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.labels.is_empty()
    }

    /// Adds one entry to [`parameters`](Self::parameters), replacing any under `key`.
    #[must_use]
    pub fn with_parameter(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }

    /// Adds one entry to [`labels`](Self::labels), replacing any under `key`.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The parameter under `key`, if any.
    pub fn parameter(&self, key: &str) -> Option<&serde_json::Value> {
        self.parameters.get(key)
    }

    /// The label under `key`, if any.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// Everything the registry knows about one operation: the record the HTTP API serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct OperationInfo {
    /// The id.
    pub operation_id: OperationId,
    /// The kind.
    pub operation_type: OperationType,
    /// A human-readable description, e.g. `dummy task`.
    #[serde(default)]
    pub description: String,
    /// The lifecycle state.
    pub status: OperationStatus,
    /// When it was registered.
    #[serde(with = "crate::timefmt")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime))]
    pub created_at: SystemTime,
    /// When it started running.
    #[serde(with = "crate::timefmt::option", default)]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<SystemTime>,
    /// When it reached a terminal state.
    #[serde(with = "crate::timefmt::option", default)]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<SystemTime>,
    /// Progress at the time of the snapshot.
    #[serde(default)]
    pub progress: OperationProgress,
    /// Descriptive data given at creation.
    #[serde(default)]
    pub metadata: OperationMetadata,
    /// Why it failed (`FAILED`), or the error it returned after a cancellation.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The operation's returned value as JSON (also kept for a cooperative cancel).
    #[serde(default)]
    pub result_summary: Option<serde_json::Value>,
    /// The operation this one was started under, if any.
    #[serde(default)]
    pub parent_id: Option<OperationId>,
    /// Why it was cancelled; set as soon as cancellation is requested.
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// Set while the operation is *abandoned*: its async part was dropped (cancelled
    /// and past its grace period, or past its deadline) but blocking work it started
    /// with [`OperationContext::spawn_blocking`](crate::OperationContext::spawn_blocking)
    /// is still running on a thread that Tokio cannot stop. The operation stays
    /// `RUNNING` (and keeps its concurrency slot) until that work returns; then it ends
    /// and this is cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<AbandonedWork>,
    /// For a *proxy* (feature `host`): the URL of the host service the operation runs
    /// on. `None` for an operation that runs in this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_url: Option<String>,
    /// For a proxy: the operation's id on the host service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_operation_id: Option<OperationId>,
    /// Which run of the operation this is: 1 for the first, one more for each
    /// [resume](crate::Operations::resume) from its checkpoint.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// When the operation last saved a checkpoint
    /// ([`OperationContext::save_checkpoint`](crate::OperationContext::save_checkpoint)),
    /// in this attempt or an earlier one; `None` if it never did.
    #[serde(with = "crate::timefmt::option", default)]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = DateTime))]
    pub checkpoint_at: Option<SystemTime>,
    /// The step the last checkpoint was saved at (its progress's `steps_completed`
    /// then); set with [`checkpoint_at`](Self::checkpoint_at).
    #[serde(default)]
    pub checkpoint_step: Option<u64>,
    /// The process (instance) that runs or ran this attempt, for a registry with a
    /// store (each replica's start is one instance: see
    /// [`InstanceId`](crate::store::InstanceId)); `None` without a store. A proxy's is
    /// the instance running the proxy: [`host_url`](Self::host_url) says where the
    /// work itself runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, format = "uuid"))]
    pub instance_id: Option<crate::store::InstanceId>,
}

const fn first_attempt() -> u32 {
    1
}

/// Blocking work that outlived its operation's cancellation (see
/// [`OperationInfo::abandoned`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct AbandonedWork {
    /// When the async part was dropped.
    #[serde(with = "crate::timefmt")]
    #[cfg_attr(feature = "http", schema(value_type = String, format = DateTime))]
    pub since: SystemTime,
    /// How many `spawn_blocking` closures of the operation are still running.
    pub blocking_tasks: u32,
    /// Why the async part was dropped, e.g. `ignored cancellation for 2s`.
    pub message: String,
}

impl OperationInfo {
    /// Wall time from start to completion (or to now, while running).
    pub fn elapsed(&self) -> Option<std::time::Duration> {
        let start = self.started_at?;
        let end = self.completed_at.unwrap_or_else(SystemTime::now);
        end.duration_since(start).ok()
    }

    /// [`result_summary`](Self::result_summary) read as a `T`; `None` when there is
    /// none or it has another shape.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationSpec, Operations};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Summary { rows: u64 }
    ///
    /// let ops = Operations::new();
    /// let id = ops.create(OperationSpec::new("load"))?;
    /// ops.start(&id)?;
    /// ops.complete(&id, serde_json::json!({"rows": 42}))?;
    /// let info = ops.get(&id)?;
    /// assert_eq!(info.result_as::<Summary>().map(|s| s.rows), Some(42));
    /// assert!(info.result_as::<Vec<u8>>().is_none());
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    pub fn result_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(self.result_summary.as_ref()?).ok()
    }
}

/// What starting an operation returns at once: the body of a start endpoint.
///
/// # Examples
///
/// ```
/// use orchestrator::{OperationId, OperationType, StartedOperation};
///
/// let started = StartedOperation::new(OperationId::generate(&OperationType::DUMMY), "dummy task");
/// assert_eq!(started.status, "started");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct StartedOperation {
    /// The new operation's id.
    pub operation_id: OperationId,
    /// Always [`StartedStatus::Started`] (`"started"` on the wire).
    pub status: StartedStatus,
    /// A human-readable line, e.g. `Started dummy task`.
    pub message: String,
}

impl StartedOperation {
    /// A `started` record for `operation_id`, with the message `Started {description}`.
    pub fn new(operation_id: OperationId, description: &str) -> Self {
        Self {
            operation_id,
            status: StartedStatus::Started,
            message: format!("Started {description}"),
        }
    }
}

/// The `status` of a [`StartedOperation`]: `"started"` on the wire, the only value.
///
/// The operation's own status is in its record ([`OperationInfo::status`]); this one
/// only says the start request was accepted.
///
/// # Examples
///
/// ```
/// use orchestrator::StartedStatus;
///
/// assert_eq!(serde_json::to_string(&StartedStatus::Started)?, r#""started""#);
/// assert_eq!(StartedStatus::Started, "started");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StartedStatus {
    /// The operation was registered and its task spawned.
    #[default]
    Started,
}

impl StartedStatus {
    /// `"started"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
        }
    }
}

impl std::fmt::Display for StartedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for StartedStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
