//! The registry's bookkeeping: ids, the state machine, listing, cancel, delete,
//! cleanup and metrics. Operations here are driven by hand, without tasks.

use std::collections::HashSet;
use std::time::Duration;

use orchestrator::{
    OperationFilter, OperationId, OperationInfo, OperationSpec, OperationStatus, OperationType,
    Operations, OrchestratorError,
};

fn spec(kind: &str) -> OperationSpec {
    OperationSpec::new(kind)
}

fn running(ops: &Operations, kind: &str) -> OperationId {
    let id = ops.create(spec(kind)).unwrap();
    ops.start(&id).unwrap();
    id
}

#[test]
fn lifecycle_pending_running_completed() {
    let ops = Operations::new();
    let id = ops
        .create(
            spec("dummy")
                .with_description("dummy task")
                .with_total_steps(7),
        )
        .unwrap();
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Pending);
    // The total is known before the first report, so clients can show `0/7` at once.
    assert_eq!(
        (info.progress.steps_completed, info.progress.steps_total),
        (0, 7)
    );
    assert_eq!(info.operation_type, OperationType::DUMMY);
    assert_eq!(info.description, "dummy task");
    assert!(info.started_at.is_none() && info.completed_at.is_none());

    ops.start(&id).unwrap();
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Running);
    assert!(info.started_at.is_some());

    assert_eq!(
        ops.complete(&id, serde_json::json!({"rows": 3})).unwrap(),
        OperationStatus::Completed
    );
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_summary, Some(serde_json::json!({"rows": 3})));
    assert!(info.completed_at >= info.started_at);
}

#[test]
fn every_illegal_transition_is_an_error_and_terminal_states_never_change() {
    let ops = Operations::new();
    let is_illegal = |r: Result<OperationStatus, OrchestratorError>| {
        matches!(r, Err(OrchestratorError::IllegalTransition { .. }))
    };

    // PENDING cannot complete (it never ran).
    let pending = ops.create(spec("dummy")).unwrap();
    assert!(is_illegal(ops.complete(&pending, 1)));
    assert_eq!(ops.get(&pending).unwrap().status, OperationStatus::Pending);

    // RUNNING cannot start again.
    let id = running(&ops, "dummy");
    assert!(matches!(
        ops.start(&id),
        Err(OrchestratorError::IllegalTransition {
            from: OperationStatus::Running,
            to: OperationStatus::Running,
            ..
        })
    ));

    // Every terminal state refuses start, complete, fail, and a second cancel.
    let completed = running(&ops, "dummy");
    ops.complete(&completed, 1).unwrap();
    let failed = running(&ops, "dummy");
    ops.fail(&failed, "boom").unwrap();
    let cancelled = running(&ops, "dummy");
    ops.cancel(&cancelled, "stop").unwrap();
    ops.complete(&cancelled, 0).unwrap(); // cooperative return after cancel
    for (id, status) in [
        (&completed, OperationStatus::Completed),
        (&failed, OperationStatus::Failed),
        (&cancelled, OperationStatus::Cancelled),
    ] {
        let before = ops.get(id).unwrap();
        assert_eq!(before.status, status);
        assert!(ops.start(id).is_err());
        assert!(is_illegal(ops.complete(id, 2)));
        assert!(is_illegal(ops.fail(id, "late")));
        assert!(matches!(
            ops.cancel(id, "late"),
            Err(OrchestratorError::AlreadyFinished { .. })
        ));
        // Late progress is ignored.
        ops.context(id).unwrap().progress(99, "late progress");
        let after = ops.get(id).unwrap();
        assert_eq!(after.status, status);
        assert_eq!(after.result_summary, before.result_summary);
        assert_eq!(after.error_message, before.error_message);
        assert_eq!(after.progress, before.progress);
        assert_eq!(after.completed_at, before.completed_at);
    }
    assert_eq!(
        ops.get(&failed).unwrap().error_message.as_deref(),
        Some("boom")
    );
}

#[test]
fn completing_after_a_cancel_request_ends_cancelled_with_the_summary() {
    let ops = Operations::new();
    let id = running(&ops, "dummy");
    // Cancellation of a running operation is a request: it ends when the work returns.
    assert_eq!(
        ops.cancel(&id, "user asked").unwrap(),
        OperationStatus::Running
    );
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Running);
    assert_eq!(info.cancel_reason.as_deref(), Some("user asked"));
    assert!(ops.token(&id).unwrap().is_cancelled());
    assert_eq!(
        ops.complete(&id, serde_json::json!({"iterations_completed": 4}))
            .unwrap(),
        OperationStatus::Cancelled
    );
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.result_summary.unwrap()["iterations_completed"], 4);
    assert_eq!(info.cancel_reason.as_deref(), Some("user asked"));
}

