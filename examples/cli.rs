//! A command-line client of the operations API: start operations on a server with a
//! progress bar and Ctrl+C that really stops them there; list, inspect, cancel, wait.
//!
//! ```text
//! cargo run --example axum_server &
//! cargo run --example cli -- dummy --iterations 20 --interval-ms 200
//! cargo run --example cli -- data-load --rows 500000 --timeframe 5m
//! cargo run --example cli -- train --epochs 50 --learning-rate 0.5
//! cargo run --example cli -- ops list --status running
//! cargo run --example cli -- ops status op_dummy_20261122_160501_9f3a1c2e
//! cargo run --example cli -- ops cancel op_dummy_20261122_160501_9f3a1c2e --reason "not needed"
//! cargo run --example cli -- --json ops wait op_dummy_20261122_160501_9f3a1c2e
//! cargo run --example cli -- ops metrics op_dummy_20261122_160501_9f3a1c2e --follow
//! cargo run --example cli -- ops resume op_training_20261122_160501_9f3a1c2f
//! cargo run --example cli -- ops delete op_dummy_20261122_160501_9f3a1c2e
//! ```
//!
//! The server is `--url` (default `http://127.0.0.1:8000`, or `ORCHESTRATOR_URL`).
//! `dummy`, `data-load` and `train` start the operation and follow it: the first
//! Ctrl+C asks the server to cancel it and waits for it to stop (`Cancelled after 7
//! iterations`, `Cancelled after 3/50 epochs`, exit 130), a second one stops waiting. Exit codes: 0 completed, 1 failed or an
//! error, 130 cancelled. `--json` prints the final record (or the list) as JSON on
//! stdout, without the bar; `--detach` prints the new operation's id and returns.
//! `ops resume` starts the next attempt of a failed (say, `interrupted` by a crash) or
//! cancelled operation from its last checkpoint and follows it like a start.
//! `ops metrics` prints the metric records as JSON lines (`--follow`: until the
//! operation ends). The library writes nothing by itself: this CLI hands the executor
//! stdout for results and stderr for notices, and prints errors with their causes.
//!
//! Each command is a few lines: the executor is the library's, the adapters are in
//! `services/` next to their services.

use std::error::Error as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use orchestrator::client::{
    ApiClient, CancelTrigger, ClientError, Execution, ExecutorOutcome, OperationAdapter,
    OperationExecutor, Output, RetryPolicy,
};
use orchestrator::{OperationFilter, OperationId, OperationInfo, OperationStatus, OperationType};
use orchestrator_examples::data::{LoadAdapter, LoadRequest, Timeframe};
use orchestrator_examples::dummy::{DummyAdapter, DummyRequest};
use orchestrator_examples::training::{TrainingAdapter, TrainingRequest};

/// Runs and controls long operations on an orchestrator server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The server.
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    url: String,
    /// Bearer token for a server started with `ORCHESTRATOR_TOKEN` (sent as
    /// `Authorization: Bearer …`).
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATOR_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print JSON on stdout (the final record, or the list) instead of the bar and text.
    #[arg(long, global = true)]
    json: bool,
    /// The first wait before retrying an unreachable server, in milliseconds; each
    /// further wait doubles it (for tests).
    #[arg(
        long,
        global = true,
        hide = true,
        env = "ORCHESTRATOR_RETRY_BASE_MS",
        default_value_t = 1000
    )]
    retry_base_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the dummy task: a loop of sleeps.
    Dummy {
        /// How many iterations.
        #[arg(long, default_value_t = 100)]
        iterations: u64,
        /// Milliseconds per iteration.
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        #[command(flatten)]
        start: Start,
    },
    /// Load OHLCV bars from a CSV file on the server (or a synthetic one).
    DataLoad {
        /// A CSV file on the server; without it, the server generates `--rows` bars.
        #[arg(long, conflicts_with = "rows")]
        path: Option<PathBuf>,
        /// Bars of the synthetic file (server default 2 000 000).
        #[arg(long)]
        rows: Option<u64>,
        /// Timeframe gaps are measured against (30s, 1m, 5m, 1h, 1d, …).
        #[arg(long)]
        timeframe: Option<Timeframe>,
        #[command(flatten)]
        start: Start,
    },
    /// Train a logistic regression by SGD on generated data (on the server, or on
    /// the host service it routes training to).
    Train {
        /// Epochs to train.
        #[arg(long)]
        epochs: u64,
        /// Gradient steps per epoch.
        #[arg(long, default_value_t = TrainingRequest::DEFAULT_BATCHES_PER_EPOCH)]
        batches_per_epoch: u64,
        /// Step size of SGD.
        #[arg(long, default_value_t = TrainingRequest::DEFAULT_LEARNING_RATE)]
        learning_rate: f64,
        /// Seed of the data set and the batch order.
        #[arg(long, default_value_t = TrainingRequest::DEFAULT_SEED)]
        seed: u64,
        /// Pause after each epoch, in milliseconds (to watch a short run).
        #[arg(long, default_value_t = 0)]
        epoch_delay_ms: u64,
        #[command(flatten)]
        start: Start,
    },
    /// List, inspect, cancel and wait for operations.
    Ops {
        #[command(subcommand)]
        command: Ops,
    },
}

