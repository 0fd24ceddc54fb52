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
//!
//! The service itself is in `services/dummy.rs`, shared with the `axum_server` example.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchestrator::{OperationStatus, Operations};
use orchestrator_examples::cli::follow_with_ctrl_c;
use orchestrator_examples::dummy::{DummyService, DummySummary};

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
    let ops = Operations::new();
    let service = DummyService::new(ops.clone());
    let started =
        match service.start_dummy_task(args.iterations, Duration::from_millis(args.interval_ms)) {
            Ok(started) => started,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let info = match follow_with_ctrl_c(&ops, &started.operation_id).await {
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
