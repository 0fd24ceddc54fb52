use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", skip(pasword))]
async fn login(ctx: OperationContext, password: String) -> Result<(), String> {
    let _ = password;
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
