use orchestrator::{OperationContext, managed_operation};

// A routed start asks the service for its host: a free fn has no service.
#[managed_operation(operation_type = "training", host_path = "/training/start")]
async fn train(ctx: OperationContext, epochs: u64) -> Result<u64, String> {
    ctx.progress(epochs, "training");
    Ok(epochs)
}

// The path is under the host's API prefix and starts with `/`.
#[managed_operation(operation_type = "training", host_path = "training/start")]
async fn train_too(ctx: OperationContext, epochs: u64) -> Result<u64, String> {
    ctx.progress(epochs, "training");
    Ok(epochs)
}

fn main() {}
