//! Managed operations: spawned or inline futures whose result decides the outcome.

mod support;
use support::until;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestrator::{
    Cancelled, Failure, OperationContext, OperationId, OperationInfo, OperationSpec,
    OperationStatus, Operations, OrchestratorError, Outcome, ServiceOrchestrator,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Summary {
    iterations_completed: u64,
}

/// Counts iterations until done or cancelled; returns how far it got either way.
async fn count(ctx: OperationContext, n: u64, every: Duration) -> Result<Summary, Cancelled> {
    let mut done = 0;
    for i in 1..=n {
        if ctx.sleep(every).await.is_err() {
            break;
        }
        done = i;
        ctx.progress(i, format!("Iteration {i}/{n}"));
    }
    Ok(Summary {
        iterations_completed: done,
    })
}

async fn wait(ops: &Operations, id: &OperationId) -> OperationInfo {
    tokio::time::timeout(Duration::from_secs(5), ops.wait(id))
        .await
        .expect("operation ended within 5 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_completes_with_summary_and_full_progress() {
    let ops = Operations::new();
    let handle = ops
        .spawn(OperationSpec::new("dummy").with_total_steps(3), |ctx| {
            count(ctx, 3, Duration::from_millis(1))
        })
        .unwrap();
    let id = handle.id().clone();
    let outcome = handle.outcome().await;
    assert!(matches!(
        outcome,
        Outcome::Completed(Summary {
            iterations_completed: 3
        })
    ));
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_summary.unwrap()["iterations_completed"], 3);
    assert_eq!(info.progress.percentage, 100.0);
    assert_eq!(
        (info.progress.steps_completed, info.progress.steps_total),
        (3, 3)
    );
    assert_eq!(info.progress.current_step, "Iteration 3/3");
}

#[tokio::test]
async fn err_fails_with_the_error_message() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |_ctx| async {
            Err::<(), _>("disk full".to_owned())
        })
        .unwrap();
    let id = h.id().clone();
    assert!(matches!(h.outcome().await, Outcome::Failed(Failure::Error(e)) if e == "disk full"));
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("disk full"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_cancel_ends_cancelled_with_the_partial_summary() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy").with_total_steps(1000), |ctx| {
            count(ctx, 1000, Duration::from_millis(2))
        })
        .unwrap();
    let id = h.id().clone();
    until(&ops, &id, |i| i.progress.steps_completed >= 2).await;
    let asked = Instant::now();
    ops.cancel(&id, "user pressed Ctrl+C").unwrap();
    let info = wait(&ops, &id).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.cancel_reason.as_deref(), Some("user pressed Ctrl+C"));
    let summary: Summary = serde_json::from_value(info.result_summary.unwrap()).unwrap();
    assert!(summary.iterations_completed >= 2 && summary.iterations_completed < 1000);
    // The count kept is the one the work itself reported.
    assert_eq!(summary.iterations_completed, info.progress.steps_completed);
    assert!(matches!(h.outcome().await, Outcome::Cancelled(Some(s)) if s == summary));
}

