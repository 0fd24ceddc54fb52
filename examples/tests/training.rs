//! The training service as its users see it: in process (a run learns, one metric
//! record per epoch, cancel keeps a partial summary, bad arguments fail), and as
//! processes (`cli train` against `axum_server`, SIGINT to the CLI, 422 for bad
//! bodies, the `training_host` host service).

mod common;

use std::time::{Duration, Instant};

use common::{Guard, http, metric_count, operation, read_all, serve, spawn, wait_with_timeout};
use orchestrator::{OperationId, OperationStatus, Operations, Outcome};
use orchestrator_examples::training::{
    EpochMetric, TrainingError, TrainingService, TrainingSummary,
};

/// The metric records of `id`, parsed.
fn epoch_metrics(ops: &Operations, id: &OperationId) -> Vec<EpochMetric> {
    let page = ops.metrics(id, 0).expect("metrics");
    assert_eq!(page.dropped, 0);
    page.metrics
        .into_iter()
        .map(|m| serde_json::from_value(m).expect("an epoch record"))
        .collect()
}

/// Polls `f` until it gives `Some`, for at most `limit`.
async fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_run_learns_with_one_metric_record_per_epoch() {
    let ops = Operations::new();
    let svc = TrainingService::new(ops.clone());
    let handle = svc.spawn_train(8, 20, 0.5, 7, 0).await.expect("started");
    let id = handle.id().clone();
    let Outcome::Completed(summary) = handle.outcome().await else {
        panic!("not completed: {:?}", ops.get(&id));
    };

    assert_eq!((summary.epochs_completed, summary.epochs), (8, 8));
    assert_eq!(summary.weights.len(), 8);
    assert!(summary.final_accuracy > 0.8, "{summary:?}");
    assert!(
        summary.message.starts_with("Trained 8 epochs: loss "),
        "{}",
        summary.message
    );

    // One record per epoch, in order; the loss goes down overall.
    let metrics = epoch_metrics(&ops, &id);
    let epochs: Vec<u64> = metrics.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, (1..=8).collect::<Vec<_>>());
    let (first, last) = (metrics[0], metrics[7]);
    assert!(last.loss < first.loss, "{metrics:?}");
    assert!(first.loss < std::f64::consts::LN_2, "{metrics:?}"); // below the untrained
    assert_eq!(last.loss, summary.final_loss);
    assert_eq!(last.accuracy, summary.final_accuracy);

    // The record: COMPLETED with the summary, the arguments, the last phase.
    let info = ops.get(&id).expect("record");
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_as::<TrainingSummary>(), Some(summary.clone()));
    assert_eq!(info.metadata.parameters["epochs"], 8);
    assert_eq!(info.metadata.parameters["learning_rate"], 0.5);
    assert_eq!(info.progress.phase.as_deref(), Some("save"));
    assert_eq!(info.progress.percentage, 100.0);

    // The same seed is the same run.
    let Outcome::Completed(again) = svc.run_train(8, 20, 0.5, 7, 0).await else {
        panic!("second run not completed");
    };
    assert_eq!(again, summary);
}

#[tokio::test]
async fn cancel_mid_run_ends_cancelled_within_a_second_with_a_partial_summary() {
    let ops = Operations::new();
    let svc = TrainingService::new(ops.clone());
    let handle = svc
        .spawn_train(1000, 20, 0.1, 42, 20)
        .await
        .expect("started");
    let id = handle.id().clone();

    // Training: two epochs in, the phase is `train` and the partial summary shows.
    eventually(Duration::from_secs(10), "two epochs", || {
        (ops.metrics(&id, 0).ok()?.metrics.len() >= 2).then_some(())
    })
    .await;
    let info = ops.get(&id).expect("record");
    assert_eq!(info.status, OperationStatus::Running);
    assert_eq!(info.progress.phase.as_deref(), Some("train"));
    assert!(info.progress.current_step.starts_with("Epoch "), "{info:?}");
    let partial = info
        .result_as::<TrainingSummary>()
        .expect("partial summary");
    assert!(partial.epochs_completed >= 2, "{partial:?}");

    let cancelled_at = Instant::now();
    handle.cancel("enough").expect("cancel");
    let outcome = handle.outcome().await;
    let took = cancelled_at.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let Outcome::Cancelled(Some(summary)) = outcome else {
        panic!("not cancelled with a summary: {outcome:?}");
    };
    let n = summary.epochs_completed;
    assert!((2..1000).contains(&n), "{summary:?}");
    assert_eq!(summary.epochs, 1000);
    assert_eq!(summary.message, format!("Cancelled after {n}/1000 epochs"));

    let info = ops.get(&id).expect("record");
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.result_as::<TrainingSummary>(), Some(summary.clone()));
    // Exactly one record per completed epoch, the last one the summary's.
    let metrics = epoch_metrics(&ops, &id);
    assert_eq!(metrics.len() as u64, n);
    let last = metrics.last().expect("a record");
    assert_eq!(last.epoch, n);
    assert_eq!(last.loss, summary.final_loss);
}

