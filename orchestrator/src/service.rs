//! The trait a service implements to get managed operations for free.

use std::future::Future;

use serde::Serialize;

use crate::{OperationContext, OperationSpec, Operations, Outcome, Result, StartedOperation};
use crate::{OperationError, OperationFn, OperationFuture, OperationValue};

/// A service that runs long operations through an [`Operations`] registry.
///
/// Implement the two required methods; the provided ones do the rest. Most services
/// use [`#[managed_operation]`](crate::managed_operation) instead of calling these by
/// hand.
///
/// # Examples
///
/// ```
/// use orchestrator::{Operations, OperationContext, OperationSpec, ServiceOrchestrator};
///
/// #[derive(Clone)]
/// struct Reports { ops: Operations }
///
/// impl ServiceOrchestrator for Reports {
///     fn operations(&self) -> &Operations { &self.ops }
///     fn service_name(&self) -> &str { "reports" }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> orchestrator::Result<()> {
/// let svc = Reports { ops: Operations::new() };
/// let started = svc.start_managed_operation(OperationSpec::new("report"), |ctx: OperationContext| async move {
///     ctx.progress(1, "rendering");
///     Ok::<_, String>("done")
/// })?;
/// assert_eq!(started.status, "started");
/// # Ok(()) }
/// ```
pub trait ServiceOrchestrator: Send + Sync {
    /// The registry this service's operations live in.
    fn operations(&self) -> &Operations;

    /// A short name for logs and messages.
    fn service_name(&self) -> &str;

    /// The host service this service's routed operations run on (feature `host`):
    /// `None` (the default) runs them here. A `start_<name>` generated with
    /// `#[managed_operation(host_path = "...")]` asks this at every start, so the
    /// choice is configuration (usually [`HostService::from_env`], read once at
    /// start-up), not code.
    ///
    /// [`HostService::from_env`]: crate::host::HostService::from_env
    #[cfg(feature = "host")]
    fn host_service(&self) -> Option<&crate::host::HostService> {
        None
    }

    /// Registers `f` as an operation, spawns it, and returns the `started` record at
    /// once (the body of a start endpoint).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::NoRuntime`](crate::OrchestratorError::NoRuntime) outside a
    /// Tokio runtime.
    fn start_managed_operation<F, Fut, T, E>(
        &self,
        spec: OperationSpec,
        f: F,
    ) -> Result<StartedOperation>
    where
        F: OperationFn<Fut>,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
        let handle = self.operations().spawn(spec, f)?;
        tracing::info!(service = self.service_name(), operation_id = %handle.id(), "started operation");
        Ok(handle.started())
    }

    /// Registers `f` as an operation and awaits it inline; it is observable and
    /// cancellable through the registry meanwhile.
    fn run_managed_operation<F, Fut, T, E>(
        &self,
        spec: OperationSpec,
        f: F,
    ) -> impl Future<Output = Outcome<T, E>>
    where
        F: FnOnce(OperationContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        T: Serialize,
        E: std::fmt::Display,
    {
        self.operations().run(spec, f)
    }

    /// Registers `f` as an operation and runs it to the end, blocking: for direct CLI
    /// use. Works with or without a surrounding runtime (see [`Operations::run_sync`]).
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Runtime`](crate::OrchestratorError::Runtime) if a runtime
    /// cannot be built.
    fn run_sync_operation<F, Fut, T, E>(&self, spec: OperationSpec, f: F) -> Result<Outcome<T, E>>
    where
        F: OperationFn<Fut>,
        Fut: Future<Output = std::result::Result<T, E>> + 'static,
        T: OperationValue,
        E: OperationError,
    {
        self.operations().run_sync(spec, f)
    }
}
