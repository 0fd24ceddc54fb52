//! What an operation sees through its context: progress, phases, blocking work,
//! isolation between concurrent operations.

mod support;
use support::until;

use std::time::{Duration, Instant};

use orchestrator::{
    Cancelled, OperationContext, OperationSpec, OperationStatus, Operations, ServiceOrchestrator,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_cancellation_from_spawn_blocking_threads() {
    let ops = Operations::new();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let h = ops
        .spawn(OperationSpec::new("data_load"), move |ctx| async move {
            ctx.set_items_total(1_000_000);
            let rows = ctx
                .spawn_blocking(move |ctx| {
                    let thread = format!("{:?}", std::thread::current().id());
                    let mut rows = 0u64;
                    for segment in 0..1_000u64 {
                        if ctx.is_cancelled() {
                            break;
                        }
                        rows += 1_000;
                        ctx.items(rows);
                        ctx.set_percentage(segment as f64 / 10.0);
                        if segment == 10 {
                            // Let the test observe progress made on this thread.
                            let _ = gate_rx.recv();
                        }
                    }
                    (rows, thread)
                })
                .await?;
            Ok::<_, Cancelled>(rows)
        })
        .unwrap();
    let info = until(&ops, h.id(), |i| i.progress.items_processed >= 11_000).await;
    assert_eq!(info.progress.items_total, Some(1_000_000));
    assert!(info.progress.percentage > 0.0);
    ops.cancel(h.id(), "enough").unwrap();
    gate_tx.send(()).unwrap();
    let outcome = h.outcome().await;
    let Some((rows, thread)) = outcome.value() else {
        panic!("expected a partial value: {outcome:?}");
    };
    assert!(outcome.is_cancelled());
    assert_eq!(
        *rows, 11_000,
        "the blocking loop stopped at the first check after cancel"
    );
    assert_ne!(*thread, format!("{:?}", std::thread::current().id()));
}

#[tokio::test]
async fn spawn_blocking_panic_fails_the_operation() {
    let ops = Operations::new();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |ctx| async move {
            ctx.spawn_blocking(|_ctx| -> u32 { panic!("bad row") })
                .await?;
            Ok::<_, Cancelled>(())
        })
        .unwrap();
    let id = h.id().clone();
    let _ = h.outcome().await;
    let info = ops.get(&id).unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("panicked: bad row"));
}

#[test]
fn phase_ranges_map_into_the_parent() {
    let ctx = OperationContext::detached();
    let pct = |ctx: &OperationContext| ctx.progress_snapshot().percentage;

    let load = ctx.phase(0.0..10.0).with_total_steps(2);
    load.progress(1, "loading 1/2");
    assert_eq!(pct(&ctx), 5.0);
    load.progress(2, "loading 2/2");
    assert_eq!(pct(&ctx), 10.0);

    let train = ctx.phase(10.0..96.0).with_total_steps(4);
    train.progress(1, "epoch 1/4");
    assert!((pct(&ctx) - 31.5).abs() < 1e-9);
    let snapshot = ctx.progress_snapshot();
    assert_eq!((snapshot.steps_completed, snapshot.steps_total), (1, 4));
    assert_eq!(snapshot.current_step, "epoch 1/4");

    // Nested: the second half of epoch 2 maps into 10 + 86 * (1/4 .. 2/4).
    let epoch2 = train.phase(25.0..50.0).with_total_steps(10);
    epoch2.progress(5, "batch 5/10");
    assert!((pct(&ctx) - (10.0 + 86.0 * 0.375)).abs() < 1e-9);

    // Percentages set directly map the same way; out-of-range input is clamped.
    train.set_percentage(100.0);
    assert!((pct(&ctx) - 96.0).abs() < 1e-9);
    let save = ctx.phase(96.0..100.0);
    save.set_percentage(250.0);
    assert_eq!(pct(&ctx), 100.0);
    let odd = ctx.phase(f64::NAN..-5.0);
    odd.set_percentage(50.0);
    assert_eq!(pct(&ctx), 0.0);
    // Steps beyond the total count as done.
    load.progress(7, "overshoot");
    assert_eq!(pct(&ctx), 10.0);
}

#[tokio::test]
async fn detached_context_sleep_wakes_on_cancel() {
    let ctx = OperationContext::detached();
    let sleeper = {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.sleep(Duration::from_secs(3600)).await })
    };
    tokio::task::yield_now().await;
    let asked = Instant::now();
    ctx.token().cancel();
    let r = tokio::time::timeout(Duration::from_secs(1), sleeper)
        .await
        .expect("sleep woke within 1 s")
        .unwrap();
    assert_eq!(r, Err(Cancelled));
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(ctx.sleep(Duration::from_secs(3600)).await, Err(Cancelled));
}

