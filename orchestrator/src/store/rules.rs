//! The rules every backend applies the same way: fencing, the state machine, the
//! orphan message, and the time encoding of the SQL backends.

use std::time::{Duration, SystemTime};

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

/// `t` as nanoseconds since the Unix epoch (negative before it), saturating.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The inverse of [`to_nanos`].
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_nanos(n: i64) -> SystemTime {
    let d = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
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
