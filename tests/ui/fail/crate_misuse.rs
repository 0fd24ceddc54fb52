use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", crate = "orchestrator")]
async fn quoted(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

mod elsewhere {}

#[managed_operation(operation_type = "dummy", crate = elsewhere)]
async fn wrong_path(ctx: OperationContext) -> Result<(), String> {
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
