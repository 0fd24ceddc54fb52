//! The operations API over real HTTP on loopback: every route's success and error
//! answers, list filters and paging, cancellation seen through GET, wait and SSE,
//! request validation, the OpenAPI document against the router, and load.

mod support;

use std::time::{Duration, Instant};

use hyper::Method;
use hyper::body::Bytes;
use orchestrator::http::code;
use orchestrator::{OperationId, OperationSpec, OperationType, Operations};
use serde_json::{Value, json};
use support::serve;

const UNKNOWN_ID: &str = "op_dummy_20261122_160501_9f3a1c2e";

fn status_of(data: &Value) -> &str {
    data["status"].as_str().expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_get_wait_list_metrics_and_openapi_succeed() {
    let ops = Operations::new();
    let server = serve(ops.clone()).await;
    let c = &server.client;

    let id = c.start_dummy(3, 20).await;
    let info = c.get(&format!("/api/v1/operations/{id}")).await;
    let data = info.data();
    assert_eq!(data["operation_id"], id.as_str());
    assert_eq!(data["operation_type"], "DUMMY");
    assert!(matches!(status_of(data), "PENDING" | "RUNNING"), "{data}");

    let done = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=5000"))
        .await;
    let data = done.data();
    assert_eq!(status_of(data), "COMPLETED", "{data}");
    assert_eq!(data["progress"]["percentage"], 100.0);
    assert_eq!(data["result_summary"]["iterations_completed"], 3);

    let list = c.get("/api/v1/operations").await;
    assert_eq!(list.data().as_array().map(Vec::len), Some(1));
    assert_eq!(list.body["total_count"], 1);
    assert_eq!(list.body["active_count"], 0);

    ops.context(&id)
        .expect("context")
        .metric(json!({"loss": 0.5}));
    let metrics = c.get(&format!("/api/v1/operations/{id}/metrics")).await;
    // Reported after the end: metrics are append-only records, kept regardless.
    let page = metrics.data();
    assert!(page["metrics"].is_array(), "{page}");
    assert!(page["cursor"].is_u64(), "{page}");
    let cursor = page["cursor"].as_u64().unwrap_or(0);
    let next = c
        .get(&format!("/api/v1/operations/{id}/metrics?cursor={cursor}"))
        .await;
    assert_eq!(next.data()["metrics"], json!([]));
    assert_eq!(next.data()["cursor"], cursor);

    let doc = c.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert_eq!(doc.body["servers"][0]["url"], "/api/v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_paged_by_cursor() {
    let ops = Operations::new();
    let server = serve(ops.clone()).await;
    let id = ops.create(OperationSpec::new("training")).unwrap();
    ops.start(&id).expect("start");
    let ctx = ops.context(&id).expect("context");
    for epoch in 1..=3 {
        ctx.metric(json!({"epoch": epoch}));
    }
    let c = &server.client;
    let first = c
        .get(&format!("/api/v1/operations/{id}/metrics?cursor=0"))
        .await;
    assert_eq!(
        first.data()["metrics"],
        json!([{"epoch": 1}, {"epoch": 2}, {"epoch": 3}])
    );
    assert_eq!(first.data()["cursor"], 3);
    ctx.metric(json!({"epoch": 4}));
    let next = c
        .get(&format!("/api/v1/operations/{id}/metrics?cursor=3"))
        .await;
    assert_eq!(next.data()["metrics"], json!([{"epoch": 4}]));
    assert_eq!(next.data()["cursor"], 4);
}

/// Registers operations with known statuses and types, oldest first.
fn populate(ops: &Operations) -> Vec<(OperationId, &'static str, &'static str)> {
    let plan: [(&str, &str); 10] = [
        ("dummy", "COMPLETED"),
        ("data_load", "COMPLETED"),
        ("dummy", "FAILED"),
        ("data_load", "RUNNING"),
        ("dummy", "PENDING"),
        ("training", "COMPLETED"),
        ("dummy", "RUNNING"),
        ("my-kind", "CANCELLED"),
        ("data_load", "PENDING"),
        ("dummy", "RUNNING"),
    ];
    plan.iter()
        .map(|&(kind, status)| {
            let id = ops.create(OperationSpec::new(kind)).unwrap();
            match status {
                "PENDING" => {}
                "RUNNING" => ops.start(&id).expect("start"),
                "COMPLETED" => {
                    ops.start(&id).expect("start");
                    ops.complete(&id, 1).expect("complete");
                }
                "FAILED" => {
                    ops.start(&id).expect("start");
                    ops.fail(&id, "boom").expect("fail");
                }
                _ => {
                    ops.cancel(&id, "test").expect("cancel");
                }
            }
            (id, kind, status)
        })
        .collect()
}

fn ids(data: &Value) -> Vec<String> {
    data.as_array()
        .expect("array")
        .iter()
        .map(|o| o["operation_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pages_and_counts() {
    let ops = Operations::new();
    let server = serve(ops.clone()).await;
    let c = &server.client;
    let all = populate(&ops);
    let newest_first: Vec<String> = all.iter().rev().map(|(id, ..)| id.to_string()).collect();

    let everything = c.get("/api/v1/operations").await;
    assert_eq!(ids(everything.data()), newest_first);
    assert_eq!(everything.body["total_count"], 10);
    assert_eq!(everything.body["active_count"], 5);

    // Paging: newest first, total_count before paging.
    let page = c.get("/api/v1/operations?limit=3&offset=2").await;
    assert_eq!(ids(page.data()), newest_first[2..5]);
    assert_eq!(page.body["total_count"], 10);
    let tail = c.get("/api/v1/operations?limit=1000&offset=8").await;
    assert_eq!(ids(tail.data()), newest_first[8..]);
    let past = c.get("/api/v1/operations?offset=50").await;
    assert_eq!(ids(past.data()), Vec::<String>::new());
    assert_eq!(past.body["total_count"], 10);

    // Filters, alone and combined; status is case-insensitive.
    let expect = |pred: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|(_, k, s)| pred(k, s))
            .map(|(id, ..)| id.to_string())
            .collect()
    };
    let running = c.get("/api/v1/operations?status=running").await;
    assert_eq!(ids(running.data()), expect(&|_, s| s == "RUNNING"));
    assert_eq!(running.body["total_count"], 3);
    assert_eq!(running.body["active_count"], 5);
    let dummies = c.get("/api/v1/operations?operation_type=DUMMY").await;
    assert_eq!(ids(dummies.data()), expect(&|k, _| k == "dummy"));
    let custom = c.get("/api/v1/operations?operation_type=my-kind").await;
    assert_eq!(ids(custom.data()), expect(&|k, _| k == "my-kind"));
    let active_loads = c
        .get("/api/v1/operations?operation_type=data_load&active_only=true")
        .await;
    assert_eq!(
        ids(active_loads.data()),
        expect(&|k, s| k == "data_load" && matches!(s, "PENDING" | "RUNNING"))
    );
    assert_eq!(active_loads.body["total_count"], 2);
    let done_dummies = c
        .get("/api/v1/operations?status=COMPLETED&operation_type=dummy&limit=1")
        .await;
    assert_eq!(done_dummies.body["total_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_query_values_are_400_invalid_query() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(1, 1).await;
    for path in [
        "/api/v1/operations?limit=0".to_owned(),
        "/api/v1/operations?limit=1001".to_owned(),
        "/api/v1/operations?limit=-5".to_owned(),
        "/api/v1/operations?limit=ten".to_owned(),
        "/api/v1/operations?offset=-1".to_owned(),
        "/api/v1/operations?status=BOGUS".to_owned(),
        "/api/v1/operations?status=".to_owned(),
        "/api/v1/operations?active_only=maybe".to_owned(),
        // One past the documented `maximum` (2^53 - 1) of the integer parameters.
        "/api/v1/operations?offset=9007199254740992".to_owned(),
        format!("/api/v1/operations/{id}/metrics?cursor=-1"),
        format!("/api/v1/operations/{id}/metrics?cursor=9007199254740992"),
        format!("/api/v1/operations/{id}/wait?timeout_ms=soon"),
        format!("/api/v1/operations/{id}/wait?timeout_ms=9007199254740992"),
    ] {
        let reply = c.get(&path).await;
        assert_eq!(reply.error_code(400), code::INVALID_QUERY, "{path}");
    }
    // What the document allows is accepted: an empty type filter is no filter, and
    // the largest documented offset is a valid (empty) page.
    let all = c.get("/api/v1/operations?operation_type=").await;
    assert_eq!(all.body["total_count"], 1, "{all:?}");
    let far = c.get("/api/v1/operations?offset=9007199254740991").await;
    assert_eq!(far.data().as_array().map(Vec::len), Some(0), "{far:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_400_and_unknown_ids_404_on_every_route() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let routes: [(Method, &str); 7] = [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/cancel"),
        (Method::GET, "/metrics"),
        (Method::GET, "/wait?timeout_ms=10"),
        (Method::GET, "/events"),
        (Method::GET, "/wait"),
    ];
    for (method, suffix) in routes {
        let ct = (method == Method::POST).then_some("application/json");
        for bad in [
            "nope",
            "op_dummy_2026_x",
            "OP_DUMMY_20261122_160501_9F3A1C2E",
            "op_dummy_20261122_160501_9f3a1c2e%00",
        ] {
            let path = format!("/api/v1/operations/{bad}{suffix}");
            let reply = c.send(method.clone(), &path, ct, Bytes::new()).await;
            assert_eq!(
                reply.error_code(400),
                code::INVALID_OPERATION_ID,
                "{method} {path}"
            );
        }
        let path = format!("/api/v1/operations/{UNKNOWN_ID}{suffix}");
        let reply = c.send(method.clone(), &path, ct, Bytes::new()).await;
        assert_eq!(
            reply.error_code(404),
            code::OPERATION_NOT_FOUND,
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_dummy_is_seen_via_get_wait_and_as_the_last_event() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(100, 200).await;
    let mut events = c.events(&id).await;
    let (name, first) = events.next().await.expect("a first event");
    assert_eq!(name, "progress");
    assert!(
        matches!(status_of(&first), "PENDING" | "RUNNING"),
        "{first}"
    );

    // A long-poll that is parked before the cancel must wake on the transition.
    let waiter = {
        let c = c.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = c
                .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=30000"))
                .await;
            (reply, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    let cancel = c
        .post_json(
            &format!("/api/v1/operations/{id}/cancel"),
            &json!({"reason": "test cancel"}),
        )
        .await;
    let data = cancel.data();
    assert_eq!(data["cancel_reason"], "test cancel", "{data}");
    assert!(matches!(status_of(data), "RUNNING" | "CANCELLED"), "{data}");

    // Via GET (bounded poll), via wait, and as the last SSE event.
    let seen = c
        .poll_until(&id, Duration::from_secs(5), |d| status_of(d) == "CANCELLED")
        .await;
    assert_eq!(seen["result_summary"]["iterations_completed"], 0);
    let (reply, waited) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("wait returned")
        .expect("waiter task");
    assert_eq!(status_of(reply.data()), "CANCELLED");
    assert!(waited < Duration::from_secs(5), "wait took {waited:?}");

    let mut last = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("stream ends within 5 s")
    {
        last = Some(event);
    }
    let (name, data) = last.expect("a last event");
    assert_eq!(name, "done");
    assert_eq!(status_of(&data), "CANCELLED");

    // Cancelling a finished operation is a conflict; deleting it removes it.
    let again = c
        .post_json(&format!("/api/v1/operations/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.error_code(409), code::OPERATION_FINISHED);
    let deleted = c.delete(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(deleted.data()["deleted"], true);
    assert_eq!(status_of(&deleted.data()["operation"]), "CANCELLED");
    let gone = c.get(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(gone.error_code(404), code::OPERATION_NOT_FOUND);
    let gone = c.delete(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(gone.error_code(404), code::OPERATION_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cancels_a_running_operation_and_removes_a_finished_one() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(100, 200).await;
    let first = c.delete(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(first.data()["deleted"], false);
    assert_eq!(
        first.data()["operation"]["cancel_reason"],
        "cancelled via DELETE"
    );
    let ended = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=5000"))
        .await;
    assert_eq!(status_of(ended.data()), "CANCELLED");
    let second = c.delete(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(second.data()["deleted"], true);

    // An empty cancel body is fine when it says it is JSON; the reason defaults.
    let id = c.start_dummy(100, 200).await;
    let reply = c
        .send(
            Method::POST,
            &format!("/api/v1/operations/{id}/cancel"),
            Some("application/json"),
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.data()["cancel_reason"], "cancelled via API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_with_the_current_record() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(100, 200).await;
    let started = Instant::now();
    let reply = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=150"))
        .await;
    let took = started.elapsed();
    assert!(matches!(status_of(reply.data()), "PENDING" | "RUNNING"));
    assert!(
        took >= Duration::from_millis(150),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
    let zero = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=0"))
        .await;
    assert!(matches!(status_of(zero.data()), "PENDING" | "RUNNING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_finished_operation_are_one_done_event() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(1, 1).await;
    c.get(&format!("/api/v1/operations/{id}/wait")).await;
    let mut events = c.events(&id).await;
    let (name, data) = events.next().await.expect("one event");
    assert_eq!((name.as_str(), status_of(&data)), ("done", "COMPLETED"));
    assert!(events.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_progress_then_end_with_done() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    // 10 steps of 150 ms: each step is a change the 100 ms check sees.
    let id = c.start_dummy(10, 150).await;
    let mut events = c.events(&id).await;
    let mut steps = Vec::new();
    let mut last = None;
    let deadline = Duration::from_secs(10);
    while let Some((name, data)) = tokio::time::timeout(deadline, events.next())
        .await
        .expect("events within 10 s")
    {
        if name == "progress" {
            steps.push(data["progress"]["steps_completed"].as_u64().expect("steps"));
        }
        last = Some((name, data));
    }
    let (name, data) = last.expect("events");
    assert_eq!((name.as_str(), status_of(&data)), ("done", "COMPLETED"));
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "in order: {steps:?}"
    );
    let mut distinct = steps.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "progress events: {steps:?}");
    // Coalesced: never more events than 100 ms checks in the run (1.5 s), plus slack.
    assert!(steps.len() <= 25, "progress events: {steps:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_disconnected_event_client_leaves_no_task_behind() {
    let ops = Operations::builder().without_sweeper().build();
    let server = serve(ops.clone()).await;
    // Started with a client of its own, dropped with its pooled connection.
    let id = support::Client::new(server.addr)
        .start_dummy(1000, 50)
        .await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // The server's accept loop and the operation: nothing else runs once idle.
    let baseline = wait_for_tasks(&metrics, |n| n <= 2, Duration::from_secs(5)).await;

    for _ in 0..3 {
        let client = support::Client::new(server.addr);
        let mut events = client.events(&id).await;
        events.next().await.expect("an event");
        events.next().await.expect("a second event");
        assert!(
            metrics.num_alive_tasks() > baseline,
            "the connection has a task"
        );
        drop(events);
        drop(client);
        wait_for_tasks(&metrics, |n| n <= baseline, Duration::from_secs(5)).await;
    }
    // The operation itself was not disturbed.
    assert_eq!(
        ops.get(&id).expect("still there").status.as_str(),
        "RUNNING"
    );
}

async fn wait_for_tasks(
    metrics: &tokio::runtime::RuntimeMetrics,
    ok: impl Fn(usize) -> bool,
    limit: Duration,
) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let n = metrics.num_alive_tasks();
        if ok(n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{n} tasks still alive after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_are_4xx_with_codes() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = c.start_dummy(100, 200).await;
    let cancel = format!("/api/v1/operations/{id}/cancel");
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, Bytes, u16, &str)> = vec![
        (
            cancel.as_str(),
            json,
            Bytes::from_static(b"{bad"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            json,
            Bytes::from_static(b"[1, 2]"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            json,
            Bytes::from_static(b"{\"reason\": 5}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            Some("text/plain"),
            Bytes::from_static(b"stop"),
            415,
            code::INVALID_REQUEST,
        ),
        // A cross-site "simple" POST (no preflight): text/plain or a form type, and
        // an empty body. It must not start anything.
        (
            "/api/v1/dummy/start",
            Some("text/plain"),
            Bytes::new(),
            415,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            Some("application/x-www-form-urlencoded"),
            Bytes::new(),
            415,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            None,
            Bytes::new(),
            415,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/data/load",
            Some("text/plain"),
            Bytes::new(),
            415,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            None,
            Bytes::new(),
            415,
            code::INVALID_REQUEST,
        ),
        // serde would fill the request by position from an array: all defaults.
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"[]"),
            422,
            code::INVALID_REQUEST,
        ),
        // A misspelt field is a 422, not a default 100 x 2 s run.
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"{\"iteratons\": 3}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"{\"iterations\": 1000001}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            json,
            Bytes::from_static(b"{\"reasn\": \"typo\"}"),
            422,
            code::INVALID_REQUEST,
        ),
        // Whitespace alone is not JSON, and not an empty body (found by schemathesis).
        (
            cancel.as_str(),
            json,
            Bytes::from_static(b"\t"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            None,
            Bytes::from_static(b"{}"),
            415,
            code::INVALID_REQUEST,
        ),
        (
            cancel.as_str(),
            json,
            Bytes::from(vec![b' '; 100 * 1024]),
            413,
            code::PAYLOAD_TOO_LARGE,
        ),
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"{\"iterations\": -1}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"{\"iterations\": 1.5}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from_static(b"\xff\xfe"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/dummy/start",
            json,
            Bytes::from(vec![b'1'; 100 * 1024]),
            413,
            code::PAYLOAD_TOO_LARGE,
        ),
        (
            "/api/v1/data/load",
            json,
            Bytes::from(vec![b' '; 300 * 1024]),
            413,
            code::PAYLOAD_TOO_LARGE,
        ),
        (
            "/api/v1/data/load",
            json,
            Bytes::from_static(b"{\"rows\": 0}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/data/load",
            json,
            Bytes::from_static(b"{\"rows\": 999999999999}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/data/load",
            json,
            Bytes::from_static(b"{\"path\": \"/x.csv\", \"rows\": 5}"),
            422,
            code::INVALID_REQUEST,
        ),
        (
            "/api/v1/data/load",
            json,
            Bytes::from_static(b"{\"timeframe\": \"7q\"}"),
            422,
            code::INVALID_REQUEST,
        ),
    ];
    for (path, ct, body, status, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        // A connection each, so one case's connection state cannot leak into the next.
        let fresh = support::Client::new(server.addr);
        let reply = fresh.send(Method::POST, path, ct, body).await;
        assert_eq!(reply.error_code(status), expected, "POST {path} {shown:?}");
    }
    // Nothing above touched the operation or started another.
    let info = c.get(&format!("/api/v1/operations/{id}")).await;
    assert!(info.data()["cancel_reason"].is_null());
    let all = c.get("/api/v1/operations").await;
    assert_eq!(all.body["total_count"], 1, "{all:?}");
    // A start endpoint's body is optional (defaults apply), its content type is not.
    let reply = c
        .send(
            Method::POST,
            "/api/v1/dummy/start",
            Some("application/json"),
            Bytes::new(),
        )
        .await;
    let started: OperationId = reply.data()["operation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("valid");
    c.poll_until(&started, Duration::from_secs(5), |d| {
        status_of(d) == "RUNNING"
    })
    .await;
    c.post_json(&format!("/api/v1/operations/{started}/cancel"), &json!({}))
        .await
        .data();
    let info = c
        .get(&format!(
            "/api/v1/operations/{started}/wait?timeout_ms=5000"
        ))
        .await;
    assert_eq!(info.data()["result_summary"]["iterations"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_the_envelope() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    // `/` is the dashboard's redirect; everything else unknown is the envelope's 404.
    let root = c.request(Method::GET, "/", None, Bytes::new()).await;
    assert_eq!(root.status().as_u16(), 307);
    assert_eq!(root.headers()["location"], "/dashboard");
    for path in [
        "/api",
        "/api/v1",
        "/api/v1/nope",
        "/api/v2/operations",
        "/api/v1/operations/x/y/z",
    ] {
        let reply = c.get(path).await;
        assert_eq!(reply.error_code(404), code::NOT_FOUND, "{path}");
    }
    for (method, path) in [
        (Method::PUT, "/api/v1/operations"),
        (Method::POST, "/api/v1/operations"),
        (Method::GET, "/api/v1/dummy/start"),
        (Method::PATCH, "/api/v1/openapi.json"),
    ] {
        let reply = c.send(method.clone(), path, None, Bytes::new()).await;
        assert_eq!(reply.status / 100, 4, "{method} {path}: {reply:?}");
        assert_eq!(reply.body["success"], false, "{method} {path}");
    }
    let reply = c
        .send(Method::PUT, "/api/v1/operations", None, Bytes::new())
        .await;
    assert_eq!(reply.error_code(405), code::METHOD_NOT_ALLOWED);
}

/// Every (path, method) of the document is routed, and every other method on those
/// paths is 405. The router and the document are built from the same `routes!` list,
/// so no route can exist outside the document; this holds the wiring to that.
/// The list's `operation_type` filter accepts exactly what the document's pattern
/// allows: a fuzzer generating schema-valid values must never get a 400, and values
/// outside the pattern must not be silently accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_type_filter_accepts_exactly_the_documented_pattern() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let doc = c.get("/api/v1/openapi.json").await.body;
    let params = doc["paths"]["/operations"]["get"]["parameters"]
        .as_array()
        .expect("list parameters");
    let pattern = params
        .iter()
        .find(|p| p["name"] == "operation_type")
        .and_then(|p| p["schema"]["pattern"].as_str())
        .expect("operation_type has a pattern");
    let pattern = regex::Regex::new(pattern).expect("the pattern compiles");
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for value in [
        "",
        "dummy",
        "DATA_LOAD",
        "my-kind",
        "two words",
        "a",
        "a_",
        "a-",
        "m0Xvq0 ",
        " m0Xvq0",
        "a\t",
        "a\n",
        "1a",
        "_a",
        "caf\u{e9}",
        &long,
        &too_long,
    ] {
        let mut query = String::new();
        for byte in value.bytes() {
            query.push_str(&format!("%{byte:02X}"));
        }
        let reply = c
            .get(&format!("/api/v1/operations?operation_type={query}"))
            .await;
        let documented = pattern.is_match(value);
        if documented {
            assert_eq!(
                reply.status, 200,
                "{value:?} matches the pattern: {reply:?}"
            );
        } else {
            assert_eq!(
                reply.error_code(400),
                code::INVALID_QUERY,
                "{value:?} is outside the pattern"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_router_agree() {
    let ops = Operations::new();
    let server = serve(ops.clone()).await;
    let c = &server.client;
    let doc = c.get("/api/v1/openapi.json").await.body;
    let library = serde_json::to_value(orchestrator::http::openapi()).expect("doc");
    // The served document is the library's plus the start endpoints merged in.
    let mut served = doc["paths"].clone();
    for path in ["/dummy/start", "/training/start"] {
        let start = served
            .as_object_mut()
            .and_then(|p| p.remove(path))
            .unwrap_or_else(|| panic!("{path} is in the served document"));
        assert!(start["post"]["requestBody"].is_object(), "{start}");
    }
    assert_eq!(
        served, library["paths"],
        "served document = http::openapi()"
    );

    let id = ops
        .create(OperationSpec::new(OperationType::DUMMY))
        .unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    let mut routed = Vec::new();
    for (template, item) in paths {
        let mut path = format!("/api/v1{}", template.replace("{id}", id.as_str()));
        if template.ends_with("/wait") {
            path.push_str("?timeout_ms=1");
        }
        let all = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        for method in all {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            // The events of a pending operation stream on: read only the status.
            let response = c
                .request(
                    method.clone(),
                    &path,
                    Some("application/json"),
                    Bytes::from_static(b"{}"),
                )
                .await;
            let status = response.status().as_u16();
            drop(response);
            if documented {
                assert!(
                    status != 404 && status != 405,
                    "{method} {template} is documented but answers {status}"
                );
                routed.push(format!("{method} {template}"));
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {template} is not documented but answers {status}"
                );
            }
        }
    }
    routed.sort();
    assert_eq!(
        routed,
        [
            "DELETE /operations/{id}",
            "GET /health",
            "GET /openapi.json",
            "GET /operations",
            "GET /operations/events",
            "GET /operations/{id}",
            "GET /operations/{id}/children",
            "GET /operations/{id}/events",
            "GET /operations/{id}/metrics",
            "GET /operations/{id}/wait",
            "POST /dummy/start",
            "POST /operations/{id}/cancel",
            "POST /operations/{id}/resume",
            "POST /training/start",
        ]
    );
    for schema in [
        "OperationInfo",
        "OperationProgress",
        "OperationStatus",
        "ErrorResponse",
        "OperationListResponse",
        "MetricsPage",
        "DeletedOperation",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients_poll_without_errors() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(c.start_dummy(40, 25).await);
    }
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|n| {
            // Each its own client, so each polls on its own connection.
            let client = support::Client::new(server.addr);
            let id = ids[n % ids.len()].clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let one = client.get(&format!("/api/v1/operations/{id}")).await;
                    one.data();
                    let list = client
                        .get("/api/v1/operations?limit=10&active_only=true")
                        .await;
                    list.data();
                    let events_free = client
                        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=1"))
                        .await;
                    events_free.data();
                }
            })
        })
        .collect();
    for task in clients {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("client finished within 60 s")
            .expect("client saw only 200s");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    // The operations ran on meanwhile and finish normally.
    for id in &ids {
        let done = c
            .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=10000"))
            .await;
        assert_eq!(status_of(done.data()), "COMPLETED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_mounts_under_any_prefix() {
    let ops = Operations::new();
    let app = axum::Router::new()
        .nest("/internal/ops", orchestrator::http::router(ops.clone()))
        .fallback(orchestrator::http::not_found);
    let server = support::serve_app(app).await;
    let id = ops.create(OperationSpec::new("dummy")).unwrap();
    let reply = server
        .client
        .get(&format!("/internal/ops/operations/{id}"))
        .await;
    assert_eq!(status_of(reply.data()), "PENDING");
    let doc = server.client.get("/internal/ops/openapi.json").await;
    assert_eq!(doc.body["servers"][0]["url"], "/internal/ops");
    let miss = server.client.get("/api/v1/operations").await;
    assert_eq!(miss.error_code(404), code::NOT_FOUND);
}

/// `GET /operations/events?ids=`: the events of several operations on one stream,
/// `gone` for an unknown id, and the stream ends after every `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_follows_several_operations() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let a = c.start_dummy(8, 60).await;
    let b = c.start_dummy(12, 60).await;
    let finished = c.start_dummy(1, 1).await;
    c.get(&format!("/api/v1/operations/{finished}/wait")).await;
    let unknown = "op_dummy_20260101_000000_00000000";
    // A repeated id is followed once.
    let path = format!("/api/v1/operations/events?ids={a},{b},{finished},{unknown},{a}");
    let mut events = support::Sse::new(c.request(Method::GET, &path, None, Bytes::new()).await);
    let mut progress: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let mut done = Vec::new();
    let mut gone = Vec::new();
    while let Some((name, data)) = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("events within 10 s")
    {
        let id = data["operation_id"]
            .as_str()
            .expect("operation_id")
            .to_owned();
        match name.as_str() {
            "progress" => progress
                .entry(id)
                .or_default()
                .push(data["progress"]["steps_completed"].as_u64().expect("steps")),
            "done" => {
                assert!(!done.contains(&id), "one done per operation: {id}");
                assert_eq!(status_of(&data), "COMPLETED", "{data}");
                done.push(id);
            }
            "gone" => gone.push(id),
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    done.sort();
    let mut expected = vec![a.to_string(), b.to_string(), finished.to_string()];
    expected.sort();
    assert_eq!(done, expected, "every known operation ends with done");
    assert_eq!(gone, [unknown]);
    for id in [&a, &b] {
        let steps = &progress[&id.to_string()];
        assert!(
            steps.windows(2).all(|w| w[0] <= w[1]),
            "{id} in order: {steps:?}"
        );
        assert!(steps.len() >= 2, "{id} moved on the stream: {steps:?}");
    }
    assert!(!progress.contains_key(&finished.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiplexed_stream_refuses_bad_id_lists() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let id = "op_dummy_20260101_000000_00000000";
    let too_many = (0..61)
        .map(|i| format!("op_dummy_20260101_000000_{i:08x}"))
        .collect::<Vec<_>>()
        .join(",");
    // Repeats count: the documented pattern allows at most 60 items.
    let repeated = vec![id; 61].join(",");
    for (query, code) in [
        ("", code::INVALID_QUERY),
        ("?ids=", code::INVALID_OPERATION_ID),
        ("?ids=nope", code::INVALID_OPERATION_ID),
        (&format!("?ids={id},"), code::INVALID_OPERATION_ID),
        (&format!("?ids={too_many}"), code::INVALID_QUERY),
        (&format!("?ids={repeated}"), code::INVALID_QUERY),
    ] {
        let reply = c.get(&format!("/api/v1/operations/events{query}")).await;
        assert_eq!(reply.error_code(400), code, "{query}");
    }
    // 60 distinct unknown ids are fine: 60 `gone` events, then the end.
    let sixty = too_many.rsplit_once(',').expect("a list").0;
    let response = c
        .request(
            Method::GET,
            &format!("/api/v1/operations/events?ids={sixty}"),
            None,
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let mut events = support::Sse::new(response);
    let mut count = 0;
    while let Some((name, _)) = events.next().await {
        assert_eq!(name, "gone");
        count += 1;
    }
    assert_eq!(count, 60);
}
