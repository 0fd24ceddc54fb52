//! Peer benchmark: our operation lifecycle against apalis on the same backends.
//!
//! 1. Lifecycle throughput, "submit → completed observed", for batches of 1,000 no-op
//!    jobs in flight: submit all 1,000, then wait until every one is observed complete.
//!    - ours: `ops.spawn` ×1,000, then `ops.wait` on each (with a store attached,
//!      `wait` returns once the end is written to the store);
//!    - apalis: a running worker with a no-op handler, 1,000 tasks pushed one by one
//!      (`push_task` awaited each time) or in one `push_all`; completion is counted
//!      from the worker's `Event::Success` and, for SQLite and Postgres, then confirmed
//!      in the storage (`WaitForCompletion::check_status` until all 1,000 are `Done`);
//!    - apalis's SQL workers are its event-driven ones, as its READMEs set them up
//!      (SQLite update hook / Postgres LISTEN-NOTIFY, a 500 ms poll behind), with its
//!      default fetch batch of 10 (`PEER_BENCH_APALIS_BATCH=N` to change it); SQLite
//!      twice: the pool `connect_with_callback` makes (sqlx's `synchronous=FULL`) and
//!      one with `synchronous=NORMAL`, the durability of our `SqliteStore`;
//!    - bare tokio: `tokio::spawn` ×1,000 no-op tasks, then join each.
//! 2. Cancel → observed latency: ours `ops.cancel(id)` until the running operation sees
//!    its token (`ctx.cancelled()` returns); apalis (`task-context` feature)
//!    `TaskContext::cancel` until the running handler's future is dropped (apalis
//!    cancels by no longer polling it: the handler cannot observe the request itself).
//!
//! Postgres rows need `ORCHESTRATOR_TEST_POSTGRES_URL`; without it they are skipped.
//! Run: `cd benches/peers && cargo bench` (`cargo bench -- sqlite postgres` for some
//! sections only: memory, sqlite, postgres, cancel).

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use apalis::prelude::{
    BackendExt, BoxDynError, Data, Event, EventListenerExt, MemorySink, MemoryStorage,
    MemoryStorageError, RandomId, Status, Strategy, Task, TaskBuilder, TaskContext, TaskId,
    TaskSink, WaitForCompletion, WorkerBuilder, WorkerContext,
};
use apalis_core::backend::finalize::Durable;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use futures::{SinkExt, StreamExt, stream};
use orchestrator::store::{PostgresStore, SqliteStore};
use orchestrator::{OperationContext, OperationSpec, OperationStatus, Operations};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteOperation, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Notify, mpsc, oneshot};
use ulid::Ulid;

