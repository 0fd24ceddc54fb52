use orchestrator::{OperationContext, managed_operation};

#[derive(serde::Serialize)]
pub struct Config {
    pub rate: f64,
}

#[managed_operation(operation_type = "training", resumable)]
async fn train(ctx: OperationContext, config: Config) -> Result<(), String> {
    let _ = config;
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {}
