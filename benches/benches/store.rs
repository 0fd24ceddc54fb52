//! `store`: what attaching a durable store (`OperationsBuilder::open`) costs.
//!
//! - `store_lifecycle`: create → start → complete of no-op operations, in batches of
//!   1,000 spawned and then all waited (`wait` returns once the end is in the store),
//!   with no store and with a `MemoryStore`, a `SqliteStore` (temporary file) and a
//!   `PostgresStore` (a schema of its own) attached. The summary gives lifecycles/s,
//!   the ratio to no store, and each store's sequential create/start/finish call
//!   times: one writer lane of the registry applies them one after the other, so
//!   their sum bounds what one lane does (the registry runs 8 lanes at once).
//! - `store_progress`: one `ctx.progress` update of a running operation with no store
//!   and with a `SqliteStore` attached: it stays in memory (the flush writes it later).
//! - cancel latency: two registries on one store (the SQLite file opened twice, the
//!   Postgres schema connected twice); B cancels A's running operations through the
//!   store; the time from B's `cluster().cancel` returning to A's operation observing
//!   it, p50/p99. SQLite: picked up by A's flush (1 s); Postgres: pushed by `NOTIFY`.
//! - `store_flush`: one `OperationStore::flush` carrying the progress of 10,000
//!   running operations, per backend.
//!
//! Postgres: set `ORCHESTRATOR_TEST_POSTGRES_URL`; unset, its figures are skipped.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, SamplingMode, Throughput, criterion_group, criterion_main};
use orchestrator::store::{
    DEFAULT_LEASE, Fence, Finish, Flush, InstanceId, MemoryStore, NewOperation, OperationStore,
    PostgresStore, ProgressUpdate, SqliteStore,
};
use orchestrator::{
    Cancelled, OperationId, OperationProgress, OperationSpec, OperationStatus, OperationType,
    Operations,
};
use orchestrator_benches::runtime;
use parking_lot::Mutex;
use tokio::runtime::Runtime;

/// Lifecycles spawned, then waited, per measured iteration.
const BATCH: usize = 1_000;
/// Running operations whose progress one measured flush carries.
const FLUSHED: usize = 10_000;
/// Cross-replica cancels timed per store.
const CANCELS: usize = 50;
/// Sequential calls per store call kind in the lifecycle breakdown.
const CALLS: usize = 200;
const MESSAGE: &str = "Iteration 42/100";
const POSTGRES_URL: &str = "ORCHESTRATOR_TEST_POSTGRES_URL";

type Store = Arc<dyn OperationStore>;

/// Short enough for the whole bench to stay within a couple of minutes, with the
/// slowest store (a batch of 1,000 lifecycles on Postgres) still sampled 10 times.
fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args()
}

/// What Criterion measured in a benchmark, kept for the summary lines: `(iterations,
/// time)` per call of the `iter_custom` routine (warm-up included; the median is robust
/// to it).
#[derive(Default)]
struct Samples(Mutex<Vec<(u64, Duration)>>);

impl Samples {
    fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    fn record(&self, iters: u64, took: Duration) -> Duration {
        self.0.lock().push((iters, took));
        took
    }

    /// The median time per iteration.
    fn median(&self) -> Duration {
        let mut per: Vec<Duration> = self
            .0
            .lock()
            .iter()
            .map(|&(n, d)| d.div_f64(n.max(1) as f64))
            .collect();
        if per.is_empty() {
            return Duration::ZERO;
        }
        per.sort_unstable();
        per[per.len() / 2]
    }
}

/// The Postgres URL, or `None` (with a line saying so) when it is not set.
fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => None,
    }
}

fn skipped_postgres(what: &str) {
    println!("{what}: Postgres figures skipped ({POSTGRES_URL} is not set)");
}

/// A SQLite file in the temp directory, removed (with its WAL files) at the end.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "orchestrator-bench-{what}-{}-{}.db",
            std::process::id(),
            nanos()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A Postgres schema of this run, dropped at the end.
struct TempSchema {
    url: String,
    name: String,
}

