//! The bounds of a spawned managed operation, named once: every fn that spawns one
//! (`Operations::spawn`, `ServiceOrchestrator::start_managed_operation`, the
//! generated `start_*`/`spawn_*`) asks for the same four things.

use std::fmt::Display;
use std::future::Future;

use serde::Serialize;

use crate::OperationContext;

/// A fn a registry can spawn as an operation: called once, with the operation's
/// context, on whichever worker thread runs it. Any closure `|ctx| async move { … }`
/// that is `Send + 'static` is one (its argument's type is inferred as usual).
pub trait OperationFn<Fut>: FnOnce(OperationContext) -> Fut + Send + 'static {}

impl<F, Fut> OperationFn<Fut> for F where F: FnOnce(OperationContext) -> Fut + Send + 'static {}

/// The future of a spawned operation: it ends with `Result<T, E>` and may move
/// between threads.
pub trait OperationFuture<T, E>: Future<Output = Result<T, E>> + Send + 'static {}

impl<X, T, E> OperationFuture<T, E> for X where X: Future<Output = Result<T, E>> + Send + 'static {}

/// What a spawned operation returns on success: recorded as its `result_summary`
/// (so it serialises) and handed to whoever awaits its handle.
pub trait OperationValue: Serialize + Send + 'static {}

impl<T: Serialize + Send + 'static> OperationValue for T {}

/// What a spawned operation fails with: recorded as its `error_message`
/// (`e.to_string()`) and handed to whoever awaits its handle.
pub trait OperationError: Display + Send + 'static {}

impl<E: Display + Send + 'static> OperationError for E {}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawnable<F, Fut, T, E>(_: F)
    where
        F: OperationFn<Fut>,
        Fut: OperationFuture<T, E>,
        T: OperationValue,
        E: OperationError,
    {
    }

    #[test]
    fn a_plain_closure_meets_the_bounds_with_its_types_inferred() {
        spawnable(|ctx| async move {
            ctx.progress(1, "one");
            Ok::<_, String>(1_u8)
        });
        spawnable(|ctx| async move {
            if ctx.is_cancelled() {
                return Err(std::io::Error::other("cancelled"));
            }
            Ok(())
        });
    }
}