#[test]
fn cancel_pending_running_finished_and_unknown() {
    let ops = Operations::new();
    let pending = ops.create(spec("dummy")).unwrap();
    assert_eq!(
        ops.cancel(&pending, "not needed").unwrap(),
        OperationStatus::Cancelled
    );
    let info = ops.get(&pending).unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.cancel_reason.as_deref(), Some("not needed"));
    assert!(info.completed_at.is_some());
    // A cancelled pending operation can no longer start.
    assert!(ops.start(&pending).is_err());

    let run = running(&ops, "dummy");
    assert_eq!(ops.cancel(&run, "r").unwrap(), OperationStatus::Running);

    let done = running(&ops, "dummy");
    ops.complete(&done, ()).unwrap();
    assert!(matches!(
        ops.cancel(&done, "x"),
        Err(OrchestratorError::AlreadyFinished {
            status: OperationStatus::Completed,
            ..
        })
    ));

    let unknown = OperationId::generate(&OperationType::DUMMY);
    assert!(matches!(
        ops.cancel(&unknown, "x"),
        Err(OrchestratorError::NotFound(id)) if id == unknown
    ));
}

#[test]
fn cancel_all_reaches_every_active_operation() {
    let ops = Operations::new();
    let active: Vec<_> = (0..50).map(|_| running(&ops, "dummy")).collect();
    let pending: Vec<_> = (0..10)
        .map(|_| ops.create(spec("dummy")).unwrap())
        .collect();
    let done = running(&ops, "dummy");
    ops.complete(&done, ()).unwrap();

    assert_eq!(ops.cancel_all("shutdown"), 60);
    for id in &active {
        let token = ops.token(id).unwrap();
        assert!(token.is_cancelled());
        assert_eq!(token.reason().as_deref(), Some("shutdown"));
        assert_eq!(
            ops.get(id).unwrap().cancel_reason.as_deref(),
            Some("shutdown")
        );
    }
    for id in &pending {
        assert_eq!(ops.get(id).unwrap().status, OperationStatus::Cancelled);
    }
    // A finished record does not change, whatever happens to its token afterwards.
    let done_info = ops.get(&done).unwrap();
    assert_eq!(done_info.status, OperationStatus::Completed);
    assert_eq!(done_info.cancel_reason, None);
    let failed = running(&ops, "dummy");
    ops.fail(&failed, "boom").unwrap();
    ops.cancel_all("second round");
    assert_eq!(ops.get(&failed).unwrap().cancel_reason, None);

    // Operations registered after cancel_all are not affected by it.
    let later = running(&ops, "dummy");
    assert!(!ops.token(&later).unwrap().is_cancelled());
    assert_eq!(ops.cancel_all("third round"), 1);
    assert!(ops.token(&later).unwrap().is_cancelled());
}

#[tokio::test]
async fn shutdown_cancels_operations_created_afterwards() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_millis(10))
        .with_shutdown_drain(Duration::from_millis(10))
        .build();
    let before = running(&ops, "dummy");
    let report = ops.shutdown("process exit").await;
    // Driven by hand, so nothing but its owner can end it: reported as left behind.
    assert_eq!(report.cancelled, 1);
    assert_eq!(
        report
            .left_running
            .iter()
            .map(|i| &i.operation_id)
            .collect::<Vec<_>>(),
        [&before]
    );
    let after = ops.create(spec("dummy")).unwrap();
    assert!(ops.token(&before).unwrap().is_cancelled());
    let token = ops.token(&after).unwrap();
    assert!(token.is_cancelled());
    assert_eq!(token.reason().as_deref(), Some("process exit"));
}

