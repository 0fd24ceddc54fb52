//! Running a managed operation from synchronous code.

use std::future::Future;

use crate::own_runtime::{Drivers, block_on_own_runtime};
use crate::{OperationError, OperationFn, OperationValue};
use crate::{OperationSpec, Operations, Outcome, Result};

impl Operations {
    /// Registers a managed operation and runs it to the end, blocking the calling
    /// thread: for CLIs and other synchronous callers. Works outside any runtime (one is
    /// built for the run) and inside one (the run moves to a helper thread with its own
    /// runtime, so the caller's runtime is not blocked from making progress elsewhere).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Runtime`](crate::OrchestratorError::Runtime) if a runtime
    /// cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{Operations, OperationSpec, Outcome};
    ///
    /// let ops = Operations::new();
    /// let outcome = ops.run_sync(OperationSpec::new("sum"), |ctx| async move {
    ///     ctx.progress(1, "adding");
    ///     Ok::<_, String>(1 + 1)
    /// })?;
    /// assert!(matches!(outcome, Outcome::Completed(2)));
    /// # Ok::<(), orchestrator::OrchestratorError>(())
    /// ```
    pub fn run_sync<F, Fut, T, E>(&self, spec: OperationSpec, f: F) -> Result<Outcome<T, E>>
    where
        F: OperationFn<Fut>,
        Fut: Future<Output = std::result::Result<T, E>> + 'static,
        T: OperationValue,
        E: OperationError,
    {
        block_on_own_runtime(Drivers::Time, || self.run(spec, f))
    }
}
