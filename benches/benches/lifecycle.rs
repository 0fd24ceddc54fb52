//! `lifecycle`: a managed no-op operation (spawn → COMPLETED observed) next to a bare
//! `tokio::spawn(async {}).await`, and the registry's bookkeeping alone.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, criterion_group, criterion_main};
use orchestrator::{OperationSpec, OperationType, Operations};
use orchestrator_benches::{criterion, runtime};

fn lifecycle(c: &mut criterion::Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("lifecycle");

    // Both loops run inside a task on a worker thread, as a request handler would:
    // measured from the bench thread, OS thread wake-ups dominate and drown the figure.
    g.bench_function(BenchmarkId::new("spawn_join", "bare tokio"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async {}).await.expect("join");
                }
                start.elapsed()
            }))
            .expect("bench task")
        });
    });

    g.bench_function(BenchmarkId::new("spawn_join", "managed no-op"), |b| {
        b.iter_custom(|iters| {
            let ops = Operations::builder().without_sweeper().build();
            let on_worker = ops.clone();
            let took = rt
                .block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let handle = on_worker
                            .spawn(OperationSpec::new(OperationType::DUMMY), |_ctx| async {
                                Ok::<_, Infallible>(())
                            })
                            .expect("spawn");
                        assert!(handle.outcome().await.is_completed());
                    }
                    start.elapsed()
                }))
                .expect("bench task");
            ops.cleanup(Duration::ZERO);
            took
        });
    });

    g.bench_function(
        BenchmarkId::new("bookkeeping", "create_start_complete"),
        |b| {
            b.iter_custom(|iters| {
                let ops = Operations::builder().without_sweeper().build();
                let start = Instant::now();
                for _ in 0..iters {
                    let id = ops
                        .create(OperationSpec::new(OperationType::DUMMY))
                        .expect("create");
                    ops.start(&id).expect("start");
                    ops.complete(&id, ()).expect("complete");
                }
                let took = start.elapsed();
                ops.cleanup(Duration::ZERO);
                took
            });
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = lifecycle
}
criterion_main!(benches);
