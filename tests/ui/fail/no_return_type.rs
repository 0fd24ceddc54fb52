use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy")]
async fn count(ctx: OperationContext, n: u64) {
    ctx.progress(n, "counting");
}

fn main() {}
