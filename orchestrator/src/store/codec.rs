//! How the SQL backends encode a record: times as integer nanoseconds since the Unix
//! epoch (exact, and comparable in SQL), JSON as text, ids and statuses as text.

use std::time::{Duration, SystemTime};

use crate::OperationInfo;

use super::{Checkpoint, Fence, StoreError, StoredOperation};

/// The columns of a record's [`OperationInfo`] and fence, in [`RawRow`]'s order.
macro_rules! info_columns {
    () => {
        "id, operation_type, description, status, created_at, started_at, \
         completed_at, progress, metadata, error_message, result_summary, parent_id, \
         cancel_reason, cancel_requested_at, owner, attempt, host_url, host_operation_id, \
         checkpoint_step, checkpoint_at"
    };
}

/// What `list` reads: [`info_columns`] (the checkpoint's step and time, not its state).
pub(crate) const INFO_COLUMNS: &str = info_columns!();

/// A whole [`StoredOperation`]: [`INFO_COLUMNS`], then the checkpoint's state.
pub(crate) const COLUMNS: &str = concat!(info_columns!(), ", checkpoint");

/// `t` as nanoseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The inverse of [`to_nanos`].
pub(crate) fn from_nanos(n: i64) -> SystemTime {
    let d = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    }
}

/// The statuses a [`resume`](super::OperationStore::resume) starts from, as SQL: those
/// [`check_resume`](super::rules::check_resume) accepts.
pub(crate) const RESUMABLE: &str = "('FAILED', 'CANCELLED')";

/// A row as stored, before its columns are parsed.
pub(crate) struct RawRow {
    pub(crate) id: String,
    pub(crate) operation_type: String,
    pub(crate) description: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) started_at: Option<i64>,
    pub(crate) completed_at: Option<i64>,
    pub(crate) progress: String,
    pub(crate) metadata: String,
    pub(crate) error_message: Option<String>,
    pub(crate) result_summary: Option<String>,
    pub(crate) parent_id: Option<String>,
    pub(crate) cancel_reason: Option<String>,
    pub(crate) cancel_requested_at: Option<i64>,
    pub(crate) owner: String,
    pub(crate) attempt: i64,
    pub(crate) host_url: Option<String>,
    pub(crate) host_operation_id: Option<String>,
    /// The checkpoint's step and time: both set or both `NULL`.
    pub(crate) checkpoint_step: Option<i64>,
    pub(crate) checkpoint_at: Option<i64>,
    /// The checkpoint's state (JSON): set with them, `None` when only
    /// [`INFO_COLUMNS`] were read.
    pub(crate) checkpoint: Option<String>,
}

impl RawRow {
    pub(crate) fn parse(self) -> Result<StoredOperation, StoreError> {
        let id = self.id;
        let bad = |cause: Box<dyn std::error::Error + Send + Sync>| StoreError::InvalidRecord {
            id: id.clone(),
            cause,
        };
        let owner = self.owner.parse().map_err(|e| bad(Box::new(e)))?;
        let attempt = u32::try_from(self.attempt).map_err(|e| bad(Box::new(e)))?;
        let (checkpoint_step, checkpoint_at) = match (self.checkpoint_step, self.checkpoint_at) {
            (None, None) => (None, None),
            (Some(step), Some(at)) => (
                Some(u64::try_from(step).map_err(|e| bad(Box::new(e)))?),
                Some(from_nanos(at)),
            ),
            _ => return Err(bad("checkpoint columns are partly NULL".into())),
        };
        let info = OperationInfo {
            operation_id: id.parse().map_err(|e| bad(Box::new(e)))?,
            operation_type: self.operation_type.parse().map_err(|e| bad(Box::new(e)))?,
            description: self.description,
            status: self.status.parse().map_err(|e| bad(Box::new(e)))?,
            created_at: from_nanos(self.created_at),
            started_at: self.started_at.map(from_nanos),
            completed_at: self.completed_at.map(from_nanos),
            progress: serde_json::from_str(&self.progress).map_err(|e| bad(Box::new(e)))?,
            metadata: serde_json::from_str(&self.metadata).map_err(|e| bad(Box::new(e)))?,
            error_message: self.error_message,
            result_summary: self
                .result_summary
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| bad(Box::new(e)))?,
            parent_id: self
                .parent_id
                .map(|p| p.parse())
                .transpose()
                .map_err(|e| bad(Box::new(e)))?,
            cancel_reason: self.cancel_reason,
            abandoned: None,
            host_url: self.host_url,
            host_operation_id: self
                .host_operation_id
                .map(|h| h.parse())
                .transpose()
                .map_err(|e| bad(Box::new(e)))?,
            attempt,
            checkpoint_at,
            checkpoint_step,
            instance_id: Some(owner),
        };
        let checkpoint = match (self.checkpoint, checkpoint_step, checkpoint_at) {
            (None, _, _) => None,
            (Some(state), Some(step), Some(at)) => Some(Checkpoint::new(
                serde_json::from_str(&state).map_err(|e| bad(Box::new(e)))?,
                step,
                at,
            )),
            (Some(_), _, _) => return Err(bad("checkpoint columns are partly NULL".into())),
        };
        Ok(StoredOperation {
            info,
            fence: Fence::new(owner, attempt),
            cancel_requested_at: self.cancel_requested_at.map(from_nanos),
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_round_trip() {
        for t in [
            SystemTime::UNIX_EPOCH,
            SystemTime::now(),
            SystemTime::UNIX_EPOCH - Duration::from_nanos(1_500),
            SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
        ] {
            assert_eq!(from_nanos(to_nanos(t)), t);
        }
    }
}
