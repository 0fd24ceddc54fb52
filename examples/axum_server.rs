//! The operations API over HTTP, with the dummy, training and data-load start endpoints.
//!
//! ```text
//! cargo run --example axum_server -- --addr 127.0.0.1:8000
//! curl -s -XPOST localhost:8000/api/v1/dummy/start -H 'content-type: application/json' \
//!      -d '{"iterations": 5, "interval_ms": 100}'
//! curl -s -XPOST localhost:8000/api/v1/training/start -H 'content-type: application/json' \
//!      -d '{"epochs": 10}'
//! curl -s localhost:8000/api/v1/operations/<id>
//! curl -s localhost:8000/api/v1/operations/<id>/metrics
//! curl -sN localhost:8000/api/v1/operations/<id>/events
//! ```
//!
//! Prints `listening on http://ADDR` on stdout once bound (`--addr 127.0.0.1:0` picks a
//! free port). Logs requests with tracing on stderr (`RUST_LOG` to filter). Served by
//! [`http::Server`](orchestrator::http::Server): header read and idle timeouts, a connection cap, a cap on open
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
//! With `USE_TRAINING_HOST_SERVICE=true` and `TRAINING_HOST_SERVICE_URL=http://…`
//! (e.g. a `training_host` process), `POST /api/v1/training/start` runs the training
//! there, behind a local proxy operation that this server's API, event streams and
//! `cli` follow like any other; a set flag without a URL, or a bad URL, stops the
//! server at start-up. `TRAINING_HOST_SERVICE_GRACE_SECS` (default 30) is how long
//! the host may stay unreachable before its operations here fail.
//!
//! Operations are kept in `--store` (or `ORCHESTRATOR_STORE`): by default the SQLite
//! file `orchestrator.db` in the working directory, so they survive a restart (what
//! was running then is marked FAILED `interrupted`; nothing is rerun); `memory:` keeps
//! nothing; `postgres://USER@HOST:PORT/DATABASE` shares them with every replica on the
//! same database (`--store-schema`, default `orchestrator`): any replica answers for
//! any operation, and a cancel on one reaches the operation on another. A store that
//! cannot be opened stops the server at start (exit 1). `GET /api/v1/health` says
//! `DEGRADED` while the store fails.
//!
//! The routes and the serving are in `services/server.rs`; the services in `services/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use orchestrator::host::HostService;
use orchestrator_examples::data::{DEFAULT_DATA_DIR, DEFAULT_MAX_ROWS, DataService};
use orchestrator_examples::server::{self, ServeArgs};
use orchestrator_examples::training::TrainingService;

/// Where operations are kept without `--store`: a SQLite file in the working
/// directory (nothing to install; it survives restarts).
const DEFAULT_STORE: &str = "sqlite:orchestrator.db";

/// Serves the operations API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// The folder `/data/load` paths are confined to.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Most rows a generated input may have.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS)]
    max_rows: u64,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    server::run_process(run(Args::parse()))
}

async fn run(args: Args) -> ExitCode {
    // Where training runs: read once, so a bad setting stops the server here.
    let host = match HostService::from_env("TRAINING") {
        Ok(host) => host,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(host) = &host {
        tracing::info!(host = host.url(), "training runs on a host service");
    }
    let ops = match args.serve.open_operations(DEFAULT_STORE).await {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = server::token_from_env();
    let data = DataService::new(ops.clone())
        .with_data_dir(args.data_dir)
        .with_max_rows(args.max_rows);
    match data.sweep_stale_files() {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed temp files of earlier runs"),
        Err(e) => tracing::warn!(error = %e, "could not sweep stale temp files"),
    }
    let training = TrainingService::new(ops.clone()).with_host(host);
    let app = server::app_with_services(data, training, args.serve.max_streams, token.as_deref());
    server::serve_until_signal(args.addr, app, ops, &args.serve, token.is_some()).await
}
