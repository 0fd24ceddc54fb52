//! Checkpoints, resume and child operations, through the public API: a resumed
//! attempt continues from the last checkpoint (the work before it is not done
//! again), the refusals, a resume on another replica after its owner died, two
//! resumes racing, and children that follow their parent's cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orchestrator::{
    Failure, OperationContext, OperationFilter, OperationId, OperationSpec, OperationStatus,
    Operations, OrchestratorError, Outcome,
};
use serde_json::json;

#[path = "support/stores.rs"]
mod stores;
mod support;

use stores::{Store, TestDb};

const PATIENCE: Duration = Duration::from_secs(5);

/// Counts from its checkpoint (or 0) up to `to`, saving each number as the new
/// checkpoint; `work` counts every number counted, over all attempts. The first
/// attempt fails once it has saved `fail_after`, or, with `park`, waits there for a
/// cancellation.
async fn count(
    ctx: OperationContext,
    to: u64,
    fail_after: Option<u64>,
    park: bool,
    work: Arc<AtomicU64>,
) -> Result<u64, String> {
    let from = ctx
        .resume_state::<u64>()
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    ctx.set_total_steps(to);
    for i in from + 1..=to {
        ctx.checkpoint().map_err(|e| e.to_string())?;
        work.fetch_add(1, Ordering::SeqCst);
        ctx.progress(i, format!("{i}/{to}"));
        ctx.save_checkpoint(&i).await.map_err(|e| e.to_string())?;
        // Each number takes a moment, so that a racing resume finds it running.
        ctx.sleep(Duration::from_millis(1))
            .await
            .map_err(|e| e.to_string())?;
        if fail_after == Some(i) && ctx.attempt() == 1 {
            if park {
                ctx.cancelled().await;
                return Err("cancelled while parked".into());
            }
            return Err(format!("failed after {i}"));
        }
    }
    Ok(to - from)
}

/// Registers `count` as the resumer of `count` operations of `ops`.
fn register(ops: &Operations, work: &Arc<AtomicU64>) {
    let work = work.clone();
    ops.resumable("count", move |_ops, ctx, params| {
        let to = params
            .get("to")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        count(ctx, to, None, false, work.clone())
    });
}

fn spec(to: u64) -> OperationSpec {
    OperationSpec::new("count").with_parameter("to", to)
}

/// Spawns a first attempt of `count` to `to` that fails after `fail_after`.
fn failing(ops: &Operations, to: u64, fail_after: u64, work: &Arc<AtomicU64>) -> OperationId {
    let work = work.clone();
    ops.spawn(spec(to), move |ctx| {
        count(ctx, to, Some(fail_after), false, work)
    })
    .expect("spawned")
    .id()
    .clone()
}

/// Polls `check` until it holds, for at most `PATIENCE`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `check` until it returns `Some`, for at most `PATIENCE`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How the loser of two resumes is refused: by the guard on the attempt while the
/// other is under way, or because the operation already runs its next attempt.
fn refused_as_resumed(result: &Result<orchestrator::OperationInfo, OrchestratorError>) -> bool {
    matches!(
        result,
        Err(OrchestratorError::AlreadyResumed { attempt: 2, .. })
            | Err(OrchestratorError::NotResumable {
                status: OperationStatus::Pending | OperationStatus::Running,
                ..
            })
    )
}

async fn wait(ops: &Operations, id: &OperationId) -> orchestrator::OperationInfo {
    tokio::time::timeout(PATIENCE, ops.cluster().wait(id))
        .await
        .expect("ended in time")
        .expect("known")
}

mod in_memory {
    use super::*;

    #[tokio::test]
    async fn a_failed_operation_resumes_from_its_last_checkpoint() {
        let ops = Operations::new();
        let work = Arc::new(AtomicU64::new(0));
        register(&ops, &work);
        let id = failing(&ops, 10, 4, &work);
        let failed = wait(&ops, &id).await;
        assert_eq!(failed.status, OperationStatus::Failed);
        assert_eq!(failed.error_message.as_deref(), Some("failed after 4"));
        assert_eq!((failed.attempt, failed.checkpoint_step), (1, Some(4)));
        assert!(failed.checkpoint_at.is_some());

        let resumed = ops.resume(&id).await.expect("resumed");
        assert_eq!(resumed.operation_id, id);
        assert_eq!(resumed.attempt, 2);
        assert!(resumed.status.is_active(), "{:?}", resumed.status);
        assert_eq!(resumed.error_message, None);

        let done = wait(&ops, &id).await;
        assert_eq!(done.status, OperationStatus::Completed);
        assert_eq!(done.attempt, 2);
        // 5..=10 in the second attempt: 1..=4 were not counted again.
        assert_eq!(done.result_summary, Some(json!(6)));
        assert_eq!(work.load(Ordering::SeqCst), 10);
        assert_eq!(done.checkpoint_step, Some(10));
        // Still one operation, under its id.
        assert_eq!(ops.list(&OperationFilter::new()).total_count, 1);
    }