impl TempSchema {
    fn new(url: &str, what: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("bench_{what}_{}_{}", std::process::id(), nanos()),
        }
    }

    async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, &self.name)
            .await
            .expect("connect to Postgres")
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // On a thread of its own: this may run inside a runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop bench schema {}", self.name);
        }
    }
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// A store under test and what must outlive it.
struct Backend {
    name: &'static str,
    store: Store,
    _file: Option<TempFile>,
    _schema: Option<TempSchema>,
}

/// Memory, SQLite and (when its URL is set) Postgres, each fresh.
fn backends(rt: &Runtime, what: &str) -> Vec<Backend> {
    let mut all = vec![Backend {
        name: "memory",
        store: Arc::new(MemoryStore::new()),
        _file: None,
        _schema: None,
    }];
    let file = TempFile::new(what);
    let sqlite = rt
        .block_on(SqliteStore::open(&file.0))
        .expect("open SQLite");
    all.push(Backend {
        name: "sqlite",
        store: Arc::new(sqlite),
        _file: Some(file),
        _schema: None,
    });
    if let Some(url) = postgres_url() {
        let schema = TempSchema::new(&url, what);
        let store = rt.block_on(schema.connect());
        all.push(Backend {
            name: "postgres",
            store: Arc::new(store),
            _file: None,
            _schema: Some(schema),
        });
    }
    all
}

fn registry(rt: &Runtime, store: Option<Store>) -> Operations {
    let builder = Operations::builder().without_sweeper();
    match store {
        None => builder.build(),
        Some(store) => rt.block_on(builder.open(store)).expect("open registry"),
    }
}

/// Spawns `BATCH` no-op operations, then waits for each; returns the time it took.
async fn lifecycle_batch(ops: &Operations) -> Duration {
    let start = Instant::now();
    let ids: Vec<OperationId> = (0..BATCH)
        .map(|_| {
            ops.spawn(OperationSpec::new(OperationType::DUMMY), |_ctx| async {
                Ok::<_, String>(())
            })
            .expect("spawn")
            .id()
            .clone()
        })
        .collect();
    for id in &ids {
        let info = ops.wait(id).await.expect("wait");
        assert_eq!(info.status, OperationStatus::Completed);
    }
    let took = start.elapsed();
    ops.cleanup(Duration::ZERO);
    took
}

/// Runs `f` on a current-thread runtime of a thread of its own, as the registry's
/// store thread runs its writer.
fn on_own_thread<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("store calls thread")
}

/// Mean time of `create`, `start` and `finish` called one after the other on `store`
/// (what one writer lane of the registry does for each operation).
async fn call_times(store: &dyn OperationStore) -> [Duration; 3] {
    let me = InstanceId::generate();
    store
        .register_instance(me, DEFAULT_LEASE, SystemTime::now())
        .await
        .expect("register");
    let fence = Fence::first(me);
    let ids: Vec<OperationId> = (0..CALLS)
        .map(|_| OperationId::generate(&OperationType::DUMMY))
        .collect();
    let t = Instant::now();
    for id in &ids {
        let op = NewOperation::new(id.clone(), OperationType::DUMMY, fence);
        store.create(&op).await.expect("create");
    }
    let create = t.elapsed();
    let t = Instant::now();
    for id in &ids {
        store
            .start(id, fence, SystemTime::now())
            .await
            .expect("start");
    }
    let start = t.elapsed();
    let t = Instant::now();
    for id in &ids {
        let done = Finish::completed(SystemTime::now(), serde_json::Value::Null)
            .with_progress(OperationProgress::default());
        store.finish(id, fence, &done).await.expect("finish");
    }
    let finish = t.elapsed();
    [create, start, finish].map(|d| d / CALLS as u32)
}