/// Jobs in flight per measured batch.
const JOBS: usize = 1_000;
/// Measured batches per row (after one warm-up batch).
const SAMPLES: usize = 10;
/// Measured batches per apalis row on SQLite and Postgres (seconds per batch).
const SLOW_SAMPLES: usize = 5;
/// The backend label of apalis on SQLite with our store's durability.
const SQLITE_NORMAL: &str = "sqlite, sync=NORMAL";
/// Cancels timed per system.
const CANCELS: usize = 200;
/// A batch that takes longer than this has stalled: the run stops with a message.
const STALL: Duration = Duration::from_secs(120);
const POSTGRES_URL: &str = "ORCHESTRATOR_TEST_POSTGRES_URL";
/// The poll behind apalis's insert notifications (what its READMEs show for SQLite).
const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// The apalis queue (its `job_type`) this bench uses in every storage.
const QUEUE: &str = "orchestrator_peer_bench";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    // `cargo bench -- sqlite postgres`: only those sections (memory, sqlite, postgres,
    // cancel); no words: all of them.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |section: &str| only.is_empty() || only.iter().any(|w| w == section);
    let postgres = std::env::var(POSTGRES_URL)
        .ok()
        .filter(|url| !url.trim().is_empty());
    eprintln!(
        "peer bench: {JOBS} no-op jobs per batch, 1 warm-up + {SAMPLES} batches per row \
         ({SLOW_SAMPLES} for apalis on SQL); {} worker threads",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut rows: Vec<Row> = Vec::new();
    let mut phases: Vec<(String, Phases)> = Vec::new();
    rows.push(Row::measure("bare tokio", "-", "spawn + join", SAMPLES, bare_tokio).await);

    // No store / in-memory.
    if wanted("memory") {
        let ops = Operations::new();
        let batch = || ours_batch(&ops);
        rows.push(Row::measure("ours", "none", "spawn + wait", SAMPLES, batch).await);
        ops.shutdown("bench done").await;
        let apalis = ApalisMemory::start().await;
        for (submit, all) in [("push each", false), ("push_all", true)] {
            let batch = || apalis.batch(all);
            rows.push(Row::measure("apalis", "memory", submit, SAMPLES, batch).await);
            phases.push((format!("memory, {submit}"), apalis.seen.take_phases()));
        }
        apalis.stop().await;
    }

    // SQLite, a temporary file each.
    if wanted("sqlite") {
        let file = TempFile::new("ours");
        let store = SqliteStore::open(&file.0).await.expect("open SqliteStore");
        let ops = Operations::builder()
            .open(Arc::new(store))
            .await
            .expect("attach SqliteStore");
        let batch = || ours_batch(&ops);
        rows.push(Row::measure("ours", "sqlite", "spawn + wait", SAMPLES, batch).await);
        ops.shutdown("bench done").await;
        drop(ops);
        for (backend, same_durability) in [("sqlite", false), (SQLITE_NORMAL, true)] {
            let file = TempFile::new("apalis");
            let apalis = ApalisSqlite::start(&file, same_durability).await;
            for (submit, all) in [("push each", false), ("push_all", true)] {
                let batch = || apalis.batch(all);
                rows.push(Row::measure("apalis", backend, submit, SLOW_SAMPLES, batch).await);
                phases.push((format!("{backend}, {submit}"), apalis.seen.take_phases()));
            }
            apalis.stop().await;
        }
    }

    // PostgreSQL: our schema and apalis's own `apalis` schema, in the same database.
    let mut pg_skipped = true;
    if let Some(url) = postgres.as_ref().filter(|_| wanted("postgres")) {
        pg_skipped = false;
        let schema = format!("peer_bench_{}_{}", std::process::id(), nanos());
        let store = PostgresStore::connect(url, &schema)
            .await
            .expect("connect PostgresStore");
        let ops = Operations::builder()
            .open(Arc::new(store))
            .await
            .expect("attach PostgresStore");
        let batch = || ours_batch(&ops);
        rows.push(Row::measure("ours", "postgres", "spawn + wait", SAMPLES, batch).await);
        ops.shutdown("bench done").await;
        drop(ops);
        // Let the store's background thread let go of its connections.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop_schema(url, &schema).await;
        let apalis = ApalisPostgres::start(url).await;
        for (submit, all) in [("push each", false), ("push_all", true)] {
            let batch = || apalis.batch(all);
            rows.push(Row::measure("apalis", "postgres", submit, SLOW_SAMPLES, batch).await);
            phases.push((format!("postgres, {submit}"), apalis.seen.take_phases()));
        }
        apalis.stop().await;
    }

    print_lifecycle(&rows, pg_skipped && wanted("postgres"));
    print_phases(&phases);

    // Cancel → observed.
    if !wanted("cancel") {
        return;
    }
    eprintln!("cancel latency: {CANCELS} cancels each");
    let mut cancels = Vec::new();
    {
        let ops = Operations::new();
        cancels.push(("ours (no store)", ours_cancels(&ops).await));
        ops.shutdown("bench done").await;
        let file = TempFile::new("ours-cancel");
        let store = SqliteStore::open(&file.0).await.expect("open SqliteStore");
        let ops = Operations::builder()
            .open(Arc::new(store))
            .await
            .expect("attach SqliteStore");
        cancels.push(("ours (sqlite store)", ours_cancels(&ops).await));
        ops.shutdown("bench done").await;
        cancels.push(("apalis (memory)", apalis_cancels().await));
    }
    print_cancels(&mut cancels);
}

// ---------------------------------------------------------------------------------
// Measuring and printing.

