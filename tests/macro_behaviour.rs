//! Runtime behaviour of the fns `#[managed_operation]` generates, in both forms.

use std::time::{Duration, Instant};

use orchestrator::{
    Cancelled, OperationContext, OperationFilter, OperationId, OperationInfo, OperationStatus,
    OperationType, Operations, Outcome, ServiceOrchestrator, managed_operation,
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

// ---- spawn_<name>: the typed handle ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_returns_a_handle_with_the_id_and_the_typed_outcome() {
    let svc = DummyService::new();
    let handle = svc.spawn_count(2, Duration::from_millis(1)).unwrap();
    let id = handle.id().clone();
    assert_eq!(svc.ops.get(&id).unwrap().description, "dummy task");
    let outcome = tokio::time::timeout(PATIENCE, handle.outcome())
        .await
        .expect("operation did not finish in time");
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
    assert_eq!(svc.ops.get(&id).unwrap().status, OperationStatus::Completed);

    let handle = spawn_sum_values(&svc.ops, vec![1, 2, 3]).unwrap();
    let outcome = tokio::time::timeout(PATIENCE, handle.outcome())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed(6)), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_handle_cancels_and_keeps_the_partial_value() {
    let svc = DummyService::new();
    let handle = svc.spawn_count(10_000, Duration::from_millis(2)).unwrap();
    poll_until(&svc.ops, handle.id(), |info| {
        info.progress.steps_completed >= 1
    })
    .await;
    handle.cancel("enough").unwrap();
    let id = handle.id().clone();
    let outcome = tokio::time::timeout(PATIENCE, handle.outcome())
        .await
        .unwrap();
    match outcome {
        Outcome::Cancelled(Some(Counted {
            iterations,
            cancelled: true,
        })) => assert!((1..10_000).contains(&iterations), "{iterations}"),
        other => panic!("expected a cooperative cancel, got {other:?}"),
    }
    let info = svc.ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.cancel_reason.as_deref(), Some("enough"));
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let svc = DummyService::new();
    assert!(svc.spawn_count(1, Duration::ZERO).is_err());
    assert!(spawn_sum_values(&svc.ops, vec![1]).is_err());
    assert!(svc.ops.is_empty());
}

// ---- any `Result` alias ----

mod aliases {
    use orchestrator::{OperationContext, managed_operation};

    #[derive(Debug)]
    pub struct MyErr;

    impl std::fmt::Display for MyErr {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("my error")
        }
    }

    /// An `anyhow::Result`-style alias with the error fixed.
    pub type Result<T> = std::result::Result<T, MyErr>;

    #[managed_operation(operation_type = "alias")]
    pub async fn aliased(_ctx: OperationContext, fail: bool) -> Result<u8> {
        if fail { Err(MyErr) } else { Ok(7) }
    }

    #[managed_operation(operation_type = "alias")]
    pub async fn io(_ctx: OperationContext) -> std::io::Result<u8> {
        Err(std::io::Error::other("disk on fire"))
    }
}

#[test]
fn result_aliases_resolve_to_their_ok_and_err_types() {
    let ops = Operations::new();
    let outcome: Outcome<u8, aliases::MyErr> = aliases::run_aliased_sync(&ops, false).unwrap();
    assert!(matches!(outcome, Outcome::Completed(7)), "{outcome:?}");
    let outcome = aliases::run_aliased_sync(&ops, true).unwrap();
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    let outcome: Outcome<u8, std::io::Error> = aliases::run_io_sync(&ops).unwrap();
    let Outcome::Failed(failure) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.to_string(), "disk on fire");
}

// ---- options: deadline, grace_period, labels, parameters ----

/// Not `Serialize`: left out of `metadata.parameters`, silently.
#[derive(Debug, Clone)]
struct Opaque(#[allow(dead_code)] u8);

/// Trains for `epochs`; records its serialisable arguments and its labels.
#[managed_operation(
    operation_type = "training",
    labels(team = "ml", tier = "gpu", "app.example/name" = "trainer"),
    skip(token)
)]
async fn train(
    ctx: OperationContext,
    epochs: u32,
    model: String,
    rates: Vec<f64>,
    token: String,
    opaque: Opaque,
) -> Result<u32, Cancelled> {
    let _ = (model, rates, token, opaque);
    ctx.progress(1, "trained");
    Ok(epochs)
}

/// A CPU job, to tell labels apart in `list`.
#[managed_operation(operation_type = "training", labels(team = "ml", tier = "cpu"))]
async fn train_cpu(ctx: OperationContext) -> Result<(), Cancelled> {
    ctx.checkpoint()
}

/// Never returns on its own: ends only by its deadline.
#[managed_operation(operation_type = "stuck", deadline = "50ms")]
async fn stuck_with_deadline(_ctx: OperationContext) -> Result<(), Cancelled> {
    std::future::pending().await
}