#[tokio::test]
async fn returning_an_error_after_cancel_is_cancelled_not_failed() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |ctx| async move {
            ctx.cancelled().await;
            ctx.checkpoint()?;
            Ok::<_, Cancelled>(())
        })
        .unwrap();
    ops.cancel(h.id(), "stop").unwrap();
    let info = wait(&ops, h.id()).await;
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(info.error_message, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_cooperative_operation_is_aborted_after_the_grace_period() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_millis(100))
        .build();
    let dropped = Arc::new(Mutex::new(false));
    struct SetOnDrop(Arc<Mutex<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = true;
        }
    }
    let flag = SetOnDrop(dropped.clone());
    let h = ops
        .spawn(OperationSpec::new("stubborn"), move |_ctx| async move {
            let _flag = flag;
            // Never looks at its context.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, String>(())
        })
        .unwrap();
    until(&ops, h.id(), |i| i.status == OperationStatus::Running).await;
    let asked = Instant::now();
    ops.cancel(h.id(), "stop").unwrap();
    let info = wait(&ops, h.id()).await;
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert!(
        asked.elapsed() >= Duration::from_millis(100),
        "aborted before grace"
    );
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(*dropped.lock().unwrap(), "the work future was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_fails_the_operation_and_the_runtime_keeps_serving() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |_ctx| async {
            if true {
                panic!("index out of range");
            }
            Ok::<_, String>(())
        })
        .unwrap();
    let id = h.id().clone();
    assert!(
        matches!(h.outcome().await, Outcome::Failed(Failure::Panicked(m)) if m == "index out of range")
    );
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(
        info.error_message.as_deref(),
        Some("panicked: index out of range")
    );

    let next = ops
        .spawn(OperationSpec::new("dummy"), |_ctx| async {
            Ok::<_, String>(7)
        })
        .unwrap();
    assert!(matches!(next.outcome().await, Outcome::Completed(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_fails_the_operation_and_cancels_its_token() {
    let ops = Operations::new();
    let token = Arc::new(Mutex::new(None));
    let seen = token.clone();
    let h = ops
        .spawn(
            OperationSpec::new("slow").with_deadline(Duration::from_millis(50)),
            move |ctx| async move {
                *seen.lock().unwrap() = Some(ctx.token().clone());
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, String>(())
            },
        )
        .unwrap();
    let id = h.id().clone();
    assert!(matches!(
        h.outcome().await,
        Outcome::Failed(Failure::DeadlineExceeded)
    ));
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("deadline exceeded"));
    let token = token.lock().unwrap().clone().unwrap();
    assert!(token.is_cancelled());
    assert_eq!(token.reason().as_deref(), Some("deadline exceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_keeps_excess_pending_and_runs_them_fifo() {
    let ops = Operations::builder()
        .with_concurrency_limit("limited", 1)
        .build();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let log = order.clone();
    let first = ops
        .spawn(OperationSpec::new("limited"), move |_ctx| async move {
            log.lock().unwrap().push(0);
            let _ = released.await;
            Ok::<_, String>(())
        })
        .unwrap();
    until(&ops, first.id(), |i| i.status == OperationStatus::Running).await;

    let rest: Vec<_> = (1..=5)
        .map(|n| {
            let log = order.clone();
            ops.spawn(OperationSpec::new("limited"), move |_ctx| async move {
                log.lock().unwrap().push(n);
                Ok::<_, String>(())
            })
            .unwrap()
        })
        .collect();
    // Other kinds are not limited.
    let free = ops
        .spawn(OperationSpec::new("free"), |_ctx| async {
            Ok::<_, String>(())
        })
        .unwrap();
    assert!(free.outcome().await.is_completed());
    for h in &rest {
        assert_eq!(ops.get(h.id()).unwrap().status, OperationStatus::Pending);
    }
    // A pending operation can be cancelled while it waits; it never runs.
    ops.cancel(rest[2].id(), "not needed").unwrap();

    release.send(()).unwrap();
    for h in rest {
        let _ = h.outcome().await;
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 4, 5]);
}

/// A queued operation's driver waits for its slot and its cancellation in one box
/// (the slot's): cancelling it while the slot stays taken ends it at once, without
/// running it, and the slot's holder is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_operation_cancelled_while_the_slot_stays_taken_ends_at_once() {
    let ops = Operations::builder()
        .with_concurrency_limit("limited", 1)
        .build();
    let holder = ops
        .spawn(OperationSpec::new("limited"), |ctx| async move {
            ctx.cancelled().await;
            Ok::<_, String>(())
        })
        .unwrap();
    until(&ops, holder.id(), |i| i.status == OperationStatus::Running).await;
    let ran = Arc::new(Mutex::new(false));
    let flag = ran.clone();
    let queued = ops
        .spawn(OperationSpec::new("limited"), move |_ctx| async move {
            *flag.lock().unwrap() = true;
            Ok::<_, String>(())
        })
        .unwrap();
    assert_eq!(
        ops.get(queued.id()).unwrap().status,
        OperationStatus::Pending
    );

    queued.cancel("not needed").unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(1), queued.outcome())
        .await
        .expect("a queued operation ends within 1 s of its cancellation");
    assert!(outcome.is_cancelled());
    assert!(
        !*ran.lock().unwrap(),
        "a cancelled queued operation never runs"
    );
    assert_eq!(
        ops.get(holder.id()).unwrap().status,
        OperationStatus::Running
    );

    // Its place in the queue is given up: the next one runs once the holder ends.
    let next = ops
        .spawn(OperationSpec::new("limited"), |_ctx| async {
            Ok::<_, String>(7)
        })
        .unwrap();
    holder.cancel("done").unwrap();
    assert!(holder.outcome().await.is_cancelled());
    let next = tokio::time::timeout(Duration::from_secs(1), next.outcome())
        .await
        .expect("the next operation gets the slot");
    assert!(next.is_completed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_holder_sees_the_same_token() {
    let ops = Operations::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let h = ops
        .spawn(OperationSpec::new("dummy"), move |ctx| async move {
            let _ = tx.send(ctx.clone());
            ctx.cancelled().await;
            Ok::<_, String>(())
        })
        .unwrap();
    let ctx = rx.await.unwrap();
    let from_registry = ops.token(h.id()).unwrap();
    let blocking_view = ctx.clone();
    assert!(!ctx.is_cancelled() && !from_registry.is_cancelled());
    h.cancel("one for all").unwrap();
    assert!(ctx.is_cancelled() && from_registry.is_cancelled());
    let seen = tokio::task::spawn_blocking(move || blocking_view.token().reason())
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some("one for all"));
    assert_eq!(wait(&ops, h.id()).await.status, OperationStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_all_stops_every_running_operation() {
    let ops = Operations::new();
    let handles: Vec<_> = (0..100)
        .map(|_| {
            ops.spawn(OperationSpec::new("dummy"), |ctx| {
                count(ctx, 1_000_000, Duration::from_millis(5))
            })
            .unwrap()
        })
        .collect();
    for h in &handles {
        until(&ops, h.id(), |i| i.status == OperationStatus::Running).await;
    }
    assert_eq!(ops.cancel_all("shutdown"), 100);
    for h in handles {
        let id = h.id().clone();
        assert!(h.outcome().await.is_cancelled());
        let info = ops.get(&id).unwrap();
        assert_eq!(info.status, OperationStatus::Cancelled);
        assert_eq!(info.cancel_reason.as_deref(), Some("shutdown"));
    }
    assert_eq!(ops.active_count(), 0);
}

/// The work's wait on its own token rides on the driver's waker (no waiter of its
/// own): a cancellation racing the operation's first polls, from another thread, is
/// still seen by the work at once, not by the end of the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_the_first_poll_is_seen_by_the_work() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_secs(3600))
        .build();
    for round in 0..2_000 {
        let handle = ops
            .spawn(
                OperationSpec::new("racer"),
                |ctx: OperationContext| async move {
                    ctx.cancelled().await;
                    Ok::<_, Cancelled>("saw it")
                },
            )
            .unwrap();
        let (canceller, id) = (ops.clone(), handle.id().clone());
        // By id (the operation's own node) or through the root (its wake list).
        let cancel = std::thread::spawn(move || {
            if round % 2 == 1 {
                std::thread::yield_now();
            }
            if round % 4 < 2 {
                canceller.cancel(&id, "race").map(|_| 1)
            } else {
                Ok(canceller.cancel_all("race"))
            }
        });
        let outcome = tokio::time::timeout(Duration::from_secs(5), handle.outcome())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the work never saw its cancellation"));
        assert!(outcome.is_cancelled(), "round {round}: {outcome:?}");
        assert_eq!(cancel.join().unwrap().unwrap(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_run_is_registered_and_cancellable() {
    let ops = Operations::new();
    let watcher = {
        let ops = ops.clone();
        tokio::spawn(async move {
            loop {
                let list = ops.list(&Default::default());
                if let Some(info) = list.operations.first() {
                    if info.progress.steps_completed >= 1 {
                        ops.cancel(&info.operation_id, "from another task").unwrap();
                        return info.operation_id.clone();
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let outcome = ops
        .run(
            OperationSpec::new("dummy").with_total_steps(10_000),
            |ctx| count(ctx, 10_000, Duration::from_millis(2)),
        )
        .await;
    let id = watcher.await.unwrap();
    let Outcome::Cancelled(Some(partial)) = outcome else {
        panic!("expected a cooperative cancel, got {outcome:?}");
    };
    assert!(partial.iterations_completed >= 1);
    assert_eq!(ops.get(&id).unwrap().status, OperationStatus::Cancelled);
}

#[tokio::test]
async fn dropping_an_inline_run_does_not_leave_it_running() {
    let ops = Operations::new();
    let run = ops.run(OperationSpec::new("dummy"), |ctx| async move {
        ctx.sleep(Duration::from_secs(3600)).await
    });
    let _ = tokio::time::timeout(Duration::from_millis(20), run).await;
    let list = ops.list(&Default::default());
    assert_eq!(list.operations.len(), 1);
    assert_eq!(list.operations[0].status, OperationStatus::Cancelled);
    assert_eq!(list.active_count, 0);
}

#[derive(Clone)]
struct Svc {
    ops: Operations,
}

impl ServiceOrchestrator for Svc {
    fn operations(&self) -> &Operations {
        &self.ops
    }
    fn service_name(&self) -> &str {
        "svc"
    }
}

#[test]
fn run_sync_operation_outside_a_runtime() {
    let svc = Svc {
        ops: Operations::new(),
    };
    let outcome = svc
        .run_sync_operation(OperationSpec::new("dummy").with_total_steps(2), |ctx| {
            count(ctx, 2, Duration::from_millis(1))
        })
        .unwrap();
    assert!(matches!(
        outcome,
        Outcome::Completed(Summary {
            iterations_completed: 2
        })
    ));
    assert_eq!(
        svc.ops.list(&Default::default()).operations[0].status,
        OperationStatus::Completed
    );
}

#[tokio::test(flavor = "current_thread")]
async fn run_sync_operation_inside_a_runtime() {
    let svc = Svc {
        ops: Operations::new(),
    };
    let outcome = svc
        .run_sync_operation(OperationSpec::new("dummy"), |ctx| {
            count(ctx, 2, Duration::from_millis(1))
        })
        .unwrap();
    assert!(outcome.is_completed());
}

#[tokio::test]
async fn service_helpers() {
    let svc = Svc {
        ops: Operations::new(),
    };
    let started = svc
        .start_managed_operation(
            OperationSpec::new("dummy").with_description("dummy task"),
            |ctx| count(ctx, 1, Duration::from_millis(1)),
        )
        .unwrap();
    assert_eq!(started.status, "started");
    assert_eq!(started.message, "Started dummy task");
    assert_eq!(
        wait(&svc.ops, &started.operation_id).await.status,
        OperationStatus::Completed
    );

    let inline = svc
        .run_managed_operation(OperationSpec::new("dummy"), |_ctx| async {
            Ok::<_, String>(5)
        })
        .await;
    assert!(matches!(inline, Outcome::Completed(5)));

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let observed = orchestrator::OperationContext::run_observed(
        OperationSpec::new("sub").with_total_steps(4),
        move |p| log.lock().unwrap().push(p.percentage),
        |ctx| async move {
            for i in 1..=4 {
                ctx.progress(i, "step");
            }
            Ok::<_, String>(())
        },
    )
    .await;
    assert!(observed.is_completed());
    assert_eq!(*seen.lock().unwrap(), [25.0, 50.0, 75.0, 100.0]);
    // Not registered.
    assert_eq!(svc.ops.len(), 2);
}

#[test]
fn spawn_outside_a_runtime_is_an_error_and_registers_nothing() {
    let ops = Operations::new();
    let r = ops.spawn(OperationSpec::new("dummy"), |_ctx| async {
        Ok::<_, String>(())
    });
    assert!(matches!(r, Err(OrchestratorError::NoRuntime)));
    assert!(ops.is_empty());
}

/// A runtime shut down before a spawned operation's task first ran drops that task
/// unpolled: the operation must still end (`CANCELLED`), not stay `PENDING` forever
/// with its active slot held.
#[test]
fn an_operation_whose_runtime_stops_before_it_runs_ends_cancelled() {
    let ops = Operations::builder().without_sweeper().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Spawned from inside the runtime, but the runtime never runs the task: nothing
    // awaits after it.
    let id = rt
        .block_on(async {
            ops.spawn(OperationSpec::new("dummy"), |_ctx| async {
                Ok::<_, String>(())
            })
        })
        .expect("spawn")
        .id()
        .clone();
    assert_eq!(ops.get(&id).unwrap().status, OperationStatus::Pending);
    drop(rt);
    let info = ops.get(&id).expect("still listed");
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(ops.list(&Default::default()).active_count, 0);
}

/// The operation's fn itself (not only its future) panicking, before it returns a
/// future, fails the operation the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_before_the_future_exists_fails_the_operation() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |_ctx| {
            if true {
                panic!("bad arguments");
            }
            async { Ok::<_, String>(()) }
        })
        .unwrap();
    let id = h.id().clone();
    assert!(
        matches!(h.outcome().await, Outcome::Failed(Failure::Panicked(m)) if m == "bad arguments")
    );
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(
        info.error_message.as_deref(),
        Some("panicked: bad arguments")
    );
}

/// A parent that spawns one child waiting on its token, sends the child's id, and
/// then, paying no heed to its own cancellation, runs until `release` fires.
async fn parent_with_child(
    ops: &Operations,
    release: tokio::sync::oneshot::Receiver<()>,
) -> (OperationId, OperationId) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let parent = ops
        .spawn(
            OperationSpec::new("parent"),
            move |ctx: OperationContext| async move {
                let child = ctx
                    .spawn_child(
                        OperationSpec::new("child"),
                        |c: OperationContext| async move {
                            c.cancelled().await;
                            Ok::<_, String>(())
                        },
                    )
                    .map_err(|e| e.to_string())?;
                let _ = tx.send(child.id().clone());
                let _ = release.await;
                drop(child);
                Ok::<_, String>(())
            },
        )
        .unwrap();
    (parent.id().clone(), rx.await.unwrap())
}

#[tokio::test]
async fn a_cancelled_operations_final_reason_is_the_one_it_ended_with() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_secs(60))
        .build();
    let reason = |id: &OperationId| ops.get(id).unwrap().cancel_reason;
    let shared = |id: &OperationId| {
        ops.with_info(id, |op| op.cancel_reason().map(|r| r.to_string()))
            .unwrap()
    };
    let mut releases = Vec::new();

    // Cancelled without a reason: it ends with the placeholder, and a reason its
    // parent takes afterwards (which the child's token then reports) does not
    // rewrite its record.
    let (release, rx) = tokio::sync::oneshot::channel();
    releases.push(release);
    let (parent, child) = parent_with_child(&ops, rx).await;
    ops.token(&child).unwrap().cancel();
    assert_eq!(wait(&ops, &child).await.status, OperationStatus::Cancelled);
    assert_eq!(reason(&child).as_deref(), Some("cancelled"));
    ops.cancel(&parent, "parent later").unwrap();
    let token = ops.token(&child).unwrap();
    assert_eq!(token.reason().as_deref(), Some("parent later"));
    assert_eq!(reason(&child).as_deref(), Some("cancelled"));
    assert_eq!(shared(&child).as_deref(), Some("cancelled"));

    // Cancelled through the registry's root while its parent runs on: cancelling the
    // parent, or the registry again, later changes neither record.
    let (release, rx) = tokio::sync::oneshot::channel();
    releases.push(release);
    let (parent, child) = parent_with_child(&ops, rx).await;
    ops.cancel_all("shutdown");
    assert_eq!(wait(&ops, &child).await.status, OperationStatus::Cancelled);
    assert_eq!(
        ops.cancel(&parent, "parent later").unwrap(),
        OperationStatus::Running
    );
    ops.cancel_all("again");
    assert_eq!(reason(&child).as_deref(), Some("shutdown"));
    assert_eq!(shared(&child).as_deref(), Some("shutdown"));
    assert_eq!(reason(&parent).as_deref(), Some("shutdown"));

    // Cancelled with a reason of its own: that one stays, whatever comes after.
    let (release, rx) = tokio::sync::oneshot::channel();
    releases.push(release);
    let (parent, child) = parent_with_child(&ops, rx).await;
    ops.cancel(&child, "own").unwrap();
    assert_eq!(wait(&ops, &child).await.status, OperationStatus::Cancelled);
    ops.cancel(&parent, "parent later").unwrap();
    ops.cancel_all("after");
    assert_eq!(reason(&child).as_deref(), Some("own"));
    assert_eq!(shared(&child).as_deref(), Some("own"));

    for release in releases {
        let _ = release.send(());
    }
}
