//! Per-operation cost: ours (no store) against apalis 1.0 `MemoryStorage` and bare
//! tokio, each system in a process of its own (so memory one frees does not flatter
//! the next), in alternating order, several runs; medians and ratios in one table.
//!
//! | measure | ours | apalis | bare tokio |
//! |---|---|---|---|
//! | lifecycle by id, submit → completed observed (ns/job, 100k no-op jobs in flight; median of `PER_OP_REPS` rounds in the process) | `ops.spawn` ×N, the handles dropped, `ops.wait_with(id, status)` each (and, a row of its own, `ops.wait`: the whole record) | `send_all` of N tasks to a running worker, its `Event::Success` counted | `tokio::spawn` ×N, the handles dropped, the last task's end signalled |
//! | lifecycle through the handle (as a join) | `ops.spawn` ×N, `handle.outcome()` each | — | `tokio::spawn` ×N, join each |
//! | resident memory per sleeping job (B) | N operations waiting on their token | N handlers waiting on their `TaskContext` | N tasks waiting on a tokio-util child token |
//! | cancel → the job observes it (ns, median of 2,000) | `ops.cancel(id)` → `ctx.cancelled()` returns | `TaskContext::cancel` → the handler's future is dropped | `token.cancel()` → `token.cancelled()` returns |
//! | cancel → a waiter sees the final status (ns) | `ops.wait_with(id, status)` parked in another task returns `CANCELLED` | the worker's `Event::Error` (the cancelled task's end) | the `JoinHandle` awaited in another task returns |
//! | `cancel_all` of N sleeping jobs until all ended (ms) | `ops.cancel_all` | — (no such call) | the root token cancelled, every task joined |
//!
//! Run: `cd benches/peers && cargo bench --bench per_op` (`PER_OP_RUNS=n`, default 5;
//! `PER_OP_JOBS=n`, default 100,000; `PER_OP_REPS=n`, default 7: rounds of each lifecycle
//! in one process, after a warm-up, their median reported; `PER_OP_ONLY=lifecycle` (or
//! `lifecycle_record`, `lifecycle_handle`) with `--child ours`: that measure alone, 10 times in one process, for a profiler).
//!
//! Two patterns of use, each against the bare pattern that matches it: a job spawned and
//! its handle dropped (a task is then freed by the worker that ran it, not the spawner:
//! under glibc that free takes the spawner's arena lock, so the bare baseline pays it
//! too), and a job whose handle is kept and awaited (as a join). With `--features mimalloc`
//! every system runs on mimalloc instead of the system allocator (glibc's malloc is a large part of every
//! column: a task is allocated on one worker and freed on the other).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{
    BoxDynError, Data, Event, EventListenerExt, MemorySink, MemoryStorage, MemoryStorageError, RandomId, Task,
    TaskBuilder, TaskContext, TaskId, WorkerBuilder, WorkerContext,
};
use futures::{SinkExt, StreamExt, stream};
use orchestrator::{OperationContext, OperationSpec, OperationStatus, Operations, Outcome};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYSTEMS: [&str; 3] = ["bare", "ours", "apalis"];
const MEASURES: [(&str, &str, &str); 7] = [
    (
        "lifecycle",
        "lifecycle, submit → completed observed by id (handles dropped; bare: detached tasks)",
        "ns/job",
    ),
    (
        "lifecycle_record",
        "the same, each observed with its whole record (`ops.wait`)",
        "ns/job",
    ),
    (
        "lifecycle_handle",
        "lifecycle, submit → completed observed through the handle (bare: spawn + join)",
        "ns/job",
    ),
    ("rss", "resident memory per sleeping job", "B"),
    ("cancel_observed", "cancel by id → the job observes it", "ns"),
    ("cancel_final", "cancel → a waiter sees the final status", "ns"),
    ("cancel_all", "`cancel_all` of the sleeping jobs until all ended", "ms"),
];
const CANCELS: usize = 2_000;

/// A positive count from the environment variable `name`, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn jobs() -> usize {
    env_count("PER_OP_JOBS", 100_000)
}

/// Rounds of each lifecycle measured in one process (after a warm-up); the median is
/// reported. One round of 100k jobs swings 3× on a shared VM (bare's 315–1,101 ns in
/// six processes), so a single round per process makes the ratios noise.
fn reps() -> usize {
    env_count("PER_OP_REPS", 7)
}

/// The median of `rounds` lifecycle rounds of `n` jobs, in ns per job.
async fn per_job<F, Fut>(n: usize, rounds: usize, mut round: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    round(n / 10).await; // warm-up
    let mut took = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        took.push(round(n).await);
    }
    median(took).as_nanos() as f64 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let system = args.get(i + 1).expect("--child SYSTEM").clone();
        child(&system);
        return;
    }
    parent();
}

