//! Every option at once, on a method and a free fn; arguments that do not serialise
//! are simply not recorded.

use orchestrator::{OperationContext, Operations, ServiceOrchestrator, managed_operation};

/// Not `Serialize`.
#[derive(Clone)]
pub struct Connection;

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
    #[managed_operation(
        operation_type = "training",
        total_steps = epochs,
        description = "train a model",
        deadline = "1h 30m",
        grace_period = "500ms",
        labels(team = "ml", "app.example/tier" = "gpu"),
        skip(password),
    )]
    async fn train(
        &self,
        ctx: OperationContext,
        epochs: u16,
        password: String,
        connection: Connection,
    ) -> Result<u16, String> {
        let _ = (password, connection);
        ctx.progress(u64::from(epochs), "done");
        Ok(epochs)
    }
}

#[managed_operation(operation_type = "data_load", total_steps = -1_i64, grace_period = "0s")]
async fn load(ctx: OperationContext, connection: Connection) -> Result<(), String> {
    let _ = connection;
    ctx.checkpoint().map_err(|e| e.to_string())
}

fn main() {
    let svc = Service { ops: Operations::new() };
    let outcome = svc.run_train_sync(2, "hunter2".into(), Connection).unwrap();
    assert_eq!(outcome.value(), Some(&2));
    let info = &svc.ops.list(&Default::default()).operations[0];
    assert_eq!(info.metadata.parameters.len(), 1);
    assert_eq!(info.metadata.parameters["epochs"], 2);
    assert_eq!(info.metadata.label("app.example/tier"), Some("gpu"));
    assert!(run_load_sync(&svc.ops, Connection).unwrap().is_completed());
}
