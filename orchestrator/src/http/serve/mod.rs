//! [`Server`]: serves a [`Router`] over HTTP/1 so that hostile or broken clients cannot
//! lock everyone else out.
//!
//! Locking and lifetime rules:
//!
//! 1. The accept loop is the only writer of new entries in the connection table; a
//!    connection task removes only its own entry, when it ends.
//! 2. The table's mutex is held only to insert, remove or pick a connection to evict:
//!    never across an `.await`.
//! 3. A connection is evicted (closed at once) only while it has never sent a complete
//!    request head, so eviction never cuts off an answer.
//!
//! This file holds the [`Server`] builder and its accept loop; the connection table
//! and the cap are in `table`, one connection's service in `connection`, the
//! 414/431 answers in `limits`.

mod connection;
mod limits;
mod table;

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use connection::serve_connection;
use table::{Conn, Table, default_max_connections};

/// How long the accept loop pauses after an accept error such as `EMFILE` (out of file
/// descriptors), so it neither spins nor exits.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How many never-served connections are closed after an accept error for lack of
/// file descriptors (`EMFILE`, `ENFILE`).
const EVICT_ON_EMFILE: usize = 32;

/// Serves `app` on `listener` with the production defaults of [`Server`]; shorthand for
/// [`Server::new`].
///
/// The returned [`Server`] is a builder: configure it, then `.await` it (or call
/// [`Server::run`]).
///
/// # Examples
///
/// ```no_run
/// use axum::Router;
/// use orchestrator::{Operations, http};
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let app = Router::new()
///         .nest("/api/v1", http::router(Operations::new()))
///         .fallback(http::not_found);
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
///     http::serve(listener, app)
///         .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
///         .await;
///     Ok(())
/// }
/// ```
pub fn serve(listener: TcpListener, app: Router) -> Server {
    Server::new(listener, app)
}

/// An HTTP/1 server for a [`Router`] that bounds what each client may hold.
///
/// | limit | default | what happens |
/// | --- | --- | --- |
/// | [header read timeout](Self::with_header_read_timeout) | 10 s | a request head (request line and headers) not complete within it closes the connection; the clock runs from the moment the server waits for a head, so it also ends a kept-alive connection on which no next request starts |
/// | [idle timeout](Self::with_idle_timeout) | 60 s | a connection on which no byte moved either way for this long, while no handler runs for it, is closed (a client that stopped reading a streamed answer) |
/// | [connection cap](Self::with_max_connections) | 1,024, at most ¾ of the open-file limit | beyond it the oldest connection that has not sent a request yet is closed to make room; when every connection is busy with a request the newcomer is closed at once |
/// | [URI length](Self::with_max_uri_bytes) | 8 KiB | 414 `URI_TOO_LONG` in the envelope |
/// | [header size](Self::with_max_header_bytes) | 32 KiB | 431 `HEADERS_TOO_LARGE` in the envelope |
/// | [drain time](Self::with_drain_timeout) | 5 s | after the shutdown signal, how long in-flight answers may take before their connections are closed |
///
/// Silent sockets therefore cannot starve real clients: they never send a request head,
/// so each new connection evicts one of them, and each dies at the header read timeout
/// anyway. Accept errors are logged and retried after a short pause; they never end
/// the server. When the error is `EMFILE`/`ENFILE` (the cap is set above the
/// open-file limit), the oldest connections that never sent a request are closed too,
/// to free descriptors.
///
/// URIs and headers far beyond these limits are refused by hyper itself (431/414/400
/// with an empty body) before the router sees them; those answers cannot be shaped.
///
/// # Graceful shutdown
///
/// When the [shutdown signal](Self::with_graceful_shutdown) resolves, the server stops
/// accepting, closes idle connections, and lets every in-flight answer finish: a
/// `/wait` long-poll answers with its record and an event stream sends its `done`
/// event once the operation ends. So cancel the operations *in* the signal future
/// (or before it resolves): their waiters and streams then finish within the
/// operations' grace period. After the drain time, what is still open is closed.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use axum::Router;
/// use orchestrator::{Operations, http};
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let ops = Operations::new();
///     let app = Router::new()
///         .nest("/api/v1", http::router(ops.clone()))
///         .fallback(http::not_found);
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
///     println!("listening on http://{}", listener.local_addr()?);
///     http::Server::new(listener, app)
///         .with_header_read_timeout(Duration::from_secs(5))
///         .with_idle_timeout(Duration::from_secs(30))
///         .with_max_connections(512)
///         .with_graceful_shutdown(async move {
///             let _ = tokio::signal::ctrl_c().await;
///             // Streams and long-polls get their final record as the operations end.
///             ops.cancel_all("server shutting down");
///         })
///         .run()
///         .await;
///     Ok(())
/// }
/// ```
#[must_use = "a server does nothing until it is awaited or run"]
pub struct Server {
    listener: TcpListener,
    app: Router,
    config: Config,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Config {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    drain_timeout: Duration,
    max_uri_bytes: usize,
    max_header_bytes: usize,
}

impl Server {
    /// The default header read timeout: 10 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default idle timeout: 60 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default connection cap (lowered to ¾ of the open-file limit where that is
    /// smaller, on Linux).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// The default drain time after the shutdown signal: 5 s.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default longest request target (path and query): 8 KiB.
    pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
    /// The default largest total of header names and values: 32 KiB.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

