//! The registry's limits over HTTP: 429 `TOO_MANY_OPERATIONS` with `Retry-After`, and
//! a cancel reason over the limit as a 422 that cancels nothing.

mod support;
use support::{body_json, serve};

use std::time::Duration;

use hyper::Method;
use hyper::body::Bytes;
use orchestrator::Operations;
use orchestrator::http::code;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_beyond_max_active_are_429_with_retry_after_and_register_nothing() {
    let ops = Operations::builder().with_max_active(2).build();
    let served = serve(ops.clone()).await;
    let c = &served.client;
    let first = c.start_dummy(1000, 100).await;
    c.start_dummy(1000, 100).await;

    let body = Bytes::from(json!({"iterations": 1, "interval_ms": 1}).to_string());
    let over = c
        .request(
            Method::POST,
            "/api/v1/dummy/start",
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(over.status().as_u16(), 429);
    assert_eq!(over.headers()["retry-after"], "5");
    let envelope = body_json(over).await;
    assert_eq!(envelope["success"], false);
    assert_eq!(envelope["error"]["code"], code::TOO_MANY_OPERATIONS);
    assert_eq!(ops.len(), 2, "a refused start registers nothing");

    // Once one ends, starts are accepted again.
    ops.cancel(&first, "make room").unwrap();
    tokio::time::timeout(Duration::from_secs(5), ops.wait(&first))
        .await
        .unwrap()
        .unwrap();
    c.start_dummy(1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_cancel_reason_is_422_and_cancels_nothing() {
    let ops = Operations::new();
    let served = serve(ops.clone()).await;
    let c = &served.client;
    let id = c.start_dummy(1000, 100).await;
    let reply = c
        .post_json(
            &format!("/api/v1/operations/{id}/cancel"),
            &json!({"reason": "r".repeat(2000)}),
        )
        .await;
    assert_eq!(reply.error_code(422), code::INVALID_REQUEST);
    assert!(!ops.token(&id).unwrap().is_cancelled());
    let ok = c
        .post_json(
            &format!("/api/v1/operations/{id}/cancel"),
            &json!({"reason": "short"}),
        )
        .await;
    assert_eq!(ok.data()["cancel_reason"], "short");
}

#[tokio::test]
async fn list_filters_by_label_and_refuses_invalid_types_and_labels() {
    use orchestrator::OperationSpec;
    let ops = Operations::new();
    let gpu = ops
        .create(OperationSpec::new("train").with_label("tier", "gpu"))
        .unwrap();
    ops.create(OperationSpec::new("train").with_label("tier", "cpu"))
        .unwrap();
    let served = serve(ops.clone()).await;
    let c = &served.client;
    let page = c.get("/api/v1/operations?label=tier:gpu").await;
    let data = page.data();
    assert_eq!(data.as_array().map(Vec::len), Some(1), "{page:?}");
    assert_eq!(data[0]["operation_id"], gpu.as_str());
    assert_eq!(page.body["total_count"], 1);
    // A kind spelt another way is the same kind.
    let page = c.get("/api/v1/operations?operation_type=Train").await;
    assert_eq!(page.body["total_count"], 2, "{page:?}");
    for bad in [
        "/api/v1/operations?label=tier",
        "/api/v1/operations?label=:gpu",
        "/api/v1/operations?operation_type=a%2Fb",
        "/api/v1/operations?operation_type=1st",
        "/api/v1/operations?operation_type=%20train",
    ] {
        assert_eq!(
            c.get(bad).await.error_code(400),
            code::INVALID_QUERY,
            "{bad}"
        );
    }
}
