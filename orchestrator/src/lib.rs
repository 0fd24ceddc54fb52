//! Turn a plain `async fn` into a registered, cancellable, progress-reporting
//! long-running operation.
//!
//! Domain code stays a loop that reports progress and checks for cancellation through
//! an [`OperationContext`]; the [`Operations`] registry gives every operation an id, a
//! background task, a status record clients can poll, and a [`CancellationToken`] that
//! really stops the work.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use orchestrator::{managed_operation, Cancelled, OperationContext, Operations, ServiceOrchestrator};
//!
//! #[derive(Clone)]
//! struct DummyService {
//!     ops: Operations,
//! }
//!
//! impl ServiceOrchestrator for DummyService {
//!     fn operations(&self) -> &Operations { &self.ops }
//!     fn service_name(&self) -> &str { "dummy" }
//! }
//!
//! impl DummyService {
//!     /// Counts to `iterations`, one step every `interval`.
//!     #[managed_operation(operation_type = "dummy", total_steps = iterations)]
//!     async fn count(&self, ctx: OperationContext, iterations: u64, interval: Duration) -> Result<u64, Cancelled> {
//!         for i in 1..=iterations {
//!             ctx.sleep(interval).await?;
//!             ctx.progress(i, format!("Iteration {i}/{iterations}"));
//!         }
//!         Ok(iterations)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> orchestrator::Result<()> {
//! let svc = DummyService { ops: Operations::new() };
//! // Spawned and registered; returns at once with the id.
//! let started = svc.start_count(3, Duration::from_millis(1))?;
//! let info = svc.ops.wait(&started.operation_id).await?;
//! assert_eq!(info.result_summary, Some(3.into()));
//! // Or awaited inline, still registered and cancellable.
//! assert!(svc.run_count(2, Duration::from_millis(1)).await.is_completed());
//! # Ok(()) }
//! ```
//!
//! # Outcome rules
//!
//! | the operation…                                   | ends as     | recorded                          |
//! | ------------------------------------------------ | ----------- | --------------------------------- |
//! | returns `Ok(v)`                                  | `COMPLETED` | `result_summary = v` as JSON      |
//! | returns `Err(e)`                                 | `FAILED`    | `error_message = e.to_string()`   |
//! | panics                                           | `FAILED`    | `error_message = "panicked: …"`   |
//! | returns anything after its token was cancelled   | `CANCELLED` | `result_summary` of an `Ok` kept  |
//! | ignores cancellation past its grace period (2 s) | `CANCELLED` | aborted at its next await point   |
//! | runs past its optional deadline                  | `FAILED`    | `error_message = "deadline exceeded"` |
//!
//! Terminal states never change; progress reported after the end is ignored.
//!
//! # Feature flags
//!
//! | feature    | enables                                                        | default |
//! | ---------- | -------------------------------------------------------------- | ------- |
//! | `derive`   | the [`managed_operation`] attribute macro                      | yes     |
//! | `terminal` | [`ProgressRenderer`], a terminal progress bar (indicatif)      | no      |
//! | `http`     | [`http`]: the operations API as an axum router, with OpenAPI   | no      |
//! | `client`   | [`client`]: the CLI executor, adapters and HTTP client (reqwest, rustls/ring); implies `terminal` | no |
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85 (edition 2024).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod builder;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod context;
mod driver;
mod entry;
mod error;
mod filter;
mod handle;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod id;
mod id_hash;
mod info;
mod kind;
mod ledger;
mod metrics;
mod observed;
mod operations;
mod outcome;
mod progress_cell;
#[cfg(feature = "terminal")]
mod render;
mod service;
mod shutdown;
mod source;
mod spec;
mod status;
mod sweeper;
mod sync_run;
mod timefmt;
mod token;
mod watch;

pub use builder::OperationsBuilder;
pub use context::OperationContext;
pub use error::{Cancelled, OrchestratorError, Result};
pub use filter::{OperationFilter, OperationList};
pub use handle::OperationHandle;
pub use id::{InvalidOperationId, OperationId};
pub use info::{
    AbandonedWork, JsonMap, OperationInfo, OperationMetadata, OperationProgress, StartedOperation,
};
pub use kind::{InvalidOperationType, OperationType};
pub use metrics::MetricsPage;
pub use operations::Operations;
pub use outcome::{Failure, Outcome};
#[cfg(feature = "terminal")]
pub use render::{ProgressDisplay, ProgressRenderer, RenderOptions};
pub use service::ServiceOrchestrator;
pub use shutdown::ShutdownReport;
pub use source::{OperationSource, SourceError};
pub use spec::OperationSpec;
pub use status::{InvalidStatus, OperationStatus};
pub use token::{CancellationToken, WaitForCancellation, WaitForCancellationOwned};
pub use watch::OperationWatch;

/// Marks an `async fn` as a managed operation and generates `start_<name>`,
/// `run_<name>` and `run_<name>_sync`.
///
/// See the [crate docs](crate) for an example. Misuse is a compile error pointing at
/// the offending token; for example a non-async fn:
///
/// ```compile_fail
/// use orchestrator::{managed_operation, Cancelled, OperationContext};
///
/// #[managed_operation(operation_type = "dummy")]
/// fn not_async(ctx: OperationContext) -> Result<(), Cancelled> { Ok(()) }
/// ```
///
/// or a missing context parameter:
///
/// ```compile_fail
/// use orchestrator::{managed_operation, Cancelled};
///
/// #[managed_operation(operation_type = "dummy")]
/// async fn no_context(n: u64) -> Result<u64, Cancelled> { Ok(n) }
/// ```
#[cfg(feature = "derive")]
#[doc(inline)]
pub use orchestrator_derive::managed_operation;

/// Not public API: what `#[managed_operation]` expands to. May change at any time.
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        OperationContext, OperationSpec, OperationType, Operations, Outcome, Result,
        ServiceOrchestrator, StartedOperation,
    };
    pub use core::future::Future;

    /// The spec of a macro-generated operation.
    pub fn spec(
        operation_type: &str,
        description: &'static str,
        total_steps: u64,
    ) -> OperationSpec {
        OperationSpec::new(OperationType::from(operation_type))
            .with_description(description)
            .with_total_steps(total_steps)
    }

    /// Starts a managed operation on a free-function registry.
    pub fn start<F, Fut, T, E>(
        ops: &Operations,
        spec: OperationSpec,
        f: F,
    ) -> Result<StartedOperation>
    where
        F: FnOnce(OperationContext) -> Fut + Send + 'static,
        Fut: Future<Output = core::result::Result<T, E>> + Send + 'static,
        T: serde::Serialize + Send + 'static,
        E: core::fmt::Display + Send + 'static,
    {
        ops.spawn(spec, f).map(|h| h.started())
    }
}