/// One row of the lifecycle table: the median of the measured batches.
struct Row {
    system: &'static str,
    backend: &'static str,
    submit: &'static str,
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Row {
    async fn measure<F, Fut>(
        system: &'static str,
        backend: &'static str,
        submit: &'static str,
        samples: usize,
        mut batch: F,
    ) -> Self
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Duration>,
    {
        eprint!("{system:>10} {backend:<8} {submit:<13}");
        let mut times = Vec::with_capacity(samples);
        for i in 0..=samples {
            let took = match tokio::time::timeout(STALL, batch()).await {
                Ok(took) => took,
                Err(_) => {
                    panic!("{system} {backend} {submit}: a batch did not finish in {STALL:?}")
                }
            };
            if i > 0 {
                times.push(took);
            }
        }
        times.sort_unstable();
        let row = Self {
            system,
            backend,
            submit,
            median: median(&times),
            min: times[0],
            max: times[times.len() - 1],
        };
        eprintln!(
            " median {:>9.2} ms  ({:.0} jobs/s)",
            ms(row.median),
            row.jobs_per_sec()
        );
        row
    }

    fn jobs_per_sec(&self) -> f64 {
        JOBS as f64 / self.median.as_secs_f64()
    }
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_lifecycle(rows: &[Row], pg_skipped: bool) {
    let tokio = rows
        .iter()
        .find(|r| r.system == "bare tokio")
        .map_or(f64::NAN, |r| r.median.as_secs_f64());
    println!();
    println!(
        "## Lifecycle: {JOBS} no-op jobs submitted, then all observed complete \
         (median of {SAMPLES} batches; {SLOW_SAMPLES} for apalis on SQL)"
    );
    println!();
    println!("| system | backend | submit | median batch | min–max | jobs/s | time ÷ bare tokio |");
    println!("|---|---|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} ms | {:.2}–{:.2} ms | {:.0} | {} |",
            r.system,
            r.backend,
            r.submit,
            ms(r.median),
            ms(r.min),
            ms(r.max),
            r.jobs_per_sec(),
            ratio(r.median.as_secs_f64(), tokio)
        );
    }
    println!();
    println!("## Ours vs apalis (throughput ratio, ours ÷ apalis; > 1× means ours is faster)");
    println!();
    println!("| backend | vs apalis push each | vs apalis push_all |");
    println!("|---|---:|---:|");
    for (ours, apalis) in [
        ("none", "memory"),
        ("sqlite", "sqlite"),
        ("sqlite", SQLITE_NORMAL),
        ("postgres", "postgres"),
    ] {
        let find = |system: &str, backend: &str, submit: &str| {
            rows.iter()
                .find(|r| r.system == system && r.backend == backend && r.submit == submit)
                .map(Row::jobs_per_sec)
        };
        let Some(o) = find("ours", ours, "spawn + wait") else {
            continue;
        };
        let each = find("apalis", apalis, "push each").map_or("-".into(), |a| ratio(o, a));
        let all = find("apalis", apalis, "push_all").map_or("-".into(), |a| ratio(o, a));
        println!("| {ours} (apalis: {apalis}) | {each} | {all} |");
    }
    if pg_skipped {
        println!();
        println!("Postgres rows skipped: {POSTGRES_URL} is not set.");
    }
}

fn print_phases(phases: &[(String, Phases)]) {
    if phases.is_empty() {
        return;
    }
    println!();
    println!("## Where apalis's batch time goes (medians, from the start of the batch)");
    println!();
    println!(
        "| backend, submit | last push returned | last `Event::Success` | storage shows all `Done` |"
    );
    println!("|---|---:|---:|---:|");
    for (label, [pushed, ran, confirmed]) in phases {
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(*pushed),
            ms(*ran),
            ms(*confirmed)
        );
    }
}

fn ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

fn print_cancels(rows: &mut [(&str, Vec<Duration>)]) {
    println!();
    println!("## Cancel → observed ({CANCELS} cancels of a running job each)");
    println!();
    println!("| system | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    for (name, lat) in rows.iter_mut() {
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs |",
            p(0.5).as_secs_f64() * 1e6,
            p(0.99).as_secs_f64() * 1e6,
            lat[lat.len() - 1].as_secs_f64() * 1e6
        );
    }
}

// ---------------------------------------------------------------------------------
// Bare tokio and ours.

