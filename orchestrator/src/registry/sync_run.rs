//! Running a managed operation from synchronous code.

use std::future::Future;

use serde::Serialize;

use crate::{OperationContext, OperationSpec, Operations, OrchestratorError, Outcome, Result};

impl Operations {
    /// Registers a managed operation and runs it to the end, blocking the calling
    /// thread: for CLIs and other synchronous callers. Works outside any runtime (one is
    /// built for the run) and inside one (the run moves to a helper thread with its own
    /// runtime, so the caller's runtime is not blocked from making progress elsewhere).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Runtime`] if a runtime cannot be built.
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
        F: FnOnce(OperationContext) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + 'static,
        T: Serialize + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let ops = self.clone();
        let run = move || -> Result<Outcome<T, E>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(OrchestratorError::Runtime)?;
            Ok(runtime.block_on(ops.run(spec, f)))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return run();
        }
        std::thread::scope(|scope| {
            scope
                .spawn(run)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}