#[test]
fn concurrent_creates_get_unique_well_formed_ids() {
    let ops = Operations::new();
    let ids: Vec<OperationId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let ops = ops.clone();
                s.spawn(move || {
                    (0..125)
                        .map(|_| ops.create(spec("dummy")).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(ids.len(), 1000);
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 1000);
    for id in &ids {
        assert_eq!(id.as_str().parse::<OperationId>().unwrap(), *id);
    }
    assert_eq!(ops.len(), 1000);
}

#[test]
fn list_filters_orders_pages_and_counts() {
    let ops = Operations::new();
    let mut created = Vec::new();
    for i in 0..30 {
        let kind = if i % 3 == 0 { "training" } else { "dummy" };
        let id = ops.create(spec(kind)).unwrap();
        if i % 2 == 0 {
            ops.start(&id).unwrap();
        }
        if i % 5 == 0 {
            ops.start(&id).ok();
            ops.complete(&id, i).unwrap();
        }
        created.push(id);
    }
    let newest_first: Vec<_> = created.iter().rev().cloned().collect();
    let ids = |infos: &[OperationInfo]| {
        infos
            .iter()
            .map(|i| i.operation_id.clone())
            .collect::<Vec<_>>()
    };

    let all = ops.list(&OperationFilter::new());
    assert_eq!(all.total_count, 30);
    assert_eq!(ids(&all.operations), newest_first);
    // Active: everything but the 6 completed ones.
    assert_eq!(all.active_count, 24);

    let page = ops.list(&OperationFilter::new().with_limit(7).with_offset(5));
    assert_eq!(page.total_count, 30);
    assert_eq!(ids(&page.operations), newest_first[5..12]);
    let tail = ops.list(&OperationFilter::new().with_limit(100).with_offset(28));
    assert_eq!(ids(&tail.operations), newest_first[28..]);
    let beyond = ops.list(&OperationFilter::new().with_offset(30));
    assert!(beyond.operations.is_empty());
    assert_eq!(beyond.total_count, 30);
    assert!(
        ops.list(&OperationFilter::new().with_limit(0))
            .operations
            .is_empty()
    );

    let training = ops.list(&OperationFilter::new().with_type(OperationType::TRAINING));
    assert_eq!(training.total_count, 10);
    assert!(
        training
            .operations
            .iter()
            .all(|i| i.operation_type == OperationType::TRAINING)
    );

    let completed = ops.list(&OperationFilter::new().with_status(OperationStatus::Completed));
    assert_eq!(completed.total_count, 6);
    let expected: Vec<_> = newest_first
        .iter()
        .filter(|id| ops.get(id).unwrap().status == OperationStatus::Completed)
        .cloned()
        .collect();
    assert_eq!(ids(&completed.operations), expected);

    let running_training = ops.list(
        &OperationFilter::new()
            .with_status(OperationStatus::Running)
            .with_type("TRAINING"),
    );
    // i in {0..30}: i%3==0, i%2==0, i%5!=0 -> 6, 12, 18, 24
    assert_eq!(running_training.total_count, 4);

    let active = ops.list(&OperationFilter::new().active_only());
    assert_eq!(active.total_count, 24);
    assert!(active.operations.iter().all(|i| i.status.is_active()));
}

#[test]
fn delete_only_finished_operations() {
    let ops = Operations::new();
    let id = running(&ops, "dummy");
    assert!(matches!(
        ops.delete(&id),
        Err(OrchestratorError::StillActive { .. })
    ));
    ops.complete(&id, ()).unwrap();
    assert_eq!(ops.delete(&id).unwrap().status, OperationStatus::Completed);
    assert!(matches!(ops.get(&id), Err(OrchestratorError::NotFound(_))));
    assert!(matches!(
        ops.delete(&id),
        Err(OrchestratorError::NotFound(_))
    ));
}

#[test]
fn cleanup_removes_only_finished_operations_older_than_retention() {
    let ops = Operations::new();
    let old_done = running(&ops, "dummy");
    ops.complete(&old_done, ()).unwrap();
    let old_failed = running(&ops, "dummy");
    ops.fail(&old_failed, "x").unwrap();
    let still_running = running(&ops, "dummy");
    let still_pending = ops.create(spec("dummy")).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let fresh_done = running(&ops, "dummy");
    ops.complete(&fresh_done, ()).unwrap();

    // Nothing finished more than an hour ago.
    assert_eq!(ops.cleanup(Duration::from_secs(3600)), 0);
    // The two that finished before the pause, and only those.
    assert_eq!(ops.cleanup(Duration::from_millis(20)), 2);
    assert!(ops.get(&old_done).is_err() && ops.get(&old_failed).is_err());
    for id in [&still_running, &still_pending, &fresh_done] {
        assert!(ops.get(id).is_ok());
    }
    // Active operations survive even a zero retention.
    assert_eq!(ops.cleanup(Duration::ZERO), 1);
    assert!(ops.get(&still_running).is_ok() && ops.get(&still_pending).is_ok());
}

/// Polls `done` every few milliseconds for at most 5 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 5 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn background_sweeper_applies_the_retention() {
    let ops = Operations::builder()
        .with_retention(Duration::from_millis(0))
        .with_sweep_interval(Duration::from_millis(20))
        .build();
    let handle = ops
        .spawn(spec("dummy"), |_ctx| async { Ok::<_, String>(()) })
        .unwrap();
    let id = handle.id().clone();
    assert!(handle.outcome().await.is_completed());
    eventually("the finished operation is swept", || {
        matches!(ops.get(&id), Err(OrchestratorError::NotFound(_)))
    });
}

/// The sweeper used to be a task on the first runtime that ran an operation: the
/// temporary runtime of `run_sync` took it down for good, and finished records were
/// never removed again.
#[test]
fn the_sweeper_outlives_the_runtime_of_run_sync() {
    let ops = Operations::builder()
        .with_retention(Duration::from_millis(0))
        .with_sweep_interval(Duration::from_millis(20))
        .build();
    let first = ops
        .run_sync(spec("dummy"), |_ctx| async { Ok::<_, String>(1) })
        .unwrap();
    assert!(first.is_completed());
    // The runtime of that run is gone; records of later runs are still swept.
    let id = ops.create(spec("dummy")).unwrap();
    ops.start(&id).unwrap();
    ops.complete(&id, ()).unwrap();
    eventually(
        "a record finished after run_sync's runtime is gone is swept",
        || matches!(ops.get(&id), Err(OrchestratorError::NotFound(_))),
    );
    assert!(ops.is_empty());
}

#[test]
fn metrics_cursor_semantics_and_bound() {
    let ops = Operations::builder()
        .with_max_metrics_per_operation(5)
        .build();
    let id = running(&ops, "training");
    let ctx = ops.context(&id).unwrap();
    for epoch in 0..3 {
        ctx.metric(serde_json::json!({"epoch": epoch}));
    }
    let page = ops.metrics(&id, 0).unwrap();
    assert_eq!(page.metrics.len(), 3);
    assert_eq!((page.cursor, page.dropped), (3, 0));
    assert_eq!(page.metrics[2]["epoch"], 2);

    // Only records after the cursor, and the cursor keeps growing past the bound.
    for epoch in 3..10 {
        ctx.metric(serde_json::json!({"epoch": epoch}));
    }
    let next = ops.metrics(&id, page.cursor).unwrap();
    assert_eq!(next.cursor, 10);
    // 7 new records, but only the newest 5 are kept: 2 were dropped before being read.
    assert_eq!(next.dropped, 2);
    let epochs: Vec<_> = next
        .metrics
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [5, 6, 7, 8, 9]);
    assert!(ops.metrics(&id, next.cursor).unwrap().metrics.is_empty());
    assert_eq!(ops.metrics(&id, next.cursor).unwrap().cursor, 10);

    let unknown = OperationId::generate(&OperationType::TRAINING);
    assert!(ops.metrics(&unknown, 0).is_err());
}

