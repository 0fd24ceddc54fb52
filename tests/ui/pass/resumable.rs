//! `resumable`: `register_<name>` for a method (with a constructor from the registry)
//! and for a free fn.

use orchestrator::{OperationContext, Operations, ServiceOrchestrator, managed_operation};

#[derive(Clone)]
pub struct Trainer {
    ops: Operations,
}

impl ServiceOrchestrator for Trainer {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "trainer"
    }
}

impl Trainer {
    #[managed_operation(operation_type = "training", total_steps = epochs, resumable)]
    pub async fn train(&self, ctx: OperationContext, epochs: u64, rate: f64) -> Result<u64, String> {
        let from = ctx.resume_state::<u64>().map_err(|e| e.to_string())?.unwrap_or(0);
        let _ = rate;
        Ok(epochs - from)
    }
}

#[managed_operation(operation_type = "count", resumable)]
async fn count(ctx: OperationContext, to: u32, label: String) -> Result<u32, String> {
    let _ = (ctx, label);
    Ok(to)
}

fn main() {
    let ops = Operations::new();
    Trainer::register_train(&ops, |ops| Trainer { ops });
    register_count(&ops);
}
