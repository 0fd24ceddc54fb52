use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", labels(team = "ml", team = "web"))]
async fn duplicate(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

#[managed_operation(operation_type = "dummy", labels(tier = 3))]
async fn not_a_string(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

#[managed_operation(operation_type = "dummy", labels = "team")]
async fn not_a_list(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
