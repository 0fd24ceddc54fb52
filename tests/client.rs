//! The client side against real servers on loopback: the executor's completion,
//! failure and cancellation paths, the retry policy (counted on the server), a server
//! that is down, polls that fail for a while, and an operation that vanishes.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::post;
use orchestrator::client::{
    ApiClient, CancelTrigger, ClientError, ExecutorOutcome, FailureKind, OperationAdapter,
    OperationExecutor, Output, RetryPolicy,
};
use orchestrator::http::{ApiError, ApiResult};
use orchestrator::{
    CancellationToken, ErrorCode, OperationId, OperationSpec, OperationStatus, Operations,
    StartedOperation,
};
use orchestrator_examples::dummy::{DummyAdapter, DummyRequest, DummySummary};

/// Retries a few milliseconds apart, so the policy's shape is tested, not its waits.
const FAST: RetryPolicy = RetryPolicy::new().with_base_delay(Duration::from_millis(2));

fn client(addr: std::net::SocketAddr) -> ApiClient {
    ApiClient::new(&format!("http://{addr}"))
        .expect("client")
        .with_retry(FAST)
}

fn executor(client: ApiClient) -> OperationExecutor<ApiClient> {
    OperationExecutor::new(client)
        .with_output(Output::Silent)
        .with_poll_interval(Duration::from_millis(20))
}

fn dummy(iterations: u64, interval_ms: u64) -> DummyAdapter {
    DummyAdapter(DummyRequest {
        iterations,
        interval_ms,
    })
}

/// An adapter that only names a start endpoint.
struct StartAt(&'static str);

impl OperationAdapter for StartAt {
    type Request = orchestrator::client::EmptyRequest;

    fn start_path(&self) -> &str {
        self.0
    }

    fn request(&self) -> &Self::Request {
        &orchestrator::client::EmptyRequest {}
    }
}

/// Starts an operation that fails with `disk on fire` after a moment.
async fn start_doomed(State(ops): State<Operations>) -> ApiResult<StartedOperation> {
    let handle = ops.spawn(OperationSpec::new("doomed"), |ctx| async move {
        ctx.sleep(Duration::from_millis(30))
            .await
            .map_err(|e| e.to_string())?;
        Err::<(), _>("disk on fire".to_owned())
    })?;
    Ok(handle.started().into())
}

/// Starts an operation that ignores cancellation (until its grace period ends).
async fn start_stubborn(State(ops): State<Operations>) -> ApiResult<StartedOperation> {
    let handle = ops.spawn(OperationSpec::new("stubborn"), |_ctx| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, String>(())
    })?;
    Ok(handle.started().into())
}

/// The example app plus the two test-only start routes above.
fn test_app(ops: Operations) -> Router {
    orchestrator_examples::server::app(ops.clone()).merge(
        Router::new()
            .route("/api/v1/doomed/start", post(start_doomed))
            .route("/api/v1/stubborn/start", post(start_stubborn))
            .with_state(ops),
    )
}