/// Ignores cancellation: ends only when its grace period after a cancel runs out.
#[managed_operation(operation_type = "stuck", grace_period = "20ms")]
async fn stuck_with_grace(_ctx: OperationContext) -> Result<(), Cancelled> {
    std::future::pending().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_serialisable_arguments_are_in_the_record() {
    let ops = Operations::new();
    let started = start_train(
        &ops,
        3,
        "resnet".to_owned(),
        vec![0.1, 0.01],
        "secret".to_owned(),
        Opaque(1),
    )
    .unwrap();
    let info = wait_terminal(&ops, &started.operation_id).await;
    assert_eq!(info.status, OperationStatus::Completed);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json["metadata"],
        json!({
            // `token` is in `skip(...)`, `opaque` does not serialise.
            "parameters": {"epochs": 3, "model": "resnet", "rates": [0.1, 0.01]},
            "labels": {"team": "ml", "tier": "gpu", "app.example/name": "trainer"},
        })
    );
    assert_eq!(info.metadata.label("tier"), Some("gpu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_label() {
    let ops = Operations::new();
    let gpu = start_train(&ops, 1, "a".into(), vec![], "s".into(), Opaque(0)).unwrap();
    let cpu = start_train_cpu(&ops).unwrap();
    let plain = start_sum_values(&ops, vec![1]).unwrap();
    for id in [&gpu.operation_id, &cpu.operation_id, &plain.operation_id] {
        wait_terminal(&ops, id).await;
    }
    let ids = |filter: OperationFilter| -> Vec<OperationId> {
        ops.list(&filter)
            .operations
            .into_iter()
            .map(|info| info.operation_id)
            .collect()
    };
    assert_eq!(
        ids(OperationFilter::new().with_label("tier", "gpu")),
        vec![gpu.operation_id.clone()]
    );
    assert_eq!(
        ids(OperationFilter::new().with_label("team", "ml")),
        vec![cpu.operation_id.clone(), gpu.operation_id.clone()]
    );
    // Every label must match.
    assert_eq!(
        ids(OperationFilter::new()
            .with_label("team", "ml")
            .with_label("tier", "cpu")),
        vec![cpu.operation_id.clone()]
    );
    assert!(ids(OperationFilter::new().with_label("team", "web")).is_empty());
    assert_eq!(ops.list(&OperationFilter::new()).total_count, 3);
    let page = ops.list(
        &OperationFilter::new()
            .with_label("team", "ml")
            .with_limit(1),
    );
    assert_eq!(page.total_count, 2);
    assert_eq!(page.operations.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_option_fails_the_operation() {
    let ops = Operations::new();
    let started = start_stuck_with_deadline(&ops).unwrap();
    let info = wait_terminal(&ops, &started.operation_id).await;
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("deadline exceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_option_overrides_the_registry_default() {
    // A registry default far beyond PATIENCE: only the attribute's 20 ms can end it.
    let ops = Operations::builder()
        .with_grace_period(Duration::from_secs(3600))
        .build();
    let started = start_stuck_with_grace(&ops).unwrap();
    poll_until(&ops, &started.operation_id, |info| {
        info.status == OperationStatus::Running
    })
    .await;
    ops.cancel(&started.operation_id, "stop").unwrap();
    let info = wait_terminal(&ops, &started.operation_id).await;
    assert_eq!(info.status, OperationStatus::Cancelled);
}

/// A resumable service: its first attempt fails after saving `fail_after`.
#[derive(Clone)]
struct Steps {
    ops: Operations,
}

impl ServiceOrchestrator for Steps {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "steps"
    }
}

impl Steps {
    #[managed_operation(operation_type = "steps", total_steps = to, resumable)]
    async fn walk(
        &self,
        ctx: OperationContext,
        to: u64,
        fail_after: u64,
    ) -> Result<Vec<u64>, String> {
        let from = ctx
            .resume_state::<u64>()
            .map_err(|e| e.to_string())?
            .unwrap_or(0);
        let mut walked = Vec::new();
        for step in from + 1..=to {
            walked.push(step);
            ctx.progress(step, format!("step {step}"));
            ctx.save_checkpoint(&step)
                .await
                .map_err(|e| e.to_string())?;
            if step == fail_after && ctx.attempt() == 1 {
                return Err(format!("tripped at {step}"));
            }
        }
        Ok(walked)
    }
}

#[tokio::test]
async fn a_resumable_operation_is_resumed_with_its_recorded_arguments() {
    let ops = Operations::new();
    Steps::register_walk(&ops, |ops| Steps { ops });
    let svc = Steps { ops: ops.clone() };
    let id = svc.start_walk(6, 2).unwrap().operation_id;
    let failed = tokio::time::timeout(PATIENCE, ops.wait(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, OperationStatus::Failed);
    assert_eq!(failed.checkpoint_step, Some(2));
    assert_eq!(failed.metadata.parameters["to"], 6);

    let resumed = ops.resume(&id).await.unwrap();
    assert_eq!(resumed.attempt, 2);
    let done = tokio::time::timeout(PATIENCE, ops.wait(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, OperationStatus::Completed);
    // The same `to` and `fail_after` came back from the record; 1 and 2 were not
    // walked again.
    assert_eq!(done.result_summary, Some(json!([3, 4, 5, 6])));
}