// ---------------------------------------------------------------------------------
// The parent: runs each system in a child process, alternating, and prints the table.

fn parent() {
    let runs = env_count("PER_OP_RUNS", 5);
    let exe = std::env::current_exe().expect("the bench binary");
    let mut results: std::collections::HashMap<(String, String), Vec<f64>> = Default::default();
    eprintln!(
        "per-op bench: {} jobs, {runs} runs, each system in its own process, order rotated",
        jobs()
    );
    for run in 0..runs {
        for k in 0..SYSTEMS.len() {
            let system = SYSTEMS[(run + k) % SYSTEMS.len()];
            let out = std::process::Command::new(&exe)
                .args(["--child", system])
                .output()
                .expect("run a child");
            assert!(
                out.status.success(),
                "{system} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut parts = line.split_whitespace();
                if let (Some("RESULT"), Some(measure), Some(value)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    let value: f64 = value.parse().expect("a number");
                    results
                        .entry((system.to_owned(), measure.to_owned()))
                        .or_default()
                        .push(value);
                }
            }
            eprintln!("run {}/{runs}: {system} done", run + 1);
        }
    }
    let median = |system: &str, measure: &str| -> Option<f64> {
        let mut v = results.get(&(system.to_owned(), measure.to_owned()))?.clone();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    println!();
    println!(
        "## Per-operation cost ({} jobs; medians of {runs} runs, each system in its own process; {} allocator)",
        jobs(),
        if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" }
    );
    println!();
    println!("| measure | ours | apalis 1.0 `MemoryStorage` | bare tokio | ours / bare | ours / apalis |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (key, label, unit) in MEASURES {
        let ours = median("ours", key);
        let apalis = median("apalis", key);
        let bare = median("bare", key);
        let cell = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{} {unit}", fmt(v)));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "—".to_owned(),
        };
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            cell(ours),
            cell(apalis),
            cell(bare),
            ratio(ours, bare),
            ratio(ours, apalis),
        );
    }
    print_spread(&results);
}

/// Every run's figure of each system, so a reader sees how far this machine's noise
/// moves the medians above (and the ratios with them).
fn print_spread(results: &std::collections::HashMap<(String, String), Vec<f64>>) {
    println!();
    println!("### Spread over the runs (lowest – highest)");
    println!();
    println!("| measure | ours | apalis 1.0 `MemoryStorage` | bare tokio |");
    println!("|---|---:|---:|---:|");
    for (key, label, unit) in MEASURES {
        let range = |system: &str| {
            results
                .get(&(system.to_owned(), key.to_owned()))
                .map_or("—".to_owned(), |v| {
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    format!("{} – {} {unit}", fmt(lo), fmt(hi))
                })
        };
        println!(
            "| {label} | {} | {} | {} |",
            range("ours"),
            range("apalis"),
            range("bare")
        );
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        let n = v.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{v:.1}")
    }
}

// ---------------------------------------------------------------------------------
// A child: one system's measures, printed as `RESULT measure value` lines.

fn child(system: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let system = system.to_owned();
    // On a worker, as a request handler would run them.
    rt.block_on(async move {
        tokio::spawn(async move {
            let n = jobs();
            match system.as_str() {
                "bare" => bare::all(n).await,
                "ours" => ours::all(n).await,
                "apalis" => apalis_side::all(n).await,
                other => panic!("unknown system {other}"),
            }
        })
        .await
        .expect("the measures");
    });
}

fn report(measure: &str, value: f64) {
    println!("RESULT {measure} {value}");
}

/// Resident set size in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Counts jobs that reached a point (started, observed), and wakes whoever waits.
#[derive(Default)]
struct Counter {
    n: AtomicUsize,
    changed: Notify,
}

impl Counter {
    fn hit(&self) {
        self.n.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    async fn reached(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.n.load(Ordering::Acquire) >= n {
                return;
            }
            changed.await;
        }
    }

    fn reset(&self) {
        self.n.store(0, Ordering::Release);
    }
}

mod bare {
    use super::*;