/// The one active operation of `ops`, once it has reported `steps` steps.
async fn running_with(ops: &Operations, steps: u64) -> OperationId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = ops.list(&orchestrator::OperationFilter::new().active_only());
        if let Some(info) = page.operations.first() {
            if info.progress.steps_completed >= steps {
                return info.operation_id.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no operation reached {steps} steps"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_completed_operation_exits_zero_with_the_adapters_message() {
    let ops = Operations::new();
    let server = support::serve(ops.clone()).await;
    let run = executor(client(server.addr))
        .execute(&dummy(3, 10))
        .await
        .expect("run");
    assert_eq!(run.outcome, ExecutorOutcome::Completed);
    assert_eq!(run.exit_code(), 0);
    assert_eq!(run.message, "Completed 3 iterations");
    assert!(run.is_settled());
    let info = run.info.expect("final record");
    assert_eq!(info, ops.get(&run.operation_id).expect("on the server"));
}

#[tokio::test]
async fn a_failed_operation_exits_one_with_the_servers_message() {
    let ops = Operations::new();
    let server = support::serve_app(test_app(ops.clone())).await;
    let run = executor(client(server.addr))
        .execute(&StartAt("/doomed/start"))
        .await
        .expect("run");
    assert_eq!(run.outcome, ExecutorOutcome::Failed);
    assert_eq!(run.exit_code(), 1);
    assert_eq!(run.message, "Failed: disk on fire");
    let info = run.info.expect("final record");
    assert_eq!(info.error_message.as_deref(), Some("disk on fire"));
}

#[tokio::test]
async fn the_cancel_trigger_stops_the_server_side_and_reports_the_servers_count() {
    let ops = Operations::new();
    let server = support::serve(ops.clone()).await;
    let token = CancellationToken::new();
    let executor = executor(client(server.addr))
        .with_cancel_trigger(CancelTrigger::from_token(token.clone()))
        .with_cancel_reason("test says stop");
    let run = tokio::spawn(async move { executor.execute(&dummy(100, 50)).await });

    let id = running_with(&ops, 2).await;
    let fired = Instant::now();
    token.cancel();
    let info = tokio::time::timeout(Duration::from_secs(1), ops.wait(&id))
        .await
        .expect("the server's operation stopped within 1 s of the trigger")
        .expect("known");
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.cancel_reason.as_deref(), Some("test says stop"));
    assert!(fired.elapsed() < Duration::from_secs(1));

    let run = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the executor returned")
        .expect("no panic")
        .expect("run");
    assert_eq!(run.outcome, ExecutorOutcome::Cancelled);
    assert_eq!(run.exit_code(), 130);
    assert!(run.is_settled());
    let server_count = info
        .result_as::<DummySummary>()
        .expect("the cancelled task kept its summary")
        .iterations_completed;
    assert!(server_count >= 2, "{server_count}");
    assert_eq!(
        run.message,
        format!("Cancelled after {server_count} iterations")
    );
}

#[tokio::test]
async fn a_second_request_stops_waiting_at_once() {
    let ops = Operations::new();
    let server = support::serve_app(test_app(ops.clone())).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let requests =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|()| ((), rx)) },
        );
    let executor = executor(client(server.addr))
        .with_cancel_trigger(CancelTrigger::from_stream(requests))
        .with_cancel_wait(Duration::from_secs(30));
    let run = tokio::spawn(async move { executor.execute(&StartAt("/stubborn/start")).await });

    let id = running_with(&ops, 0).await;
    // Let the executor read it at least once.
    tokio::time::sleep(Duration::from_millis(60)).await;
    tx.send(()).expect("first");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ops.get(&id).expect("known").cancel_reason.is_none() {
        assert!(Instant::now() < deadline, "cancel never reached the server");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = Instant::now();
    tx.send(()).expect("second");
    let run = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("returned")
        .expect("no panic")
        .expect("run");
    assert!(
        second.elapsed() < Duration::from_millis(500),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(run.outcome, ExecutorOutcome::Cancelled);
    assert!(!run.is_settled());
    assert_eq!(
        run.info.as_ref().map(|i| i.status),
        Some(OperationStatus::Running)
    );
    assert!(
        run.message.starts_with("Stopped waiting: "),
        "{}",
        run.message
    );
}

#[tokio::test]
async fn an_operation_that_will_not_stop_is_reported_after_the_cancel_wait() {
    let ops = Operations::new();
    let server = support::serve_app(test_app(ops.clone())).await;
    let token = CancellationToken::new();
    let executor = executor(client(server.addr))
        .with_cancel_trigger(CancelTrigger::from_token(token.clone()))
        .with_cancel_wait(Duration::from_millis(200));
    let run = tokio::spawn(async move { executor.execute(&StartAt("/stubborn/start")).await });
    running_with(&ops, 0).await;
    token.cancel();
    let run = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("returned")
        .expect("no panic")
        .expect("run");
    assert_eq!(run.exit_code(), 130);
    assert!(!run.is_settled());
    assert!(
        run.message.starts_with("Still not stopped"),
        "{}",
        run.message
    );
}

/// Answers `POST /api/v1/status/{code}/start` with that status and an error envelope,
/// counting the requests.
async fn serve_status_codes() -> (support::Server, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/api/v1/status/{code}/start",
            post(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    let status = StatusCode::from_u16(code).expect("a status code");
                    ApiError::new(status, "TEST_CODE", format!("answered {code}"))
                },
            ),
        )
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            }
        }));
    (support::serve_app(app).await, hits)
}

