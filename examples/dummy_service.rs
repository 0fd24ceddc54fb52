//! The reference `DummyService`: a loop of sleeps, run as a managed operation with a
//! progress bar and Ctrl+C cancellation.
//!
//! ```text
//! cargo run --example dummy_service -- --iterations 3 --interval-ms 50
//! ```
//!
//! On success it prints `Completed N iterations` and exits 0. The first Ctrl+C cancels
//! the operation through the registry; it stops mid-iteration, prints
//! `Cancelled after N iterations` and exits 130. A second Ctrl+C exits at once.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchestrator::{
    Cancelled, OperationContext, OperationStatus, Operations, ProgressRenderer,
    ServiceOrchestrator, managed_operation,
};
use serde::{Deserialize, Serialize};

/// The whole service: a registry handle and one managed operation.
#[derive(Clone)]
struct DummyService {
    ops: Operations,
}

impl ServiceOrchestrator for DummyService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "DummyService"
    }
}

/// What the dummy task reports when it ends, completed or cancelled.
#[derive(Debug, Serialize, Deserialize)]
struct DummySummary {
    iterations_completed: u64,
    iterations: u64,
}

impl DummyService {
    /// The domain logic: a plain loop. Sleeping through the context wakes it the
    /// moment the operation is cancelled.
    #[managed_operation(operation_type = "dummy", total_steps = iterations, description = "dummy task")]
    async fn dummy_task(
        &self,
        ctx: OperationContext,
        iterations: u64,
        interval: Duration,
    ) -> Result<DummySummary, Cancelled> {
        let mut completed = 0;
        for i in 1..=iterations {
            if ctx.sleep(interval).await.is_err() {
                break;
            }
            completed = i;
            ctx.progress(i, format!("Iteration {i}/{iterations}"));
        }
        Ok(DummySummary {
            iterations_completed: completed,
            iterations,
        })
    }
}

/// Runs the dummy task with a progress bar.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// How many iterations to run.
    #[arg(long, default_value_t = 100)]
    iterations: u64,
    /// Milliseconds per iteration.
    #[arg(long, default_value_t = 2000)]
    interval_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let service = DummyService {
        ops: Operations::new(),
    };
    let started =
        match service.start_dummy_task(args.iterations, Duration::from_millis(args.interval_ms)) {
            Ok(started) => started,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let id = started.operation_id;

    // First Ctrl+C: cancel through the registry, like any other client would.
    // Second Ctrl+C: leave at once.
    let ops = service.ops.clone();
    let cancel_id = id.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nCancelling… (Ctrl+C again to exit now)");
        let _ = ops.cancel(&cancel_id, "cancelled by user (Ctrl+C)");
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });

    let info = match ProgressRenderer::new().follow(&service.ops, &id).await {
        Ok(info) => info,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let completed = info
        .result_summary
        .clone()
        .and_then(|v| serde_json::from_value::<DummySummary>(v).ok())
        .map_or(0, |s| s.iterations_completed);
    match info.status {
        OperationStatus::Completed => {
            println!("Completed {completed} iterations");
            ExitCode::SUCCESS
        }
        OperationStatus::Cancelled => {
            println!("Cancelled after {completed} iterations");
            ExitCode::from(130)
        }
        _ => {
            eprintln!(
                "Failed: {}",
                info.error_message.as_deref().unwrap_or("unknown error")
            );
            ExitCode::FAILURE
        }
    }
}
