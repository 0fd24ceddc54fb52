//! `http::Server` against hostile and unlucky clients, over real loopback sockets:
//! silent sockets beyond the connection cap, slow headers, idle keep-alive
//! connections, oversized request heads, the stream cap, bearer auth, and graceful
//! shutdown that still delivers the final record to event streams and long-polls.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use hyper::body::Bytes;
use orchestrator::http::{self, code};
use orchestrator::{OperationId, OperationSpec, Operations};
use orchestrator_examples::server::app_with;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use support::{Client, Sse};

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(5);

/// A `Server` on 127.0.0.1:0 over the example app, shut down when `stop` resolves.
struct Served {
    addr: SocketAddr,
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_with(
    ops: Operations,
    max_streams: usize,
    token: Option<&str>,
    configure: impl FnOnce(http::Server) -> http::Server,
) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let server = configure(http::serve(listener, app_with(ops, max_streams, token)));
    let task = tokio::spawn(server.run());
    Served {
        addr,
        client: Client::new(addr),
        task,
    }
}

/// Reads from `stream` until the peer closes it (EOF or reset); panics after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .unwrap_or_else(|_| panic!("the server did not close the connection within {limit:?}"));
    seen
}

async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_beyond_the_cap_do_not_lock_out_a_real_client() {
    // A header timeout far longer than the test: only eviction can make room.
    let served = serve_with(Operations::new(), 16, None, |s| {
        s.with_max_connections(8)
            .with_header_read_timeout(Duration::from_secs(600))
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(served.addr).await.expect("connect"));
    }
    let started = Instant::now();
    for _ in 0..3 {
        let reply = within(
            SOON,
            "a real request",
            served.client.get("/api/v1/operations"),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(started.elapsed() < SOON);
    // The oldest silent sockets were closed to make room; the server still holds at
    // most its cap (8), so at least 40 - 8 of them see their connection closed.
    let mut closed = 0;
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 32,
        "only {closed} of 40 silent sockets were closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_client_is_dropped_after_the_header_read_timeout() {
    let served = serve_with(Operations::new(), 16, None, |s| {
        s.with_header_read_timeout(Duration::from_millis(500))
    })
    .await;
    // Half a request head, then nothing: the old server waited forever (46 s seen).
    let mut slow = TcpStream::connect(served.addr).await.expect("connect");
    slow.write_all(b"GET /api/v1/operations HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let answer = closed_within(&mut slow, SOON).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed before the timeout"
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A socket that sends nothing at all is closed the same way.
    let mut silent = TcpStream::connect(served.addr).await.expect("connect");
    closed_within(&mut silent, SOON).await;
    // Meanwhile others are served.
    assert_eq!(served.client.get("/api/v1/operations").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let served = serve_with(Operations::new(), 16, None, |s| {
        s.with_idle_timeout(Duration::from_millis(500))
            .with_header_read_timeout(Duration::from_secs(600))
    })
    .await;
    let mut conn = TcpStream::connect(served.addr).await.expect("connect");
    conn.write_all(b"GET /api/v1/operations HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = within(SOON, "the answer", conn.read(&mut buf))
        .await
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // Kept alive, then idle: closed by the idle timeout, not the 600 s header timeout.
    closed_within(&mut conn, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_uris_and_headers_get_414_and_431_in_the_envelope() {
    let served = serve_with(Operations::new(), 16, None, |s| {
        s.with_max_uri_bytes(1024).with_max_header_bytes(4096)
    })
    .await;
    let c = &served.client;
    let long = format!("/api/v1/operations?operation_type={}", "a".repeat(2000));
    assert_eq!(c.get(&long).await.error_code(414), code::URI_TOO_LONG);
    let response = c
        .request_with_header(
            Method::GET,
            "/api/v1/operations",
            ("x-padding", "p".repeat(8000)),
        )
        .await;
    assert_eq!(response.error_code(431), code::HEADERS_TOO_LARGE);
    // Both answers can come from any route, so the document lists them for every
    // operation (a client or fuzzer reading it is not surprised by them).
    let doc = c.get("/api/v1/openapi.json").await.body;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("item") {
            for status in ["414", "431"] {
                let response = &operation["responses"][status];
                assert!(
                    response.is_object(),
                    "{method} {path} does not document {status}"
                );
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_cap_get_503_with_retry_after() {
    let ops = Operations::new();
    let served = serve_with(ops.clone(), 1, None, |s| s).await;
    let c = &served.client;
    let id = c.start_dummy(1000, 100).await;
    let events = format!("/api/v1/operations/{id}/events");
    let mut first = Sse::new(c.request(Method::GET, &events, None, Bytes::new()).await);
    within(SOON, "the first event", first.next()).await;

    let over = c.request(Method::GET, &events, None, Bytes::new()).await;
    assert_eq!(over.status().as_u16(), 503);
    assert_eq!(over.headers()["retry-after"], "5");
    let over = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=1"))
        .await;
    assert_eq!(over.error_code(503), code::TOO_MANY_STREAMS);

    // Closing the stream frees its slot.
    drop(first);
    within(SOON, "a free slot", async {
        loop {
            let reply = c
                .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=1"))
                .await;
            if reply.status == 200 {
                break;
            }
            assert_eq!(reply.error_code(503), code::TOO_MANY_STREAMS);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_delivers_the_final_record_to_streams_and_waiters() {
    let ops = Operations::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal_ops = ops.clone();
    // Cap of 2: the stream and the long-poll fill it, so a probe seeing 503 proves
    // both are in flight before the shutdown starts.
    let server = tokio::spawn(
        http::serve(listener, app_with(ops.clone(), 2, None))
            .with_drain_timeout(Duration::from_secs(10))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                signal_ops.cancel_all("server shutting down");
            })
            .run(),
    );
    let c = Client::new(addr);
    let id = c.start_dummy(1000, 100).await;
    let mut events = c.events(&id).await;
    within(SOON, "the first event", events.next()).await;
    let probe = Client::new(addr);
    // The probe's own long-poll competes for the second slot: if it holds it when the
    // waiter arrives, the waiter gets the 503 and ends; then start another waiter.
    let mut in_flight = None;
    within(SOON, "the long-poll in flight", async {
        loop {
            let waiter = {
                let c = Client::new(addr);
                let id = id.clone();
                tokio::spawn(async move {
                    c.get(&format!("/api/v1/operations/{id}/wait?timeout_ms=60000"))
                        .await
                })
            };
            while !waiter.is_finished() {
                let status = probe
                    .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=0"))
                    .await
                    .status;
                // Both slots taken (the stream and the waiter) and the waiter still
                // waiting: it is in flight.
                if status == 503 && !waiter.is_finished() {
                    in_flight = Some(waiter);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await;
    let waiter = in_flight.expect("a waiter in flight");

    let _ = stop.send(());
    let done = within(SOON, "the done event", async {
        loop {
            match events.next().await {
                Some((name, data)) if name == "done" => break data,
                Some(_) => {}
                None => panic!("the stream ended without a done event"),
            }
        }
    })
    .await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    assert_eq!(done["cancel_reason"], "server shutting down", "{done}");
    let waited = within(SOON, "the long-poll answer", waiter)
        .await
        .expect("waiter");
    assert_eq!(waited.data()["status"], "CANCELLED", "{waited:?}");
    within(SOON, "the server to stop", server)
        .await
        .expect("server task");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_when_a_stream_never_ends() {
    let ops = Operations::new();
    // Never cancelled and never ending: only the drain time ends its stream.
    let id: OperationId = ops.create(OperationSpec::new("stuck")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        http::serve(listener, app_with(ops.clone(), 16, None))
            .with_drain_timeout(Duration::from_millis(500))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    let c = Client::new(addr);
    let mut events = c.events(&id).await;
    within(SOON, "the first event", events.next()).await;
    let _ = stop.send(());
    within(SOON, "the server to stop after its drain time", server)
        .await
        .expect("server task");
    // The connection was closed: the stream ends (or breaks) instead of hanging.
    within(SOON, "the stream to end", async {
        let _ = tokio::spawn(async move { while events.next().await.is_some() {} }).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_layer_answers_401_in_the_envelope_unless_the_token_is_right() {
    let served = serve_with(Operations::new(), 16, Some("s3cr3t-token"), |s| s).await;
    let c = &served.client;
    for (header, what) in [
        (None, "no token"),
        (Some("Bearer wrong-token!"), "wrong token, same length"),
        (Some("Bearer s3cr3t"), "a prefix of the token"),
        (Some("Basic czNjcjN0LXRva2Vu"), "another scheme"),
    ] {
        for path in ["/api/v1/operations", "/api/v1/openapi.json", "/nowhere"] {
            let response = match header {
                Some(value) => {
                    c.raw_with_header(Method::GET, path, ("authorization", value.to_owned()))
                        .await
                }
                None => c.request(Method::GET, path, None, Bytes::new()).await,
            };
            assert_eq!(response.status().as_u16(), 401, "{what} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = support::body_json(response).await;
            assert_eq!(body["error"]["code"], code::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(body["success"], false);
        }
    }
    let ok = c
        .request_with_header(
            Method::GET,
            "/api/v1/operations",
            ("authorization", "Bearer s3cr3t-token".to_owned()),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

/// A multiplexed stream takes one slot of the cap, whatever it follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiplexed_stream_takes_one_slot() {
    let ops = Operations::new();
    let served = serve_with(ops.clone(), 1, None, |s| s).await;
    let c = &served.client;
    let a = c.start_dummy(1000, 100).await;
    let b = c.start_dummy(1000, 100).await;
    let path = format!("/api/v1/operations/events?ids={a},{b}");
    let mut first = Sse::new(c.request(Method::GET, &path, None, Bytes::new()).await);
    within(SOON, "the first event", first.next()).await;
    within(SOON, "the second event", first.next()).await;
    // The one slot is taken: a second stream of either kind is refused.
    let over = c.request(Method::GET, &path, None, Bytes::new()).await;
    assert_eq!(over.status().as_u16(), 503);
    let over = c
        .get(&format!("/api/v1/operations/{a}/wait?timeout_ms=1"))
        .await;
    assert_eq!(over.error_code(503), code::TOO_MANY_STREAMS);
    drop(first);
    within(SOON, "a free slot", async {
        loop {
            let reply = c
                .get(&format!("/api/v1/operations/{b}/wait?timeout_ms=1"))
                .await;
            if reply.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
