//! The `#[managed_operation]` attribute macro of the
//! [`orchestrator`](https://docs.rs/orchestrator) crate.
//!
//! Use it through `orchestrator::managed_operation`; this crate is an implementation
//! detail and its generated code refers to the runtime only through
//! `orchestrator::__private`.

mod attr;
mod check;
mod docs;
mod expand;
mod generate;

use proc_macro::TokenStream;

/// Turns a plain `async fn` that takes an `OperationContext` into a managed operation:
/// registered, spawned, observable and cancellable through an `Operations` registry.
///
/// The fn is kept exactly as written (so unit tests can call it with
/// `OperationContext::detached()`), and three fns are generated next to it, with the same
/// visibility and the same parameters minus the context:
///
/// | generated fn              | returns                                  | what it does                              |
/// | ------------------------- | ---------------------------------------- | ----------------------------------------- |
/// | `start_<name>(args…)`     | `orchestrator::Result<StartedOperation>` | registers and spawns it, returns at once  |
/// | `run_<name>(args…)`       | `Outcome<T, E>` (async)                  | registers it and awaits it inline         |
/// | `run_<name>_sync(args…)`  | `orchestrator::Result<Outcome<T, E>>`    | blocks until it ends, with or without a runtime |
///
/// where `T` and `E` come from the fn's `Result<T, E>`.
///
/// # Forms
///
/// - **Method** (`&self`): the generated fns take `&self` and go through the
///   `ServiceOrchestrator` impl of `Self`. `start_*` and `run_*_sync` clone `self` into
///   the task, so `Self` must be `Clone + ServiceOrchestrator + Send + Sync + 'static`.
/// - **Free fn** (no receiver): the generated fns take `ops: &Operations` first.
///
/// # Arguments
///
/// | argument                  | value                                             | default               |
/// | ------------------------- | ------------------------------------------------- | --------------------- |
/// | `operation_type = "…"`    | the operation kind (`"dummy"`, `"data_load"`, …)  | required              |
/// | `total_steps = <expr>`    | any expression, cast `as u64`; may use the fn's parameters | `0`          |
/// | `description = "…"`       | the registry's human-readable description         | the fn name, `_` as spaces |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use orchestrator::{managed_operation, Cancelled, OperationContext, Operations, ServiceOrchestrator};
///
/// #[derive(Clone)]
/// struct DummyService {
///     ops: Operations,
/// }
///
/// impl ServiceOrchestrator for DummyService {
///     fn operations(&self) -> &Operations { &self.ops }
///     fn service_name(&self) -> &str { "dummy" }
/// }
///
/// impl DummyService {
///     #[managed_operation(operation_type = "dummy", total_steps = iterations, description = "dummy task")]
///     async fn count(&self, ctx: OperationContext, iterations: u64, interval: Duration) -> Result<u64, Cancelled> {
///         for i in 1..=iterations {
///             ctx.sleep(interval).await?;
///             ctx.progress(i, format!("Iteration {i}/{iterations}"));
///         }
///         Ok(iterations)
///     }
/// }
///
/// // Generated:
/// //   fn start_count(&self, iterations: u64, interval: Duration) -> orchestrator::Result<StartedOperation>
/// //   async fn run_count(&self, iterations: u64, interval: Duration) -> Outcome<u64, Cancelled>
/// //   fn run_count_sync(&self, iterations: u64, interval: Duration) -> orchestrator::Result<Outcome<u64, Cancelled>>
/// let svc = DummyService { ops: Operations::new() };
/// let outcome = svc.run_count_sync(3, Duration::from_millis(1))?;
/// assert!(outcome.is_completed());
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
///
/// A free fn gets the registry as its first parameter:
///
/// ```
/// use orchestrator::{managed_operation, OperationContext, Operations};
///
/// #[managed_operation(operation_type = "data_load", total_steps = symbols.len())]
/// async fn load_bars(ctx: OperationContext, symbols: Vec<String>) -> Result<usize, String> {
///     for (i, symbol) in symbols.iter().enumerate() {
///         ctx.checkpoint().map_err(|e| e.to_string())?;
///         ctx.progress(i as u64 + 1, format!("loading {symbol}"));
///     }
///     Ok(symbols.len())
/// }
///
/// let ops = Operations::new();
/// let outcome = run_load_bars_sync(&ops, vec!["AAPL".into(), "MSFT".into()])?;
/// assert_eq!(outcome.value(), Some(&2));
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
///
/// # Generated code
///
/// For the method above, `start_count` expands to (`run_count_sync` is the same with
/// `run_sync_operation`; `run_count` borrows `self` and awaits `run_managed_operation`):
///
/// ```text
/// /// Starts [`count`](Self::count) as a managed operation in the background … (generated docs)
/// #[allow(dead_code)]
/// fn start_count(&self, iterations: u64, interval: Duration)
///     -> ::orchestrator::__private::Result<::orchestrator::__private::StartedOperation>
/// {
///     let __orchestrator_spec =
///         ::orchestrator::__private::spec("dummy", "dummy task", (iterations) as u64);
///     let __orchestrator_this = ::core::clone::Clone::clone(self);
///     <Self as ::orchestrator::__private::ServiceOrchestrator>::start_managed_operation::<_, _, u64, Cancelled>(
///         self,
///         __orchestrator_spec,
///         move |__orchestrator_ctx| async move {
///             Self::count(&__orchestrator_this, __orchestrator_ctx, iterations, interval).await
///         },
///     )
/// }
/// ```
///
/// `#[cfg(...)]` attributes of the fn are copied to the generated fns. Errors about the
/// generated calls point at the user's tokens: a missing `Clone` or
/// `ServiceOrchestrator` impl at `self`, a `T` that is not `Serialize` at `T`, a
/// non-numeric `total_steps` at its expression.
///
/// # Compile errors
///
/// Each of these is one error pointing at the offending token (the fn itself is still
/// emitted unchanged, so nothing else breaks):
///
/// - the fn is not `async` (points at `fn`), is `unsafe`, or has generics or a `where`
///   clause (points at them);
/// - it has no `OperationContext` parameter (points at the fn name), or more than one,
///   or takes it by reference;
/// - its receiver is `self` by value or `&mut self` (points at the receiver);
/// - a parameter is a reference or `impl Trait`, or is not a plain name (the arguments
///   are moved into a `'static` task and passed on by name);
/// - it does not return `Result<T, E>`;
/// - an argument of the attribute is unknown, repeated (points at the key), or of the
///   wrong type (points at the value), or `operation_type` is missing.
///
/// An associated fn without a receiver is not supported: the generated free-fn form
/// calls the original by its bare name.
#[proc_macro_attribute]
pub fn managed_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::managed_operation(args.into(), item.into()).into()
}