async fn bare_tokio() -> Duration {
    let start = Instant::now();
    let joins: Vec<_> = (0..JOBS)
        .map(|_| tokio::spawn(async { Ok::<_, String>(()) }))
        .collect();
    for join in joins {
        join.await.expect("join").expect("no-op");
    }
    start.elapsed()
}

async fn ours_batch(ops: &Operations) -> Duration {
    let start = Instant::now();
    let ids: Vec<_> = (0..JOBS)
        .map(|_| {
            ops.spawn(OperationSpec::new("noop"), |_ctx| async {
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
    start.elapsed()
}

async fn ours_cancels(ops: &Operations) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(CANCELS);
    for _ in 0..CANCELS {
        let (started_tx, started) = oneshot::channel::<()>();
        let (seen_tx, seen) = oneshot::channel::<Instant>();
        let handle = ops
            .spawn(
                OperationSpec::new("cancellable"),
                move |ctx: OperationContext| async move {
                    let _ = started_tx.send(());
                    ctx.cancelled().await;
                    let _ = seen_tx.send(Instant::now());
                    Ok::<_, String>(())
                },
            )
            .expect("spawn");
        started.await.expect("started");
        let asked = Instant::now();
        ops.cancel(handle.id(), "bench").expect("cancel");
        let seen = seen.await.expect("observed");
        latencies.push(seen.duration_since(asked));
        ops.wait(handle.id()).await.expect("wait");
    }
    latencies
}

// ---------------------------------------------------------------------------------
// apalis.

/// The worker's successes, counted from `Event::Success` (and failures, which stop the
/// run: the no-op never fails).
#[derive(Default)]
struct Successes {
    count: AtomicUsize,
    errors: AtomicUsize,
    changed: Notify,
    /// Per batch: when the last push returned, when the last success was counted, and
    /// when the storage showed every task done (the same as the second in memory).
    phases: std::sync::Mutex<Vec<[Duration; 3]>>,
}

/// Medians of a row's batch phases, warm-up left out.
type Phases = [Duration; 3];

impl Successes {
    fn listener(self: &Arc<Self>) -> impl Fn(&WorkerContext, &Event) + Send + Sync + 'static {
        let me = self.clone();
        move |_, event| match event {
            Event::Success(_) => {
                me.count.fetch_add(1, Ordering::AcqRel);
                me.changed.notify_waiters();
            }
            Event::Error(e) => {
                eprintln!("apalis worker error: {e}");
                me.errors.fetch_add(1, Ordering::AcqRel);
                me.changed.notify_waiters();
            }
            _ => {}
        }
    }

    /// Waits until `n` successes were counted since the last `reset`.
    async fn reached(&self, n: usize) {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            assert_eq!(
                self.errors.load(Ordering::Acquire),
                0,
                "an apalis job failed"
            );
            if self.count.load(Ordering::Acquire) >= n {
                return;
            }
            changed.await;
        }
    }

    fn reset(&self) {
        self.count.store(0, Ordering::Release);
    }

    fn record(&self, phases: [Duration; 3]) {
        self.phases.lock().expect("phases").push(phases);
    }

    fn take_phases(&self) -> Phases {
        let mut all = std::mem::take(&mut *self.phases.lock().expect("phases"));
        if all.len() > 1 {
            all.remove(0); // the warm-up batch
        }
        std::array::from_fn(|i| {
            let mut one: Vec<Duration> = all.iter().map(|p| p[i]).collect();
            one.sort_unstable();
            median(&one)
        })
    }
}

async fn noop(_job: u32) -> Result<(), BoxDynError> {
    Ok(())
}

/// Tasks an apalis SQL worker fetches at once: apalis's default (10), or
/// `PEER_BENCH_APALIS_BATCH`.
fn apalis_batch_size() -> usize {
    std::env::var("PEER_BENCH_APALIS_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10)
}

/// A unique worker name (apalis's SQL storages register workers by name).
fn worker_name(what: &str) -> String {
    format!("peer-bench-{what}-{}-{}", std::process::id(), nanos())
}

/// `n` tasks with their ids chosen here (ULIDs, what the SQL storages generate), so
/// their completion can be looked up.
fn tasks_with_ids(n: usize) -> (Vec<TaskId>, Vec<Task<u32>>) {
    let ids: Vec<TaskId> = (0..n)
        .map(|_| TaskId::from_ulid(Ulid::generate()))
        .collect();
    let tasks = ids
        .iter()
        .map(|id| TaskBuilder::new(0u32).task_id(id.clone()).build())
        .collect();
    (ids, tasks)
}

/// A worker running on a spawned task, stopped by `stop`.
struct RunningWorker {
    ctx: WorkerContext,
    join: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    async fn stop(self) {
        let _ = self.ctx.stop();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.join).await;
    }
}

/// What `MemorySink::new` takes: the sending half of the in-memory queue.
type MemorySinkBox =
    Box<dyn futures::Sink<Task<u32>, Error = MemoryStorageError> + Send + Sync + Unpin>;

struct ApalisMemory {
    queue: futures::channel::mpsc::UnboundedSender<Task<u32>>,
    seen: Arc<Successes>,
    worker: RunningWorker,
}

impl ApalisMemory {
    async fn start() -> Self {
        // `MemoryStorage` is not `Clone`, so the bench builds it around a channel it
        // keeps the sending half of. It pushes into that channel directly rather than
        // through a clone of the storage's `MemorySink`: the sink's `start_send` does
        // `try_lock().unwrap()` on a mutex the running worker also locks (in
        // `poll_ready`), which panics when the two meet on a multi-thread runtime.
        let (queue, rx) = futures::channel::mpsc::unbounded();
        let sink: MemorySinkBox = Box::new(queue.clone().sink_map_err(MemoryStorageError::from));
        let sink = MemorySink::new(Arc::new(futures::lock::Mutex::new(sink)));
        let storage = MemoryStorage::new_with(sink, rx.boxed());
        let seen = Arc::new(Successes::default());
        let ctx = WorkerContext::new(&worker_name("memory"));
        let worker = WorkerBuilder::new(&ctx)
            .backend(storage)
            .on_event(seen.listener())
            .build(noop);
        let join = tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("apalis memory worker: {e}");
            }
        });
        Self {
            queue,
            seen,
            worker: RunningWorker { ctx, join },
        }
    }

    async fn batch(&self, all_at_once: bool) -> Duration {
        self.seen.reset();
        let mut queue = self.queue.clone();
        // What `MemorySink::start_send` does to a task without an id.
        let task = || {
            TaskBuilder::new(0u32)
                .task_id(TaskId::from_string(RandomId::default()))
                .build()
        };
        let start = Instant::now();
        if all_at_once {
            let mut tasks = stream::iter((0..JOBS).map(|_| Ok(task())));
            queue.send_all(&mut tasks).await.expect("push_all");
        } else {
            for _ in 0..JOBS {
                queue.send(task()).await.expect("push");
            }
        }
        let pushed = start.elapsed();
        self.seen.reached(JOBS).await;
        let ran = start.elapsed();
        self.seen.record([pushed, ran, ran]);
        ran
    }

    async fn stop(self) {
        self.worker.stop().await;
    }
}

