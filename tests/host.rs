//! Host services over real HTTP on loopback: a routed start registers a local proxy
//! that follows the host's record; cancels are forwarded; a lost or silent host
//! fails the proxy; bad answers are errors, never panics. The host runs on its own
//! runtime thread, so it can be killed like a process (every connection drops).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestrator::host::{HostConfigError, HostService};
use orchestrator::http::{ApiError, ApiJson, ApiResult};
use orchestrator::{
    Failure, OperationContext, OperationId, OperationInfo, OperationSpec, OperationStatus,
    OperationType, Operations, OrchestratorError, Outcome, ServiceOrchestrator, StartedOperation,
    managed_operation,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// A JSON answer (the tests' fake hosts write raw envelopes).
struct JsonReply(Value);

impl IntoResponse for JsonReply {
    fn into_response(self) -> Response {
        ([("content-type", "application/json")], self.0.to_string()).into_response()
    }
}

/// Body of the test host's `POST /work/start`.
#[derive(Debug, Deserialize)]
struct Work {
    steps: u64,
    interval_ms: u64,
    /// After a cancel, keep going this long before ending (a host slow to stop).
    #[serde(default)]
    stubborn_ms: u64,
    /// Fail at this step (0: never).
    #[serde(default)]
    fail_at: u64,
}

async fn start_work(
    State(ops): State<Operations>,
    ApiJson(work): ApiJson<Work>,
) -> ApiResult<StartedOperation> {
    if work.steps == 0 {
        return Err(ApiError::invalid_request("steps must be at least 1"));
    }
    let spec = OperationSpec::new(OperationType::TRAINING).with_total_steps(work.steps);
    let handle = ops.spawn(spec, move |ctx: OperationContext| async move {
        let mut done = 0;
        for step in 1..=work.steps {
            if ctx
                .sleep(Duration::from_millis(work.interval_ms))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(work.stubborn_ms)).await;
                break;
            }
            if step == work.fail_at {
                return Err(format!("exploded at step {step}"));
            }
            done = step;
            ctx.metric(json!({"step": step, "loss": 1.0 / step as f64}));
            ctx.progress(step, format!("step {step}/{}", work.steps));
        }
        Ok(json!({"steps_done": done}))
    })?;
    Ok(handle.started().into())
}