fn lifecycle(c: &mut criterion::Criterion) {
    let rt = runtime();
    let backends = backends(&rt, "lifecycle");
    let mut g = c.benchmark_group("store_lifecycle");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut rates = Vec::new();
    let targets = std::iter::once(("no store", None))
        .chain(backends.iter().map(|b| (b.name, Some(b.store.clone()))));
    for (name, store) in targets {
        // Before the registry: its store thread's connections die with that thread.
        // Joined here, so this thread's are closed (and not reused) before it opens.
        let calls = store
            .clone()
            .map(|s| on_own_thread(async move { call_times(&*s).await }));
        let ops = registry(&rt, store);
        let samples = Samples::default();
        g.bench_function(BenchmarkId::new("batch_1000", name), |b| {
            b.iter_custom(|iters| {
                let on_worker = ops.clone();
                // On a worker, as a request handler would spawn them.
                let took = rt
                    .block_on(rt.spawn(async move {
                        let mut took = Duration::ZERO;
                        for _ in 0..iters {
                            took += lifecycle_batch(&on_worker).await;
                        }
                        took
                    }))
                    .expect("bench task");
                samples.record(iters, took)
            });
        });
        drop(ops);
        if samples.is_empty() {
            continue; // filtered out
        }
        rates.push((name, BATCH as f64 / samples.median().as_secs_f64(), calls));
    }
    g.finish();
    if postgres_url().is_none() {
        skipped_postgres("store_lifecycle");
    }
    let baseline = rates
        .first()
        .filter(|(name, ..)| *name == "no store")
        .map(|&(_, rate, _)| rate);
    for (name, rate, calls) in &rates {
        let target = match *name {
            "sqlite" => " (target >= 2,000/s)",
            "postgres" => " (target >= 1,000/s)",
            _ => "",
        };
        let mut line = format!("store_lifecycle summary, {name}: {rate:.0} lifecycles/s{target}");
        if let Some(baseline) = baseline {
            line.push_str(&format!(", {:.1} % of no store", rate / baseline * 100.0));
        }
        if let Some([create, start, finish]) = calls {
            let sum = *create + *start + *finish;
            line.push_str(&format!(
                "; its calls one after the other, as one writer lane makes them: create {:.0} us + start {:.0} us + finish {:.0} us = {:.0} us \
                 per lifecycle ({:.0}/s)",
                create.as_secs_f64() * 1e6,
                start.as_secs_f64() * 1e6,
                finish.as_secs_f64() * 1e6,
                sum.as_secs_f64() * 1e6,
                1.0 / sum.as_secs_f64(),
            ));
        }
        println!("{line}");
    }
}

