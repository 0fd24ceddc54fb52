//! A consumer's own code: a managed operation, and nothing else. The tests use
//! reqwest and orchestrator's client side next to each other.

use orchestrator::{OperationContext, managed_operation};

/// Counts to `n`, one step each: a domain fn as a service writes it, returning
/// `std::io::Result` (any `Result` alias works).
#[managed_operation(operation_type = "count", total_steps = n)]
pub async fn count(ctx: OperationContext, n: u64) -> std::io::Result<u64> {
    for i in 1..=n {
        ctx.progress(i, format!("step {i}"));
    }
    Ok(n)
}
