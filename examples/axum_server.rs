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
//! free port). Logs requests with tracing on stderr (`RUST_LOG` to filter). On SIGTERM
//! or Ctrl+C it cancels every operation, waits up to `--grace-secs` for them to settle,
//! stops the server and exits 0; a second signal exits at once with 130.
//!
//! The routes are in `services/server.rs`; the services in `services/`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use clap::Parser;
use orchestrator::{OperationFilter, Operations};
use orchestrator_examples::server;
use tracing_subscriber::EnvFilter;

/// Serves the operations API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Seconds to wait for cancelled operations to settle on shutdown.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let ops = Operations::new();
    let app = server::app(ops.clone()).layer(middleware::from_fn(log_request));
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.addr);
    println!("listening on http://{addr}");
    tracing::info!(%addr, "operations API at http://{addr}/api/v1/operations");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    shutdown_signal().await;
    tokio::spawn(async {
        shutdown_signal().await;
        std::process::exit(130);
    });
    // Cancel first, so long-polls and event streams end with the operations; then
    // stop accepting and let in-flight requests finish.
    let cancelled = ops.shutdown("server shutting down").await.cancelled;
    println!("shutting down: cancelled {cancelled} operations");
    settle(&ops, Duration::from_secs(args.grace_secs)).await;
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(e))) => {
            eprintln!("error: server: {e}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("error: server task: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("connections still open after 5 s; exiting anyway");
            ExitCode::SUCCESS
        }
    }
}

/// Waits (up to `grace`) until every active operation reached a terminal state.
async fn settle(ops: &Operations, grace: Duration) {
    let started = Instant::now();
    let active = ops.list(&OperationFilter::new().active_only().with_limit(usize::MAX));
    let all = async {
        for info in &active.operations {
            let _ = ops.wait(&info.operation_id).await;
        }
    };
    match tokio::time::timeout(grace, all).await {
        Ok(()) => tracing::info!(took = ?started.elapsed(), "operations settled"),
        Err(_) => tracing::warn!(still_active = ops.active_count(), "grace period over"),
    }
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
