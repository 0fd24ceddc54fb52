//! The operations API over HTTP, with the dummy and data-load start endpoints.
//!
//! ```text
//! cargo run --example axum_server -- --addr 127.0.0.1:8000
//! curl -s -XPOST localhost:8000/api/v1/dummy/start -H 'content-type: application/json' \
//!      -d '{"iterations": 5, "interval_ms": 100}'
//! curl -s localhost:8000/api/v1/operations/<id>
//! curl -sN localhost:8000/api/v1/operations/<id>/events
//! ```
//!
//! Prints `listening on http://ADDR` on stdout once bound (`--addr 127.0.0.1:0` picks a
//! free port). Logs requests with tracing on stderr (`RUST_LOG` to filter). Served by
//! [`http::Server`]: header read and idle timeouts, a connection cap, a cap on open
//! event streams and long-polls (`--max-streams`). With `ORCHESTRATOR_TOKEN` set,
//! every route needs `Authorization: Bearer $ORCHESTRATOR_TOKEN` (401 otherwise).
//!
//! At most `--max-active` operations run at once (429 `TOO_MANY_OPERATIONS` beyond);
//! `/data/load` paths are confined to `--data-dir`, generated loads to `--max-rows`.
//!
//! On SIGTERM or Ctrl+C it cancels every operation (so event streams and long-polls
//! get their final record), waits for them the registry's grace period plus
//! `--grace-secs`, reports any left behind (blocking work that ignores cancellation),
//! drains the connections for at most 5 s and exits 0, even if an operation is stuck
//! in blocking work; a second signal exits at once with 130.
//!
//! The routes are in `services/server.rs`; the services in `services/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use clap::Parser;
use orchestrator::{Operations, http};
use orchestrator_examples::data::{DEFAULT_DATA_DIR, DEFAULT_MAX_ROWS, DataService};
use orchestrator_examples::server;
use tracing_subscriber::EnvFilter;

/// Serves the operations API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Seconds to wait, after their grace period, for cancelled operations to end on
    /// shutdown before reporting the ones left running.
    #[arg(long, default_value_t = 5)]
    grace_secs: u64,
    /// Most operations active at once (429 `TOO_MANY_OPERATIONS` beyond).
    #[arg(long, default_value_t = 10_000)]
    max_active: usize,
    /// The folder `/data/load` paths are confined to.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Most rows a generated input may have.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS)]
    max_rows: u64,
    /// Most event streams and long-polls open at once (503 beyond).
    #[arg(long, default_value_t = http::Api::DEFAULT_MAX_STREAMS)]
    max_streams: usize,
    /// Most open connections [default: 1024, or 3/4 of `ulimit -n` if lower].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a client may take to send a request head.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
}

/// How long connections may take to finish after the operations settled.
const DRAIN: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(args));
    // Blocking work that ignores cancellation must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run(args: Args) -> ExitCode {
    let ops = Operations::builder()
        .with_max_active(args.max_active)
        .with_shutdown_drain(Duration::from_secs(args.grace_secs))
        .build();
    let token = std::env::var("ORCHESTRATOR_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let data = DataService::new(ops.clone())
        .with_data_dir(args.data_dir)
        .with_max_rows(args.max_rows);
    match data.sweep_stale_files() {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed temp files of earlier runs"),
        Err(e) => tracing::warn!(error = %e, "could not sweep stale temp files"),
    }
    let app = server::app_with_data(data, args.max_streams, token.as_deref())
        .layer(middleware::from_fn(log_request));
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.addr);
    println!("listening on http://{addr}");
    tracing::info!(%addr, auth = token.is_some(), "operations API at http://{addr}/api/v1/operations");

    let signal_ops = ops.clone();
    let mut server = http::serve(listener, app)
        .with_header_read_timeout(Duration::from_secs(args.header_timeout_secs))
        .with_drain_timeout(DRAIN)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tokio::spawn(async {
                shutdown_signal().await;
                std::process::exit(130);
            });
            // Cancel first, so long-polls and event streams end with the operations
            // and get their final record; then stop accepting and drain.
            let report = signal_ops.shutdown("server shutting down").await;
            println!(
                "shutting down: cancelled {} operations in {:.1?}",
                report.cancelled, report.elapsed
            );
            for info in &report.left_running {
                let why = info
                    .abandoned
                    .as_ref()
                    .map_or("still running", |a| a.message.as_str());
                println!("left running: {} ({why})", info.operation_id);
                tracing::warn!(operation_id = %info.operation_id, why, "left running at shutdown");
            }
        });
    if let Some(max) = args.max_connections {
        server = server.with_max_connections(max);
    }
    // Returns at most DRAIN after the signal future ended (grace + DRAIN in all).
    server.run().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl+C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// One log line per request: method, path, status, latency.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), took = ?started.elapsed(), "request");
    response
}