#[tokio::test]
async fn invalid_arguments_fail_the_operation_with_the_message() {
    let ops = Operations::new();
    let svc = TrainingService::new(ops.clone());
    let cases = [
        (
            (0, 20, 0.1),
            "epochs must be at least 1 and at most 10000, got 0",
        ),
        ((5, 0, 0.1), "batches_per_epoch must be at least 1"),
        (
            (5, 20, 0.0),
            "learning_rate must be a finite number above 0",
        ),
        (
            (5, 20, f64::INFINITY),
            "learning_rate must be a finite number",
        ),
        ((5, 20, f64::NAN), "got NaN"),
    ];
    for ((epochs, batches, rate), message) in cases {
        let handle = svc
            .spawn_train(epochs, batches, rate, 1, 0)
            .await
            .expect("started");
        let id = handle.id().clone();
        let outcome = handle.outcome().await;
        assert!(
            matches!(&outcome, Outcome::Failed(_)),
            "{epochs} {batches} {rate}: {outcome:?}"
        );
        let info = ops.get(&id).expect("record");
        assert_eq!(info.status, OperationStatus::Failed);
        let error = info.error_message.unwrap_or_default();
        assert!(error.starts_with("invalid training arguments: "), "{error}");
        assert!(error.contains(message), "{error}");
        assert!(ops.metrics(&id, 0).expect("metrics").metrics.is_empty());
    }

    // The domain fn as written, with a detached context, says the same.
    let err = svc
        .train(orchestrator::OperationContext::detached(), 0, 20, 0.1, 1, 0)
        .await
        .expect_err("refused");
    assert!(matches!(err, TrainingError::InvalidArguments(_)), "{err}");
}

#[test]
fn cli_train_against_the_server_prints_the_summary_and_exits_zero() {
    let (_server, _, addr) = serve("axum_server", &[]);
    let url = format!("http://{addr}");
    let mut child = spawn(
        "cli",
        &[
            "train",
            "--epochs",
            "6",
            "--learning-rate",
            "0.5",
            "--url",
            &url,
        ],
    );
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.trim().starts_with("Trained 6 epochs: loss "), "{out}");
    assert!(out.contains(", accuracy "), "{out}");

    // The server's record agrees, and has a record per epoch.
    let (_, page) = http(
        addr,
        "GET",
        "/api/v1/operations?operation_type=training",
        "",
    );
    assert_eq!(page["total_count"], 1, "{page}");
    let info = &page["data"][0];
    assert_eq!(info["status"], "COMPLETED", "{info}");
    assert_eq!(info["result_summary"]["epochs_completed"], 6);
    let id = info["operation_id"].as_str().expect("id");
    assert_eq!(
        out.trim(),
        info["result_summary"]["message"].as_str().expect("message")
    );
    assert_eq!(metric_count(addr, id), 6);
}

