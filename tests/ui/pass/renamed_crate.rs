//! `crate = path` points the generated code at a re-export of the runtime, for a
//! dependency renamed in Cargo.toml or re-exported by a framework crate.

mod framework {
    /// The runtime, re-exported under another name.
    pub use ::orchestrator as runtime;
}

use framework::runtime::{OperationContext, Operations, managed_operation};

#[managed_operation(operation_type = "dummy", crate = crate::framework::runtime)]
async fn count(ctx: OperationContext, n: u64) -> Result<u64, String> {
    ctx.progress(n, "counted");
    Ok(n)
}

#[managed_operation(operation_type = "dummy", crate = framework::runtime, deadline = "1m")]
async fn count_again(ctx: OperationContext, n: u64) -> Result<u64, String> {
    ctx.progress(n, "counted");
    Ok(n)
}

fn main() {
    let ops = Operations::new();
    assert_eq!(run_count_sync(&ops, 2).unwrap().value(), Some(&2));
    assert_eq!(run_count_again_sync(&ops, 3).unwrap().value(), Some(&3));
}
