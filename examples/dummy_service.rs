//! The reference `DummyService`: a loop of sleeps, run as a managed operation with a
//! progress bar and Ctrl+C cancellation, all in one process.
//!
//! ```text
//! cargo run --example dummy_service -- --iterations 3 --interval-ms 50
//! ```
//!
//! On success it prints `Completed N iterations` and exits 0. The first Ctrl+C cancels
//! the operation through the registry; it stops mid-iteration, prints
//! `Cancelled after N iterations` and exits 130. A second Ctrl+C exits at once.
//!
//! It is the `cli dummy` command without the server: the same `OperationExecutor` and
//! `DummyAdapter`, following the in-process registry instead of an `ApiClient`. The
//! service and the adapter are in `services/dummy.rs`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchestrator::Operations;
use orchestrator::client::{CancelTrigger, ExecutorOutcome, OperationExecutor};
use orchestrator_examples::dummy::{DummyAdapter, DummyRequest, DummyService};

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
    let ctrl_c = match CancelTrigger::ctrl_c() {
        Ok(trigger) => trigger,
        Err(e) => {
            eprintln!("error: cannot listen for Ctrl+C: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started =
        match service.start_dummy_task(args.iterations, Duration::from_millis(args.interval_ms)) {
            Ok(started) => started,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let adapter = DummyAdapter(DummyRequest {
        iterations: args.iterations,
        interval_ms: args.interval_ms,
    });
    let executor = OperationExecutor::new(ops)
        .with_poll_interval(Duration::from_millis(100))
        .with_notices(std::io::stderr())
        .with_cancel_trigger(ctrl_c);
    match executor.follow(&started.operation_id, &adapter).await {
        Ok(run) => {
            // The library writes no result; this program does: stdout, or stderr for
            // a failure.
            if run.outcome == ExecutorOutcome::Failed {
                eprintln!("{}", run.message);
            } else {
                println!("{}", run.message);
            }
            run.outcome.into()
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