    pub(super) async fn all(n: usize) {
        // Memory first, in a fresh process.
        let root = CancellationToken::new();
        let started = Arc::new(Counter::default());
        let before = rss();
        let joins: Vec<_> = (0..n)
            .map(|_| {
                let token = root.child_token();
                let started = started.clone();
                tokio::spawn(async move {
                    started.hit();
                    token.cancelled().await;
                })
            })
            .collect();
        started.reached(n).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let handles = (n * size_of_val(&joins[0])) as f64;
        report("rss", ((rss() - before) as f64 - handles) / n as f64);
        let start = Instant::now();
        root.cancel();
        for join in joins {
            join.await.expect("join");
        }
        report("cancel_all", start.elapsed().as_secs_f64() * 1e3);

        report("lifecycle_handle", per_job(n, reps(), lifecycle).await);
        report("lifecycle", per_job(n, reps(), detached).await);

        // A fresh root: the one above is cancelled.
        let root = CancellationToken::new();
        let mut observed = Vec::with_capacity(CANCELS);
        let mut finals = Vec::with_capacity(CANCELS);
        for _ in 0..CANCELS {
            let token = root.child_token();
            let (started_tx, started) = oneshot::channel();
            let (seen_tx, seen) = oneshot::channel();
            let job = token.clone();
            let join = tokio::spawn(async move {
                let _ = started_tx.send(());
                job.cancelled().await;
                let _ = seen_tx.send(Instant::now());
            });
            started.await.expect("started");
            let asked = Instant::now();
            token.cancel();
            observed.push(seen.await.expect("seen").duration_since(asked));
            join.await.expect("join");

            // A waiter parked on the job's end.
            let token = root.child_token();
            let job = token.clone();
            let (started_tx, started) = oneshot::channel();
            let join = tokio::spawn(async move {
                let _ = started_tx.send(());
                job.cancelled().await;
            });
            started.await.expect("started");
            let (final_tx, fin) = oneshot::channel();
            let waiter = tokio::spawn(async move {
                join.await.expect("join");
                let _ = final_tx.send(Instant::now());
            });
            tokio::time::sleep(Duration::from_micros(200)).await;
            let asked = Instant::now();
            token.cancel();
            finals.push(fin.await.expect("final").duration_since(asked));
            waiter.await.expect("waiter");
        }
        report("cancel_observed", median(observed).as_nanos() as f64);
        report("cancel_final", median(finals).as_nanos() as f64);
    }

    async fn lifecycle(n: usize) -> Duration {
        let start = Instant::now();
        let joins: Vec<_> = (0..n)
            .map(|_| tokio::spawn(async { Ok::<_, Infallible>(()) }))
            .collect();
        for join in joins {
            join.await.expect("join").expect("no-op");
        }
        start.elapsed()
    }

    /// `n` tasks spawned with their handles dropped; the last one to end wakes the
    /// spawner (the least a detached task's end can be observed with: one shared
    /// counter, leaked once per round so that no task holds a reference count).
    async fn detached(n: usize) -> Duration {
        struct Left {
            n: AtomicUsize,
            last: Notify,
        }
        let left: &'static Left = Box::leak(Box::new(Left {
            n: AtomicUsize::new(n),
            last: Notify::new(),
        }));
        let start = Instant::now();
        for _ in 0..n {
            drop(tokio::spawn(async move {
                if left.n.fetch_sub(1, Ordering::AcqRel) == 1 {
                    left.last.notify_one();
                }
            }));
        }
        left.last.notified().await;
        start.elapsed()
    }
}

mod ours {
    use super::*;