#[test]
fn info_round_trips_through_json() {
    let ops = Operations::new();
    let id = running(&ops, "data_load");
    let ctx = ops.context(&id).unwrap();
    ctx.set_total_steps(10);
    ctx.progress(4, "segment 4/10");
    ctx.items(4_000);
    ctx.set_context("symbol", "AAPL");
    ops.complete(&id, serde_json::json!({"rows": 4000}))
        .unwrap();
    let info = ops.get(&id).unwrap();
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["status"], "COMPLETED");
    assert_eq!(json["operation_type"], "DATA_LOAD");
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(json["progress"]["context"]["symbol"], "AAPL");
    let back: OperationInfo = serde_json::from_value(json).unwrap();
    assert_eq!(back, info);
}

/// `list` pages agree with a plain sort of every match, for every offset and limit
/// around the page edges (the page is taken from a top-k heap, not a full sort).
#[test]
fn list_pages_are_the_newest_matches_in_order_for_any_offset_and_limit() {
    let ops = Operations::builder()
        .without_sweeper()
        .with_max_retained(usize::MAX)
        .build();
    let mut all = Vec::new();
    for i in 0..300u64 {
        let kind = if i % 3 == 0 { "dummy" } else { "training" };
        let id = ops.create(OperationSpec::new(kind)).expect("create");
        if i % 2 == 0 {
            ops.start(&id).expect("start");
        }
        all.push((id, kind, i % 2 == 0));
    }
    // Newest first: the reverse of creation order.
    let running_training: Vec<_> = all
        .iter()
        .rev()
        .filter(|(_, kind, running)| *kind == "training" && *running)
        .map(|(id, ..)| id.clone())
        .collect();
    for offset in [
        0,
        1,
        7,
        99,
        100,
        101,
        running_training.len() - 1,
        running_training.len(),
        1_000,
    ] {
        for limit in [1, 2, 10, 100, 1000] {
            let filter = OperationFilter::new()
                .with_status(OperationStatus::Running)
                .with_type(OperationType::TRAINING)
                .with_offset(offset)
                .with_limit(limit);
            let page = ops.list(&filter);
            let ids: Vec<_> = page
                .operations
                .iter()
                .map(|i| i.operation_id.clone())
                .collect();
            let expected: Vec<_> = running_training
                .iter()
                .skip(offset)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(ids, expected, "offset {offset}, limit {limit}");
            assert_eq!(page.total_count, running_training.len());
            assert_eq!(page.active_count, 300);
        }
    }
}