#[derive(Debug, Args)]
struct Start {
    /// Start the operation, print its id and return without following it.
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Subcommand)]
enum Ops {
    /// The newest operations, as a table.
    List {
        /// Only this status (pending, running, completed, failed, cancelled).
        #[arg(long)]
        status: Option<OperationStatus>,
        /// Only this type (dummy, data_load, …).
        #[arg(long = "type")]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One operation's record.
    Status {
        /// The operation id.
        id: OperationId,
    },
    /// Ask the server to cancel an operation.
    Cancel {
        /// The operation id.
        id: OperationId,
        /// Why (recorded as `cancel_reason`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a failed or cancelled operation from its last checkpoint and follow the
    /// new attempt with the progress bar (Ctrl+C cancels it, as for a start).
    Resume {
        /// The operation id.
        id: OperationId,
        /// Resume it, print the new attempt's number and return without following it.
        #[arg(long)]
        detach: bool,
    },
    /// Follow an operation with the progress bar until it ends.
    Wait {
        /// The operation id.
        id: OperationId,
    },
    /// An operation's metric records, one JSON document per line.
    Metrics {
        /// The operation id.
        id: OperationId,
        /// Keep printing new records until the operation ends.
        #[arg(long)]
        follow: bool,
    },
    /// Remove a finished operation (an active one is asked to cancel instead).
    Delete {
        /// The operation id.
        id: OperationId,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: what went wrong, why, and where it helps, what
            // to do. Each cause once: the error's line, then its sources.
            let mut line = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(": ");
                line.push_str(&c.to_string());
                cause = c.source();
            }
            eprintln!("{line}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let retry = RetryPolicy::new().with_base_delay(Duration::from_millis(cli.retry_base_ms));
    let mut client = ApiClient::new(&cli.url)?.with_retry(retry);
    if let Some(token) = cli.token.as_deref().filter(|t| !t.trim().is_empty()) {
        client = client.with_bearer_token(token)?;
    }
    let output = if cli.json {
        Output::Json
    } else {
        Output::Terminal
    };
    match cli.command {
        Command::Dummy {
            iterations,
            interval_ms,
            start,
        } => {
            let adapter = DummyAdapter(DummyRequest {
                iterations,
                interval_ms,
            });
            execute(client, output, &adapter, start.detach).await
        }
        Command::DataLoad {
            path,
            rows,
            timeframe,
            start,
        } => {
            let adapter = LoadAdapter(LoadRequest {
                path,
                rows,
                timeframe,
                seed: None,
            });
            execute(client, output, &adapter, start.detach).await
        }
        Command::Train {
            epochs,
            batches_per_epoch,
            learning_rate,
            seed,
            epoch_delay_ms,
            start,
        } => {
            let adapter = TrainingAdapter(TrainingRequest {
                epochs,
                batches_per_epoch,
                learning_rate,
                seed,
                epoch_delay_ms,
            });
            execute(client, output, &adapter, start.detach).await
        }
        Command::Ops { command } => ops(client, output, command).await,
    }
}

/// Every start command: start, then follow with Ctrl+C wired to cancel (or detach).
async fn execute<A: OperationAdapter>(
    client: ApiClient,
    output: Output,
    adapter: &A,
    detach: bool,
) -> Result<ExitCode, ClientError> {
    let executor = executor(client, output);
    if detach {
        let id = executor.start(adapter).await?;
        if output == Output::Json {
            println!("{}", serde_json::json!({ "operation_id": id }));
        } else {
            println!("{id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ctrl_c = CancelTrigger::ctrl_c().map_err(|e| ClientError::Setup(e.into()))?;
    let run = executor
        .with_cancel_trigger(ctrl_c)
        .with_cancel_reason("cancelled from the CLI (Ctrl+C)")
        .execute(adapter)
        .await?;
    Ok(report(&run, output))
}

/// The executor as this CLI uses it: notices on stderr; with `--json`, the final
/// record on stdout (otherwise [`report`] prints the result line).
fn executor(client: ApiClient, output: Output) -> OperationExecutor<ApiClient> {
    let executor = OperationExecutor::new(client)
        .with_output(output)
        .with_notices(std::io::stderr());
    if output == Output::Json {
        executor.with_writer(std::io::stdout())
    } else {
        executor
    }
}

/// Prints the result line (stdout, or stderr for a failure) unless `--json` had the
/// executor write the record; the exit code of the outcome.
fn report(run: &Execution, output: Output) -> ExitCode {
    if output != Output::Json {
        if run.outcome == ExecutorOutcome::Failed {
            eprintln!("{}", run.message);
        } else {
            println!("{}", run.message);
        }
    }
    run.outcome.into()
}

async fn ops(client: ApiClient, output: Output, command: Ops) -> Result<ExitCode, ClientError> {
    let json = output == Output::Json;
    match command {
        Ops::List {
            status,
            kind,
            limit,
        } => {
            let mut filter = OperationFilter::new().with_limit(limit);
            if let Some(status) = status {
                filter = filter.with_status(status);
            }
            if let Some(kind) = kind {
                filter = filter.with_type(OperationType::from(kind.as_str()));
            }
            let page = client.list(&filter).await?;
            if json {
                print_json(&serde_json::json!({
                    "operations": page.operations,
                    "total_count": page.total_count,
                    "active_count": page.active_count,
                }));
            } else {
                print_table(&page.operations);
                println!(
                    "{} of {} operations shown, {} active",
                    page.operations.len(),
                    page.total_count,
                    page.active_count
                );
            }
        }
        Ops::Status { id } => {
            let info = client.get(&id).await?;
            if json {
                print_json(&info);
            } else {
                print_record(&info);
            }
        }
        Ops::Cancel { id, reason } => {
            let info = client.cancel(&id, reason.as_deref()).await?;
            if json {
                print_json(&info);
            } else if info.status.is_terminal() {
                println!("{id} is {}", info.status);
            } else {
                println!("Cancellation requested for {id} (still {})", info.status);
            }
        }
        Ops::Resume { id, detach } => {
            let info = client.resume(&id).await?;
            if detach {
                if json {
                    print_json(&info);
                } else {
                    println!("Resumed {id}: attempt {}", info.attempt);
                }
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("Resumed {id}: attempt {}", info.attempt);
            let ctrl_c = CancelTrigger::ctrl_c().map_err(|e| ClientError::Setup(e.into()))?;
            let executor = executor(client, output)
                .with_cancel_trigger(ctrl_c)
                .with_cancel_reason("cancelled from the CLI (Ctrl+C)");
            // Training words its end with the epochs of every attempt.
            let run = if info.operation_type == OperationType::TRAINING {
                let epochs = info
                    .metadata
                    .parameter("epochs")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(info.progress.steps_total);
                let adapter = TrainingAdapter(TrainingRequest::new(epochs));
                executor.follow(&id, &adapter).await?
            } else {
                executor.follow_plain(&id).await?
            };
            return Ok(report(&run, output));
        }
        Ops::Wait { id } => {
            // No cancel trigger: Ctrl+C stops waiting, the operation goes on.
            let run = executor(client, output).follow_plain(&id).await?;
            return Ok(report(&run, output));
        }
        Ops::Metrics { id, follow } => metrics(&client, &id, follow).await?,
        Ops::Delete { id } => {
            let answer = client.delete(&id).await?;
            if json {
                print_json(&answer);
            } else if answer.deleted {
                println!("Deleted {id} ({})", answer.operation.status);
            } else {
                println!(
                    "{id} was still {}: cancellation requested; delete it again once it has ended",
                    answer.operation.status
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the metric records after each other as JSON lines; with `follow`, until the
/// operation has ended (the server's long-poll paces the reads, one a second at most).
async fn metrics(client: &ApiClient, id: &OperationId, follow: bool) -> Result<(), ClientError> {
    let mut cursor = 0;
    let mut ended = !follow;
    loop {
        let page = client.metrics(id, cursor).await?;
        if page.dropped > 0 {
            eprintln!(
                "warning: {} older records were already dropped",
                page.dropped
            );
        }
        let mut out = std::io::stdout().lock();
        for record in &page.metrics {
            // stdout closed (`| head`): nothing more to say.
            if writeln!(out, "{record}").is_err() {
                return Ok(());
            }
        }
        drop(out);
        cursor = page.cursor;
        if ended {
            return Ok(());
        }
        // Once it has ended, one more read gets the records written last.
        ended = client
            .wait(id, Duration::from_secs(1))
            .await?
            .status
            .is_terminal();
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot write JSON: {e}"),
    }
}

fn print_table(operations: &[OperationInfo]) {
    let width = operations
        .iter()
        .map(|i| i.operation_id.as_str().len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:<width$}  {:<10}  {:<9}  {:>8}  {:<20}  DESCRIPTION",
        "ID", "TYPE", "STATUS", "PROGRESS", "CREATED"
    );
    for info in operations {
        println!(
            "{:<width$}  {:<10}  {:<9}  {:>7.0}%  {:<20}  {}",
            info.operation_id.as_str(),
            info.operation_type.as_str(),
            info.status.as_str(),
            info.progress.percentage,
            time(Some(info.created_at)),
            info.description
        );
    }
}

fn print_record(info: &OperationInfo) {
    let p = &info.progress;
    println!(
        "{}  {}  {}",
        info.operation_id,
        info.operation_type.as_str(),
        info.status
    );
    let mut progress = format!("{:.0}%", p.percentage);
    if p.steps_total > 0 {
        progress.push_str(&format!(" {}/{}", p.steps_completed, p.steps_total));
    }
    if !p.current_step.is_empty() {
        progress.push_str(&format!(" {}", p.current_step));
    }
    let rows = [
        ("description", info.description.clone()),
        ("progress", progress),
        ("created", time(Some(info.created_at))),
        ("started", time(info.started_at)),
        ("completed", time(info.completed_at)),
        (
            "attempt",
            if info.attempt > 1 {
                info.attempt.to_string()
            } else {
                String::new()
            },
        ),
        (
            "checkpoint",
            match (info.checkpoint_step, info.checkpoint_at) {
                (Some(step), at) => format!("step {step} at {}", time(at)),
                _ => String::new(),
            },
        ),
        (
            "cancel reason",
            info.cancel_reason.clone().unwrap_or_default(),
        ),
        ("error", info.error_message.clone().unwrap_or_default()),
        (
            "result",
            info.result_summary
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
    ];
    for (name, value) in rows {
        if !value.is_empty() {
            println!("  {name:<14}{value}");
        }
    }
}

fn time(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| humantime::format_rfc3339_seconds(t).to_string(),
    )
}