    pub(super) async fn all(n: usize) {
        let ops = Operations::builder()
            .without_sweeper()
            .with_max_active(usize::MAX)
            .with_max_retained(usize::MAX)
            .build();
        // `PER_OP_ONLY` (see the module doc).
        if let Ok(only) = std::env::var("PER_OP_ONLY") {
            let observe = match only.as_str() {
                "lifecycle" => Observe::Status,
                "lifecycle_record" => Observe::Record,
                "lifecycle_handle" => Observe::Handle,
                other => panic!(
                    "PER_OP_ONLY={other}: lifecycle, lifecycle_record or lifecycle_handle"
                ),
            };
            for _ in 0..10 {
                let took = lifecycle(&ops, n, observe).await;
                report(&only, took.as_nanos() as f64 / n as f64);
                ops.cleanup(Duration::ZERO);
            }
            return;
        }
        let started = Arc::new(Counter::default());
        let before = rss();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let started = started.clone();
                ops.spawn(OperationSpec::new("sleeper"), move |ctx: OperationContext| async move {
                    started.hit();
                    ctx.cancelled().await;
                    Ok::<_, Infallible>(())
                })
                .expect("spawn")
            })
            .collect();
        started.reached(n).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held = (n * size_of_val(&handles[0])) as f64;
        report("rss", ((rss() - before) as f64 - held) / n as f64);
        let start = Instant::now();
        assert_eq!(ops.cancel_all("bench"), n);
        for handle in handles {
            assert!(handle.outcome().await.is_cancelled());
        }
        report("cancel_all", start.elapsed().as_secs_f64() * 1e3);
        ops.cleanup(Duration::ZERO);

        for (key, observe) in [
            ("lifecycle", Observe::Status),
            ("lifecycle_record", Observe::Record),
            ("lifecycle_handle", Observe::Handle),
        ] {
            let ns = per_job(n, reps(), |count| {
                let ops = ops.clone();
                async move {
                    let took = lifecycle(&ops, count, observe).await;
                    // Outside the measured time, as the bare side frees its tasks.
                    ops.cleanup(Duration::ZERO);
                    took
                }
            })
            .await;
            report(key, ns);
        }

        let mut observed = Vec::with_capacity(CANCELS);
        let mut finals = Vec::with_capacity(CANCELS);
        for _ in 0..CANCELS {
            let (started_tx, started) = oneshot::channel();
            let (seen_tx, seen) = oneshot::channel();
            let handle = ops
                .spawn(OperationSpec::new("cancellable"), move |ctx: OperationContext| async move {
                    let _ = started_tx.send(());
                    ctx.cancelled().await;
                    let _ = seen_tx.send(Instant::now());
                    Ok::<_, Infallible>(())
                })
                .expect("spawn");
            started.await.expect("started");
            let asked = Instant::now();
            ops.cancel(handle.id(), "bench").expect("cancel");
            observed.push(seen.await.expect("seen").duration_since(asked));
            let _ = handle.outcome().await;

            let (started_tx, started) = oneshot::channel();
            let handle = ops
                .spawn(OperationSpec::new("cancellable"), move |ctx: OperationContext| async move {
                    let _ = started_tx.send(());
                    ctx.cancelled().await;
                    Ok::<_, Infallible>(())
                })
                .expect("spawn");
            started.await.expect("started");
            let id = handle.id().clone();
            let (final_tx, fin) = oneshot::channel();
            let watcher = ops.clone();
            let waiter = tokio::spawn(async move {
                let status = watcher.wait_with(&id, |op| op.status()).await.expect("wait");
                let _ = final_tx.send(Instant::now());
                assert_eq!(status, OperationStatus::Cancelled);
            });
            tokio::time::sleep(Duration::from_micros(200)).await;
            let asked = Instant::now();
            ops.cancel(handle.id(), "bench").expect("cancel");
            finals.push(fin.await.expect("final").duration_since(asked));
            waiter.await.expect("waiter");
            let _ = handle.outcome().await;
            ops.cleanup(Duration::ZERO);
        }
        report("cancel_observed", median(observed).as_nanos() as f64);
        report("cancel_final", median(finals).as_nanos() as f64);
    }

    /// How a lifecycle run sees each operation end.
    #[derive(Clone, Copy)]
    enum Observe {
        /// By id, its status only (`wait_with`).
        Status,
        /// By id, its whole record (`wait`).
        Record,
        /// Through the handle `spawn` returned (`outcome`), as bare tokio joins.
        Handle,
    }

    /// `n` no-op operations spawned, then each one's end observed.
    async fn lifecycle(ops: &Operations, n: usize, observe: Observe) -> Duration {
        let noop = |_ctx| async { Ok::<_, Infallible>(()) };
        let start = Instant::now();
        if let Observe::Handle = observe {
            let handles: Vec<_> = (0..n)
                .map(|_| ops.spawn(OperationSpec::new("noop"), noop).expect("spawn"))
                .collect();
            for handle in handles {
                assert!(matches!(handle.outcome().await, Outcome::Completed(())));
            }
            return start.elapsed();
        }
        let ids: Vec<_> = (0..n)
            .map(|_| {
                ops.spawn(OperationSpec::new("noop"), noop)
                    .expect("spawn")
                    .id()
                    .clone()
            })
            .collect();
        for id in &ids {
            let status = match observe {
                Observe::Record => ops.wait(id).await.expect("wait").status,
                _ => ops.wait_with(id, |op| op.status()).await.expect("wait"),
            };
            assert_eq!(status, OperationStatus::Completed);
        }
        start.elapsed()
    }
}

mod apalis_side {
    use super::*;

    /// A running task's id, and a receiver of the moment its future is dropped.
    type Started = (String, oneshot::Receiver<Instant>);

    type MemorySinkBox =
        Box<dyn futures::Sink<Task<u32>, Error = MemoryStorageError> + Send + Sync + Unpin>;

    fn task() -> Task<u32> {
        TaskBuilder::new(0u32)
            .task_id(TaskId::from_string(RandomId::default()))
            .build()
    }

