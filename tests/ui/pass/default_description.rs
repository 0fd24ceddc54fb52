//! Without `description`, the fn name with `_` read as spaces is used; without
//! `total_steps`, 0.

use orchestrator::{OperationContext, Operations, managed_operation};

#[managed_operation(operation_type = "data_load")]
async fn load_market_data(ctx: OperationContext) -> Result<(), String> {
    ctx.progress(1, "loading");
    Ok(())
}

fn main() {
    let ops = Operations::new();
    assert!(run_load_market_data_sync(&ops).unwrap().is_completed());
}
