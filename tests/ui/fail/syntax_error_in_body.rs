use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy")]
async fn count(ctx: OperationContext, n: u64) -> Result<u64, String> {
    ctx.progress(n, "counting")
    Ok(n)
}

fn main() {}
