//! What a proxy accepts from a host: a record that moves forward and makes sense.

use crate::{OperationId, OperationInfo, OperationStatus};

/// How far along a status is: a host record may only keep or raise it.
const fn rank(status: OperationStatus) -> u8 {
    match status {
        OperationStatus::Pending => 0,
        OperationStatus::Running => 1,
        _ => 2,
    }
}

/// `Err(why)` when `info` cannot be the next record of `host_id`, last seen `last`.
pub(super) fn next_record(
    host_id: &OperationId,
    last: OperationStatus,
    info: &OperationInfo,
) -> Result<(), String> {
    if info.operation_id != *host_id {
        return Err(format!(
            "the host answered with operation {} instead",
            info.operation_id
        ));
    }
    let pct = info.progress.percentage;
    if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
        return Err(format!("its percentage {pct} is outside 0–100"));
    }
    if rank(info.status) < rank(last) {
        return Err(format!(
            "its status went back from {last} to {}",
            info.status
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OperationSpec, OperationType, Operations};

    fn record(status: OperationStatus, pct: f64) -> (OperationId, OperationInfo) {
        let ops = Operations::new();
        let id = ops
            .create(OperationSpec::new(OperationType::TRAINING))
            .expect("create");
        let mut info = ops.get(&id).expect("get");
        info.status = status;
        info.progress.percentage = pct;
        (id, info)
    }

    #[test]
    fn a_record_that_moves_forward_is_accepted() {
        let (id, info) = record(OperationStatus::Completed, 100.0);
        assert_eq!(next_record(&id, OperationStatus::Running, &info), Ok(()));
    }

    #[test]
    fn a_record_that_goes_back_or_overflows_is_refused() {
        let (id, info) = record(OperationStatus::Running, 50.0);
        let err = next_record(&id, OperationStatus::Completed, &info).unwrap_err();
        assert!(err.contains("went back from COMPLETED to RUNNING"), "{err}");
        let (id, info) = record(OperationStatus::Running, 140.0);
        let err = next_record(&id, OperationStatus::Running, &info).unwrap_err();
        assert!(err.contains("percentage 140"), "{err}");
        let (id, info) = record(OperationStatus::Running, f64::NAN);
        assert!(next_record(&id, OperationStatus::Running, &info).is_err());
        let (other, _) = record(OperationStatus::Running, 1.0);
        let (_, info) = record(OperationStatus::Running, 1.0);
        assert!(next_record(&other, OperationStatus::Running, &info).is_err());
    }
}