    async fn noop(_job: u32) -> Result<(), BoxDynError> {
        Ok(())
    }

    /// A handler that says it runs, then waits for its cancellation.
    async fn sleeper(
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
        task.executed().await;
        Ok(())
    }

    /// A `MemoryStorage` fed through a channel this side keeps (the storage is not
    /// `Clone`, and its sink panics when it meets a running worker; see peers.rs).
    fn storage() -> (
        futures::channel::mpsc::UnboundedSender<Task<u32>>,
        MemoryStorage<u32>,
    ) {
        let (queue, rx) = futures::channel::mpsc::unbounded();
        let sink: MemorySinkBox = Box::new(queue.clone().sink_map_err(MemoryStorageError::from));
        let sink = MemorySink::new(Arc::new(futures::lock::Mutex::new(sink)));
        (queue, MemoryStorage::new_with(sink, rx.boxed()))
    }

    pub(super) async fn all(n: usize) {
        // Memory: n handlers waiting on their TaskContext.
        {
            let (queue, storage) = storage();
            let (started_tx, mut started) = mpsc::unbounded_channel::<Started>();
            let ctx = WorkerContext::new("per-op-sleepers");
            let worker = WorkerBuilder::new(&ctx)
                .backend(storage)
                .data(started_tx)
                .build(sleeper);
            let join = tokio::spawn(async move {
                let _ = worker.run().await;
            });
            let before = rss();
            let mut q = queue.clone();
            let mut tasks = stream::iter((0..n).map(|_| Ok(task())));
            q.send_all(&mut tasks).await.expect("push");
            let mut running = Vec::with_capacity(n);
            for _ in 0..n {
                running.push(started.recv().await.expect("started"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let held = (n * size_of_val(&running[0])) as f64;
            report("rss", ((rss() - before) as f64 - held) / n as f64);
            let _ = ctx.stop();
            drop(running);
            let _ = tokio::time::timeout(Duration::from_secs(10), join).await;
        }

        // Lifecycle: no-op tasks to a running worker, successes counted.
        {
            let (queue, storage) = storage();
            let seen = Arc::new(Counter::default());
            let listener = seen.clone();
            let ctx = WorkerContext::new("per-op-noop");
            let worker = WorkerBuilder::new(&ctx)
                .backend(storage)
                .on_event(move |_, event| {
                    if matches!(event, Event::Success(_)) {
                        listener.hit();
                    }
                })
                .build(noop);
            let join = tokio::spawn(async move {
                let _ = worker.run().await;
            });
            let ns = per_job(n, reps(), |count| {
                let seen = seen.clone();
                let mut q = queue.clone();
                async move {
                    seen.reset();
                    let start = Instant::now();
                    let mut tasks = stream::iter((0..count).map(|_| Ok(task())));
                    q.send_all(&mut tasks).await.expect("push");
                    seen.reached(count).await;
                    start.elapsed()
                }
            })
            .await;
            report("lifecycle", ns);
            let _ = ctx.stop();
            let _ = tokio::time::timeout(Duration::from_secs(10), join).await;
        }

        // Cancels, one running task at a time.
        {
            let (queue, storage) = storage();
            let (started_tx, mut started) = mpsc::unbounded_channel::<Started>();
            let (ended_tx, mut ended) = mpsc::unbounded_channel::<Instant>();
            let ctx = WorkerContext::new("per-op-cancel");
            let worker = WorkerBuilder::new(&ctx)
                .backend(storage)
                .data(started_tx)
                .on_event(move |_, event| {
                    if matches!(event, Event::Error(_) | Event::Success(_)) {
                        let _ = ended_tx.send(Instant::now());
                    }
                })
                .build(sleeper);
            let join = tokio::spawn(async move {
                let _ = worker.run().await;
            });
            let mut observed = Vec::with_capacity(CANCELS);
            let mut finals = Vec::with_capacity(CANCELS);
            let mut q = queue.clone();
            for _ in 0..CANCELS {
                q.send(task()).await.expect("push");
                let (task_id, dropped) = started.recv().await.expect("started");
                let running = ctx.get_task(&task_id).expect("running task");
                tokio::time::sleep(Duration::from_micros(200)).await;
                let asked = Instant::now();
                running.cancel().expect("cancel");
                observed.push(dropped.await.expect("dropped").duration_since(asked));
                finals.push(ended.recv().await.expect("ended").duration_since(asked));
            }
            report("cancel_observed", median(observed).as_nanos() as f64);
            report("cancel_final", median(finals).as_nanos() as f64);
            let _ = ctx.stop();
            let _ = tokio::time::timeout(Duration::from_secs(10), join).await;
        }
    }
}
