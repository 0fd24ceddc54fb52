//! The context may sit anywhere in the parameter list, under any name and path; the
//! generated fns keep the other parameters in order.

use orchestrator::{Operations, ServiceOrchestrator, managed_operation};

#[derive(Clone)]
struct Trainer {
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
    #[managed_operation(operation_type = "training", total_steps = epochs)]
    async fn train(
        &self,
        model: String,
        epochs: u64,
        mut reporter: orchestrator::OperationContext,
        learning_rate: f64,
    ) -> Result<String, std::io::Error> {
        reporter = reporter.phase(0.0..100.0);
        reporter.progress(epochs, "done");
        Ok(format!("{model} @ {learning_rate}"))
    }
}

#[managed_operation(operation_type = "dummy")]
async fn echo(message: String, _ctx: orchestrator::OperationContext) -> Result<String, String> {
    Ok(message)
}

fn main() {
    let trainer = Trainer { ops: Operations::new() };
    let outcome = trainer.run_train_sync("net".to_owned(), 2, 0.5).unwrap();
    assert_eq!(outcome.value().map(String::as_str), Some("net @ 0.5"));
    let outcome = run_echo_sync(&trainer.ops, "hi".to_owned()).unwrap();
    assert_eq!(outcome.value().map(String::as_str), Some("hi"));
}
