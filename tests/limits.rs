//! The registry's resource limits: active operations, retained finished operations,
//! cancel reasons and metric records. Each refusal is a typed error and registers
//! nothing.

use std::time::Duration;

use orchestrator::{
    Failure, OperationContext, OperationSpec, OperationStatus, Operations, OrchestratorError,
    Outcome,
};

fn spec() -> OperationSpec {
    OperationSpec::new("job")
}

#[test]
fn starts_beyond_max_active_are_refused_until_one_ends() {
    let ops = Operations::builder().with_max_active(3).build();
    let ids: Vec<_> = (0..3).map(|_| ops.create(spec()).unwrap()).collect();
    match ops.create(spec()) {
        Err(OrchestratorError::TooManyOperations { active, limit }) => {
            assert_eq!((active, limit), (3, 3));
        }
        other => panic!("expected TooManyOperations, got {other:?}"),
    }
    assert_eq!(ops.len(), 3, "a refused operation is not registered");
    assert_eq!(ops.active_count(), 3);

    ops.start(&ids[0]).unwrap();
    ops.complete(&ids[0], ()).unwrap();
    assert_eq!(ops.active_count(), 2);
    ops.create(spec()).unwrap();
    // A cancelled pending one frees its place too.
    ops.cancel(&ids[1], "no longer needed").unwrap();
    ops.create(spec()).unwrap();
    assert!(ops.create(spec()).is_err());
}

#[tokio::test]
async fn spawn_and_run_beyond_max_active_register_nothing() {
    let ops = Operations::builder().with_max_active(1).build();
    let first = ops
        .spawn(spec(), |ctx: OperationContext| async move {
            ctx.sleep(Duration::from_secs(3600)).await
        })
        .unwrap();
    let refused = ops.spawn(spec(), |_ctx| async { Ok::<_, String>(()) });
    assert!(matches!(
        refused,
        Err(OrchestratorError::TooManyOperations { limit: 1, .. })
    ));
    let outcome = ops.run(spec(), |_ctx| async { Ok::<_, String>(()) }).await;
    match outcome {
        Outcome::Failed(Failure::Refused(OrchestratorError::TooManyOperations { .. })) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ops.len(), 1);
    first.cancel("done").unwrap();
    assert!(first.outcome().await.is_cancelled());
    assert!(
        ops.run(spec(), |_ctx| async { Ok::<_, String>(()) })
            .await
            .is_completed()
    );
}

#[test]
fn finished_operations_beyond_max_retained_are_evicted_oldest_first() {
    let ops = Operations::builder()
        .with_max_retained(5)
        .without_sweeper()
        .build();
    let mut finished = Vec::new();
    for i in 0..8 {
        let id = ops.create(spec()).unwrap();
        ops.start(&id).unwrap();
        ops.complete(&id, i).unwrap();
        finished.push(id);
    }
    // One more registration applies the limit.
    let active = ops.create(spec()).unwrap();
    assert_eq!(ops.len(), 6, "5 finished + 1 active");
    for old in &finished[..3] {
        assert!(matches!(ops.get(old), Err(OrchestratorError::NotFound(_))));
    }
    for kept in &finished[3..] {
        assert_eq!(ops.get(kept).unwrap().status, OperationStatus::Completed);
    }
    // Active operations are never evicted, however many there are.
    assert_eq!(ops.get(&active).unwrap().status, OperationStatus::Pending);

    // Deleting some does not make eviction remove more than it must.
    ops.delete(&finished[7]).unwrap();
    let id = ops.create(spec()).unwrap();
    ops.start(&id).unwrap();
    ops.complete(&id, ()).unwrap();
    ops.create(spec()).unwrap();
    assert_eq!(ops.len(), 5 + 2);
    assert!(ops.get(&finished[3]).is_ok(), "only 5 finished are kept");
}

#[test]
fn retention_by_count_holds_under_many_short_operations() {
    let ops = Operations::builder()
        .with_max_retained(100)
        .without_sweeper()
        .build();
    for i in 0..10_000u32 {
        let id = ops.create(spec()).unwrap();
        ops.start(&id).unwrap();
        if i % 3 == 0 {
            ops.fail(&id, "x").unwrap();
            let _ = ops.delete(&id);
        } else {
            ops.complete(&id, i).unwrap();
        }
    }
    assert!(ops.len() <= 101, "{} records kept", ops.len());
}

#[test]
fn cancel_reasons_are_bounded() {
    let ops = Operations::new();
    let id = ops.create(spec()).unwrap();
    ops.start(&id).unwrap();
    let long = "x".repeat(1025);
    match ops.cancel(&id, &long) {
        Err(OrchestratorError::CancelReasonTooLong { len, limit }) => {
            assert_eq!((len, limit), (1025, 1024));
        }
        other => panic!("expected CancelReasonTooLong, got {other:?}"),
    }
    assert!(
        !ops.token(&id).unwrap().is_cancelled(),
        "nothing was cancelled"
    );
    ops.cancel(&id, &"y".repeat(1024)).unwrap();

    // cancel_all has no error to return: it cuts the reason at a char boundary.
    let other = ops.create(spec()).unwrap();
    ops.start(&other).unwrap();
    let multibyte = "é".repeat(2000);
    assert_eq!(ops.cancel_all(&multibyte), 2, "both are still active");
    let reason = ops.get(&other).unwrap().cancel_reason.unwrap();
    assert_eq!(reason.len(), 1024);
    assert!(reason.chars().all(|c| c == 'é'));
}

#[test]
fn oversized_metric_records_are_refused() {
    let ops = Operations::builder().with_max_metric_bytes(100).build();
    let id = ops.create(spec()).unwrap();
    ops.start(&id).unwrap();
    let ctx = ops.context(&id).unwrap();
    ctx.try_metric(serde_json::json!({"epoch": 1})).unwrap();
    let big = serde_json::json!({"blob": "z".repeat(200)});
    assert!(matches!(
        ctx.try_metric(&big),
        Err(OrchestratorError::MetricTooLarge { limit: 100, .. })
    ));
    // The infallible form skips it (and logs).
    ctx.metric(&big);
    let page = ops.metrics(&id, 0).unwrap();
    assert_eq!(page.metrics, [serde_json::json!({"epoch": 1})]);
}