fn progress(c: &mut criterion::Criterion) {
    let rt = runtime();
    let file = TempFile::new("progress");
    let sqlite: Store = Arc::new(
        rt.block_on(SqliteStore::open(&file.0))
            .expect("open SQLite"),
    );
    let mut g = c.benchmark_group("store_progress");
    let mut medians = Vec::new();
    for (name, store) in [("no store", None), ("sqlite store", Some(sqlite))] {
        let ops = registry(&rt, store);
        let id = ops
            .create(OperationSpec::new("bench").with_total_steps(u64::MAX))
            .expect("create");
        ops.start(&id).expect("start");
        let ctx = ops.context(&id).expect("context");
        let samples = Samples::default();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("update", name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    ctx.progress(black_box(i), black_box(MESSAGE).to_owned());
                }
                samples.record(iters, start.elapsed())
            });
        });
        if !samples.is_empty() {
            medians.push(samples.median());
        }
        ops.complete(&id, ()).expect("complete");
        rt.block_on(ops.wait(&id)).expect("wait");
    }
    g.finish();
    let &[plain, stored] = medians.as_slice() else {
        return; // filtered out
    };
    println!(
        "store_progress summary: update {:.1} ns with no store, {:.1} ns with SQLite attached \
         ({:.2}x; target: unchanged, in memory)",
        plain.as_secs_f64() * 1e9,
        stored.as_secs_f64() * 1e9,
        stored.as_secs_f64() / plain.as_secs_f64(),
    );
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(values: &[Duration], p: f64) -> Duration {
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Cancels `CANCELS` running operations of `a` from `b`, one every `spacing` (so their
/// phases relative to `a`'s flush are spread over an interval); returns, per cancel,
/// the time from B's call returning to A's operation observing it, and the time of
/// the call itself.
async fn cancel_latencies(
    a: &Operations,
    b: &Operations,
    spacing: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ids = Vec::with_capacity(CANCELS);
    for i in 0..CANCELS {
        let seen = seen_tx.clone();
        let handle = a
            .spawn(OperationSpec::new("bench"), move |ctx| async move {
                loop {
                    if ctx.checkpoint().is_err() {
                        let _ = seen.send((i, Instant::now()));
                        return Err::<(), _>(Cancelled);
                    }
                    ctx.cancelled().await;
                }
            })
            .expect("spawn");
        handle.persisted().await;
        ids.push(handle.id().clone());
    }
    // B reads them from the store: wait until their start is written there too.
    for id in &ids {
        while b.cluster().get(id).await.expect("get").status != OperationStatus::Running {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut returned = Vec::with_capacity(CANCELS);
    let mut calls = Vec::with_capacity(CANCELS);
    let first = tokio::time::Instant::now();
    for (i, id) in ids.iter().enumerate() {
        tokio::time::sleep_until(first + spacing * i as u32).await;
        let t = Instant::now();
        b.cluster().cancel(id, "bench").await.expect("cancel");
        let done = Instant::now();
        returned.push(done);
        calls.push(done - t);
    }
    let mut latencies = vec![Duration::ZERO; CANCELS];
    for _ in 0..CANCELS {
        let (i, at) = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
            .await
            .expect("every cancel observed within 30 s")
            .expect("channel open");
        // The push can arrive before B's call has returned: counted as zero.
        latencies[i] = at.saturating_duration_since(returned[i]);
    }
    for id in &ids {
        let info = a.wait(id).await.expect("wait");
        assert_eq!(info.status, OperationStatus::Cancelled);
    }
    a.cleanup(Duration::ZERO);
    latencies.sort_unstable();
    calls.sort_unstable();
    (latencies, calls)
}

fn cancel_latency() {
    let rt = runtime();
    // 50 cancels over one second: as many phases of A's 1 s flush.
    let spacing = Duration::from_millis(20);
    let mut replicas: Vec<(&str, Store, Store)> = Vec::new();
    let file = TempFile::new("cancel");
    let (one, two) = rt.block_on(async {
        (
            SqliteStore::open(&file.0).await.expect("open SQLite"),
            SqliteStore::open(&file.0).await.expect("open SQLite again"),
        )
    });
    replicas.push(("sqlite (flush, 1 s)", Arc::new(one), Arc::new(two)));
    let schema = postgres_url().map(|url| TempSchema::new(&url, "cancel"));
    if let Some(schema) = &schema {
        let (one, two) = rt.block_on(async { (schema.connect().await, schema.connect().await) });
        replicas.push(("postgres (NOTIFY)", Arc::new(one), Arc::new(two)));
    }
    for (name, one, two) in replicas {
        let (a, b) = (registry(&rt, Some(one)), registry(&rt, Some(two)));
        let (on_a, on_b) = (a.clone(), b.clone());
        let (latencies, calls) = rt
            .block_on(rt.spawn(async move { cancel_latencies(&on_a, &on_b, spacing).await }))
            .expect("bench task");
        let target = if name.starts_with("postgres") {
            " (target p99 <= 50 ms)"
        } else {
            ""
        };
        let early = latencies.iter().filter(|d| d.is_zero()).count();
        println!(
            "store_cancel_latency, {name}: B's cancel returned -> A's operation observed it, \
             over {CANCELS}: p50 {:.2} ms, p99 {:.2} ms{target}, max {:.2} ms \
             ({early} observed before the call returned); the cancel call itself p50 {:.2} ms",
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies[CANCELS - 1]),
            ms(percentile(&calls, 0.50)),
        );
    }
    if schema.is_none() {
        skipped_postgres("store_cancel_latency");
    }
}

/// Creates and starts `FLUSHED` operations of a fresh instance in `store`; returns
/// the instance and the ids.
async fn running(store: &Store) -> (InstanceId, Vec<OperationId>) {
    let me = InstanceId::generate();
    store
        .register_instance(me, DEFAULT_LEASE, SystemTime::now())
        .await
        .expect("register");
    let fence = Fence::first(me);
    let ids: Vec<OperationId> = (0..FLUSHED)
        .map(|_| OperationId::generate(&OperationType::TRAINING))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(FLUSHED / 16) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for id in chunk {
                let op = NewOperation::new(id.clone(), OperationType::TRAINING, fence);
                store.create(&op).await.expect("create");
                store
                    .start(&id, fence, SystemTime::now())
                    .await
                    .expect("start");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create task");
    }
    (me, ids)
}

/// A flush by `me` of every operation's progress at `step`.
fn flush_of(me: InstanceId, ids: &[OperationId], step: u64) -> Flush {
    let mut flush = Flush::new(me, DEFAULT_LEASE, SystemTime::now());
    for id in ids {
        let mut progress = OperationProgress::default();
        progress.steps_total = 1_000_000;
        progress.steps_completed = step;
        progress.percentage = step as f64 / 10_000.0;
        progress.current_step = format!("Iteration {step}/1000000");
        flush = flush.with_progress(ProgressUpdate::new(id.clone(), 1, progress));
    }
    flush
}

fn flush(c: &mut criterion::Criterion) {
    let rt = runtime();
    let backends = backends(&rt, "flush");
    let mut g = c.benchmark_group("store_flush");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(FLUSHED as u64));
    let mut medians = Vec::new();
    for backend in &backends {
        let store = backend.store.clone();
        // Made on the first call: not at all when a filter leaves the bench out.
        let mut setup = None;
        let samples = Samples::default();
        let mut step = 0;
        g.bench_function(BenchmarkId::new("progress_10k", backend.name), |b| {
            let (me, ids, _) = setup.get_or_insert_with(|| {
                let t = Instant::now();
                let (me, ids) = rt.block_on(running(&store));
                (me, ids, t.elapsed())
            });
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    step += 1;
                    let flush = flush_of(*me, ids, step);
                    let start = Instant::now();
                    let reply = rt.block_on(store.flush(&flush)).expect("flush");
                    took += start.elapsed();
                    assert!(reply.rejected.is_empty(), "every update written");
                }
                samples.record(iters, took)
            });
        });
        if let Some((.., setup)) = setup {
            medians.push((backend.name, samples.median(), setup));
        }
    }
    g.finish();
    for (name, median, setup) in medians {
        println!(
            "store_flush summary, {name}: one flush of {FLUSHED} progress updates {:.1} ms \
             median ({:.0} updates/s); setup ({FLUSHED} create + start, 16 tasks) {:.1} s",
            ms(median),
            FLUSHED as f64 / median.as_secs_f64(),
            setup.as_secs_f64(),
        );
    }
    if postgres_url().is_none() {
        skipped_postgres("store_flush");
    }
}

