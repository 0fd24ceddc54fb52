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
//! | `dashboard` | [`dashboard`]: a live operations page in the browser, served from the binary; implies `http` | no |
//! | `client`   | [`client`]: the CLI executor, adapters and HTTP client (reqwest, plain HTTP); implies `terminal` | no |
//! | `client-tls` | HTTPS for [`client`]: reqwest's `rustls` feature with its default crypto provider (aws-lc-rs); implies `client` | no |
//! | `sqlite`   | [`store`]`::SqliteStore`: durable operations in one SQLite file (bundled) | no |
//! | `postgres` | [`store`]`::PostgresStore`: operations shared by replicas in PostgreSQL (tokio-postgres, deadpool; no TLS) | no |
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85 (edition 2024).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod bounds;
mod builder;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod context;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
mod error;
mod filter;
mod handle;
#[cfg(feature = "host")]
#[cfg_attr(docsrs, doc(cfg(feature = "host")))]
pub mod host;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod id;
mod id_hash;
mod info;
mod join;
mod kind;
mod metrics;
mod observed;
mod outcome;
mod own_runtime;
mod progress_cell;
mod progress_share;
mod registry;
use registry::{driver, durable, entry, ledger, operations};
#[cfg(feature = "terminal")]
mod render;
mod service;
mod source;
mod spec;
mod status;
pub mod store;
mod timefmt;
mod token;
mod view;
mod watch;
mod wire;

pub use bounds::{OperationError, OperationFn, OperationFuture, OperationValue};
pub use builder::OperationsBuilder;
pub use context::OperationContext;
pub use error::{Cancelled, OrchestratorError, Result};
pub use filter::{OperationFilter, OperationList};
pub use handle::OperationHandle;
pub use id::{InvalidOperationId, OperationId};
pub use info::{
    AbandonedWork, JsonMap, OperationInfo, OperationMetadata, OperationProgress, StartedOperation,
    StartedStatus,
};
pub use kind::{InvalidOperationType, OperationType};
pub use metrics::MetricsPage;
pub use outcome::{Failure, Outcome};
pub use registry::cluster::Cluster;
pub use registry::operations::Operations;
pub use registry::shutdown::ShutdownReport;
#[cfg(feature = "terminal")]
pub use render::{ProgressDisplay, ProgressRenderer, RenderOptions};
pub use service::ServiceOrchestrator;
pub use source::{BoxError, OperationSource, SourceError};
pub use spec::OperationSpec;
pub use status::{InvalidStatus, OperationStatus};
pub use token::{CancellationToken, WaitForCancellation, WaitForCancellationOwned};
pub use view::{OperationView, ProgressCounts};
pub use watch::OperationWatch;
pub use wire::{
    ApiResponse, DeletedOperation, ErrorBody, ErrorCode, ErrorResponse, OperationListResponse,
};

