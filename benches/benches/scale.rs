//! `scale`: 100k concurrent managed operations that sleep. Prints a table: time to
//! start them all, resident memory per operation, and `cancel_all` until every one is
//! CANCELLED.
//!
//! `cargo bench -p orchestrator-benches --bench scale` (set `SCALE_OPS` to change 100k).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use orchestrator::{OperationSpec, Operations};

/// Resident set size in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a smoke test.
    let smoke = std::env::args().any(|a| a == "--test" || a == "--quick");
    let n: usize = std::env::var("SCALE_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1_000 } else { 100_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ops = Operations::builder().without_sweeper().build();
        // Warm up allocator and runtime so the baseline is fair.
        let warm = ops
            .spawn(OperationSpec::new("warm"), |_| async {
                Ok::<_, Infallible>(())
            })
            .expect("spawn");
        let _ = warm.outcome().await;
        ops.cleanup(Duration::ZERO);
        let rss_before = rss_kib();

        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let handle = ops
                .spawn(OperationSpec::new("sleeper"), |ctx| async move {
                    let _ = ctx.sleep(Duration::from_secs(3600)).await;
                    Ok::<_, Infallible>(())
                })
                .expect("spawn");
            handles.push(handle);
        }
        let spawned = start.elapsed();
        // Every operation has started and parked on its sleep.
        while ops
            .list(
                &orchestrator::OperationFilter::new()
                    .with_status(orchestrator::OperationStatus::Pending)
                    .with_limit(1),
            )
            .total_count
            > 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let all_running = start.elapsed();
        let rss_after = rss_kib();
        let handles_bytes = (n * std::mem::size_of_val(&handles[0])) as u64;
        let per_op = (rss_after.saturating_sub(rss_before) * 1024).saturating_sub(handles_bytes)
            as f64
            / n as f64;

        let cancel = Instant::now();
        let signalled = ops.cancel_all("bench");
        for h in handles {
            let _ = h.outcome().await;
        }
        let cancelled = cancel.elapsed();
        assert_eq!(signalled, n);
        assert_eq!(ops.active_count(), 0);

        println!();
        println!("scale: {n} concurrent managed operations (2 worker threads)");
        println!("| measure                          | value        |");
        println!("| -------------------------------- | ------------ |");
        println!(
            "| spawn all (registered + spawned) | {:>9.1} ms |",
            spawned.as_secs_f64() * 1e3
        );
        println!(
            "| until all RUNNING                | {:>9.1} ms |",
            all_running.as_secs_f64() * 1e3
        );
        println!("| RSS per operation                | {per_op:>7.0} B   |");
        println!(
            "| cancel_all until all CANCELLED   | {:>9.1} ms |",
            cancelled.as_secs_f64() * 1e3
        );
    });
}