/// Pushes a batch to a SQL storage, waits for the worker's successes, then polls the
/// storage until it reports every task `Done`.
async fn sql_batch<S>(pusher: &S, seen: &Successes, all_at_once: bool) -> Duration
where
    S: TaskSink<u32, Durable> + WaitForCompletion<serde_json::Value> + Clone + Send,
{
    seen.reset();
    let mut pusher = pusher.clone();
    let (ids, tasks) = tasks_with_ids(JOBS);
    let start = Instant::now();
    if all_at_once {
        pusher
            .push_all(&mut stream::iter(tasks))
            .await
            .unwrap_or_else(|e| panic!("push_all: {e}"));
    } else {
        for task in tasks {
            pusher
                .push_task(task)
                .await
                .unwrap_or_else(|e| panic!("push: {e}"));
        }
    }
    let pushed = start.elapsed();
    seen.reached(JOBS).await;
    let ran = start.elapsed();
    loop {
        let done = pusher
            .check_status(ids.clone())
            .await
            .unwrap_or_else(|e| panic!("check_status: {e}"));
        if done.len() == JOBS {
            assert!(
                done.iter().all(|r| matches!(r.status, Status::Done)),
                "a task ended other than Done"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let confirmed = start.elapsed();
    seen.record([pushed, ran, confirmed]);
    confirmed
}

/// What `SqliteStorage::connect_with_callback` builds (a lazy pool whose connections
/// report inserts into `Jobs` through SQLite's update hook), with `synchronous=NORMAL`.
fn hooked_pool(
    url: &str,
) -> (
    sqlx::SqlitePool,
    futures::channel::mpsc::UnboundedReceiver<()>,
) {
    let (tx, rx) = futures::channel::mpsc::unbounded::<()>();
    let options = SqliteConnectOptions::from_str(url)
        .expect("sqlite url")
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .after_connect(move |conn, _| {
            let tx = tx.clone();
            Box::pin(async move {
                let mut handle = conn.lock_handle().await?;
                handle.set_update_hook(move |event| {
                    if event.operation == SqliteOperation::Insert && event.table == "Jobs" {
                        let _ = tx.unbounded_send(());
                    }
                });
                Ok(())
            })
        })
        .connect_lazy_with(options);
    (pool, rx)
}

struct ApalisSqlite {
    pusher: SqliteStorage<u32>,
    seen: Arc<Successes>,
    worker: RunningWorker,
}

impl ApalisSqlite {
    /// `same_durability: false`: the pool `SqliteStorage::connect_with_callback` makes
    /// (sqlx's defaults: `synchronous=FULL`, one fsync per commit; `setup` turns WAL
    /// on, and `synchronous=OFF` on the one connection it runs on). `true`: the same
    /// pool with `synchronous=NORMAL` on every connection, what `SqliteStore` uses.
    async fn start(file: &TempFile, same_durability: bool) -> Self {
        let url = format!("sqlite://{}?mode=rwc", file.0.display());
        let config = apalis_sqlite::Config::default()
            .queue(QUEUE)
            .batch_size(apalis_batch_size());
        // The event-driven storage, as apalis-sqlite's README sets it up: SQLite's
        // update hook wakes the worker on inserts, with a 500 ms poll behind it.
        let (pool, strategy) = if same_durability {
            let (pool, inserts) = hooked_pool(&url);
            let strategy = Strategy::new()
                .stream(inserts.ready_chunks(config.batch_size))
                .interval(FALLBACK_POLL);
            (pool, strategy)
        } else {
            let (pool, listener) = SqliteStorage::connect_with_callback(&url).expect("sqlite pool");
            let strategy = Strategy::new()
                .stream(listener.ready_chunks(config.batch_size))
                .interval(FALLBACK_POLL);
            (pool, strategy)
        };
        SqliteStorage::setup(&pool)
            .await
            .expect("apalis sqlite setup");
        let pusher = SqliteStorage::<u32>::new(&pool).with_config(config.clone());
        let backend = SqliteStorage::<u32>::new(&pool)
            .with_config(config)
            .poll_with_strategy(strategy);
        let seen = Arc::new(Successes::default());
        let ctx = WorkerContext::new(&worker_name("sqlite"));
        let worker = WorkerBuilder::new(&ctx)
            .backend(backend)
            .on_event(seen.listener())
            .build(noop);
        let join = tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("apalis sqlite worker: {e}");
            }
        });
        Self {
            pusher,
            seen,
            worker: RunningWorker { ctx, join },
        }
    }

    async fn batch(&self, all_at_once: bool) -> Duration {
        sql_batch(&self.pusher, &self.seen, all_at_once).await
    }

    async fn stop(self) {
        self.worker.stop().await;
        self.pusher.pool().close().await;
    }
}