#[derive(Clone)]
struct Trainer {
    ops: Operations,
}

impl ServiceOrchestrator for Trainer {
    fn operations(&self) -> &Operations {
        &self.ops
    }
    fn service_name(&self) -> &str {
        "trainer"
    }
}

impl Trainer {
    async fn train(
        &self,
        ctx: OperationContext,
        name: &'static str,
    ) -> Result<&'static str, Cancelled> {
        ctx.set_total_steps(1_000_000);
        let mut step = 0;
        loop {
            step += 1;
            ctx.progress(step, format!("{name} step {step}"));
            ctx.set_context("model", name);
            ctx.sleep(Duration::from_millis(1)).await?;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_on_one_service_keep_separate_progress_and_tokens() {
    let svc = Trainer {
        ops: Operations::new(),
    };
    let (a, b) = (svc.clone(), svc.clone());
    let ha = svc
        .start_managed_operation(OperationSpec::new("training"), move |ctx| async move {
            a.train(ctx, "alpha").await
        })
        .unwrap();
    let hb = svc
        .start_managed_operation(OperationSpec::new("training"), move |ctx| async move {
            b.train(ctx, "beta").await
        })
        .unwrap();
    let (ida, idb) = (ha.operation_id, hb.operation_id);
    for _ in 0..20 {
        let ia = until(&svc.ops, &ida, |i| i.progress.steps_completed > 0).await;
        let ib = until(&svc.ops, &idb, |i| i.progress.steps_completed > 0).await;
        assert!(ia.progress.current_step.starts_with("alpha"), "{ia:?}");
        assert!(ib.progress.current_step.starts_with("beta"), "{ib:?}");
        assert_eq!(ia.progress.context["model"], "alpha");
        assert_eq!(ib.progress.context["model"], "beta");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    svc.ops.cancel(&ida, "only alpha").unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), svc.ops.wait(&ida))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, OperationStatus::Cancelled);
    let other = svc.ops.get(&idb).unwrap();
    assert_eq!(other.status, OperationStatus::Running);
    assert!(!svc.ops.token(&idb).unwrap().is_cancelled());
    svc.ops.cancel_all("end of test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_wakes_on_the_terminal_transition() {
    let ops = Operations::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = ops
        .spawn(OperationSpec::new("dummy"), |_ctx| async move {
            let _ = rx.await;
            Ok::<_, String>(1)
        })
        .unwrap();
    let id = h.id().clone();
    let waiter = {
        let ops = ops.clone();
        tokio::spawn(async move { ops.wait(&id).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    tx.send(()).unwrap();
    let info = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("waiter woke")
        .unwrap()
        .unwrap();
    assert_eq!(info.status, OperationStatus::Completed);
}

#[test]
fn a_step_past_the_total_is_clamped_to_it() {
    let ops = Operations::new();
    let id = ops
        .create(OperationSpec::new("dummy").with_total_steps(100))
        .unwrap();
    ops.start(&id).unwrap();
    let ctx = ops.context(&id).unwrap();
    ctx.progress(150, "overshot");
    let p = ops.get(&id).unwrap().progress;
    assert_eq!((p.steps_completed, p.steps_total), (100, 100));
    assert_eq!(p.percentage, 100.0);
    // The same inside a phase: its own steps are clamped to its own total.
    let phase = ctx.phase(0.0..50.0).with_total_steps(10);
    phase.progress(25, "phase overshot");
    let p = ops.get(&id).unwrap().progress;
    assert_eq!((p.steps_completed, p.steps_total), (10, 10));
    assert_eq!(p.percentage, 50.0);
    // With no total, a step is shown as given.
    let free = OperationContext::detached();
    free.progress(7, "no total");
    assert_eq!(free.progress_snapshot().steps_completed, 7);
}

#[tokio::test]
async fn a_completed_run_shows_its_whole_steps_not_its_last_phase() {
    let ops = Operations::new();
    // No total of its own: the whole run is the sum of its phases' steps.
    let handle = ops
        .spawn(
            OperationSpec::new("training"),
            |ctx: OperationContext| async move {
                let prepare = ctx.phase(0.0..10.0).named("prepare").with_total_steps(1);
                prepare.progress(1, "prepared");
                let train = ctx.phase(10.0..90.0).named("train").with_total_steps(10);
                for epoch in 1..=10 {
                    train.progress(epoch, format!("epoch {epoch}/10"));
                }
                let save = ctx.phase(90.0..100.0).named("save").with_total_steps(2);
                save.progress(2, "saved");
                assert_eq!(ctx.progress_snapshot().phase.as_deref(), Some("save"));
                Ok::<_, String>(())
            },
        )
        .unwrap();
    let info = ops.wait(handle.id()).await.unwrap();
    assert_eq!(info.status, OperationStatus::Completed);
    let p = info.progress;
    assert_eq!((p.steps_completed, p.steps_total), (13, 13));
    assert_eq!(p.percentage, 100.0);
    assert_eq!(p.current_step, "saved");

    // With a total of its own (the macro's `total_steps`), that is the whole run.
    let handle = ops
        .spawn(
            OperationSpec::new("training").with_total_steps(10),
            |ctx: OperationContext| async move {
                let train = ctx.phase(0.0..90.0).named("train").with_total_steps(10);
                train.progress(10, "epoch 10/10");
                let running = ctx.progress_snapshot();
                assert_eq!(running.phase.as_deref(), Some("train"));
                assert_eq!((running.steps_completed, running.steps_total), (10, 10));
                ctx.phase(90.0..100.0)
                    .with_total_steps(2)
                    .progress(2, "saved");
                Ok::<_, String>(())
            },
        )
        .unwrap();
    let p = ops.wait(handle.id()).await.unwrap().progress;
    assert_eq!((p.steps_completed, p.steps_total), (10, 10));
}

#[tokio::test]
async fn the_eta_follows_the_current_phase_not_a_fast_first_one() {
    let ctx = OperationContext::detached();
    // A fast first half...
    ctx.phase(0.0..50.0)
        .with_total_steps(1)
        .progress(1, "prepared");
    // ...then a slow one: one step of ten takes at least 100 ms.
    let train = ctx.phase(50.0..100.0).named("train").with_total_steps(10);
    train.progress(0, "epoch 0/10");
    assert_eq!(
        ctx.progress_snapshot().eta_seconds,
        None,
        "no rate yet in this phase"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    train.progress(1, "epoch 1/10");
    let p = ctx.progress_snapshot();
    assert_eq!(p.percentage, 55.0);
    // 45 % left at 5 % per >= 100 ms: at least 0.9 s. The whole run's average rate
    // (55 % in ~0.1 s) would say under 0.1 s.
    let eta = p.eta_seconds.expect("an ETA once the phase progressed");
    assert!(eta >= 0.85, "eta {eta}");
}

#[tokio::test]
async fn a_partial_result_survives_cancel_through_question_mark_and_failure() {
    let ops = Operations::new();
    let handle = ops
        .spawn(
            OperationSpec::new("training"),
            |ctx: OperationContext| async move {
                for epoch in 1..=1000u32 {
                    ctx.set_partial_result(serde_json::json!({ "epochs_completed": epoch }));
                    if epoch == 3 {
                        ctx.token().cancel_with_reason("enough");
                    }
                    ctx.sleep(Duration::from_millis(1)).await?;
                }
                Ok::<_, Cancelled>("all done")
            },
        )
        .unwrap();
    let info = ops.wait(handle.id()).await.unwrap();
    assert_eq!(info.status, OperationStatus::Cancelled);
    assert_eq!(
        info.result_summary,
        Some(serde_json::json!({ "epochs_completed": 3 }))
    );

    let handle = ops
        .spawn(
            OperationSpec::new("training"),
            |ctx: OperationContext| async move {
                ctx.set_partial_result(serde_json::json!({ "rows": 10 }));
                Err::<(), _>("disk full")
            },
        )
        .unwrap();
    let info = ops.wait(handle.id()).await.unwrap();
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(info.error_message.as_deref(), Some("disk full"));
    assert_eq!(info.result_summary, Some(serde_json::json!({ "rows": 10 })));

    // A returned value replaces it; while running it is visible.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = ops
        .spawn(
            OperationSpec::new("training"),
            |ctx: OperationContext| async move {
                ctx.set_partial_result(1);
                let _ = rx.await;
                Ok::<_, String>(2)
            },
        )
        .unwrap();
    let running = until(&ops, handle.id(), |i| i.result_summary.is_some()).await;
    assert_eq!(running.result_summary, Some(1.into()));
    tx.send(()).unwrap();
    let info = ops.wait(handle.id()).await.unwrap();
    assert_eq!(info.result_summary, Some(2.into()));
}
