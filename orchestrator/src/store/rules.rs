//! The rules every backend applies the same way: fencing, the state machine, what a
//! checkpoint and a resume require, the orphan message, and the time encoding of the
//! SQL backends.

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

/// What [`save_checkpoint`](super::OperationStore::save_checkpoint) by `writer`
/// requires of an operation in `status` owned by `current`, checked in this order: the
/// writer's fence, then `RUNNING`.
pub(crate) fn check_save_checkpoint(
    id: &OperationId,
    status: OperationStatus,
    current: Fence,
    writer: Fence,
) -> Result<(), StoreError> {
    check_fence(id, current, writer)?;
    match status {
        OperationStatus::Running => Ok(()),
        status if status.is_terminal() => Err(StoreError::AlreadyFinished {
            id: id.clone(),
            status,
        }),
        status => Err(StoreError::NotRunning {
            id: id.clone(),
            status,
        }),
    }
}

/// What [`resume`](super::OperationStore::resume) expecting `expected` requires of an
/// operation in `status` owned by `current`, checked in this order: the attempt, a
/// status of `FAILED` or `CANCELLED` (and an attempt that has a next one), a checkpoint. Returns
/// the new attempt.
pub(crate) fn check_resume(
    id: &OperationId,
    status: OperationStatus,
    current: Fence,
    has_checkpoint: bool,
    expected: u32,
) -> Result<u32, StoreError> {
    if current.attempt != expected {
        return Err(StoreError::AttemptMoved {
            id: id.clone(),
            expected,
            current,
        });
    }
    let next = expected.checked_add(1);
    let (true, Some(next)) = (
        matches!(status, OperationStatus::Failed | OperationStatus::Cancelled),
        next,
    ) else {
        return Err(StoreError::NotResumable {
            id: id.clone(),
            status,
        });
    };
    if !has_checkpoint {
        return Err(StoreError::NoCheckpoint(id.clone()));
    }
    Ok(next)
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