    /// A server for `app` on `listener`, with the defaults in the table above and no
    /// shutdown signal (it serves until dropped).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// orchestrator::http::Server::new(listener, app).await;
    /// # }
    /// ```
    pub fn new(listener: TcpListener, app: Router) -> Self {
        Self {
            listener,
            app,
            config: Config {
                header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
                idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
                max_connections: default_max_connections(),
                drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
                max_uri_bytes: Self::DEFAULT_MAX_URI_BYTES,
                max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            },
            shutdown: Box::pin(std::future::pending()),
        }
    }

    /// How long a client may take to send a complete request head (default 10 s).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// use std::time::Duration;
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_header_read_timeout(Duration::from_secs(5))
    ///     .await;
    /// # }
    /// ```
    pub const fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long a connection may see no traffic while no handler runs for it (default
    /// 60 s). Keep it above the event stream's keep-alive interval (15 s).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// use std::time::Duration;
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_idle_timeout(Duration::from_secs(120))
    ///     .await;
    /// # }
    /// ```
    pub const fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// At most `max` open connections (default 1,024, or ¾ of the open-file limit when
    /// that is lower; at least 1). Keep it under the process's open-file limit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_max_connections(256)
    ///     .await;
    /// # }
    /// ```
    pub const fn with_max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = if max == 0 { 1 } else { max };
        self
    }

    /// After the shutdown signal, how long in-flight answers may take before their
    /// connections are closed (default 5 s).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// use std::time::Duration;
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_drain_timeout(Duration::from_secs(2))
    ///     .await;
    /// # }
    /// ```
    pub const fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// The longest request target (path and query) answered normally; longer ones get
    /// 414 `URI_TOO_LONG` (default 8 KiB).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_max_uri_bytes(2048)
    ///     .await;
    /// # }
    /// ```
    pub const fn with_max_uri_bytes(mut self, max: usize) -> Self {
        self.config.max_uri_bytes = max;
        self
    }

    /// The largest total of header names and values answered normally; larger ones get
    /// 431 `HEADERS_TOO_LARGE` (default 32 KiB).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// orchestrator::http::Server::new(listener, app)
    ///     .with_max_header_bytes(16 * 1024)
    ///     .await;
    /// # }
    /// ```
    pub const fn with_max_header_bytes(mut self, max: usize) -> Self {
        self.config.max_header_bytes = max;
        self
    }

    /// Shuts down gracefully when `signal` resolves (see [the type's
    /// docs](Self#graceful-shutdown)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     orchestrator::http::Server::new(listener, app)
    ///         .with_graceful_shutdown(async move { let _ = stopped.await; })
    ///         .run(),
    /// );
    /// let _ = stop.send(());
    /// let _ = server.await;
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown = Box::pin(signal);
        self
    }

    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(app: axum::Router) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let server = orchestrator::http::Server::new(listener, app);
    /// println!("listening on http://{}", server.local_addr()?);
    /// server.await;
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the shutdown signal resolves and the connections are drained (or
    /// the drain time is over); forever without a signal.
    ///
    /// # Cancellation safety
    ///
    /// Dropping the future closes the listener and every connection at once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn doc(listener: tokio::net::TcpListener, app: axum::Router) {
    /// orchestrator::http::Server::new(listener, app).run().await;
    /// # }
    /// ```
    pub async fn run(self) {
        let Self {
            listener,
            app,
            config,
            mut shutdown,
        } = self;
        let table = Arc::new(Table::default());
        let graceful = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut next_id = 0u64;
        let mut last_refusal_log: Option<Instant> = None;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        next_id += 1;
                        let conn = Arc::new(Conn::new(next_id));
                        if !table.admit(&conn, config.max_connections) {
                            // Every slot holds a client with a request in flight.
                            drop(stream);
                            if last_refusal_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                                last_refusal_log = Some(Instant::now());
                                tracing::warn!(%peer, max = config.max_connections, "connection cap reached; refusing connections");
                            }
                            continue;
                        }
                        tasks.spawn(serve_connection(stream, app.clone(), conn, graceful.clone(), config, Arc::clone(&table)));
                    }
                    Err(e) if is_per_connection(&e) => {
                        tracing::debug!(error = %e, "accept failed for one connection");
                    }
                    Err(e) => {
                        // Out of file descriptors (the cap is above `ulimit -n`): free
                        // some by closing connections that never sent a request.
                        let freed = if matches!(e.raw_os_error(), Some(23 | 24)) {
                            table.evict_unserved(EVICT_ON_EMFILE)
                        } else {
                            0
                        };
                        tracing::warn!(error = %e, open = table.len(), freed, "accept failed; retrying shortly");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        graceful.cancel();
        let drained = tokio::time::timeout(config.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = tasks.len(),
                drain = ?config.drain_timeout,
                "connections still open after the drain time; closing them"
            );
            tasks.shutdown().await;
        }
    }
}

impl IntoFuture for Server {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Errors of `accept` that concern one connection only (it was reset before we took
/// it): nothing to wait for.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
