//! The HTTP apps of the server examples and the process around them.
//!
//! [`app_with_data`] is `axum_server`'s app: the operations API and the three start
//! endpoints under `/api/v1`, with the envelope for unknown routes; [`training_app`] is
//! `training_host`'s: the operations API and the training start endpoint only. Both
//! processes then run the same way: [`ServeArgs`] for their shared flags,
//! [`run_process`] for tracing and the runtime, [`serve_until_signal`] to serve and
//! shut down on SIGTERM or Ctrl+C.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::get;
use orchestrator::{Operations, OperationsBuilder, ServiceOrchestrator as _, dashboard, http};
use tracing_subscriber::EnvFilter;

use crate::data::{self, DataService};
use crate::dummy::{self, DummyService};
use crate::store_url::{InvalidStoreUrl, StoreUrl};
use crate::training::{self, TrainingService};

/// `/api/v1/operations…`, `/api/v1/openapi.json`, `POST /api/v1/dummy/start`,
/// `POST /api/v1/training/start` and `POST /api/v1/data/load`, all over `ops`; request
/// bodies up to 64 KiB (`ApiJson`), at most
/// [`Api::DEFAULT_MAX_STREAMS`](http::Api::DEFAULT_MAX_STREAMS) streams and long-polls.
pub fn app(ops: Operations) -> Router {
    app_with(ops, http::Api::DEFAULT_MAX_STREAMS, None)
}

/// [`app`] with a stream cap and, when `token` is `Some`, bearer authentication on
/// every route ([`http::BearerAuthLayer`]).
pub fn app_with(ops: Operations, max_streams: usize, token: Option<&str>) -> Router {
    app_with_data(DataService::new(ops), max_streams, token)
}

/// [`app_with`] over a configured [`DataService`] (its data directory and row limit;
/// the operations are its registry's).
pub fn app_with_data(data: DataService, max_streams: usize, token: Option<&str>) -> Router {
    let training = TrainingService::new(data.operations().clone());
    app_with_services(data, training, max_streams, token)
}

/// [`app_with_data`] with a configured [`TrainingService`] (one that trains on a host
/// service, say); all services must share one registry.
pub fn app_with_services(
    data: DataService,
    training: TrainingService,
    max_streams: usize,
    token: Option<&str>,
) -> Router {
    let ops = data.operations().clone();
    // Documented routes (in /openapi.json) go through `with_routes`; the data-load
    // route is merged undocumented until it has its `#[utoipa::path]`.
    let api = http::Api::new(ops.clone())
        .with_max_streams(max_streams)
        .with_routes(dummy::routes(DummyService::new(ops.clone())))
        .with_routes(training::routes(training))
        .into_router()
        .merge(http::acknowledge_creates(data::routes(data), &ops));
    mount(api, ops, token)
}

/// The app of a training host service (`training_host`): `/api/v1/operations…`,
/// `/api/v1/openapi.json` and `POST /api/v1/training/start` over `ops`, with the same
/// limits, envelope and optional bearer authentication as [`app_with`].
pub fn training_app(ops: Operations, max_streams: usize, token: Option<&str>) -> Router {
    let api = http::Api::new(ops.clone())
        .with_max_streams(max_streams)
        .with_routes(training::routes(TrainingService::new(ops.clone())))
        .into_router();
    mount(api, ops, token)
}

/// `api` under `/api/v1`, with the envelope for a wrong method and an unknown route,
/// behind bearer authentication when `token` is `Some`; the dashboard of `ops` at
/// `/dashboard` (and `/` redirecting there), outside the authentication: the page
/// holds no data, and asks for the token the API needs.
fn mount(api: Router, ops: Operations, token: Option<&str>) -> Router {
    let api = api.method_not_allowed_fallback(http::method_not_allowed);
    let app = Router::new().nest("/api/v1", api).fallback(http::not_found);
    let app = match token {
        Some(token) => app.layer(http::BearerAuthLayer::new(token)),
        None => app,
    };
    let ui = dashboard::router(ops).method_not_allowed_fallback(http::method_not_allowed);
    app.nest("/dashboard", ui)
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route(
            "/dashboard/",
            get(|| async { Redirect::permanent("/dashboard") }),
        )
}

