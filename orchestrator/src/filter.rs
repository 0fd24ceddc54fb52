//! Filtering and paging for [`Operations::list`](crate::Operations::list).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{OperationId, OperationInfo, OperationMetadata, OperationStatus, OperationType};

/// Which operations [`Operations::list`](crate::Operations::list) returns: newest first,
/// filtered by status, type and labels, then paged with `offset` and `limit`.
///
/// # Examples
///
/// ```
/// use orchestrator::{OperationFilter, OperationStatus, OperationType};
///
/// let filter = OperationFilter::new()
///     .with_status(OperationStatus::Running)
///     .with_type(OperationType::TRAINING)
///     .with_label("team", "ml")
///     .with_limit(20);
/// assert_eq!(filter.limit, 20);
/// assert_eq!(filter.labels["team"], "ml");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationFilter {
    /// Only operations with this status.
    pub status: Option<OperationStatus>,
    /// Only operations of this type.
    pub operation_type: Option<OperationType>,
    /// Only `PENDING` and `RUNNING` operations.
    pub active_only: bool,
    /// Only operations carrying every one of these labels with exactly these values
    /// (see [`OperationMetadata::labels`]).
    pub labels: BTreeMap<String, String>,
    /// Only the children of this operation (see
    /// [`OperationContext::spawn_child`](crate::OperationContext::spawn_child)).
    pub parent_id: Option<OperationId>,
    /// At most this many (default 100).
    pub limit: usize,
    /// Skip this many of the matches first.
    pub offset: usize,
}

impl Default for OperationFilter {
    fn default() -> Self {
        Self {
            status: None,
            operation_type: None,
            active_only: false,
            labels: BTreeMap::new(),
            parent_id: None,
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl OperationFilter {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 100;

    /// Everything, first page of 100.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only operations with `status`.
    #[must_use]
    pub fn with_status(mut self, status: OperationStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only operations of `kind`.
    #[must_use]
    pub fn with_type(mut self, kind: impl Into<OperationType>) -> Self {
        self.operation_type = Some(kind.into());
        self
    }

    /// Only operations labelled `key = value`. Repeat it to require several labels
    /// (all must match); a second value for the same `key` replaces the first.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationFilter, OperationSpec, Operations};
    ///
    /// let ops = Operations::new();
    /// let gpu = ops.create(OperationSpec::new("train").with_label("tier", "gpu"))?;
    /// ops.create(OperationSpec::new("train").with_label("tier", "cpu"))?;
    /// ops.create(OperationSpec::new("train"))?;
    ///
    /// let page = ops.list(&OperationFilter::new().with_label("tier", "gpu"));
    /// assert_eq!(page.total_count, 1);
    /// assert_eq!(page.operations[0].operation_id, gpu);
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Only active (`PENDING` or `RUNNING`) operations.
    #[must_use]
    pub const fn active_only(mut self) -> Self {
        self.active_only = true;
        self
    }

    /// Only the children of operation `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationFilter, OperationSpec, Operations};
    ///
    /// let ops = Operations::new();
    /// let parent = ops.create(OperationSpec::new("load_all"))?;
    /// let child = ops.create(OperationSpec::new("load").with_parent(parent.clone()))?;
    /// let children = ops.list(&OperationFilter::new().with_parent(parent));
    /// assert_eq!(children.operations[0].operation_id, child);
    /// assert_eq!(children.total_count, 1);
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    #[must_use]
    pub fn with_parent(mut self, parent: OperationId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// Page size.
    #[must_use]
    pub const fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Matches to skip.
    #[must_use]
    pub const fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Whether an operation with this status, kind and metadata (`None`: empty) passes.
    pub(crate) fn matches(
        &self,
        status: OperationStatus,
        kind: &OperationType,
        metadata: Option<&OperationMetadata>,
        parent: Option<&OperationId>,
    ) -> bool {
        self.status.is_none_or(|s| s == status)
            && self.parent_id.as_ref().is_none_or(|p| Some(p) == parent)
            && (!self.active_only || status.is_active())
            && self.operation_type.as_ref().is_none_or(|k| k == kind)
            && self.matches_labels(metadata)
    }

    fn matches_labels(&self, metadata: Option<&OperationMetadata>) -> bool {
        if self.labels.is_empty() {
            return true;
        }
        let Some(metadata) = metadata else {
            return false;
        };
        self.labels
            .iter()
            .all(|(key, value)| metadata.labels.get(key) == Some(value))
    }
}

/// One page of operations with the counts a UI needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OperationList {
    /// The page, newest first.
    pub operations: Vec<OperationInfo>,
    /// How many operations matched the filter (before paging).
    pub total_count: usize,
    /// How many operations in the whole registry are `PENDING` or `RUNNING`.
    pub active_count: usize,
}
