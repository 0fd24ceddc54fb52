//! Loads OHLCV bars from a CSV file as a managed operation, with a progress bar and
//! Ctrl+C cancellation.
//!
//! ```text
//! cargo run --release --example data_load -- --rows 1000000
//! cargo run --release --example data_load -- --path bars.csv --timeframe 5m
//! ```
//!
//! The file is `timestamp,open,high,low,close,volume` with a header line; `timestamp`
//! is Unix seconds (UTC). Without `--path`, a synthetic random walk of `--rows` bars
//! (default 2 000 000, about 100 MB) is generated first into the system temp directory
//! (the path is printed; the file is removed after the load unless `--keep`).
//!
//! On success it prints a summary (rows, first and last bar, gaps, invalid rows with
//! their line numbers) and exits 0. The first Ctrl+C cancels the load through the
//! registry; it stops after the current segment, prints `Cancelled after N rows` and
//! exits 130. A second Ctrl+C exits at once. A file that cannot be read prints
//! `Failed: cannot read PATH: …` and exits 1.
//!
//! `DataService` is in `services/data/`, shared with the `axum_server` example.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use orchestrator::{OperationStatus, Operations};
use orchestrator_examples::cli::follow_with_ctrl_c;
use orchestrator_examples::data::{CsvSource, DEFAULT_ROWS, DataService, LoadSummary, Timeframe};

/// Loads OHLCV bars from CSV with a progress bar.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The CSV file to load; without it, a synthetic file is generated first.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Rows of the synthetic file.
    #[arg(long, default_value_t = DEFAULT_ROWS, conflicts_with = "path")]
    rows: u64,
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
        None => {
            let mut source = CsvSource::synthetic(args.rows, args.seed);
            if let CsvSource::Synthetic { keep, .. } = &mut source {
                *keep = args.keep;
            }
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
    let ops = Operations::new();
    let service = DataService::new(ops.clone());
    let started = match service.start_load_csv(source, args.timeframe) {
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
    let summary = info
        .result_summary
        .clone()
        .and_then(|v| serde_json::from_value::<LoadSummary>(v).ok());
    match (info.status, summary) {
        (OperationStatus::Completed, Some(s)) => {
            print_summary(&s);
            ExitCode::SUCCESS
        }
        (OperationStatus::Cancelled, s) => {
            println!("Cancelled after {} rows", s.map_or(0, |s| s.rows_loaded));
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

fn print_summary(s: &LoadSummary) {
    let mib = s.bytes_total as f64 / (1024.0 * 1024.0);
    let rate = s.rows_loaded as f64 / s.parse_seconds.max(1e-9);
    println!(
        "Loaded {} rows from {} ({mib:.1} MiB) in {:.2} s ({:.2} M rows/s)",
        s.rows_loaded,
        s.path,
        s.parse_seconds,
        rate / 1e6
    );
    let none = || "-".to_owned();
    println!(
        "  first bar     {}",
        s.first_timestamp.clone().unwrap_or_else(none)
    );
    println!(
        "  last bar      {}",
        s.last_timestamp.clone().unwrap_or_else(none)
    );
    println!(
        "  gaps          {} ({} missing {} bars), {} out of order",
        s.gaps, s.missing_bars, s.timeframe, s.out_of_order
    );
    let samples: Vec<String> = s
        .invalid_samples
        .iter()
        .map(|r| format!("line {} ({})", r.line, r.reason))
        .collect();
    let more = if (s.invalid_rows as usize) > samples.len() {
        ", …"
    } else {
        ""
    };
    if samples.is_empty() {
        println!("  invalid rows  0");
    } else {
        println!(
            "  invalid rows  {}: {}{more}",
            s.invalid_rows,
            samples.join(", ")
        );
    }
    if let (Some(lo), Some(hi)) = (s.min_low, s.max_high) {
        println!(
            "  price range   {lo:.4} – {hi:.4}, volume {:.0}",
            s.total_volume
        );
    }
}
