//! A training host service: a process of its own (a GPU box, say) that serves the
//! operations API and the training start endpoint, so that another service can run
//! its training there behind a local proxy operation.
//!
//! ```text
//! cargo run --example training_host -- --addr 127.0.0.1:5002
//! curl -s -XPOST localhost:5002/api/v1/training/start -H 'content-type: application/json' \
//!      -d '{"epochs": 10, "learning_rate": 0.5}'
//! curl -s localhost:5002/api/v1/operations/<id>
//! curl -s localhost:5002/api/v1/operations/<id>/metrics
//! cargo run --example cli -- --url http://127.0.0.1:5002 train --epochs 10
//! ```
//!
//! Nothing about it is special: it is `axum_server` with one start endpoint
//! (`POST /api/v1/training/start`, the body being the arguments of
//! `TrainingService::train` by name). It prints `listening on http://ADDR` on stdout
//! once bound (port 0: any free port), logs requests on stderr, needs
//! `Authorization: Bearer $ORCHESTRATOR_TOKEN` when that is set, and on SIGTERM or
//! Ctrl+C cancels what runs, waits for it (grace period plus `--grace-secs`), drains
//! the connections for at most 5 s and exits 0; a second signal exits at once with 130.
//!
//! The app and the serving are in `services/server.rs`, the service in
//! `services/training.rs`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use orchestrator_examples::server::{self, ServeArgs};

/// Serves the operations API and `POST /api/v1/training/start`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:5002")]
    addr: SocketAddr,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    server::run_process(run(Args::parse()))
}

async fn run(args: Args) -> ExitCode {
    let ops = match args.serve.open_operations("memory:").await {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = server::token_from_env();
    let app = server::training_app(ops.clone(), args.serve.max_streams, token.as_deref());
    server::serve_until_signal(args.addr, app, ops, &args.serve, token.is_some()).await
}
