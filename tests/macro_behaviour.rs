//! Runtime behaviour of the fns `#[managed_operation]` generates, in both forms.

use std::time::{Duration, Instant};

use orchestrator::{
    Cancelled, OperationContext, OperationId, OperationInfo, OperationStatus, OperationType,
    Operations, Outcome, ServiceOrchestrator, managed_operation,
};
use serde::Serialize;
use serde_json::json;

/// Upper bound for any single wait in these tests; generous for slow CI machines.
const PATIENCE: Duration = Duration::from_secs(10);

/// What a counting run reports: how far it got and whether it was stopped early.
#[derive(Debug, PartialEq, Serialize)]
struct Counted {
    iterations: u64,
    cancelled: bool,
}

#[derive(Clone)]
struct DummyService {
    ops: Operations,
}

impl ServiceOrchestrator for DummyService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "dummy"
    }
}

impl DummyService {
    fn new() -> Self {
        Self {
            ops: Operations::new(),
        }
    }

    /// Counts to `iterations`, one step every `interval`; a cancellation stops it with the
    /// count so far (a cooperative stop, so the partial summary is kept).
    #[managed_operation(operation_type = "dummy", total_steps = iterations, description = "dummy task")]
    async fn count(
        &self,
        ctx: OperationContext,
        iterations: u64,
        interval: Duration,
    ) -> Result<Counted, Cancelled> {
        for i in 1..=iterations {
            if ctx.sleep(interval).await.is_err() {
                return Ok(Counted {
                    iterations: i - 1,
                    cancelled: true,
                });
            }
            ctx.progress(i, format!("Iteration {i}/{iterations}"));
        }
        Ok(Counted {
            iterations,
            cancelled: false,
        })
    }

    /// Fails with `message`, with the context not in first position.
    #[managed_operation(operation_type = "failing")]
    async fn fail_with(&self, message: String, _ctx: OperationContext) -> Result<(), String> {
        Err(message)
    }
}

/// Sums `values`, reporting one step per value.
#[managed_operation(operation_type = "data_load", total_steps = values.len())]
async fn sum_values(ctx: OperationContext, values: Vec<u64>) -> Result<u64, String> {
    let mut sum = 0;
    for (i, value) in values.iter().enumerate() {
        ctx.checkpoint().map_err(|e| e.to_string())?;
        sum += value;
        ctx.progress(i as u64 + 1, format!("added {value}"));
    }
    Ok(sum)
}

async fn wait_terminal(ops: &Operations, id: &OperationId) -> OperationInfo {
    tokio::time::timeout(PATIENCE, ops.wait(id))
        .await
        .expect("operation did not finish in time")
        .expect("operation is registered")
}