/// The bearer token a server example requires: `ORCHESTRATOR_TOKEN`, unless unset or
/// blank.
pub fn token_from_env() -> Option<String> {
    std::env::var("ORCHESTRATOR_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// The flags the server examples share (besides `--addr`, whose default differs).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Seconds to wait, after their grace period, for cancelled operations to end on
    /// shutdown before reporting the ones left running.
    #[arg(long, default_value_t = OperationsBuilder::DEFAULT_SHUTDOWN_DRAIN.as_secs())]
    pub grace_secs: u64,
    /// Most operations active at once (429 `TOO_MANY_OPERATIONS` beyond).
    #[arg(long, default_value_t = OperationsBuilder::DEFAULT_MAX_ACTIVE)]
    pub max_active: usize,
    /// Most event streams and long-polls open at once (503 beyond).
    #[arg(long, default_value_t = http::Api::DEFAULT_MAX_STREAMS)]
    pub max_streams: usize,
    /// Most open connections [default: 1024, or 3/4 of `ulimit -n` if lower].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request head.
    #[arg(long, default_value_t = http::Server::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    pub header_timeout_secs: u64,
    /// Where operations are kept: `memory:` (lost at exit), `sqlite:PATH` (one file,
    /// this process alone; a restart marks what was running FAILED `interrupted`), or
    /// `postgres://USER@HOST:PORT/DATABASE` (shared by replicas) [default: the
    /// server's own].
    #[arg(long, env = "ORCHESTRATOR_STORE")]
    pub store: Option<String>,
    /// The PostgreSQL schema of the store's tables (created if missing).
    #[arg(
        long,
        env = "ORCHESTRATOR_STORE_SCHEMA",
        default_value = "orchestrator"
    )]
    pub store_schema: String,
    /// Seconds to keep trying to reach a PostgreSQL store at start before exiting 1.
    #[arg(long, default_value_t = 10)]
    pub store_retry_secs: u64,
    /// Milliseconds between two flushes of progress and metrics to the store (each
    /// renews this process's lease and brings back other replicas' cancels).
    #[arg(long, env = "ORCHESTRATOR_FLUSH_MS", default_value_t = 1000)]
    pub flush_ms: u64,
    /// Milliseconds this process's lease lasts: after it expired, another replica
    /// marks its running operations FAILED `interrupted`.
    #[arg(long, env = "ORCHESTRATOR_LEASE_MS", default_value_t = 10_000)]
    pub lease_ms: u64,
}

impl ServeArgs {
    /// `--max-active` operations at once, `--grace-secs` of drain on shutdown, and
    /// the store's flush interval and lease.
    fn builder(&self) -> OperationsBuilder {
        Operations::builder()
            .with_max_active(self.max_active)
            .with_shutdown_drain(Duration::from_secs(self.grace_secs))
            .with_flush_interval(Duration::from_millis(self.flush_ms))
            .with_lease(Duration::from_millis(self.lease_ms))
    }

    /// The registry to serve, on `--store` (`default_store` when it is not given):
    /// opened, migrated and with this process registered before anything is served.
    ///
    /// # Errors
    ///
    /// A message naming the store, for a bad URL or a store that cannot be opened
    /// (a PostgreSQL is retried for `--store-retry-secs` first).
    pub async fn open_operations(&self, default_store: &str) -> Result<Operations, String> {
        let url: StoreUrl = self
            .store
            .as_deref()
            .unwrap_or(default_store)
            .parse()
            .map_err(|e: InvalidStoreUrl| e.to_string())?;
        let store = url
            .open(
                &self.store_schema,
                Duration::from_secs(self.store_retry_secs),
            )
            .await
            .map_err(|e| format!("cannot open the operation store {url}: {e}"))?;
        let builder = if url.is_exclusive() {
            self.builder().with_exclusive_store()
        } else {
            self.builder()
        };
        let ops = builder
            .open(store)
            .await
            .map_err(|e| format!("cannot open the operation store {url}: {e}"))?;
        tracing::info!(store = %url, "operations kept in {url}");
        Ok(ops)
    }
}

/// How long connections may take to finish after the operations settled.
pub const DRAIN: Duration = http::Server::DEFAULT_DRAIN_TIMEOUT;

/// The process around a server example's `main`: tracing on stderr (`RUST_LOG` to
/// filter, `info` by default), a multi-threaded runtime that runs `server` to its exit
/// code, then at most a second for blocking work that ignores cancellation (it must
/// not keep the process alive).
pub fn run_process(server: impl Future<Output = ExitCode>) -> ExitCode {
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
    let code = runtime.block_on(server);
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// Binds `addr` and prints `listening on http://ADDR` on stdout (port 0: the one
/// picked), then serves `app` with one log line per request, the header read timeout
/// and connection cap of `args`, until SIGTERM or Ctrl+C. Then it cancels every
/// operation of `ops` (so event streams and long-polls get their final record), waits
/// for them (their grace period plus `--grace-secs`), prints what it cancelled and any
/// left running, and drains the connections for at most [`DRAIN`]. A second signal
/// exits the process at once with 130. `auth` only says in the log whether `app`
/// requires a token.
///
/// Exit code 0 after a shutdown, 1 when `addr` cannot be bound.
pub async fn serve_until_signal(
    addr: SocketAddr,
    app: Router,
    ops: Operations,
    args: &ServeArgs,
    auth: bool,
) -> ExitCode {
    let app = app.layer(middleware::from_fn(log_request));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    println!("listening on http://{addr}");
    tracing::info!(%addr, auth, "operations API at http://{addr}/api/v1/operations");

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
            let report = ops.shutdown("server shutting down").await;
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
pub async fn shutdown_signal() {
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
