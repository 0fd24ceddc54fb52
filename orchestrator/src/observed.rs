//! Unregistered runs whose progress goes to a callback.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::driver::{Driver, Slot};
use crate::entry::{self, ProgressObserver};
use crate::{OperationContext, OperationSpec, Outcome};

pub(crate) async fn run_observed<F, Fut, T, E>(
    spec: OperationSpec,
    observer: ProgressObserver,
    f: F,
) -> Outcome<T, E>
where
    F: FnOnce(OperationContext) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: Serialize,
    E: std::fmt::Display,
{
    let driver = Driver {
        entry: entry::unregistered(spec.operation_type, spec.total_steps, Some(observer)),
        grace: spec.grace_period.unwrap_or(Duration::from_secs(2)),
        deadline: spec.deadline,
        slot: Slot::Unlimited,
    };
    driver.run(f).await
}
