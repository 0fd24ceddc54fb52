use orchestrator::{OperationContext, managed_operation};

pub struct Model {
    pub weights: Vec<f64>,
}

#[managed_operation(operation_type = "training")]
async fn train(ctx: OperationContext) -> Result<Model, String> {
    ctx.progress(1, "training");
    Ok(Model { weights: vec![] })
}

fn main() {}
