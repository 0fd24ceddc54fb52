//! `cancellation`: `Operations::cancel(id)` until the operation's future observes it,
//! next to a bare tokio-util token cancel until a parked waiter observes it; and
//! `cancel_all` over 10k and 100k running operations.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, criterion_group, criterion_main};
use orchestrator::{OperationSpec, Operations};
use orchestrator_benches::{criterion, runtime};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

fn cancel_one(c: &mut criterion::Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("cancellation");

    // Measured from a task on a worker thread, as a request handler would cancel.
    g.bench_function(BenchmarkId::new("cancel_observed", "bare token"), |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let token = CancellationToken::new();
                    let (parked_tx, parked) = oneshot::channel();
                    let (seen_tx, seen) = oneshot::channel();
                    let waiter = token.clone();
                    tokio::spawn(async move {
                        let cancelled = waiter.cancelled();
                        tokio::pin!(cancelled);
                        // Park on the token, then tell the bench we are parked.
                        assert!(futures_poll_once(cancelled.as_mut()).await.is_none());
                        let _ = parked_tx.send(());
                        cancelled.await;
                        let _ = seen_tx.send(Instant::now());
                    });
                    parked.await.expect("parked");
                    let start = Instant::now();
                    token.cancel();
                    let observed = seen.await.expect("observed");
                    total += observed - start;
                }
                total
            })
        });
    });

    g.bench_function(BenchmarkId::new("cancel_observed", "registry"), |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, async move {
                let ops = Operations::builder().without_sweeper().build();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (parked_tx, parked) = oneshot::channel();
                    let (seen_tx, seen) = oneshot::channel();
                    let handle = ops
                        .spawn(OperationSpec::new("bench"), move |ctx| async move {
                            let cancelled = ctx.cancelled();
                            tokio::pin!(cancelled);
                            assert!(futures_poll_once(cancelled.as_mut()).await.is_none());
                            let _ = parked_tx.send(());
                            cancelled.await;
                            let _ = seen_tx.send(Instant::now());
                            Ok::<_, Infallible>(())
                        })
                        .expect("spawn");
                    parked.await.expect("parked");
                    let start = Instant::now();
                    ops.cancel(handle.id(), "bench").expect("cancel");
                    let observed = seen.await.expect("observed");
                    total += observed - start;
                    let _ = handle.outcome().await;
                }
                ops.cleanup(Duration::ZERO);
                total
            })
        });
    });
    g.finish();
}

/// Runs `fut` as a task on one of the runtime's workers and returns its result.
fn on_worker<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(rt.spawn(fut)).expect("bench task")
}

/// Polls `fut` once; `Some` if it completed.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut fut: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

fn cancel_all(c: &mut criterion::Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("cancel_all");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        g.bench_function(BenchmarkId::new("until_all_cancelled", n), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ops = Operations::builder()
                        .without_sweeper()
                        .with_max_active(usize::MAX)
                        .build();
                    let handles: Vec<_> = (0..n)
                        .map(|_| {
                            ops.spawn(OperationSpec::new("bench"), |ctx| async move {
                                ctx.cancelled().await;
                                Ok::<_, Infallible>(())
                            })
                            .expect("spawn")
                        })
                        .collect();
                    // Let every operation start and park on its token.
                    while ops.list(&Default::default()).active_count > 0
                        && ops
                            .list(
                                &orchestrator::OperationFilter::new()
                                    .with_status(orchestrator::OperationStatus::Pending),
                            )
                            .total_count
                            > 0
                    {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // Cancelled from a worker, as a signal or HTTP handler would.
                    let ops2 = ops.clone();
                    total += tokio::spawn(async move {
                        let start = Instant::now();
                        ops2.cancel_all("bench");
                        for h in handles {
                            let _ = h.outcome().await;
                        }
                        start.elapsed()
                    })
                    .await
                    .expect("cancel task");
                    assert_eq!(ops.active_count(), 0);
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = cancel_one, cancel_all
}
criterion_main!(benches);