/// Marks an `async fn` as a managed operation and generates `start_<name>`,
/// `spawn_<name>` (a typed [`OperationHandle`]), `run_<name>` and `run_<name>_sync`;
/// options `operation_type`, `total_steps`, `description`, `deadline`, `grace_period`,
/// `labels(...)`, `skip(...)` and `crate`.
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
/// or a deadline that is not a duration:
///
/// ```compile_fail
/// use orchestrator::{managed_operation, Cancelled, OperationContext};
///
/// #[managed_operation(operation_type = "dummy", deadline = "soon")]
/// async fn hurry(ctx: OperationContext) -> Result<(), Cancelled> { ctx.checkpoint() }
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
        OperationContext, OperationHandle, OperationSpec, OperationType, Operations, Outcome,
        Result, ServiceOrchestrator, StartedOperation,
    };
    pub use core::future::Future;
    pub use core::time::Duration;

    /// The routed runs and the bound on a routed result.
    #[cfg(feature = "host")]
    pub use crate::host::{host_run, host_run_sync};
    /// The arguments of a routed start, as the host's JSON body; the recorded
    /// arguments a resumed attempt is called with.
    pub use crate::info::JsonMap;
    pub use serde::de::DeserializeOwned;

    /// Argument `key` of a resumed attempt, read back from the recorded parameters.
    pub fn resume_param<T: DeserializeOwned>(
        params: &JsonMap,
        key: &str,
    ) -> core::result::Result<T, String> {
        let value = params.get(key).ok_or_else(|| {
            format!("cannot resume: the operation's recorded arguments have no `{key}`")
        })?;
        T::deserialize(value).map_err(|e| {
            format!("cannot resume: the recorded argument `{key}` does not read back: {e}")
        })
    }

    /// The service's host, if it routes (`host_path`; feature `host`).
    #[cfg(feature = "host")]
    pub fn host_of<S: ServiceOrchestrator + ?Sized>(svc: &S) -> Option<&crate::host::HostService> {
        svc.host_service()
    }

    /// One argument of a routed start as JSON.
    #[cfg(feature = "host")]
    pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(value)?)
    }

    /// Reads `T` and `E` off a return type by what it is, not how it is spelled: any
    /// alias of `Result` (`io::Result<T>`, `anyhow::Result<T>`, a local one) works.
    #[diagnostic::on_unimplemented(
        message = "a managed operation must return a `Result<T, E>`, not `{Self}`",
        label = "not a `Result`",
        note = "any alias of `core::result::Result` works, e.g. `io::Result<T>` or `anyhow::Result<T>`"
    )]
    pub trait OperationResult {
        /// `T`.
        type Ok;
        /// `E`.
        type Err;
        /// The value as a `Result`: lets the generated closures type-check through the
        /// assumed `where` bound even when it does not hold (its one error is the bound).
        fn into_result(self) -> core::result::Result<Self::Ok, Self::Err>;
    }

    impl<T, E> OperationResult for core::result::Result<T, E> {
        type Ok = T;
        type Err = E;
        #[inline]
        fn into_result(self) -> Self {
            self
        }
    }

    /// The bound on `T`: recorded as the operation's `result_summary`.
    #[diagnostic::on_unimplemented(
        message = "the result `{Self}` of a managed operation must implement `serde::Serialize`",
        label = "not `Serialize`",
        note = "`Ok(value)` is recorded as the operation's `result_summary`; derive or implement `serde::Serialize` for it"
    )]
    pub trait Summary: serde::Serialize {}

    impl<T: serde::Serialize + ?Sized> Summary for T {}

    /// The bound on `E`: recorded as the operation's `error_message`.
    #[diagnostic::on_unimplemented(
        message = "the error `{Self}` of a managed operation must implement `Display`",
        label = "not `Display`",
        note = "`Err(e)` is recorded as the operation's `error_message`, `e.to_string()`"
    )]
    pub trait ErrorMessage: core::fmt::Display {}

    impl<E: core::fmt::Display + ?Sized> ErrorMessage for E {}

    /// What `total_steps = <expr>` accepts: any integer (a negative one counts as 0).
    #[diagnostic::on_unimplemented(
        message = "`total_steps` must be an integer, not `{Self}`",
        label = "not an integer",
        note = "`total_steps` is the number of steps `ctx.progress` counts towards, e.g. `total_steps = items.len()`"
    )]
    pub trait TotalSteps {
        /// The value as a step count.
        fn into_total_steps(self) -> u64;
    }

    macro_rules! total_steps_unsigned {
        ($($t:ty)*) => {$(
            impl TotalSteps for $t {
                #[inline]
                fn into_total_steps(self) -> u64 {
                    u64::try_from(self).unwrap_or(u64::MAX)
                }
            }
        )*};
    }
    macro_rules! total_steps_signed {
        ($($t:ty)*) => {$(
            impl TotalSteps for $t {
                #[inline]
                fn into_total_steps(self) -> u64 {
                    if self < 0 { 0 } else { u64::try_from(self).unwrap_or(u64::MAX) }
                }
            }
        )*};
    }
    total_steps_unsigned!(u8 u16 u32 u64 u128 usize);
    total_steps_signed!(i8 i16 i32 i64 i128 isize);

    /// `total_steps = <expr>`, checked to be an integer.
    #[inline]
    pub fn total_steps(value: impl TotalSteps) -> u64 {
        value.into_total_steps()
    }

    /// The spec of a macro-generated operation.
    #[inline]
    pub fn spec(
        operation_type: &str,
        description: &'static str,
        total_steps: u64,
    ) -> OperationSpec {
        OperationSpec::new(OperationType::from(operation_type))
            .with_description(description)
            .with_total_steps(total_steps)
    }

    /// An argument of a managed operation, to be recorded in `metadata.parameters` when
    /// its type serialises (autoref specialisation: see [`RecordParameter`] and
    /// [`SkipParameter`]).
    #[derive(Debug)]
    pub struct Parameter<'a, T: ?Sized>(pub &'a T);

    /// Chosen for `Parameter<T>` when `T: Serialize`: records the argument.
    pub trait RecordParameter {
        /// `spec` with the argument recorded under `name` (unchanged if serialising
        /// it fails).
        fn record(&self, spec: OperationSpec, name: &'static str) -> OperationSpec;
    }

    impl<T: serde::Serialize + ?Sized> RecordParameter for Parameter<'_, T> {
        #[inline]
        fn record(&self, spec: OperationSpec, name: &'static str) -> OperationSpec {
            match serde_json::to_value(self.0) {
                Ok(value) => spec.with_parameter(name, value),
                Err(_) => spec,
            }
        }
    }

    /// Chosen (one auto-ref further) when `T` does not serialise: records nothing.
    pub trait SkipParameter {
        /// `spec` unchanged.
        #[inline]
        fn record(&self, spec: OperationSpec, _name: &'static str) -> OperationSpec {
            spec
        }
    }

    impl<T: ?Sized> SkipParameter for &Parameter<'_, T> {}

    /// Starts a managed operation on a free-function registry.
    pub fn start<F, Fut, T, E>(
        ops: &Operations,
        spec: OperationSpec,
        f: F,
    ) -> Result<StartedOperation>
    where
        F: crate::OperationFn<Fut>,
        Fut: crate::OperationFuture<T, E>,
        T: crate::OperationValue,
        E: crate::OperationError,
    {
        ops.spawn(spec, f).map(|h| h.started())
    }
}
