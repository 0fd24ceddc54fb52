//! What to register when an operation is created.

use std::borrow::Cow;
use std::time::Duration;

use crate::{OperationId, OperationMetadata, OperationType};

/// Describes an operation to register: its kind, a description for humans, metadata,
/// the total number of steps (when known up front) and optional time limits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use orchestrator::{OperationSpec, OperationType};
///
/// let spec = OperationSpec::new(OperationType::TRAINING)
///     .with_description("train model")
///     .with_total_steps(50)
///     .with_deadline(Duration::from_secs(3600));
/// assert_eq!(spec.total_steps(), 50);
/// ```
#[derive(Debug, Clone)]
pub struct OperationSpec {
    pub(crate) operation_type: OperationType,
    pub(crate) description: Option<Cow<'static, str>>,
    pub(crate) metadata: OperationMetadata,
    pub(crate) total_steps: u64,
    pub(crate) deadline: Option<Duration>,
    pub(crate) grace_period: Option<Duration>,
    pub(crate) parent_id: Option<OperationId>,
    pub(crate) progress_weight: Option<f64>,
}

impl OperationSpec {
    /// A spec for an operation of `operation_type`; the description defaults to the
    /// lower-cased type name.
    pub fn new(operation_type: impl Into<OperationType>) -> Self {
        Self {
            description: None,
            operation_type: operation_type.into(),
            metadata: OperationMetadata::default(),
            total_steps: 0,
            deadline: None,
            grace_period: None,
            parent_id: None,
            progress_weight: None,
        }
    }

    /// A human-readable description (shown by progress bars and start messages).
    #[must_use]
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Metadata stored with the operation (replaces any parameters and labels set
    /// before).
    #[must_use]
    pub fn with_metadata(mut self, metadata: OperationMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Records `key = value` in the operation's
    /// [`metadata.parameters`](OperationMetadata::parameters).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationSpec, Operations};
    ///
    /// let ops = Operations::new();
    /// let id = ops.create(OperationSpec::new("data_load").with_parameter("symbol", "AAPL"))?;
    /// assert_eq!(ops.get(&id)?.metadata.parameters["symbol"], "AAPL");
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    #[must_use]
    pub fn with_parameter(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.parameters.insert(key.into(), value.into());
        self
    }

    /// Labels the operation `key = value` (see
    /// [`OperationFilter::with_label`](crate::OperationFilter::with_label)).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationSpec, Operations};
    ///
    /// let ops = Operations::new();
    /// let id = ops.create(OperationSpec::new("train").with_label("team", "ml"))?;
    /// assert_eq!(ops.get(&id)?.metadata.label("team"), Some("ml"));
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.labels.insert(key.into(), value.into());
        self
    }

    /// The metadata recorded so far.
    pub const fn metadata(&self) -> &OperationMetadata {
        &self.metadata
    }

    /// The deadline, if one was set.
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The grace period, if one was set (the registry's default applies if not).
    pub const fn grace_period(&self) -> Option<Duration> {
        self.grace_period
    }

    /// The number of steps [`OperationContext::progress`](crate::OperationContext::progress)
    /// counts towards. `0` (the default) means unknown until the operation says so with
    /// [`OperationContext::set_total_steps`](crate::OperationContext::set_total_steps).
    #[must_use]
    pub const fn with_total_steps(mut self, total_steps: u64) -> Self {
        self.total_steps = total_steps;
        self
    }

    /// Fails the operation with `deadline exceeded` if it runs longer than `deadline`.
    #[must_use]
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How long a cancelled operation may take to return before it is aborted
    /// (overrides the registry's default of 2 s).
    #[must_use]
    pub const fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = Some(grace_period);
        self
    }

    /// Records `parent` as this operation's parent.
    #[must_use]
    pub fn with_parent(mut self, parent: OperationId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// As a child ([`OperationContext::spawn_child`](crate::OperationContext::spawn_child)),
    /// its progress counts towards its parent's with this weight: the reporter that
    /// spawned it shows the weighted mean of the percentages of its weighted children
    /// (a child weighing 3 moves it three times as much as one weighing 1). Without a
    /// weight (the default) a child does not move its parent's progress. A weight that
    /// is not a positive finite number counts as none.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::OperationSpec;
    ///
    /// let big_file = OperationSpec::new("data_load").with_progress_weight(3.0);
    /// assert_eq!(big_file.progress_weight(), Some(3.0));
    /// assert_eq!(OperationSpec::new("x").with_progress_weight(-1.0).progress_weight(), None);
    /// ```
    #[must_use]
    pub fn with_progress_weight(mut self, weight: f64) -> Self {
        self.progress_weight = (weight.is_finite() && weight > 0.0).then_some(weight);
        self
    }

    /// The progress weight as a child, if one was set.
    pub const fn progress_weight(&self) -> Option<f64> {
        self.progress_weight
    }

    /// The kind of operation.
    pub fn operation_type(&self) -> &OperationType {
        &self.operation_type
    }

    /// The description, if one was given (the lower-cased type name is used if not).
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The total steps (`0` when unknown).
    pub const fn total_steps(&self) -> u64 {
        self.total_steps
    }
}
