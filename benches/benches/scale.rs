//! `scale`: 100k concurrent operations that sleep, managed next to bare tokio tasks
//! (each waiting on a tokio-util child token or its sleep). Prints a table: time to
//! start them all, resident memory per operation, and cancelling all of them until
//! every one has ended.
//!
//! Each side runs in a fresh child process so that one side's freed memory does not
//! flatter the other's resident-set figure.
//!
//! `cargo bench -p orchestrator-benches --bench scale` (`SCALE_OPS` overrides 100k).

use std::convert::Infallible;
use std::process::Command;
use std::time::{Duration, Instant};

use orchestrator::{OperationFilter, OperationSpec, OperationStatus, Operations};
use tokio_util::sync::CancellationToken;

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

struct Figures {
    spawn: Duration,
    bytes_per_op: f64,
    cancel: Duration,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bare(n: usize) -> Figures {
    runtime().block_on(async {
        let root = CancellationToken::new();
        let warm = tokio::spawn(async {});
        let _ = warm.await;
        let before = rss_kib();
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let token = root.child_token();
            handles.push(tokio::spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
            }));
        }
        let spawn = start.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = (rss_kib().saturating_sub(before) * 1024) as f64;
        let handles_bytes = (n * size_of::<tokio::task::JoinHandle<()>>()) as f64;
        let cancel = Instant::now();
        // Cancelled from a worker, as a signal handler or HTTP handler would.
        tokio::spawn(async move {
            root.cancel();
            for h in handles {
                h.await.expect("join");
            }
        })
        .await
        .expect("cancel task");
        Figures {
            spawn,
            bytes_per_op: (bytes - handles_bytes) / n as f64,
            cancel: cancel.elapsed(),
        }
    })
}

fn managed(n: usize) -> Figures {
    runtime().block_on(async {
        let ops = Operations::builder()
            .without_sweeper()
            .with_max_active(usize::MAX)
            .build();
        let warm = ops
            .spawn(OperationSpec::new("warm"), |_| async {
                Ok::<_, Infallible>(())
            })
            .expect("spawn");
        let _ = warm.outcome().await;
        ops.cleanup(Duration::ZERO);
        let before = rss_kib();
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            handles.push(
                ops.spawn(OperationSpec::new("sleeper"), |ctx| async move {
                    let _ = ctx.sleep(Duration::from_secs(3600)).await;
                    Ok::<_, Infallible>(())
                })
                .expect("spawn"),
            );
        }
        let spawn = start.elapsed();
        let pending = OperationFilter::new()
            .with_status(OperationStatus::Pending)
            .with_limit(1);
        while ops.list(&pending).total_count > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = (rss_kib().saturating_sub(before) * 1024) as f64;
        let handles_bytes = (n * size_of_val(&handles[0])) as f64;
        let cancel = Instant::now();
        let ops2 = ops.clone();
        tokio::spawn(async move {
            assert_eq!(ops2.cancel_all("bench"), n);
            for h in handles {
                assert!(h.outcome().await.is_cancelled());
            }
        })
        .await
        .expect("cancel task");
        let cancel = cancel.elapsed();
        assert_eq!(ops.active_count(), 0);
        Figures {
            spawn,
            bytes_per_op: (bytes - handles_bytes) / n as f64,
            cancel,
        }
    })
}

/// Resident memory per finished operation kept for clients to read (a record driven by
/// hand to `COMPLETED` with a small summary, as a list or `GET` would show it).
fn retained(n: usize) -> f64 {
    let ops = Operations::builder()
        .without_sweeper()
        .with_max_retained(usize::MAX)
        .build();
    let before = rss_kib();
    for i in 0..n {
        let id = ops
            .create(OperationSpec::new("job").with_total_steps(10))
            .expect("create");
        ops.start(&id).expect("start");
        ops.context(&id).expect("context").progress(10, "done");
        ops.complete(&id, i).expect("complete");
    }
    assert_eq!(ops.len(), n);
    (rss_kib().saturating_sub(before) * 1024) as f64 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` passes `--test`: a small smoke run.
    let smoke = args.iter().any(|a| a == "--test" || a == "--quick");
    let n: usize = std::env::var("SCALE_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1_000 } else { 100_000 });

    if let Some(side) = args
        .iter()
        .position(|a| a == "--side")
        .and_then(|i| args.get(i + 1))
    {
        if side == "retained" {
            println!("{}", retained(n));
            return;
        }
        let f = if side == "bare" { bare(n) } else { managed(n) };
        println!(
            "{} {} {}",
            f.spawn.as_secs_f64(),
            f.bytes_per_op,
            f.cancel.as_secs_f64()
        );
        return;
    }

    let exe = std::env::current_exe().expect("own path");
    let run = |side: &str| -> Figures {
        let out = Command::new(&exe)
            .args(["--side", side])
            .env("SCALE_OPS", n.to_string())
            .output()
            .expect("run side");
        assert!(
            out.status.success(),
            "{side}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = text
            .split_whitespace()
            .map(|x| x.parse().expect("figure"))
            .collect();
        Figures {
            spawn: Duration::from_secs_f64(v[0]),
            bytes_per_op: v[1],
            cancel: Duration::from_secs_f64(v[2]),
        }
    };
    let (b, m) = (run("bare"), run("managed"));
    let kept = Command::new(&exe)
        .args(["--side", "retained"])
        .env("SCALE_OPS", n.to_string())
        .output()
        .expect("run side");
    assert!(
        kept.status.success(),
        "{}",
        String::from_utf8_lossy(&kept.stderr)
    );
    let kept: f64 = String::from_utf8_lossy(&kept.stdout)
        .trim()
        .parse()
        .expect("figure");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!("scale: {n} concurrent sleeping operations, 2 worker threads");
    println!("| measure                        | bare tokio  | managed     | ratio |");
    println!("| ------------------------------ | ----------- | ----------- | ----- |");
    println!(
        "| spawn all                      | {:>8.1} ms | {:>8.1} ms | {:>4.2}x |",
        ms(b.spawn),
        ms(m.spawn),
        m.spawn.as_secs_f64() / b.spawn.as_secs_f64()
    );
    println!(
        "| resident memory per operation  | {:>8.0} B  | {:>8.0} B  | {:>4.2}x |",
        b.bytes_per_op,
        m.bytes_per_op,
        m.bytes_per_op / b.bytes_per_op
    );
    println!(
        "| cancel all until all ended     | {:>8.1} ms | {:>8.1} ms | {:>4.2}x |",
        ms(b.cancel),
        ms(m.cancel),
        m.cancel.as_secs_f64() / b.cancel.as_secs_f64()
    );
    println!("| resident memory per finished operation kept | | {kept:>8.0} B  | |");
}