/// Polls `ops.get(id)` until `ready` holds, failing after [`PATIENCE`].
async fn poll_until(
    ops: &Operations,
    id: &OperationId,
    ready: impl Fn(&OperationInfo) -> bool,
) -> OperationInfo {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let info = ops.get(id).expect("operation is registered");
        if ready(&info) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached in time; last seen: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_registers_spawns_and_completes() {
    let svc = DummyService::new();
    let started = svc.start_count(3, Duration::from_millis(1)).unwrap();
    assert_eq!(started.status, "started");

    let info = svc.ops.get(&started.operation_id).unwrap();
    assert_eq!(info.operation_type, OperationType::DUMMY);
    assert_eq!(info.description, "dummy task");

    let info = wait_terminal(&svc.ops, &started.operation_id).await;
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(
        info.result_summary,
        Some(json!({"iterations": 3, "cancelled": false}))
    );
    assert_eq!(info.progress.steps_total, 3);
    assert_eq!(info.progress.steps_completed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_steps_is_evaluated_from_the_arguments_of_each_call() {
    let svc = DummyService::new();
    let five = svc.start_count(5, Duration::ZERO).unwrap();
    let two = svc.start_count(2, Duration::ZERO).unwrap();
    assert_eq!(
        wait_terminal(&svc.ops, &five.operation_id)
            .await
            .progress
            .steps_total,
        5
    );
    assert_eq!(
        wait_terminal(&svc.ops, &two.operation_id)
            .await
            .progress
            .steps_total,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_awaits_inline_and_registers() {
    let svc = DummyService::new();
    let outcome = svc.run_count(2, Duration::from_millis(1)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Completed(Counted {
                iterations: 2,
                cancelled: false
            })
        ),
        "{outcome:?}"
    );
    let list = svc.ops.list(&Default::default());
    assert_eq!(list.operations.len(), 1);
    let info = &list.operations[0];
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.description, "dummy task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_errors_as_failed() {
    let svc = DummyService::new();
    let outcome = svc.run_fail_with("disk full".to_owned()).await;
    match outcome {
        Outcome::Failed(failure) => assert_eq!(failure.to_string(), "disk full"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let list = svc.ops.list(&Default::default());
    let info = &list.operations[0];
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("disk full"));
    assert_eq!(info.operation_type, OperationType::from("failing"));
    // The default description is the fn name with spaces.
    assert_eq!(info.description, "fail with");
}

#[test]
fn run_sync_works_outside_a_runtime() {
    let svc = DummyService::new();
    let outcome = svc.run_count_sync(2, Duration::from_millis(1)).unwrap();
    assert_eq!(
        outcome.value(),
        Some(&Counted {
            iterations: 2,
            cancelled: false
        })
    );
    assert_eq!(svc.ops.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sync_works_inside_a_runtime() {
    let svc = DummyService::new();
    let outcome = svc.run_count_sync(2, Duration::from_millis(1)).unwrap();
    assert!(outcome.is_completed(), "{outcome:?}");
    let outcome = run_sum_values_sync(&svc.ops, vec![1, 2]).unwrap();
    assert_eq!(outcome.value(), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_fn_still_works_with_a_detached_context() {
    let svc = DummyService::new();
    let ctx = OperationContext::detached();
    let counted = svc.count(ctx.clone(), 4, Duration::ZERO).await.unwrap();
    assert_eq!(
        counted,
        Counted {
            iterations: 4,
            cancelled: false
        }
    );
    assert_eq!(ctx.progress_snapshot().steps_completed, 4);
    assert_eq!(
        sum_values(OperationContext::detached(), vec![1, 2, 3]).await,
        Ok(6)
    );
    assert!(svc.ops.is_empty(), "a detached run registers nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_fn_form_starts_runs_and_runs_sync() {
    let ops = Operations::new();

    let started = start_sum_values(&ops, vec![1, 2, 3, 4]).unwrap();
    let info = wait_terminal(&ops, &started.operation_id).await;
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_summary, Some(json!(10)));
    assert_eq!(info.progress.steps_total, 4);
    assert_eq!(info.operation_type, OperationType::DATA_LOAD);
    assert_eq!(info.description, "sum values");

    let outcome = run_sum_values(&ops, vec![5, 6]).await;
    assert!(matches!(outcome, Outcome::Completed(11)), "{outcome:?}");

    let outcome = run_sum_values_sync(&ops, vec![7]).unwrap();
    assert!(matches!(outcome, Outcome::Completed(7)), "{outcome:?}");
    assert_eq!(ops.len(), 3);
}

#[test]
fn free_fn_run_sync_works_outside_a_runtime() {
    let ops = Operations::new();
    let outcome = run_sum_values_sync(&ops, vec![1, 1]).unwrap();
    assert!(matches!(outcome, Outcome::Completed(2)), "{outcome:?}");
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let svc = DummyService::new();
    assert!(svc.start_count(1, Duration::ZERO).is_err());
    assert!(start_sum_values(&svc.ops, vec![1]).is_err());
    assert!(svc.ops.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_started_operation_keeps_the_partial_summary() {
    let svc = DummyService::new();
    let started = svc.start_count(10_000, Duration::from_millis(2)).unwrap();
    let id = started.operation_id;

    poll_until(&svc.ops, &id, |info| info.progress.steps_completed >= 2).await;
    svc.ops.cancel(&id, "test").unwrap();

    let info = wait_terminal(&svc.ops, &id).await;
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.cancel_reason.as_deref(), Some("test"));
    assert_eq!(info.progress.steps_total, 10_000);
    let summary = info
        .result_summary
        .expect("a cooperative stop keeps its summary");
    assert_eq!(summary["cancelled"], json!(true));
    let done = summary["iterations"].as_u64().unwrap();
    assert!(
        (2..10_000).contains(&done),
        "stopped after {done} iterations"
    );
}
