//! `registry`: get by id among 10k and 100k operations next to a `DashMap` get, and
//! `list` with a status filter over 10k operations.

use std::hint::black_box;

use criterion::{BenchmarkId, criterion_group, criterion_main};
use dashmap::DashMap;
use orchestrator::{OperationFilter, OperationId, OperationSpec, OperationStatus, Operations};
use orchestrator_benches::criterion;

fn populated(n: usize) -> (Operations, Vec<OperationId>) {
    // Every record is kept: the bench reads all of them.
    let ops = Operations::builder()
        .without_sweeper()
        .with_max_active(usize::MAX)
        .with_max_retained(usize::MAX)
        .build();
    let ids: Vec<_> = (0..n)
        .map(|i| {
            let id = ops
                .create(OperationSpec::new(if i % 2 == 0 {
                    "dummy"
                } else {
                    "training"
                }))
                .expect("create");
            if i % 4 != 0 {
                ops.start(&id).expect("start");
            }
            if i % 4 == 3 {
                ops.complete(&id, i).expect("complete");
            }
            id
        })
        .collect();
    (ops, ids)
}

fn get(c: &mut criterion::Criterion) {
    let mut g = c.benchmark_group("registry_get");
    for n in [10_000usize, 100_000] {
        let (ops, ids) = populated(n);
        let map: DashMap<OperationId, orchestrator::OperationInfo> = ids
            .iter()
            .map(|id| (id.clone(), ops.get(id).expect("get")))
            .collect();
        g.bench_function(BenchmarkId::new("dashmap_get_clone", n), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(map.get(&ids[i]).map(|e| e.value().clone()));
            });
        });
        g.bench_function(BenchmarkId::new("dashmap_get_ref", n), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(map.get(&ids[i]).map(|e| e.value().status));
            });
        });
        g.bench_function(BenchmarkId::new("operations_get", n), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(ops.get(&ids[i]).expect("get"));
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("registry_list");
    let (ops, _) = populated(10_000);
    g.bench_function("list_running_of_10k_page_100", |b| {
        let filter = OperationFilter::new().with_status(OperationStatus::Running);
        b.iter(|| black_box(ops.list(&filter)));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = get
}
criterion_main!(benches);
