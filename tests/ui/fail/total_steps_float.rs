use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", total_steps = ratio * 10.0)]
async fn count(ctx: OperationContext, ratio: f64) -> Result<f64, String> {
    ctx.progress(1, "counting");
    Ok(ratio)
}

fn main() {}