#[cfg(unix)]
#[test]
fn sigint_to_cli_train_cancels_on_the_server_and_exits_130() {
    let (_server, _, addr) = serve("axum_server", &[]);
    let url = format!("http://{addr}");
    let mut child = Guard(spawn(
        "cli",
        &[
            "train",
            "--epochs",
            "1000",
            "--epoch-delay-ms",
            "20",
            "--url",
            &url,
        ],
    ));

    // Wait until the server has trained an epoch of it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (_, page) = http(addr, "GET", "/api/v1/operations?status=RUNNING", "");
        if let Some(id) = page["data"][0]["operation_id"].as_str() {
            if metric_count(addr, id) >= 1 {
                break id.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no epoch trained on the server");
        std::thread::sleep(Duration::from_millis(20));
    };
    common::signal(&child.0, "INT");

    let status = wait_with_timeout(&mut child.0, Duration::from_secs(15));
    let out = read_all(child.0.stdout.take());
    let err = read_all(child.0.stderr.take());
    assert_eq!(status.code(), Some(130), "stdout: {out}\nstderr: {err}");
    assert!(err.contains(&format!("Cancelling {id}")), "{err}");

    let info = operation(addr, &id);
    assert_eq!(info["status"], "CANCELLED", "{info}");
    let n = info["result_summary"]["epochs_completed"]
        .as_u64()
        .expect("count");
    assert!((1..1000).contains(&n), "{info}");
    assert_eq!(out.trim(), format!("Cancelled after {n}/1000 epochs"));
    assert_eq!(metric_count(addr, &id) as u64, n);
}

#[test]
fn the_start_endpoint_refuses_bad_bodies_with_422_and_is_documented() {
    let (_server, _, addr) = serve("axum_server", &[]);
    for (body, mentions) in [
        (r#"{"epochs": 0}"#, "epochs must be at least 1"),
        (r#"{"epochs": 5, "learning_rate": -1}"#, "learning_rate"),
        // Just above the documented maximum of 100 (found by schemathesis: parsed
        // to the nearest f64, it is above 100).
        (
            r#"{"epochs": 1, "learning_rate": 100.00000000000001}"#,
            "learning_rate must be",
        ),
        (
            r#"{"epochs": 5, "batches_per_epoch": 0}"#,
            "batches_per_epoch",
        ),
        (r#"{"epochs": 5, "learning_rte": 0.5}"#, "learning_rte"),
        (r#"{"batches_per_epoch": 5}"#, "epochs"),
        (r#"{"epochs": -3}"#, "expected a non-negative integer"),
        // One past the documented maximum (2^53 - 1), found by the schemathesis run.
        (
            r#"{"epochs": 1, "seed": 9007199254740992}"#,
            "seed must be at most",
        ),
        (
            r#"{"epochs": 1, "seed": 9223372036854775808}"#,
            "seed must be at most",
        ),
    ] {
        let (status, reply) = http(addr, "POST", "/api/v1/training/start", body);
        assert_eq!(status, 422, "{body}: {reply}");
        assert_eq!(reply["success"], false, "{reply}");
        assert_eq!(reply["error"]["code"], "INVALID_REQUEST", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let (_, page) = http(addr, "GET", "/api/v1/operations", "");
    assert_eq!(page["total_count"], 0, "nothing was started: {page}");

    let (status, doc) = http(addr, "GET", "/api/v1/openapi.json", "");
    assert_eq!(status, 200);
    let start = &doc["paths"]["/training/start"]["post"];
    assert!(start.is_object(), "{}", doc["paths"]);
    let schema = &doc["components"]["schemas"]["TrainingRequest"];
    assert_eq!(
        schema["required"],
        serde_json::json!(["epochs"]),
        "{schema}"
    );
    assert_eq!(schema["additionalProperties"], false, "{schema}");
}

#[cfg(unix)]
#[test]
fn training_host_runs_a_start_posted_with_the_fns_arguments() {
    let (mut host, mut stdout, addr) = serve("training_host", &[]);
    // The body a proxy sends: the domain fn's arguments under their own names.
    let args = serde_json::json!({
        "epochs": 5,
        "batches_per_epoch": 16,
        "learning_rate": 0.5,
        "seed": 3,
        "epoch_delay_ms": 0,
    });
    let (status, reply) = http(addr, "POST", "/api/v1/training/start", &args.to_string());
    assert_eq!(status, 200, "{reply}");
    let id = reply["data"]["operation_id"]
        .as_str()
        .expect("operation_id")
        .to_owned();
    assert!(id.starts_with("op_training_"), "{id}");

    let (status, done) = http(
        addr,
        "GET",
        &format!("/api/v1/operations/{id}/wait?timeout_ms=10000"),
        "",
    );
    assert_eq!(status, 200, "{done}");
    let info = operation(addr, &id);
    assert_eq!(info["status"], "COMPLETED", "{info}");
    assert_eq!(info["result_summary"]["epochs_completed"], 5);
    assert_eq!(info["metadata"]["parameters"], args);
    assert_eq!(metric_count(addr, &id), 5);

    // Only the training endpoint: the others are the usual 404 envelope.
    let (status, reply) = http(addr, "POST", "/api/v1/dummy/start", "{}");
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["success"], false);

    common::signal(&host.0, "TERM");
    stdout.find(Duration::from_secs(10), |line| {
        line.starts_with("shutting down: cancelled 0 operations")
            .then_some(())
    });
    let status = wait_with_timeout(&mut host.0, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
}
