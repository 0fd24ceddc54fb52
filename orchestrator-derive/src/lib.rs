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
/// `OperationContext::detached()`), and four fns are generated next to it, with the same
/// visibility and the same parameters minus the context:
///
/// | generated fn              | returns                                         | what it does                              |
/// | ------------------------- | ----------------------------------------------- | ----------------------------------------- |
/// | `start_<name>(args…)`     | `orchestrator::Result<StartedOperation>`        | registers and spawns it, returns at once (the body of a start endpoint) |
/// | `spawn_<name>(args…)`     | `orchestrator::Result<OperationHandle<T, E>>`   | the same, with a typed handle: `id()`, `cancel(reason)`, `outcome().await` |
/// | `run_<name>(args…)`       | `Outcome<T, E>` (async)                         | registers it and awaits it inline         |
/// | `run_<name>_sync(args…)`  | `orchestrator::Result<Outcome<T, E>>`           | blocks until it ends, with or without a runtime |
///
/// where `T` and `E` come from the fn's return type, which may be any alias of
/// `Result` (`io::Result<T>`, `anyhow::Result<T>`, a local `type Result<T> = …`): it is
/// resolved through a trait by the compiler, not by its spelling. `T` must be
/// `Serialize` (it becomes `result_summary`), `E` must be `Display`; `start_*`,
/// `spawn_*` and `run_*_sync` also need both `Send + 'static`.
///
/// Every argument whose type implements `Serialize` is recorded under its name in the
/// record's `metadata.parameters` (others are left out, silently; `skip(...)` leaves out
/// more, e.g. secrets or large inputs).
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
/// | `deadline = "…"`          | a humantime duration (`"90s"`, `"1h 30m"`), parsed at compile time; past it the operation is `FAILED` with `deadline exceeded` | none |
/// | `grace_period = "…"`      | a humantime duration: how long a cancelled operation may take to return before it is aborted | the registry's (2 s) |
/// | `labels(k = "v", …)`      | string labels in `metadata.labels`, for `OperationFilter::with_label`; a key is a name or a string literal (`"app.example/tier" = "gpu"`) | none |
/// | `skip(arg, …)`            | arguments not to record in `metadata.parameters`  | none                  |
/// | `resumable`               | also generate `register_<name>`: it registers the fn as the one that resumes operations of its kind (`Operations::resumable`), reading each argument back from `metadata.parameters` (so every argument must be recorded and `Deserialize`). For a method it takes `(ops, make)`, where `make` rebuilds the service from the registry; for a free fn, `(ops)` | off |
/// | `crate = path`            | where the runtime is, for a renamed or re-exported `orchestrator` (the generated code uses only `path::__private`) | `::orchestrator` |
///
/// Durations are string literals rather than `Duration` expressions so that a typo is a
/// compile error on the literal, and the values are constants in the generated code.
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
/// //   fn spawn_count(&self, iterations: u64, interval: Duration) -> orchestrator::Result<OperationHandle<u64, Cancelled>>
/// //   async fn run_count(&self, iterations: u64, interval: Duration) -> Outcome<u64, Cancelled>
/// //   fn run_count_sync(&self, iterations: u64, interval: Duration) -> orchestrator::Result<Outcome<u64, Cancelled>>
/// let svc = DummyService { ops: Operations::new() };
/// let outcome = svc.run_count_sync(3, Duration::from_millis(1))?;
/// assert!(outcome.is_completed());
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
///
/// A free fn gets the registry as its first parameter; here with options, an alias of
/// `Result`, and the typed handle:
///
/// ```
/// use orchestrator::{managed_operation, OperationContext, OperationFilter, Operations, Outcome};
///
/// type Result<T> = std::result::Result<T, String>;
///
/// #[managed_operation(
///     operation_type = "training",
///     total_steps = epochs,
///     deadline = "2h",
///     grace_period = "10s",
///     labels(team = "ml", tier = "gpu"),
///     skip(api_key),
/// )]
/// async fn train(ctx: OperationContext, epochs: u32, api_key: String) -> Result<f64> {
///     let _ = api_key;
///     for epoch in 1..=epochs {
///         ctx.checkpoint().map_err(|e| e.to_string())?;
///         ctx.progress(u64::from(epoch), format!("epoch {epoch}"));
///     }
///     Ok(0.93)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> orchestrator::Result<()> {
/// let ops = Operations::new();
/// let handle = spawn_train(&ops, 3, "secret".into())?;
/// let info = handle.get()?;
/// assert_eq!(info.metadata.parameters["epochs"], 3);          // recorded
/// assert!(!info.metadata.parameters.contains_key("api_key")); // skipped
/// assert_eq!(ops.list(&OperationFilter::new().with_label("tier", "gpu")).total_count, 1);
/// assert!(matches!(handle.outcome().await, Outcome::Completed(_)));
/// # Ok(()) }
/// ```
///
/// Without options:
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
/// For the method above, `start_count` expands to roughly this (`spawn_count` calls
/// `Operations::spawn`, `run_count_sync` `run_sync_operation`; `run_count` borrows
/// `self` and awaits `run_managed_operation`; `where` bounds on `T` and `E`, spanned on
/// the user's `T`, make a missing bound one error):
///
/// ```text
/// /// Starts [`count`](Self::count) as a managed operation in the background … (generated docs)
/// #[allow(dead_code)]
/// fn start_count(&self, iterations: u64, interval: Duration)
///     -> ::orchestrator::__private::Result<::orchestrator::__private::StartedOperation>
/// {
///     let __orchestrator_spec = {
///         let s = ::orchestrator::__private::spec("dummy", "dummy task",
///             ::orchestrator::__private::total_steps(iterations));
///         // each argument that is `Serialize`, through autoref specialisation:
///         let s = (&::orchestrator::__private::Parameter(&iterations)).record(s, "iterations");
///         s
///     };
///     let __orchestrator_this = ::core::clone::Clone::clone(self);
///     <Self as ::orchestrator::__private::ServiceOrchestrator>::start_managed_operation::<_, _, u64, Cancelled>(
///         self,
///         __orchestrator_spec,
///         move |__orchestrator_ctx| async move {
///             OperationResult::into_result(
///                 Self::count(&__orchestrator_this, __orchestrator_ctx, iterations, interval).await)
///         },
///     )
/// }
/// ```
///
/// `#[cfg(...)]` attributes of the fn are copied to the generated fns. Errors about the
/// generated calls point at the user's tokens: a missing `Clone` or
/// `ServiceOrchestrator` impl at `self`, a `T` that is not `Serialize` at `T`, a
/// non-integer `total_steps` at its expression.
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
/// - it does not return a `Result` (points at the return type), or its `T` is not
///   `Serialize` (points at `T`);
/// - `total_steps` is not an integer (points at the expression);
/// - an argument of the attribute is unknown, repeated (points at the key), or of the
///   wrong type (points at the value), a duration does not parse (points at the
///   literal), a label is repeated, `skip` names no parameter, or `operation_type` is
///   missing.
///
/// A syntax error inside the fn's body is reported by the compiler where it is, as
/// for any fn: the macro does not parse the body.
///
/// An associated fn without a receiver is not supported: the generated free-fn form
/// calls the original by its bare name.
#[proc_macro_attribute]
pub fn managed_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::managed_operation(args.into(), item.into()).into()
}
