use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", grace_period = "5 parsecs")]
async fn bad_unit(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

#[managed_operation(operation_type = "dummy", grace_period = 5)]
async fn not_a_string(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