#[tokio::test]
async fn a_4xx_answer_is_never_retried() {
    let (server, hits) = serve_status_codes().await;
    for code in [400, 404, 409, 422] {
        hits.store(0, Ordering::SeqCst);
        let path: &'static str = format!("/status/{code}/start").leak();
        let err = executor(client(server.addr))
            .execute(&StartAt(path))
            .await
            .expect_err("refused");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{code}: {err}");
        match err {
            ClientError::Rejected {
                status,
                code: c,
                message,
            } => {
                assert_eq!((status, c.as_str()), (code, "TEST_CODE"));
                assert_eq!(message, format!("answered {code}"));
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_5xx_answer_is_tried_exactly_three_times() {
    let (server, hits) = serve_status_codes().await;
    for code in [500, 503] {
        hits.store(0, Ordering::SeqCst);
        let path: &'static str = format!("/status/{code}/start").leak();
        let err = executor(client(server.addr))
            .execute(&StartAt(path))
            .await
            .expect_err("server error");
        assert_eq!(hits.load(Ordering::SeqCst), 3, "{code}: {err}");
        assert!(
            matches!(err, ClientError::Server { status, attempts: 3, .. } if status == code),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 1);
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_one_clear_error_after_the_backoff() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let policy = RetryPolicy::new().with_base_delay(Duration::from_millis(20));
    let client = ApiClient::new(&format!("http://{addr}"))
        .expect("client")
        .with_retry(policy);
    let started = Instant::now();
    let err = executor(client)
        .execute(&dummy(3, 10))
        .await
        .expect_err("nobody there");
    let took = started.elapsed();
    assert_eq!(
        err.to_string(),
        format!("cannot reach http://{addr}: is the server running?")
    );
    assert!(
        matches!(err, ClientError::Unreachable { attempts: 5, .. }),
        "{err:?}"
    );
    // 20 + 40 + 80 + 160 ms of backoff, and not much more.
    assert!(
        took >= policy.total_delay(FailureKind::Connection),
        "gave up after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(err.exit_code(), 1);
}

/// The example app, where the first `fail` polls of `GET /api/v1/operations/{id}`
/// answer 503 (and the event stream always does, so the client polls); counts those
/// polls.
async fn serve_flaky_polls(ops: Operations, fail: usize) -> (support::Server, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let app = orchestrator_examples::server::app(ops).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            let counter = counter.clone();
            async move {
                if req.uri().path().ends_with("/events") {
                    return (StatusCode::SERVICE_UNAVAILABLE, "no streams").into_response();
                }
                let is_poll = req.method() == axum::http::Method::GET
                    && req.uri().path().starts_with("/api/v1/operations/");
                if is_poll && counter.fetch_add(1, Ordering::SeqCst) < fail {
                    return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
                }
                next.run(req).await
            }
        },
    ));
    (support::serve_app(app).await, polls)
}

#[tokio::test]
async fn failed_polls_are_retried_without_ending_the_run() {
    let ops = Operations::new();
    let (server, polls) = serve_flaky_polls(ops, 2).await;
    let run = executor(client(server.addr))
        .execute(&dummy(3, 20))
        .await
        .expect("the run survives two failed polls");
    assert_eq!(run.message, "Completed 3 iterations");
    assert!(polls.load(Ordering::SeqCst) > 2);
}

#[tokio::test]
async fn polls_that_keep_failing_end_the_run_once_the_policy_is_used_up() {
    let ops = Operations::new();
    let (server, polls) = serve_flaky_polls(ops, usize::MAX).await;
    let err = executor(client(server.addr))
        .execute(&dummy(100, 20))
        .await
        .expect_err("no status ever");
    assert_eq!(polls.load(Ordering::SeqCst), 3, "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("server error after 3 tries: try later (503 HTTP_503)"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_operation_that_vanishes_ends_the_run_with_a_clear_error() {
    let ops = Operations::new();
    let server = support::serve(ops).await;
    let gone = OperationId::generate(&"dummy".into());
    let err = executor(client(server.addr))
        .follow_plain(&gone)
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, ClientError::Vanished(ref id) if *id == gone),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("operation {gone} vanished: the server no longer knows it")
    );
}

#[tokio::test]
async fn the_same_executor_follows_the_in_process_registry() {
    let ops = Operations::new();
    let svc = orchestrator_examples::dummy::DummyService::new(ops.clone());
    let started = svc
        .start_dummy_task(100, Duration::from_millis(20))
        .expect("start");
    let token = CancellationToken::new();
    let executor = OperationExecutor::new(ops.clone())
        .with_output(Output::Silent)
        .with_poll_interval(Duration::from_millis(10))
        .with_cancel_trigger(CancelTrigger::from_token(token.clone()));
    let adapter = dummy(100, 20);
    let follow = executor.follow(&started.operation_id, &adapter);
    let cancel = async {
        running_with(&ops, 2).await;
        token.cancel();
    };
    let (run, ()) = tokio::join!(follow, cancel);
    let run = run.expect("run");
    let server_count = ops
        .get(&started.operation_id)
        .expect("known")
        .result_as::<DummySummary>()
        .expect("summary")
        .iterations_completed;
    assert_eq!(run.exit_code(), 130);
    assert_eq!(
        run.message,
        format!("Cancelled after {server_count} iterations")
    );
}

#[tokio::test]
async fn list_status_and_cancel_through_the_client() {
    let ops = Operations::new();
    let server = support::serve(ops.clone()).await;
    let api = client(server.addr);
    let id = executor(api.clone())
        .start(&dummy(100, 50))
        .await
        .expect("started");
    let page = api
        .list(&orchestrator::OperationFilter::new().with_status(OperationStatus::Running))
        .await
        .expect("list");
    assert_eq!(page.total_count, 1);
    assert_eq!(page.operations[0].operation_id, id);
    let info = api.cancel(&id, Some("enough")).await.expect("cancel");
    assert_eq!(info.cancel_reason.as_deref(), Some("enough"));
    let done = tokio::time::timeout(Duration::from_secs(2), ops.wait(&id))
        .await
        .expect("stopped")
        .expect("known");
    assert_eq!(done.status, OperationStatus::Cancelled);
    assert_eq!(api.get(&id).await.expect("status"), done);
    let err = api.cancel(&id, None).await.expect_err("finished");
    assert_eq!(err.code(), Some(&ErrorCode::OperationFinished));
}

/// The example app, counting reads of one record (`GET /operations/{id}`) and opened
/// event streams; `events` answers instead of the events route when given.
async fn serve_counting(
    ops: Operations,
    events: Option<fn() -> axum::response::Response>,
) -> (support::Server, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let streams = Arc::new(AtomicUsize::new(0));
    let (p, st) = (polls.clone(), streams.clone());
    let app = orchestrator_examples::server::app(ops).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            let (p, st) = (p.clone(), st.clone());
            async move {
                let path = req.uri().path().to_owned();
                let get = req.method() == axum::http::Method::GET;
                if get && path.ends_with("/events") {
                    st.fetch_add(1, Ordering::SeqCst);
                    if let Some(answer) = events {
                        return answer();
                    }
                } else if get
                    && path.starts_with("/api/v1/operations/op_")
                    && path.matches('/').count() == 4
                {
                    p.fetch_add(1, Ordering::SeqCst);
                }
                next.run(req).await
            }
        },
    ));
    (support::serve_app(app).await, polls, streams)
}

