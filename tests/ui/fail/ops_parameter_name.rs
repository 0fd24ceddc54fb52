use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy")]
async fn count(ctx: OperationContext, ops: u64) -> Result<u64, String> {
    ctx.progress(ops, "counting");
    Ok(ops)
}

fn main() {}
