//! Unregistered runs whose progress goes to a callback.

use std::future::Future;

use serde::Serialize;

use crate::driver::{Driver, Slot};
use crate::entry::{self, ProgressObserver};
use crate::{OperationContext, OperationSpec, OperationsBuilder, Outcome};

impl OperationContext {
    /// Runs `f` with a context that belongs to no registry, calling `on_progress` with
    /// a snapshot after every progress report: for sub-steps that need progress (and
    /// the outcome rules: panics, deadline) but not a record of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// use orchestrator::{OperationContext, OperationSpec};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let outcome = OperationContext::run_observed(
    ///     OperationSpec::new("sub").with_total_steps(2),
    ///     move |p| log.lock().unwrap().push(p.percentage),
    ///     |ctx| async move {
    ///         ctx.progress(1, "one");
    ///         ctx.progress(2, "two");
    ///         Ok::<_, String>(())
    ///     },
    /// )
    /// .await;
    /// assert!(outcome.is_completed());
    /// assert_eq!(*seen.lock().unwrap(), [50.0, 100.0]);
    /// # }
    /// ```
    pub async fn run_observed<F, Fut, T, E, P>(
        spec: OperationSpec,
        on_progress: P,
        f: F,
    ) -> Outcome<T, E>
    where
        F: FnOnce(OperationContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize,
        E: std::fmt::Display,
        P: Fn(&crate::OperationProgress) + Send + Sync + 'static,
    {
        let observer: ProgressObserver = Box::new(on_progress);
        let driver = Driver {
            entry: entry::unregistered(spec.operation_type, spec.total_steps, Some(observer)),
            grace: spec
                .grace_period
                .unwrap_or(OperationsBuilder::DEFAULT_GRACE_PERIOD),
            deadline: spec.deadline,
            slot: Slot::Unlimited,
        };
        driver.run(f).await
    }
}
