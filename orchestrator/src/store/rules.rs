//! The rules every backend applies the same way: fencing, the state machine, the
//! orphan message, and the time encoding of the SQL backends.

use crate::{OperationId, OperationStatus};

use super::{Fence, InstanceId, StoreError};

/// Refuses a write by `writer` to an operation owned by `current`.
pub(crate) fn check_fence(
    id: &OperationId,
    current: Fence,
    writer: Fence,
) -> Result<(), StoreError> {
    if current == writer {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            id: id.clone(),
            current,
            writer,
        })
    }
}

/// Refuses a transition the state machine does not allow.
pub(crate) fn check_transition(
    id: &OperationId,
    from: OperationStatus,
    to: OperationStatus,
) -> Result<(), StoreError> {
    if from.can_become(to) {
        Ok(())
    } else if from.is_terminal() {
        Err(StoreError::AlreadyFinished {
            id: id.clone(),
            status: from,
        })
    } else {
        Err(StoreError::IllegalTransition {
            id: id.clone(),
            from,
            to,
        })
    }
}

/// The `error_message` of an operation the orphan sweep ended:
/// `{INTERRUPTED_BEFORE}{owner}{INTERRUPTED_AFTER}` (the SQL backends build it in SQL).
pub(crate) fn interrupted_message(owner: InstanceId) -> String {
    format!("{INTERRUPTED_BEFORE}{owner}{INTERRUPTED_AFTER}")
}

/// What an orphan's `error_message` says before the owner's id.
pub(crate) const INTERRUPTED_BEFORE: &str = "interrupted: instance ";
/// What it says after.
pub(crate) const INTERRUPTED_AFTER: &str =
    " stopped (its lease expired, or it was replaced at a restart); not rerun";
