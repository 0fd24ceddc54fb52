//! `lifecycle`: a managed no-op operation (spawn → COMPLETED observed) next to a bare
//! `tokio::spawn(async {}).await`, and the registry's bookkeeping alone.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, criterion_group, criterion_main};
use orchestrator::{OperationSpec, Operations};
use orchestrator_benches::{criterion, runtime};

fn lifecycle(c: &mut criterion::Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("lifecycle");

    g.bench_function(BenchmarkId::new("spawn_join", "bare tokio"), |b| {
        b.to_async(&rt).iter(|| async {
            tokio::spawn(async {}).await.expect("join");
        });
    });

    g.bench_function(BenchmarkId::new("spawn_join", "managed no-op"), |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let ops = Operations::builder().without_sweeper().build();
            let start = Instant::now();
            for _ in 0..iters {
                let handle = ops
                    .spawn(OperationSpec::new("noop"), |_ctx| async {
                        Ok::<_, Infallible>(())
                    })
                    .expect("spawn");
                assert!(handle.outcome().await.is_completed());
            }
            let took = start.elapsed();
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
                    let id = ops.create(OperationSpec::new("noop"));
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
