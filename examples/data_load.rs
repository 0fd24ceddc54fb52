//! Loads OHLCV bars from a CSV file as a managed operation, with a progress bar and
//! Ctrl+C cancellation.
//!
//! ```text
//! cargo run --release --example data_load -- --rows 1000000
//! cargo run --release --example data_load -- --path bars.csv --timeframe 5m   # data/bars.csv
//! cargo run --release --example data_load -- --data-dir ~/bars --path 2024/eurusd.csv
//! ```
//!
//! The file is `timestamp,open,high,low,close,volume` with a header line; `timestamp`
//! is Unix seconds (UTC). `--path` is resolved inside `--data-dir` (default `data`,
//! as for the server): a path that leaves it (`..`, an absolute path elsewhere, a
//! symlink out of it), a missing file and anything not a regular file all print the
//! same `Failed: cannot load PATH: no such regular file in the data directory` and
//! exit 1. Without `--path`, a synthetic random walk of `--rows` bars (default
//! 2 000 000, about 100 MB; at most `--max-rows`, default 5 000 000) is generated first
//! into the system temp directory (`TMPDIR`); the path is printed, and the file is gone
//! when the process ends, however it ends, unless `--keep`.
//!
//! On success it prints a summary (rows, first and last bar, gaps, invalid rows with
//! their line numbers) and exits 0. The first Ctrl+C cancels the load through the
//! registry; it stops after the current segment, prints `Cancelled after N rows` and
//! exits 130. A second Ctrl+C exits at once. A file that cannot be read prints
//! `Failed: cannot read PATH: …` and exits 1.
//!
//! `DataService` and its `LoadAdapter` are in `services/data/`, shared with the
//! `axum_server` and `cli` examples; this is `cli data-load` without the server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchestrator::Operations;
use orchestrator::client::{CancelTrigger, ExecutorOutcome, OperationExecutor};
use orchestrator_examples::data::{
    CsvSource, DEFAULT_DATA_DIR, DEFAULT_MAX_ROWS, DEFAULT_ROWS, DataService, LoadAdapter,
    Timeframe,
};

/// Loads OHLCV bars from CSV with a progress bar.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The CSV file to load, inside `--data-dir`; without it, a synthetic file is
    /// generated first.
    #[arg(long)]
    path: Option<PathBuf>,
    /// The directory `--path` is resolved in (and may not leave).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Rows of the synthetic file.
    #[arg(long, default_value_t = DEFAULT_ROWS, conflicts_with = "path")]
    rows: u64,
    /// The most rows a synthetic file may have.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS)]
    max_rows: u64,
    /// Bar timeframe that gaps are measured against (30s, 1m, 5m, 1h, 1d, …).
    #[arg(long, default_value = "1m")]
    timeframe: Timeframe,
    /// Seed of the synthetic random walk.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the synthetic file after the load.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let source = match args.path {
        Some(path) => CsvSource::File(path),
        None if args.rows > args.max_rows => {
            eprintln!(
                "error: --rows {} is over the limit of {} rows (--max-rows)",
                args.rows, args.max_rows
            );
            return ExitCode::FAILURE;
        }
        None => {
            let source = if args.keep {
                CsvSource::synthetic_kept(args.rows, args.seed)
            } else {
                CsvSource::synthetic(args.rows, args.seed)
            };
            eprintln!(
                "Generating {} synthetic {} bars into {}{}",
                args.rows,
                args.timeframe,
                source.path().display(),
                if args.keep {
                    ""
                } else {
                    " (removed after the load)"
                }
            );
            source
        }
    };
    let ctrl_c = match CancelTrigger::ctrl_c() {
        Ok(trigger) => trigger,
        Err(e) => {
            eprintln!("error: cannot listen for Ctrl+C: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ops = Operations::new();
    let service = DataService::new(ops.clone())
        .with_data_dir(args.data_dir)
        .with_max_rows(args.max_rows);
    let started = match service.start_load_csv(source, args.timeframe) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The `cli data-load` command's adapter and executor, following the in-process
    // registry instead of a server.
    let executor = OperationExecutor::new(ops)
        .with_poll_interval(Duration::from_millis(100))
        .with_notices(std::io::stderr())
        .with_cancel_trigger(ctrl_c);
    match executor
        .follow(&started.operation_id, &LoadAdapter::default())
        .await
    {
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