struct ApalisPostgres {
    pusher: PostgresStorage<u32>,
    seen: Arc<Successes>,
    worker: RunningWorker,
    /// Whether the `apalis` schema was there before this run (then only this run's
    /// rows are removed at the end; otherwise the schema is dropped).
    schema_existed: bool,
}

impl ApalisPostgres {
    async fn start(url: &str) -> Self {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres pool");
        let schema_existed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'apalis')",
        )
        .fetch_one(&pool)
        .await
        .expect("look for the apalis schema");
        PostgresStorage::setup(&pool)
            .await
            .expect("apalis postgres setup");
        let config = apalis_postgres::Config::default()
            .queue(QUEUE)
            .batch_size(apalis_batch_size());
        let pusher = PostgresStorage::<u32>::new(&pool).with_config(config.clone());
        // The event-driven storage, as apalis-postgres's README sets it up: LISTEN/NOTIFY
        // wakes the worker on inserts, with a poll behind it (500 ms here).
        let backend = PostgresStorage::<u32>::new(&pool)
            .with_config(config)
            .with_pubsub()
            .poll_with_strategy(Strategy::new().interval(FALLBACK_POLL));
        let seen = Arc::new(Successes::default());
        let ctx = WorkerContext::new(&worker_name("postgres"));
        let worker = WorkerBuilder::new(&ctx)
            .backend(backend)
            .on_event(seen.listener())
            .build(noop);
        let join = tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("apalis postgres worker: {e}");
            }
        });
        // Let the worker register and start listening before the first push.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self {
            pusher,
            seen,
            worker: RunningWorker { ctx, join },
            schema_existed,
        }
    }

    async fn batch(&self, all_at_once: bool) -> Duration {
        sql_batch(&self.pusher, &self.seen, all_at_once).await
    }

    async fn stop(self) {
        let name = self.worker.ctx.name().to_owned();
        self.worker.stop().await;
        let pool = self.pusher.pool().clone();
        let cleanup = if self.schema_existed {
            let jobs = sqlx::query("DELETE FROM apalis.jobs WHERE job_type = $1")
                .bind(QUEUE)
                .execute(&pool)
                .await;
            let workers = sqlx::query("DELETE FROM apalis.workers WHERE id = $1")
                .bind(name)
                .execute(&pool)
                .await;
            jobs.and(workers).map(drop)
        } else {
            sqlx::query("DROP SCHEMA IF EXISTS apalis CASCADE")
                .execute(&pool)
                .await
                .map(drop)
        };
        if let Err(e) = cleanup {
            eprintln!("could not clean up apalis's rows: {e}");
        }
        pool.close().await;
    }
}

