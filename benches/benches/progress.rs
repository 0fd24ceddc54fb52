//! `progress`: one progress update (step + message) next to a
//! `parking_lot::Mutex<(u64, String)>` update, alone and while 8 tasks read the
//! operation's status in a loop.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{BenchmarkId, criterion_group, criterion_main};
use orchestrator::{OperationSpec, Operations};
use orchestrator_benches::{criterion, runtime};
use parking_lot::Mutex;

const MESSAGE: &str = "Iteration 42/100";

fn progress(c: &mut criterion::Criterion) {
    let mut g = c.benchmark_group("progress");

    let baseline = Mutex::new((0u64, String::new()));
    g.bench_function(BenchmarkId::new("update", "bare mutex"), |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            *baseline.lock() = (black_box(i), black_box(MESSAGE).to_owned());
        });
    });

    let ops = Operations::builder().without_sweeper().build();
    let id = ops
        .create(OperationSpec::new("bench").with_total_steps(u64::MAX))
        .expect("create");
    ops.start(&id).expect("start");
    let ctx = ops.context(&id).expect("context");
    g.bench_function(BenchmarkId::new("update", "operation context"), |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            ctx.progress(black_box(i), black_box(MESSAGE).to_owned());
        });
    });

    // The cancellation check a loop makes per item: an atomic load is the floor.
    let flag = std::sync::atomic::AtomicBool::new(false);
    g.bench_function(BenchmarkId::new("is_cancelled", "bare atomic"), |b| {
        b.iter(|| black_box(&flag).load(Ordering::Acquire));
    });
    g.bench_function(BenchmarkId::new("is_cancelled", "operation context"), |b| {
        b.iter(|| black_box(&ctx).is_cancelled());
    });

    // The same with 8 tasks reading status snapshots in a loop on the runtime's workers.
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (ops, id, stop) = (ops.clone(), id.clone(), stop.clone());
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    black_box(ops.get(&id).expect("get"));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let shared = Arc::new(Mutex::new((0u64, String::new())));
    let baseline_readers: Vec<_> = (0..8)
        .map(|_| {
            let (shared, stop) = (shared.clone(), stop.clone());
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    black_box(shared.lock().clone());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    g.bench_function(BenchmarkId::new("update_8_readers", "bare mutex"), |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            *shared.lock() = (black_box(i), black_box(MESSAGE).to_owned());
        });
    });
    g.bench_function(
        BenchmarkId::new("update_8_readers", "operation context"),
        |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                ctx.progress(black_box(i), black_box(MESSAGE).to_owned());
            });
        },
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for r in readers.into_iter().chain(baseline_readers) {
            r.await.expect("reader");
        }
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = progress
}
criterion_main!(benches);
