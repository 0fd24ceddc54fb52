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

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse as _, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

use super::{ApiError, code};

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

/// 1,024, or ¾ of the soft open-file limit when that is lower (read from
/// `/proc/self/limits` on Linux; elsewhere 1,024).
fn default_max_connections() -> usize {
    let from_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        })
        .map(|soft| (soft / 4 * 3).max(1));
    from_limit.map_or(Server::DEFAULT_MAX_CONNECTIONS, |n| {
        n.min(Server::DEFAULT_MAX_CONNECTIONS)
    })
}

/// The open connections, oldest first.
#[derive(Default)]
struct Table {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Table {
    /// Inserts `conn` if there is room, or can be made by evicting the oldest
    /// connection that never sent a request head (invariant 3).
    fn admit(&self, conn: &Arc<Conn>, max: usize) -> bool {
        let mut conns = self.conns.lock();
        if conns.len() >= max {
            let victim = conns
                .values()
                .find(|c| !c.served.load(Ordering::Acquire))
                .map(|c| c.id);
            let Some(victim) = victim.and_then(|id| conns.remove(&id)) else {
                return false;
            };
            victim.evict.cancel();
        }
        conns.insert(conn.id, Arc::clone(conn));
        true
    }

    /// Closes up to `n` of the oldest connections that never sent a request head;
    /// returns how many.
    fn evict_unserved(&self, n: usize) -> usize {
        let mut conns = self.conns.lock();
        let victims: Vec<u64> = conns
            .values()
            .filter(|c| !c.served.load(Ordering::Acquire))
            .take(n)
            .map(|c| c.id)
            .collect();
        for id in &victims {
            if let Some(victim) = conns.remove(id) {
                victim.evict.cancel();
            }
        }
        victims.len()
    }

    fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.conns.lock().len()
    }
}

/// What the server knows about one connection.
struct Conn {
    id: u64,
    opened: Instant,
    /// A complete request head arrived (the service was called at least once).
    served: AtomicBool,
    /// Requests whose handler has not returned yet.
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when a byte was last read or written.
    last_activity_ms: AtomicU64,
    /// Cancelled to close the connection at once (eviction).
    evict: CancellationToken,
}

impl Conn {
    fn new(id: u64) -> Self {
        Self {
            id,
            opened: Instant::now(),
            served: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(0),
            evict: CancellationToken::new(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.opened + last + idle
    }
}

/// Decrements the in-flight count when a handler returns (or is dropped).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> Self {
        conn.served.store(true, Ordering::Release);
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    conn: Arc<Conn>,
    graceful: CancellationToken,
    config: Config,
    table: Arc<Table>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: Arc::clone(&conn),
    });
    let for_service = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let guard = InFlight::start(Arc::clone(&for_service));
        let mut app = app.clone();
        async move {
            let response = match oversize(&req, &config) {
                Some(error) => error.into_response(),
                None => match app.call(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            };
            drop(guard);
            Ok::<Response, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let idle_deadline = conn.idle_deadline(config.idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(conn = conn.id, error = %e, "connection ended with an error");
                }
                break;
            }
            () = conn.evict.cancelled() => {
                tracing::debug!(conn = conn.id, "closed a connection that sent no request, to make room");
                break;
            }
            () = graceful.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                let idle = conn.in_flight.load(Ordering::Acquire) == 0
                    && Instant::now() >= conn.idle_deadline(config.idle_timeout);
                if idle {
                    tracing::debug!(conn = conn.id, "closed an idle connection");
                    break;
                }
            }
        }
    }
    table.remove(conn.id);
}

/// The 414/431 envelope for a request over the configured limits.
fn oversize<B>(req: &Request<B>, config: &Config) -> Option<ApiError> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > config.max_uri_bytes {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            code::URI_TOO_LONG,
            format!(
                "the request target is {uri_len} bytes, more than the {} allowed",
                config.max_uri_bytes
            ),
        ));
    }
    let header_len: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_len > config.max_header_bytes {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::HEADERS_TOO_LARGE,
            format!(
                "the request headers are {header_len} bytes, more than the {} allowed",
                config.max_header_bytes
            ),
        ));
    }
    None
}

/// The socket, noting every byte read or written on the connection's record.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
