//! The method form: `start_*`, `run_*` and `run_*_sync` on a `ServiceOrchestrator`.

use std::time::Duration;

use orchestrator::{
    Cancelled, OperationContext, Operations, Outcome, ServiceOrchestrator, StartedOperation,
    managed_operation,
};

#[derive(Clone)]
pub struct DummyService {
    ops: Operations,
}

impl ServiceOrchestrator for DummyService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "dummy"
    }
}

impl DummyService {
    /// Counts to `iterations`.
    #[managed_operation(operation_type = "dummy", total_steps = iterations, description = "dummy task")]
    pub async fn count(
        &self,
        ctx: OperationContext,
        iterations: u64,
        interval: Duration,
    ) -> Result<u64, Cancelled> {
        for i in 1..=iterations {
            ctx.sleep(interval).await?;
            ctx.progress(i, format!("Iteration {i}/{iterations}"));
        }
        Ok(iterations)
    }
}

fn assert_signatures(svc: &DummyService) {
    let _: fn(&DummyService, u64, Duration) -> orchestrator::Result<StartedOperation> =
        DummyService::start_count;
    let _: fn(&DummyService, u64, Duration) -> orchestrator::Result<Outcome<u64, Cancelled>> =
        DummyService::run_count_sync;
    let _run = svc.run_count(1, Duration::ZERO);
    let _original = svc.count(OperationContext::detached(), 1, Duration::ZERO);
}

fn main() {
    assert_signatures(&DummyService { ops: Operations::new() });
}