/// What a training run checkpoints per epoch: the epoch and a small model.
#[derive(serde::Serialize)]
struct EpochState {
    epoch: u64,
    weights: [f64; 8],
    bias: f64,
}

/// `ctx.save_checkpoint` of a running operation, per registry: in memory without a
/// store, written through with each store.
fn checkpoint(c: &mut criterion::Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("store_checkpoint");
    let mut medians = Vec::new();
    let backends = backends(&rt, "checkpoint");
    let stores = std::iter::once(("no store", None))
        .chain(backends.iter().map(|b| (b.name, Some(b.store.clone()))));
    for (name, store) in stores {
        let ops = registry(&rt, store);
        let id = ops.create(OperationSpec::new("bench")).expect("create");
        ops.start(&id).expect("start");
        let ctx = ops.context(&id).expect("context");
        let samples = Samples::default();
        let mut epoch = 0;
        g.bench_function(BenchmarkId::new("save", name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    epoch += 1;
                    let state = EpochState {
                        epoch,
                        weights: [0.5; 8],
                        bias: 0.1,
                    };
                    rt.block_on(ctx.save_checkpoint(black_box(&state)))
                        .expect("saved");
                }
                samples.record(iters, start.elapsed())
            });
        });
        if !samples.is_empty() {
            medians.push((name, samples.median()));
        }
        ops.complete(&id, ()).expect("complete");
        rt.block_on(ops.wait(&id)).expect("wait");
    }
    g.finish();
    if medians.is_empty() {
        return; // filtered out
    }
    let line: Vec<String> = medians
        .iter()
        .map(|(name, d)| format!("{name} {:.1} µs", d.as_secs_f64() * 1e6))
        .collect();
    println!(
        "store_checkpoint summary: save_checkpoint of an epoch's state: {}",
        line.join(", ")
    );
}

fn cancel_latency_bench(_: &mut criterion::Criterion) {
    cancel_latency();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = lifecycle, progress, checkpoint, cancel_latency_bench, flush
}
criterion_main!(benches);