/// A host on its own runtime: killing it drops every connection, as `kill -9` would.
struct Host {
    url: String,
    ops: Operations,
    /// Requests per path, counted by a middleware.
    reads: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Host {
    fn start(extra: Router) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("host runtime");
        let ops = Operations::new();
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let api = orchestrator::http::Api::new(ops.clone())
            .into_router()
            .route("/work/start", post(start_work).with_state(ops.clone()))
            .merge(extra);
        let app = Router::new()
            .nest("/api/v1", api)
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let counter = counter.clone();
                async move {
                    let path = req.uri().path();
                    if req.method() == "GET"
                        && path.starts_with("/api/v1/operations/")
                        && path.matches('/').count() == 4
                    {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    next.run(req).await
                }
            }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            ops,
            reads,
            runtime: Some(runtime),
        }
    }

    fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    fn service(&self) -> HostService {
        HostService::new(&self.url)
            .expect("host url")
            .with_cache_ttl(Duration::from_millis(100))
    }

    fn only_op(&self) -> OperationInfo {
        let list = self.ops.list(&orchestrator::OperationFilter::new());
        assert_eq!(list.operations.len(), 1, "{list:?}");
        list.operations[0].clone()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spec() -> OperationSpec {
    OperationSpec::new(OperationType::TRAINING).with_description("train on the host")
}

/// Polls `ops` until `pred` holds for `id`; panics after `limit`.
async fn until(
    ops: &Operations,
    id: &OperationId,
    limit: Duration,
    pred: impl Fn(&OperationInfo) -> bool,
) -> OperationInfo {
    let deadline = Instant::now() + limit;
    loop {
        let info = ops.get(id).expect("registered");
        if pred(&info) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "not reached in {limit:?}: {info:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_start_completes_through_its_proxy_with_the_hosts_result_and_metrics() {
    let host = Host::start(Router::new());
    let ops = Operations::new();
    let body = json!({"steps": 5, "interval_ms": 20});
    let started = host
        .service()
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("routed start");
    let id = started.operation_id;
    let running = ops.get(&id).expect("proxy");
    assert_eq!(running.host_url.as_deref(), Some(host.url.as_str()));
    let host_id = running.host_operation_id.clone().expect("host id");
    assert_ne!(host_id, id, "the caller gets the local id");
    assert_eq!(running.description, "train on the host");
    let done = tokio::time::timeout(Duration::from_secs(10), ops.wait(&id))
        .await
        .expect("in time")
        .expect("wait");
    assert_eq!(done.status, OperationStatus::Completed, "{done:#?}");
    assert_eq!(done.result_summary, Some(json!({"steps_done": 5})));
    assert_eq!(done.progress.steps_completed, 5);
    assert!((done.progress.percentage - 100.0).abs() < 1e-9);
    let on_host = host.ops.get(&host_id).expect("host record");
    assert_eq!(on_host.status, OperationStatus::Completed);
    // Every metric record, once, in order, by cursor.
    let metrics = ops.metrics(&id, 0).expect("metrics");
    let steps: Vec<_> = metrics.metrics.iter().map(|m| m["step"].clone()).collect();
    assert_eq!(steps, [1, 2, 3, 4, 5].map(|n| json!(n)));
    // The terminal record is copied once; after it the proxy never calls again.
    let reads = host.reads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(host.reads.load(Ordering::Relaxed), reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_readers_cause_one_host_read_per_ttl() {
    let host = Host::start(Router::new());
    let ops = Operations::new();
    let ttl = Duration::from_millis(200);
    let svc = host.service().with_cache_ttl(ttl);
    let body = json!({"steps": 1000, "interval_ms": 10});
    let id = svc
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("start")
        .operation_id;
    let before = host.reads.load(Ordering::Relaxed);
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let local_reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let (ops, id, n) = (ops.clone(), id.clone(), local_reads.clone());
            tokio::spawn(async move {
                while started.elapsed() < window {
                    let info = ops.get(&id).expect("get");
                    assert_eq!(info.status, OperationStatus::Running);
                    n.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for r in readers {
        r.await.expect("reader");
    }
    let host_reads = host.reads.load(Ordering::Relaxed) - before;
    let local = local_reads.load(Ordering::Relaxed);
    let per_ttl = (window.as_millis() / ttl.as_millis()) as usize;
    assert!(local > 64 * 50, "readers read {local} times");
    assert!(
        host_reads <= per_ttl + 3,
        "{local} local reads caused {host_reads} host reads; at most ~{per_ttl} expected"
    );
    assert!(
        host_reads >= per_ttl / 2,
        "the proxy stopped refreshing: {host_reads}"
    );
    // And the copy is fresh: progress moved on during the window.
    assert!(ops.get(&id).expect("get").progress.steps_completed > 10);
    ops.cancel(&id, "done").expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_is_forwarded_and_the_proxy_stays_running_until_the_host_confirms() {
    let host = Host::start(Router::new());
    let ops = Operations::new();
    let body = json!({"steps": 1000, "interval_ms": 10, "stubborn_ms": 700});
    let id = host
        .service()
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("start")
        .operation_id;
    until(&ops, &id, Duration::from_secs(5), |i| {
        i.progress.steps_completed > 0
    })
    .await;
    let asked = Instant::now();
    ops.cancel(&id, "user pressed Ctrl+C").expect("cancel");
    let proxy = ops.get(&id).expect("get");
    assert_eq!(
        proxy.status,
        OperationStatus::Running,
        "not CANCELLED before the host"
    );
    assert_eq!(proxy.cancel_reason.as_deref(), Some("user pressed Ctrl+C"));
    // The host hears of it at once; while it winds down the proxy says RUNNING.
    let host_id = proxy.host_operation_id.expect("host id");
    let deadline = Instant::now() + Duration::from_secs(2);
    while host
        .ops
        .get(&host_id)
        .expect("host")
        .cancel_reason
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the cancel did not reach the host"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        host.ops
            .get(&host_id)
            .expect("host")
            .cancel_reason
            .as_deref(),
        Some("user pressed Ctrl+C")
    );
    loop {
        let host_status = host.ops.get(&host_id).expect("host").status;
        let proxy = ops.get(&id).expect("proxy");
        if proxy.status.is_terminal() {
            assert_eq!(
                host_status,
                OperationStatus::Cancelled,
                "the host ended first"
            );
            assert_eq!(proxy.status, OperationStatus::Cancelled);
            assert_eq!(proxy.cancel_reason.as_deref(), Some("user pressed Ctrl+C"));
            assert!(
                proxy.result_summary.is_some(),
                "the partial result is copied"
            );
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "{proxy:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        asked.elapsed() >= Duration::from_millis(700),
        "the host took 700 ms to stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_fails_the_proxy_after_the_grace_naming_the_host() {
    let mut host = Host::start(Router::new());
    let ops = Operations::new();
    let svc = host
        .service()
        .with_unreachable_grace(Duration::from_millis(600))
        .with_request_timeout(Duration::from_millis(300));
    let body = json!({"steps": 1000, "interval_ms": 10});
    let id = svc
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("start")
        .operation_id;
    until(&ops, &id, Duration::from_secs(5), |i| {
        i.progress.steps_completed > 0
    })
    .await;
    let killed = Instant::now();
    host.kill();
    // Not at once: the proxy waits out the grace (600 ms) first.
    assert_eq!(
        ops.get(&id).expect("proxy").status,
        OperationStatus::Running
    );
    let failed = until(&ops, &id, Duration::from_secs(5), |i| {
        i.status.is_terminal()
    })
    .await;
    assert_eq!(failed.status, OperationStatus::Failed);
    let message = failed.error_message.expect("message");
    assert!(message.contains(&host.url), "{message}");
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(ops.active_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_lost_the_operation_fails_the_proxy_at_once() {
    // A start endpoint that answers with an id the host does not know (as a host
    // that restarted would).
    let ghost = Router::new().route(
        "/ghost/start",
        post(|| async {
            let id = OperationId::generate(&OperationType::TRAINING);
            JsonReply(json!({"success": true, "data": {"operation_id": id, "status": "started", "message": "Started"}}))
        }),
    );
    let host = Host::start(ghost);
    let ops = Operations::new();
    let svc = host
        .service()
        .with_unreachable_grace(Duration::from_secs(60));
    let id = svc
        .start(&ops, spec(), "/ghost/start", &json!({}))
        .await
        .expect("start")
        .operation_id;
    let failed = until(&ops, &id, Duration::from_secs(3), |i| {
        i.status.is_terminal()
    })
    .await;
    assert_eq!(failed.status, OperationStatus::Failed);
    let message = failed.error_message.expect("message");
    assert!(message.contains("lost the operation"), "{message}");
    assert!(message.contains(&host.url), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_routed_starts_are_clear_errors_and_register_nothing() {
    let bad = Router::new()
        .route(
            "/five/start",
            post(|| async {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "boom",
                )
            }),
        )
        .route("/text/start", post(|| async { "hello, not JSON" }))
        .route(
            "/huge/start",
            post(|| async { "x".repeat(HostService::MAX_RESPONSE_BYTES + 1) }),
        )
        .route(
            "/noid/start",
            post(|| async {
                JsonReply(json!({"success": true, "data": {"operation_id": "../etc"}}))
            }),
        )
        .route(
            "/silent/start",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let host = Host::start(bad);
    let ops = Operations::new();
    let svc = host
        .service()
        .with_request_timeout(Duration::from_millis(500));
    for path in [
        "/five/start",
        "/text/start",
        "/huge/start",
        "/noid/start",
        "/silent/start",
    ] {
        let t = Instant::now();
        let err = svc
            .start(&ops, spec(), path, &json!({}))
            .await
            .expect_err(path);
        assert!(
            matches!(&err, OrchestratorError::HostUnavailable { host: h, .. } if *h == host.url),
            "{path}: {err:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            t.elapsed()
        );
        let api = ApiError::from(err);
        assert_eq!(api.status().as_u16(), 503, "{path}");
        assert_eq!(api.code(), "HOST_UNAVAILABLE", "{path}");
    }
    // A 4xx passes through: 422 stays 422, with the host's code and message.
    let err = svc
        .start(
            &ops,
            spec(),
            "/work/start",
            &json!({"steps": 0, "interval_ms": 1}),
        )
        .await
        .expect_err("422");
    let api = ApiError::from(err);
    assert_eq!(api.status().as_u16(), 422);
    assert_eq!(api.code(), "INVALID_REQUEST");
    assert_eq!(api.message(), "steps must be at least 1");
    assert!(
        ops.is_empty(),
        "nothing registered: {:?}",
        ops.list(&Default::default())
    );

    // A host that is down.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let svc = HostService::new(&format!("http://{down}")).expect("url");
    let err = svc
        .start(&ops, spec(), "/work/start", &json!({}))
        .await
        .expect_err("down");
    assert!(err.to_string().contains(&down.to_string()), "{err}");
    assert!(ops.is_empty());
}

/// A host whose records go backwards: the proxy ignores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_records_that_go_backwards_are_ignored() {
    let script = Arc::new(AtomicUsize::new(0));
    let host_id = OperationId::generate(&OperationType::TRAINING);
    let record = {
        let host_id = host_id.clone();
        move |status: &str, pct: f64| {
            json!({"success": true, "data": {
                "operation_id": host_id, "operation_type": "TRAINING", "status": status,
                "created_at": "2026-12-01T00:00:00Z",
                "progress": {"percentage": pct, "current_step": format!("{pct}")},
                "result_summary": if status == "COMPLETED" { json!({"ok": true}) } else { Value::Null },
            }})
        }
    };
    let steps = [
        ("RUNNING", 10.0),
        ("RUNNING", 140.0),
        ("PENDING", 20.0),
        ("RUNNING", 60.0),
        ("COMPLETED", 100.0),
        ("RUNNING", 5.0),
    ];
    let fake = {
        let started = json!({"success": true, "data": {"operation_id": host_id, "status": "started", "message": "Started"}});
        let script = script.clone();
        Router::new()
            .route(
                "/fake/start",
                post(move || async move { JsonReply(started) }),
            )
            .route(
                "/fake/operations/{id}",
                get(move |Path(_id): Path<String>| {
                    let n = script.fetch_add(1, Ordering::SeqCst).min(steps.len() - 1);
                    let (status, pct) = steps[n];
                    let body = record(status, pct);
                    async move { JsonReply(body).into_response() }
                }),
            )
            .route(
                "/fake/operations/{id}/metrics",
                get(|| async {
                    JsonReply(json!({"success": true, "data": {"metrics": [], "cursor": 0}}))
                }),
            )
    };
    let host = Host::start(fake);
    let ops = Operations::new();
    let svc = HostService::new(&host.url)
        .expect("url")
        .with_api_prefix("/api/v1/fake")
        .with_cache_ttl(Duration::from_millis(20));
    let id = svc
        .start(&ops, spec(), "/start", &json!({}))
        .await
        .expect("start")
        .operation_id;
    let mut watch = ops.watch(&id).expect("watch");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = watch.get();
        seen.push((info.status, info.progress.percentage));
        if info.status.is_terminal() {
            break;
        }
        assert!(Instant::now() < deadline, "{seen:?}");
        let _ = tokio::time::timeout(Duration::from_millis(50), watch.changed()).await;
    }
    assert!(seen.iter().all(|(_, pct)| *pct <= 100.0), "{seen:?}");
    assert!(
        !seen.iter().any(|(s, _)| *s == OperationStatus::Pending),
        "{seen:?}"
    );
    let done = ops.get(&id).expect("get");
    assert_eq!(done.status, OperationStatus::Completed);
    assert_eq!(done.result_summary, Some(json!({"ok": true})));
    // Once the terminal record is copied, the scripted RUNNING after it is never read.
    let reads = script.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(script.load(Ordering::SeqCst), reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_forwards_the_cancels_to_the_host() {
    let host = Host::start(Router::new());
    let ops = Operations::new();
    let body = json!({"steps": 1000, "interval_ms": 10});
    let svc = host.service();
    let a = svc
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("a")
        .operation_id;
    let b = svc
        .start(&ops, spec(), "/work/start", &body)
        .await
        .expect("b")
        .operation_id;
    let report = ops.shutdown("server stopping").await;
    assert!(report.left_running.is_empty(), "{report:?}");
    for id in [a, b] {
        let proxy = ops.get(&id).expect("proxy");
        assert_eq!(proxy.status, OperationStatus::Cancelled, "{proxy:#?}");
        let on_host = host
            .ops
            .get(proxy.host_operation_id.as_ref().expect("host id"))
            .expect("host");
        assert_eq!(on_host.status, OperationStatus::Cancelled);
        assert_eq!(on_host.cancel_reason.as_deref(), Some("server stopping"));
    }
}

#[test]
fn the_environment_chooses_local_or_remote_and_bad_settings_are_errors() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert!(
        HostService::from_lookup("TRAINING", env(&[]))
            .expect("unset")
            .is_none()
    );
    assert!(
        HostService::from_lookup("training", env(&[("USE_TRAINING_HOST_SERVICE", "false")]))
            .expect("false")
            .is_none()
    );
    let host = HostService::from_lookup(
        "training",
        env(&[
            ("USE_TRAINING_HOST_SERVICE", "TRUE"),
            ("TRAINING_HOST_SERVICE_URL", "http://gpu-box:5002/"),
        ]),
    )
    .expect("routed")
    .expect("some");
    assert_eq!(host.url(), "http://gpu-box:5002");
    let err = HostService::from_lookup("TRAINING", env(&[("USE_TRAINING_HOST_SERVICE", "ja")]))
        .expect_err("flag");
    assert!(matches!(err, HostConfigError::InvalidFlag { .. }), "{err}");
    let err = HostService::from_lookup(
        "TRAINING",
        env(&[
            ("USE_TRAINING_HOST_SERVICE", "1"),
            ("TRAINING_HOST_SERVICE_URL", " "),
        ]),
    )
    .expect_err("missing");
    assert!(matches!(err, HostConfigError::MissingUrl { .. }), "{err}");
    let err = HostService::from_lookup(
        "TRAINING",
        env(&[
            ("USE_TRAINING_HOST_SERVICE", "1"),
            ("TRAINING_HOST_SERVICE_URL", "gpu-box:5002"),
        ]),
    )
    .expect_err("bad url");
    assert!(
        err.to_string().starts_with("TRAINING_HOST_SERVICE_URL:"),
        "{err}"
    );
    assert!(HostService::from_lookup("TRAIN-ING", env(&[])).is_err());
    let graced = |grace: &'static str| {
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
            ("USE_TRAINING_HOST_SERVICE", "1"),
            ("TRAINING_HOST_SERVICE_URL", "http://gpu-box:5002"),
            ("TRAINING_HOST_SERVICE_GRACE_SECS", grace),
        ]));
        HostService::from_lookup("TRAINING", env(pairs))
    };
    let host = graced("2.5").expect("grace").expect("some");
    assert_eq!(host.unreachable_grace(), Duration::from_millis(2500));
    for bad in ["soon", "-1", "NaN"] {
        let err = graced(bad).expect_err(bad);
        assert!(matches!(err, HostConfigError::InvalidGrace { .. }), "{err}");
    }
}

/// A service whose one operation routes to a host when it has one.
#[derive(Clone)]
struct Trainer {
    ops: Operations,
    host: Option<HostService>,
}

impl ServiceOrchestrator for Trainer {
    fn operations(&self) -> &Operations {
        &self.ops
    }
    fn service_name(&self) -> &str {
        "trainer"
    }
    fn host_service(&self) -> Option<&HostService> {
        self.host.as_ref()
    }
}

impl Trainer {
    #[managed_operation(operation_type = "training", total_steps = steps, host_path = "/work/start")]
    async fn work(
        &self,
        ctx: OperationContext,
        steps: u64,
        interval_ms: u64,
        fail_at: u64,
    ) -> Result<Value, String> {
        for step in 1..=steps {
            if step == fail_at {
                return Err(format!("local failure at {step}"));
            }
            ctx.sleep(Duration::from_millis(interval_ms))
                .await
                .map_err(|e| e.to_string())?;
            ctx.progress(step, "local step");
        }
        Ok(json!({"steps_done": steps, "where": "local"}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_generated_start_runs_locally_or_on_the_host() {
    let host = Host::start(Router::new());
    let local = Trainer {
        ops: Operations::new(),
        host: None,
    };
    let id = local.start_work(3, 5, 0).await.expect("local").operation_id;
    let done = tokio::time::timeout(Duration::from_secs(5), local.ops.wait(&id))
        .await
        .expect("in time")
        .expect("wait");
    assert_eq!(
        done.result_summary,
        Some(json!({"steps_done": 3, "where": "local"}))
    );
    assert!(done.host_url.is_none());
    assert!(host.ops.is_empty());

    let routed = Trainer {
        ops: Operations::new(),
        host: Some(host.service()),
    };
    let id = routed
        .start_work(3, 5, 0)
        .await
        .expect("routed")
        .operation_id;
    let done = tokio::time::timeout(Duration::from_secs(5), routed.ops.wait(&id))
        .await
        .expect("in time")
        .expect("wait");
    assert_eq!(done.status, OperationStatus::Completed, "{done:#?}");
    assert_eq!(
        done.result_summary,
        Some(json!({"steps_done": 3})),
        "the host's result"
    );
    assert_eq!(done.host_url.as_deref(), Some(host.url.as_str()));
    // The host got the fn's arguments as its body.
    let on_host = host.only_op();
    assert_eq!(on_host.progress.steps_total, 3);
    // The proxy records what it was started with, like a local operation.
    assert_eq!(done.metadata.parameters["steps"], 3);
    // A host refusal comes back as the start's error (422 passes through).
    let err = routed.start_work(0, 5, 0).await.expect_err("422");
    assert!(
        matches!(err, OrchestratorError::HostRejected { status: 422, .. }),
        "{err:?}"
    );

    // The typed forms route too, and read the host's result back as `T`.
    let handle = routed.spawn_work(2, 5, 0).await.expect("spawn");
    assert!(handle.get().expect("info").host_url.is_some());
    match handle.outcome().await {
        Outcome::Completed(v) => assert_eq!(v, json!({"steps_done": 2})),
        other => panic!("{other:?}"),
    }
    match routed.run_work(2, 5, 0).await {
        Outcome::Completed(v) => assert_eq!(v, json!({"steps_done": 2})),
        other => panic!("{other:?}"),
    }
    // A failure on the host is the host's message.
    match routed.run_work(5, 5, 2).await {
        Outcome::Failed(Failure::Host(message)) => assert_eq!(message, "exploded at step 2"),
        other => panic!("{other:?}"),
    }
    match routed.run_work(0, 5, 0).await {
        Outcome::Failed(Failure::Refused(OrchestratorError::HostRejected {
            status: 422, ..
        })) => {}
        other => panic!("{other:?}"),
    }
    let outcome = {
        let routed = routed.clone();
        tokio::task::spawn_blocking(move || routed.run_work_sync(2, 5, 0))
            .await
            .expect("join")
            .expect("runtime")
    };
    match outcome {
        Outcome::Completed(v) => assert_eq!(v, json!({"steps_done": 2})),
        other => panic!("{other:?}"),
    }
    // Locally, the same forms run here.
    match local.run_work(2, 5, 0).await {
        Outcome::Completed(v) => assert_eq!(v["where"], "local"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        host.ops.len(),
        5,
        "the first start and four routed runs reached the host"
    );
}
