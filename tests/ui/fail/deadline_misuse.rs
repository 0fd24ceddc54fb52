use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", deadline = "ten minutes")]
async fn not_a_duration(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

#[managed_operation(operation_type = "dummy", deadline = std::time::Duration::from_secs(5))]
async fn not_a_literal(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

#[managed_operation(operation_type = "dummy", deadline = "0s")]
async fn zero(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