/// A running task's id, and a receiver of the moment its future is dropped.
type Started = (String, oneshot::Receiver<Instant>);

/// The handler of the apalis cancel bench: tells the bench it runs (with its task id
/// and a receiver of the moment its future is dropped), then waits to be cancelled.
async fn cancellable(
    _job: u32,
    task: TaskContext,
    started: Data<mpsc::UnboundedSender<Started>>,
) -> Result<(), BoxDynError> {
    struct OnDrop(Option<oneshot::Sender<Instant>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(Instant::now());
            }
        }
    }
    let (dropped_tx, dropped) = oneshot::channel();
    let _guard = OnDrop(Some(dropped_tx));
    let _ = started.send((task.task_id().to_owned(), dropped));
    // Woken by `cancel`; apalis then drops this future without polling it again.
    task.executed().await;
    Ok(())
}

async fn apalis_cancels() -> Vec<Duration> {
    let mut storage = MemoryStorage::<u32>::new();
    for _ in 0..CANCELS {
        storage.push(0).await.expect("push");
    }
    let (started_tx, mut started) = mpsc::unbounded_channel::<Started>();
    let ctx = WorkerContext::new(&worker_name("cancel"));
    let worker = WorkerBuilder::new(&ctx)
        .backend(storage)
        .data(started_tx)
        .build(cancellable);
    let join = tokio::spawn(async move {
        if let Err(e) = worker.run().await {
            eprintln!("apalis cancel worker: {e}");
        }
    });
    let mut latencies = Vec::with_capacity(CANCELS);
    for _ in 0..CANCELS {
        let (task_id, dropped) = started.recv().await.expect("a task started");
        let task = ctx.get_task(&task_id).expect("running task");
        let asked = Instant::now();
        task.cancel().expect("cancel");
        let dropped = dropped.await.expect("dropped");
        latencies.push(dropped.duration_since(asked));
    }
    RunningWorker { ctx, join }.stop().await;
    latencies
}

// ---------------------------------------------------------------------------------
// Temporary files and schemas.

/// A SQLite file in the temp directory, removed (with its WAL files) at the end.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "orchestrator-peer-bench-{what}-{}-{}.db",
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

async fn drop_schema(url: &str, schema: &str) {
    let dropped = async {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
        Ok::<_, sqlx::Error>(())
    };
    if let Err(e) = dropped.await {
        eprintln!("could not drop bench schema {schema}: {e}");
    }
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
