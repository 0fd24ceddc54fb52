//! Blocking work that outlives its operation's cancellation: the record tells the
//! truth, the concurrency slot stays taken until the work returns, and shutdown
//! reports what it leaves behind instead of hanging.

mod support;
use support::until;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use orchestrator::{
    OperationContext, OperationId, OperationSpec, OperationStatus, Operations, OrchestratorError,
};

/// A latch a blocking closure waits on, ignoring cancellation, until the test opens it.
#[derive(Clone)]
struct Latch(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Latch {
    fn new() -> Self {
        Self(Arc::default())
    }

    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// An operation whose blocking closure ignores cancellation until `latch` opens. It
/// reports through `entered` once the closure runs.
fn stuck(
    ops: &Operations,
    kind: &str,
    latch: &Latch,
    running: &Arc<AtomicUsize>,
    overlap: &Arc<AtomicBool>,
) -> (OperationId, mpsc::Receiver<()>) {
    let (entered, entered_rx) = mpsc::channel();
    let (latch, running, overlap) = (latch.clone(), running.clone(), overlap.clone());
    let handle = ops
        .spawn(
            OperationSpec::new(kind),
            move |ctx: OperationContext| async move {
                ctx.spawn_blocking(move |_ctx| {
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlap.store(true, Ordering::SeqCst);
                    }
                    let _ = entered.send(());
                    latch.wait();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .map_err(|e| e.to_string())
            },
        )
        .unwrap();
    (handle.id().clone(), entered_rx)
}

fn entered(rx: &mpsc::Receiver<()>) {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the blocking closure started within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_blocking_work_keeps_its_slot_and_says_so() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_millis(50))
        .with_concurrency_limit("gpu", 1)
        .build();
    let (running, overlap) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (latch_a, latch_b) = (Latch::new(), Latch::new());
    let (a, a_entered) = stuck(&ops, "gpu", &latch_a, &running, &overlap);
    entered(&a_entered);
    let (b, b_entered) = stuck(&ops, "gpu", &latch_b, &running, &overlap);
    assert_eq!(ops.get(&b).unwrap().status, OperationStatus::Pending);

    ops.cancel(&a, "superseded").unwrap();
    // Past the grace period the async part is dropped, but the record does not claim
    // an end: the closure still runs.
    let info = until(&ops, &a, |i| i.abandoned.is_some()).await;
    assert_eq!(info.status, OperationStatus::Running);
    assert_eq!(info.cancel_reason.as_deref(), Some("superseded"));
    let abandoned = info.abandoned.unwrap();
    assert_eq!(abandoned.blocking_tasks, 1);
    assert!(
        abandoned.message.contains("ignored cancellation"),
        "{abandoned:?}"
    );
    assert_eq!(ops.abandoned_count(), 1);
    assert_eq!(ops.active_count(), 2);
    let listed = ops.list(&orchestrator::OperationFilter::new().active_only());
    assert_eq!(listed.total_count, 2);
    // The slot is still A's: B has not started.
    assert_eq!(ops.get(&b).unwrap().status, OperationStatus::Pending);
    assert!(a_entered.try_recv().is_err() && b_entered.try_recv().is_err());

    latch_a.open();
    let a_end = tokio::time::timeout(Duration::from_secs(5), ops.wait(&a))
        .await
        .expect("A ended once its closure returned")
        .unwrap();
    assert_eq!(a_end.status, OperationStatus::Cancelled);
    assert!(a_end.abandoned.is_none());
    assert_eq!(ops.abandoned_count(), 0);
    // Only now does B get the slot.
    tokio::task::spawn_blocking(move || entered(&b_entered))
        .await
        .unwrap();
    assert!(
        !overlap.load(Ordering::SeqCst),
        "two gpu operations ran at once"
    );
    latch_b.open();
    let b_end = tokio::time::timeout(Duration::from_secs(5), ops.wait(&b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b_end.status, OperationStatus::Completed);
    assert_eq!(ops.active_count(), 0);
}

#[test]
fn a_dropped_runtime_does_not_record_an_end_for_running_blocking_work() {
    let ops = Operations::builder()
        .with_concurrency_limit("gpu", 1)
        .build();
    let latch = Latch::new();
    let (running, overlap) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (id, rx) = runtime.block_on(async { stuck(&ops, "gpu", &latch, &running, &overlap) });
    entered(&rx);
    // Drops every task (the operation's driver with it, on the worker as it stops)
    // without waiting for the blocking pool.
    runtime.shutdown_background();
    let deadline = Instant::now() + Duration::from_secs(5);
    while {
        let info = ops.get(&id).unwrap();
        info.abandoned.is_none() && info.status.is_active()
    } {
        assert!(Instant::now() < deadline, "the driver was not dropped");
        std::thread::sleep(Duration::from_millis(2));
    }
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Running, "{info:?}");
    assert!(info.abandoned.is_some(), "{info:?}");
    assert!(info.cancel_reason.is_some());
    // The slot is still held: another gpu operation cannot start yet.
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let queued = second.block_on(async {
        let h = ops
            .spawn(OperationSpec::new("gpu"), |_ctx| async {
                Ok::<_, String>(())
            })
            .unwrap();
        tokio::task::yield_now().await;
        h.id().clone()
    });
    assert_eq!(ops.get(&queued).unwrap().status, OperationStatus::Pending);

    latch.open();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ops.get(&id).unwrap().status.is_active() {
        assert!(
            Instant::now() < deadline,
            "not ended after its closure returned"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert!(info.abandoned.is_none());
    // The slot was handed on: the queued one runs to the end.
    let end = second.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), ops.wait(&queued))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(end.status, OperationStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_stuck_blocking_work_returns_and_reports_it() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_millis(100))
        .with_shutdown_drain(Duration::from_millis(300))
        .build();
    let latch = Latch::new();
    let (running, overlap) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (stuck_id, rx) = stuck(&ops, "load", &latch, &running, &overlap);
    entered(&rx);
    let polite = ops
        .spawn(
            OperationSpec::new("dummy"),
            |ctx: OperationContext| async move { ctx.sleep(Duration::from_secs(3600)).await },
        )
        .unwrap();

    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), ops.shutdown("server stopping"))
        .await
        .expect("shutdown returned within grace + drain (+ slack)");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "it waited the drain"
    );
    assert_eq!(report.cancelled, 2);
    assert!(!report.is_clean());
    let left: Vec<_> = report
        .left_running
        .iter()
        .map(|i| &i.operation_id)
        .collect();
    assert_eq!(left, [&stuck_id]);
    assert!(report.left_running[0].abandoned.is_some());
    assert_eq!(
        ops.get(polite.id()).unwrap().status,
        OperationStatus::Cancelled
    );
    latch.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_work_beyond_the_limit_refuses_new_operations() {
    let ops = Operations::builder()
        .with_grace_period(Duration::from_millis(20))
        .with_max_abandoned(2)
        .build();
    let latch = Latch::new();
    let (running, overlap) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (id, rx) = stuck(&ops, "load", &latch, &running, &overlap);
        entered(&rx);
        ops.cancel(&id, "stop").unwrap();
        ids.push(id);
    }
    for id in &ids {
        until(&ops, id, |i| i.abandoned.is_some()).await;
    }
    assert_eq!(ops.abandoned_count(), 2);
    let before = ops.len();
    let refused = ops.spawn(OperationSpec::new("load"), |_ctx| async {
        Ok::<_, String>(())
    });
    match refused {
        Err(OrchestratorError::AbandonedWorkLimit { abandoned, limit }) => {
            assert_eq!((abandoned, limit), (2, 2));
        }
        other => panic!("expected AbandonedWorkLimit, got {other:?}"),
    }
    assert_eq!(ops.len(), before, "a refused operation is not registered");

    latch.open();
    for id in &ids {
        let end = tokio::time::timeout(Duration::from_secs(5), ops.wait(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end.status, OperationStatus::Cancelled);
    }
    assert_eq!(ops.abandoned_count(), 0);
    let accepted = ops
        .spawn(OperationSpec::new("load"), |_ctx| async {
            Ok::<_, String>(())
        })
        .unwrap();
    assert!(accepted.outcome().await.is_completed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_over_blocking_work_fails_only_once_the_work_returned() {
    let ops = Operations::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    let latch = Latch::new();
    let l = latch.clone();
    let handle = ops
        .spawn(
            OperationSpec::new("load").with_deadline(Duration::from_millis(50)),
            move |ctx: OperationContext| async move {
                ctx.spawn_blocking(move |ctx| {
                    let _ = entered_tx.send(());
                    l.wait();
                    ctx.is_cancelled()
                })
                .await
                .map_err(|e| e.to_string())
            },
        )
        .unwrap();
    let id = handle.id().clone();
    entered(&entered_rx);
    let info = until(&ops, &id, |i| i.abandoned.is_some()).await;
    assert_eq!(info.status, OperationStatus::Running);
    assert_eq!(info.cancel_reason.as_deref(), Some("deadline exceeded"));
    latch.open();
    let end = tokio::time::timeout(Duration::from_secs(5), ops.wait(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.status, OperationStatus::Failed);
    assert_eq!(end.error_message.as_deref(), Some("deadline exceeded"));
}
