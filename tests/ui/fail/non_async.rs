use orchestrator::{OperationContext, Operations, ServiceOrchestrator, managed_operation};

#[derive(Clone)]
struct Service {
    ops: Operations,
}

impl ServiceOrchestrator for Service {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "service"
    }
}

impl Service {
    #[managed_operation(operation_type = "dummy")]
    fn count(&self, ctx: OperationContext, n: u64) -> Result<u64, String> {
        ctx.progress(n, "counting");
        Ok(n)
    }
}

fn main() {}
