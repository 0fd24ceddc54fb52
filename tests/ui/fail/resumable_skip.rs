use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "login", skip(password), resumable)]
async fn login(ctx: OperationContext, user: String, password: String) -> Result<(), String> {
    let _ = (user, password);
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