#[tokio::test]
async fn the_executor_follows_by_events_and_does_not_poll() {
    let ops = Operations::new();
    let (server, polls, streams) = serve_counting(ops, None).await;
    let run = executor(client(server.addr))
        .execute(&dummy(5, 20))
        .await
        .expect("run");
    assert_eq!(run.message, "Completed 5 iterations");
    assert_eq!(streams.load(Ordering::SeqCst), 1);
    assert_eq!(polls.load(Ordering::SeqCst), 0, "followed by polling");
}

#[tokio::test]
async fn without_the_events_route_the_executor_polls() {
    for answer in [
        || (StatusCode::NOT_FOUND, "no such route").into_response(),
        || (StatusCode::METHOD_NOT_ALLOWED, "").into_response(),
    ] {
        let ops = Operations::new();
        let (server, polls, streams) = serve_counting(ops, Some(answer)).await;
        let run = executor(client(server.addr))
            .execute(&dummy(3, 20))
            .await
            .expect("run");
        assert_eq!(run.message, "Completed 3 iterations");
        assert_eq!(streams.load(Ordering::SeqCst), 1);
        assert!(polls.load(Ordering::SeqCst) > 0);
    }
}

#[tokio::test]
async fn a_stream_that_breaks_off_is_followed_by_polling() {
    fn cut_short() -> axum::response::Response {
        // A stream with a keep-alive and no record, then the end: broken.
        (
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            ": hello\n\n",
        )
            .into_response()
    }
    let ops = Operations::new();
    let (server, polls, _) = serve_counting(ops, Some(cut_short)).await;
    let run = executor(client(server.addr))
        .execute(&dummy(3, 20))
        .await
        .expect("run");
    assert_eq!(run.message, "Completed 3 iterations");
    assert!(polls.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn events_are_records_ending_with_the_terminal_one() {
    use futures::StreamExt;
    let ops = Operations::new();
    let server = support::serve(ops.clone()).await;
    let api = client(server.addr);
    let id = executor(api.clone())
        .start(&dummy(4, 30))
        .await
        .expect("started");
    let records: Vec<_> = api.events(&id).await.expect("stream").collect().await;
    let (last, rest) = records.split_last().expect("records");
    let last = last.as_ref().expect("record");
    assert_eq!(last.status, OperationStatus::Completed);
    assert!(
        rest.iter()
            .all(|r| !r.as_ref().expect("record").status.is_terminal())
    );
    let gone = OperationId::generate(&"dummy".into());
    let err = api.events(&gone).await.expect_err("unknown");
    assert_eq!(err.code(), Some(&ErrorCode::OperationNotFound));
}

/// A raw HTTP/1 server on loopback that answers every connection with `head`, then
/// `body` (produced in pieces), then closes.
async fn serve_raw(head: &'static str, body: fn(usize) -> Option<Vec<u8>>) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let mut n = 0;
                while let Some(piece) = body(n) {
                    if socket.write_all(&piece).await.is_err() {
                        return;
                    }
                    n += 1;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn hostile_event_streams_end_in_an_error_never_a_panic() {
    use futures::StreamExt;
    const HEAD: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let endless_line: fn(usize) -> Option<Vec<u8>> = |n| (n < 64).then(|| vec![b'a'; 64 * 1024]);
    let endless_event: fn(usize) -> Option<Vec<u8>> =
        |n| (n < 64).then(|| b"data: x\n".repeat(8 * 1024));
    let not_a_record: fn(usize) -> Option<Vec<u8>> =
        |n| (n == 0).then(|| b"event: done\ndata: {\"operation_id\": 7}\n\n".to_vec());
    let id = OperationId::generate(&"dummy".into());
    for body in [endless_line, endless_event, not_a_record] {
        let addr = serve_raw(HEAD, body).await;
        let api = client(addr);
        let mut events = api.events(&id).await.expect("opened");
        let first = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("bounded");
        assert!(
            matches!(first, Some(Err(ClientError::EventStream { .. }))),
            "{first:?}"
        );
        assert!(events.next().await.is_none(), "ends after the error");
    }
    // Not a stream at all.
    let addr = serve_raw(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n",
        |n| (n == 0).then(|| b"<html>".to_vec()),
    )
    .await;
    let err = client(addr).events(&id).await.expect_err("not SSE");
    assert!(
        matches!(err, ClientError::InvalidResponse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn metrics_wait_and_delete_through_the_client() {
    let ops = Operations::new();
    let server = support::serve(ops.clone()).await;
    let api = client(server.addr);
    let gate = CancellationToken::new();
    let open = gate.clone();
    let handle = ops
        .spawn(OperationSpec::new("metered"), move |ctx| async move {
            ctx.metric(serde_json::json!({"epoch": 1}));
            ctx.metric(serde_json::json!({"epoch": 2}));
            open.cancelled().await;
            Ok::<_, String>(())
        })
        .expect("spawn");
    let id = handle.id().clone();
    // Still running: the long-poll answers at its timeout with the running record.
    let info = api
        .wait(&id, Duration::from_millis(50))
        .await
        .expect("wait");
    assert_eq!(info.status, OperationStatus::Running);
    let page = api.metrics(&id, 0).await.expect("metrics");
    assert_eq!(page.metrics.len(), 2);
    assert_eq!(page.cursor, 2);
    assert!(
        api.metrics(&id, page.cursor)
            .await
            .expect("metrics")
            .metrics
            .is_empty()
    );
    // DELETE of a running operation asks it to cancel.
    let answer = api.delete(&id).await.expect("delete");
    assert!(!answer.deleted);
    gate.cancel();
    let info = api.wait(&id, Duration::from_secs(30)).await.expect("wait");
    assert!(info.status.is_terminal(), "{info:?}");
    let answer = api.delete(&id).await.expect("delete");
    assert!(answer.deleted);
    let err = api.get(&id).await.expect_err("deleted");
    assert_eq!(err.code(), Some(&ErrorCode::OperationNotFound));
}

#[tokio::test]
async fn the_executor_writes_to_the_callers_writers() {
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let text = |w: &Shared| String::from_utf8(w.0.lock().expect("lock").clone()).expect("utf-8");
    let ops = Operations::new();
    let server = support::serve(ops).await;
    let (out, notes) = (Shared::default(), Shared::default());
    let run = OperationExecutor::new(client(server.addr))
        .with_output(Output::Terminal)
        .with_writer(out.clone())
        .with_notices(notes.clone())
        .execute(&dummy(2, 10))
        .await
        .expect("run");
    assert_eq!(text(&out), "Completed 2 iterations\n");
    assert_eq!(text(&notes), format!("Started {}\n", run.operation_id));
}

#[tokio::test]
async fn a_request_that_does_not_serialise_is_an_error_and_nothing_is_sent() {
    /// A map with non-string keys: serde_json refuses it.
    struct BadKeys(std::collections::BTreeMap<(u8, u8), u8>);
    impl serde::Serialize for BadKeys {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize(s)
        }
    }
    struct Bad(BadKeys);
    impl OperationAdapter for Bad {
        type Request = BadKeys;
        fn start_path(&self) -> &str {
            "/dummy/start"
        }
        fn request(&self) -> &BadKeys {
            &self.0
        }
    }
    struct Null;
    impl OperationAdapter for Null {
        type Request = Option<u64>;
        fn start_path(&self) -> &str {
            "/dummy/start"
        }
        fn request(&self) -> &Option<u64> {
            &None
        }
    }
    // A port nobody listens on: a request that went out would be `Unreachable`.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let exec = executor(client(addr));
    let err = exec
        .start(&Bad(BadKeys([((1, 2), 3)].into())))
        .await
        .expect_err("not JSON");
    assert!(matches!(err, ClientError::RequestBody { .. }), "{err:?}");
    let err = exec.start(&Null).await.expect_err("null");
    assert!(matches!(err, ClientError::RequestBody { .. }), "{err:?}");
}

/// A start endpoint whose answer is held back until `release` is cancelled, while the
/// operation it started already runs (cooperatively) on the server.
async fn start_held(
    State((ops, release)): State<(Operations, CancellationToken)>,
) -> ApiResult<StartedOperation> {
    let handle = ops.spawn(OperationSpec::new("held"), |ctx| async move {
        ctx.sleep(Duration::from_secs(3600)).await
    })?;
    release.cancelled().await;
    Ok(handle.started().into())
}

/// Ctrl+C while the start request is under way used to return `Interrupted` at once,
/// leaving what the server had started running for ever.
#[tokio::test]
async fn a_cancel_during_the_start_request_cancels_what_it_started() {
    let ops = Operations::new();
    let release = CancellationToken::new();
    let app = orchestrator_examples::server::app(ops.clone()).merge(
        Router::new()
            .route("/api/v1/held/start", post(start_held))
            .with_state((ops.clone(), release.clone())),
    );
    let server = support::serve_app(app).await;
    let token = CancellationToken::new();
    let executor =
        executor(client(server.addr)).with_cancel_trigger(CancelTrigger::from_token(token.clone()));
    let run = tokio::spawn(async move { executor.execute(&StartAt("/held/start")).await });
    let id = running_with(&ops, 0).await;
    token.cancel();
    // The answer arrives only after the cancel request.
    tokio::task::yield_now().await;
    release.cancel();
    let run = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("returned")
        .expect("no panic")
        .expect("the run is reported, not interrupted");
    assert_eq!(run.operation_id, id);
    assert_eq!(run.outcome, ExecutorOutcome::Cancelled);
    let info = tokio::time::timeout(Duration::from_secs(5), ops.wait(&id))
        .await
        .expect("ended on the server")
        .unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
}
