//! Types of the operations API's wire contract that both sides use: the server
//! (feature `http`) answers with them, the client (feature `client`) reads them.

use serde::{Deserialize, Serialize};

use crate::OperationInfo;

/// What `DELETE /operations/{id}` did.
///
/// # Examples
///
/// ```
/// use orchestrator::DeletedOperation;
///
/// let json = serde_json::json!({"deleted": true, "operation": {
///     "operation_id": "op_dummy_20261122_160501_9f3a1c2e", "operation_type": "DUMMY",
///     "status": "COMPLETED", "created_at": "2026-11-22T16:05:01Z"}});
/// let deleted: DeletedOperation = serde_json::from_value(json)?;
/// assert!(deleted.deleted);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DeletedOperation {
    /// `true`: the operation had finished and was removed from the registry.
    /// `false`: it was active, so cancellation was requested instead (as by
    /// `POST …/cancel`); delete it again once it has finished to remove it.
    pub deleted: bool,
    /// The removed record, or the record after the cancellation request.
    pub operation: OperationInfo,
}

impl DeletedOperation {
    /// What the server answers after acting on `operation`.
    pub const fn new(deleted: bool, operation: OperationInfo) -> Self {
        Self { deleted, operation }
    }
}