    #[tokio::test]
    async fn a_cancelled_operation_resumes_too() {
        let ops = Operations::new();
        let work = Arc::new(AtomicU64::new(0));
        register(&ops, &work);
        let parked = work.clone();
        let handle = ops
            .spawn(spec(5), move |ctx| count(ctx, 5, Some(2), true, parked))
            .unwrap();
        let id = handle.id().clone();
        until("the first attempt reached 2", || {
            ops.get(&id)
                .ok()
                .and_then(|i| i.checkpoint_step)
                .is_some_and(|s| s == 2)
        })
        .await;
        ops.cancel(&id, "pause").unwrap();
        assert_eq!(wait(&ops, &id).await.status, OperationStatus::Cancelled);

        ops.resume(&id).await.expect("resumed");
        let done = wait(&ops, &id).await;
        assert_eq!(done.status, OperationStatus::Completed);
        // The old attempt's cancel reason does not stick to the new one.
        assert_eq!(done.cancel_reason, None);
        assert_eq!(work.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn what_cannot_be_resumed_is_refused_with_a_reason() {
        let ops = Operations::new();
        let work = Arc::new(AtomicU64::new(0));
        register(&ops, &work);

        // Completed.
        let w = work.clone();
        let done = ops
            .spawn(spec(2), move |ctx| count(ctx, 2, None, false, w))
            .unwrap();
        let done = done.id().clone();
        wait(&ops, &done).await;
        let err = ops.resume(&done).await.unwrap_err();
        assert!(
            matches!(
                err,
                OrchestratorError::NotResumable {
                    status: OperationStatus::Completed,
                    ..
                }
            ),
            "{err}"
        );

        // Still running.
        let w = work.clone();
        let running = ops
            .spawn(spec(3), move |ctx| count(ctx, 3, Some(1), true, w))
            .unwrap();
        let err = ops.resume(running.id()).await.unwrap_err();
        assert!(
            matches!(err, OrchestratorError::NotResumable { .. }),
            "{err}"
        );
        running.cancel("done with it").unwrap();

        // Failed before its first checkpoint.
        let never = ops
            .spawn(spec(3), |_ctx| async { Err::<u64, _>("no luck") })
            .unwrap();
        let never = never.id().clone();
        wait(&ops, &never).await;
        let err = ops.resume(&never).await.unwrap_err();
        assert!(matches!(err, OrchestratorError::NoCheckpoint(_)), "{err}");
        assert!(
            err.to_string().contains("never saved a checkpoint"),
            "{err}"
        );

        // A kind nobody registered.
        let other = ops
            .spawn(OperationSpec::new("other"), |ctx| async move {
                ctx.save_checkpoint(&1).await.map_err(|e| e.to_string())?;
                Err::<(), _>("failed".to_owned())
            })
            .unwrap();
        let other = other.id().clone();
        wait(&ops, &other).await;
        let err = ops.resume(&other).await.unwrap_err();
        assert!(matches!(err, OrchestratorError::NoResumer { .. }), "{err}");
        assert!(err.to_string().contains("OTHER"), "{err}");

        // Unknown.
        let unknown = OperationId::generate(&"count".into());
        assert!(matches!(
            ops.resume(&unknown).await,
            Err(OrchestratorError::NotFound(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_resumes_at_once_exactly_one_wins() {
        let ops = Operations::new();
        let work = Arc::new(AtomicU64::new(0));
        register(&ops, &work);
        let id = failing(&ops, 50, 1, &work);
        wait(&ops, &id).await;
        let (a, b) = tokio::join!(ops.resume(&id), ops.resume(&id));
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{a:?} {b:?}");
        let lost = if a.is_err() { a } else { b };
        assert!(refused_as_resumed(&lost), "{lost:?}");
        assert_eq!(wait(&ops, &id).await.status, OperationStatus::Completed);
        assert_eq!(work.load(Ordering::SeqCst), 50);
        assert_eq!(ops.active_count(), 0);
    }
}

mod children {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_the_parent_cancels_its_running_children_at_once() {
        let ops = Operations::new();
        let parent = ops
            .spawn(OperationSpec::new("parent"), |ctx| async move {
                let children: Vec<_> = (0..3)
                    .map(|i| {
                        ctx.spawn_child(
                            OperationSpec::new("child").with_parameter("i", i),
                            |child| async move {
                                child.cancelled().await;
                                Err::<(), _>("stopped")
                            },
                        )
                        .expect("child spawned")
                    })
                    .collect();
                ctx.cancelled().await;
                for child in children {
                    assert!(matches!(child.outcome().await, Outcome::Cancelled(None)));
                }
                Ok::<_, String>(())
            })
            .unwrap();
        let id = parent.id().clone();
        let children = OperationFilter::new().with_parent(id.clone());
        until("three children run", || {
            let list = ops.list(&children);
            list.total_count == 3
                && list
                    .operations
                    .iter()
                    .all(|c| c.status == OperationStatus::Running)
        })
        .await;
        let asked = Instant::now();
        ops.cancel(&id, "user stop").unwrap();
        let list = loop {
            let list = ops.list(&children);
            if list.operations.iter().all(|c| c.status.is_terminal()) {
                break list;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "children still run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        for child in &list.operations {
            assert_eq!(child.status, OperationStatus::Cancelled);
            assert_eq!(child.parent_id.as_ref(), Some(&id));
            assert_eq!(child.cancel_reason.as_deref(), Some("user stop"));
        }
        assert_eq!(wait(&ops, &id).await.status, OperationStatus::Cancelled);
    }

    #[tokio::test]
    async fn a_cancelled_or_panicking_child_is_the_parents_to_handle() {
        let ops = Operations::new();
        let parent = ops
            .spawn(OperationSpec::new("parent"), |ctx| async move {
                let stopped = ctx
                    .spawn_child(OperationSpec::new("child"), |c| async move {
                        c.cancelled().await;
                        Err::<u32, _>("stopped")
                    })
                    .map_err(|e| e.to_string())?;
                stopped.cancel("not needed").map_err(|e| e.to_string())?;
                let stopped = stopped.outcome().await;
                let panicked = ctx
                    .spawn_child(OperationSpec::new("child"), |_c| async move {
                        if true {
                            panic!("bad row");
                        }
                        Ok::<u32, String>(1)
                    })
                    .map_err(|e| e.to_string())?
                    .outcome()
                    .await;
                ctx.checkpoint().map_err(|e| e.to_string())?;
                Ok::<_, String>(format!(
                    "{};{}",
                    matches!(stopped, Outcome::Cancelled(None)),
                    matches!(panicked, Outcome::Failed(Failure::Panicked(ref m)) if m == "bad row")
                ))
            })
            .unwrap();
        let info = wait(&ops, parent.id()).await;
        assert_eq!(info.status, OperationStatus::Completed);
        assert_eq!(info.result_summary, Some(json!("true;true")));
        let list = ops.list(&OperationFilter::new().with_parent(parent.id().clone()));
        let statuses: Vec<_> = list.operations.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [OperationStatus::Failed, OperationStatus::Cancelled]
        );
        assert!(
            list.operations[0]
                .error_message
                .as_deref()
                .is_some_and(|m| m.contains("bad row"))
        );
    }

    #[tokio::test]
    async fn weighted_children_move_the_parents_progress() {
        let ops = Operations::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let parent = ops
            .spawn(OperationSpec::new("parent"), |ctx| async move {
                let small = ctx
                    .spawn_child(
                        OperationSpec::new("child").with_progress_weight(1.0),
                        |c| async move {
                            c.set_percentage(100.0);
                            Ok::<_, String>(())
                        },
                    )
                    .map_err(|e| e.to_string())?;
                let big = ctx
                    .spawn_child(
                        OperationSpec::new("child").with_progress_weight(3.0),
                        |c| async move {
                            c.set_percentage(50.0);
                            let _ = rx.await;
                            Ok::<_, String>(())
                        },
                    )
                    .map_err(|e| e.to_string())?;
                assert!(matches!(small.outcome().await, Outcome::Completed(())));
                assert!(matches!(big.outcome().await, Outcome::Completed(())));
                Ok::<_, String>(())
            })
            .unwrap();
        let id = parent.id().clone();
        // (1 × 100 + 3 × 50) / 4
        until("the parent shows 62.5 %", || {
            ops.get(&id)
                .is_ok_and(|i| (i.progress.percentage - 62.5).abs() < 1e-9)
        })
        .await;
        tx.send(()).unwrap();
        let done = wait(&ops, &id).await;
        assert_eq!(done.progress.percentage, 100.0);
    }
}

/// The same across replicas on a real store: each scenario runs on every backend.
mod scenarios {
    use super::*;

    const FLUSH: Duration = Duration::from_millis(50);
    const LEASE: Duration = Duration::from_millis(400);

    async fn replica(store: Store, work: &Arc<AtomicU64>) -> Operations {
        let ops = Operations::builder()
            .with_flush_interval(FLUSH)
            .with_lease(LEASE)
            .open(store)
            .await
            .expect("the store is reachable");
        register(&ops, work);
        ops
    }

    /// A's operation saves checkpoints, A dies, B marks it interrupted and resumes it:
    /// B runs attempt 2 from A's last checkpoint, and the store says so.
    pub async fn another_replica_resumes_an_interrupted_operation(db: TestDb) {
        let work = Arc::new(AtomicU64::new(0));
        let a = replica(db.reopen().await, &work).await;
        let b = replica(db.reopen().await, &work).await;
        let w = work.clone();
        let handle = a
            .spawn(spec(20), move |ctx| count(ctx, 20, Some(7), true, w))
            .unwrap();
        let id = handle.id().clone();
        eventually("A's checkpoint 7 is stored", || async {
            let stored = db.store.get(&id).await.ok()??;
            (stored.checkpoint.as_ref()?.step == 7).then_some(())
        })
        .await;
        // A's registry goes away with the operation still running (parked at 7), as
        // in a crash: nothing renews its lease any more.
        drop(handle);
        drop(a);
        let failed = eventually("B declares it interrupted", || async {
            let info = b.cluster().get(&id).await.ok()?;
            info.status.is_terminal().then_some(info)
        })
        .await;
        assert_eq!(failed.status, OperationStatus::Failed);
        assert!(
            failed
                .error_message
                .as_deref()
                .unwrap_or("")
                .starts_with("interrupted")
        );
        assert_eq!(failed.checkpoint_step, Some(7));

        let resumed = b.resume(&id).await.expect("B resumes it");
        assert_eq!(resumed.attempt, 2);
        let done = wait(&b, &id).await;
        assert_eq!(done.status, OperationStatus::Completed);
        assert_eq!(done.result_summary, Some(json!(13)));
        assert_eq!(work.load(Ordering::SeqCst), 20, "8..=20 after 1..=7");
        let stored = eventually("the end is stored", || async {
            let s = db.store.get(&id).await.ok()??;
            s.info.status.is_terminal().then_some(s)
        })
        .await;
        assert_eq!(stored.info.status, OperationStatus::Completed);
        assert_eq!((stored.fence.attempt, stored.info.attempt), (2, 2));
        assert_eq!(stored.checkpoint.map(|c| c.step), Some(20));
    }

    /// Two replicas resume the same failed operation at once: the store lets one.
    pub async fn two_replicas_resuming_at_once_start_one_attempt(db: TestDb) {
        let work = Arc::new(AtomicU64::new(0));
        let a = replica(db.reopen().await, &work).await;
        let b = replica(db.reopen().await, &work).await;
        let id = failing(&a, 30, 3, &work);
        assert_eq!(wait(&a, &id).await.status, OperationStatus::Failed);
        let (ra, rb) = tokio::join!(a.resume(&id), b.resume(&id));
        assert_eq!(
            [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{ra:?} {rb:?}"
        );
        let (winner, lost) = if ra.is_ok() { (&a, rb) } else { (&b, ra) };
        assert!(refused_as_resumed(&lost), "{lost:?}");
        let done = wait(winner, &id).await;
        assert_eq!(done.status, OperationStatus::Completed);
        assert_eq!(work.load(Ordering::SeqCst), 30);
        // The loser's replica sees the winner's end too.
        let other = if std::ptr::eq(winner, &a) { &b } else { &a };
        eventually("the other replica sees it completed", || async {
            let info = other.cluster().get(&id).await.ok()?;
            (info.status == OperationStatus::Completed).then_some(())
        })
        .await;
    }
}

macro_rules! resume_on {
    ($module:ident, $make:path, $available:path) => {
        mod $module {
            use super::*;
            resume_on!(@tests $make, $available;
                another_replica_resumes_an_interrupted_operation,
                two_replicas_resuming_at_once_start_one_attempt,
            );
        }
    };
    (@tests $make:path, $available:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $available() {
                    scenarios::$name($make().await).await;
                }
            }
        )*
    };
}

resume_on!(memory_store, stores::memory, stores::always);
resume_on!(sqlite_store, stores::sqlite, stores::always);
resume_on!(postgres_store, stores::postgres, stores::postgres_available);

mod http {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_resume_and_children_routes() {
        let ops = Operations::new();
        let work = Arc::new(AtomicU64::new(0));
        register(&ops, &work);
        let server = support::serve(ops.clone()).await;
        let c = &server.client;

        let id = failing(&ops, 6, 2, &work);
        wait(&ops, &id).await;
        // Like every POST of the API, not from a form: JSON only.
        let form = c
            .send(
                hyper::Method::POST,
                &format!("/api/v1/operations/{id}/resume"),
                Some("application/x-www-form-urlencoded"),
                hyper::body::Bytes::new(),
            )
            .await;
        assert_eq!(form.error_code(415), "INVALID_REQUEST");
        let unknown_field = c
            .post_json(
                &format!("/api/v1/operations/{id}/resume"),
                &json!({"from": 1}),
            )
            .await;
        assert_eq!(unknown_field.error_code(422), "INVALID_REQUEST");
        let resumed = c
            .post_json(&format!("/api/v1/operations/{id}/resume"), &json!({}))
            .await;
        assert_eq!(resumed.status, 200, "{:?}", resumed.body);
        assert_eq!(resumed.data()["attempt"], 2);
        assert_eq!(wait(&ops, &id).await.status, OperationStatus::Completed);

        // Completed now: 409 OPERATION_NOT_RESUMABLE.
        let again = c
            .post_json(&format!("/api/v1/operations/{id}/resume"), &json!({}))
            .await;
        assert_eq!(again.error_code(409), "OPERATION_NOT_RESUMABLE");
        let record = c.get(&format!("/api/v1/operations/{id}")).await;
        assert_eq!(record.data()["attempt"], 2);
        assert_eq!(record.data()["checkpoint_step"], 6);
        assert!(record.data()["checkpoint_at"].is_string());

        // No checkpoint: 409 NO_CHECKPOINT.
        let never = ops
            .spawn(spec(3), |_ctx| async { Err::<u64, _>("no luck") })
            .unwrap();
        let never = never.id().clone();
        wait(&ops, &never).await;
        let refused = c
            .post_json(&format!("/api/v1/operations/{never}/resume"), &json!({}))
            .await;
        assert_eq!(refused.error_code(409), "NO_CHECKPOINT");
        let unknown = OperationId::generate(&"count".into());
        let missing = c
            .post_json(&format!("/api/v1/operations/{unknown}/resume"), &json!({}))
            .await;
        assert_eq!(missing.error_code(404), "OPERATION_NOT_FOUND");

        // Children, and the list's parent filter.
        let parent = ops
            .spawn(OperationSpec::new("parent"), |ctx| async move {
                for _ in 0..2 {
                    let child = ctx
                        .spawn_child(OperationSpec::new("child"), |_c| async {
                            Ok::<_, String>(())
                        })
                        .map_err(|e| e.to_string())?;
                    assert!(matches!(child.outcome().await, Outcome::Completed(())));
                }
                Ok::<_, String>(())
            })
            .unwrap();
        let parent = parent.id().clone();
        wait(&ops, &parent).await;
        let children = c
            .get(&format!("/api/v1/operations/{parent}/children"))
            .await;
        assert_eq!(children.status, 200, "{:?}", children.body);
        assert_eq!(children.body["total_count"], 2);
        for child in children.data().as_array().unwrap() {
            assert_eq!(child["parent_id"], parent.as_str());
        }
        let listed = c
            .get(&format!("/api/v1/operations?parent_id={parent}"))
            .await;
        assert_eq!(listed.body["total_count"], 2);
        for bad in ["nope", ""] {
            let bad = c.get(&format!("/api/v1/operations?parent_id={bad}")).await;
            assert_eq!(bad.error_code(400), "INVALID_QUERY");
        }
        let orphan = c
            .get(&format!("/api/v1/operations/{unknown}/children"))
            .await;
        assert_eq!(orphan.error_code(404), "OPERATION_NOT_FOUND");
    }
}
