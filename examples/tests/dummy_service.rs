//! Runs the built `dummy_service` example as a process: the success path, and SIGINT
//! mid-iteration.

mod common;

use std::time::{Duration, Instant};

use common::{read_all, spawn, wait_with_timeout};

#[test]
fn completes_and_exits_zero() {
    let mut child = spawn(
        "dummy_service",
        &["--iterations", "3", "--interval-ms", "50"],
    );
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let out = read_all(child.stdout.take());
    assert_eq!(status.code(), Some(0), "stdout: {out}");
    assert_eq!(out.trim(), "Completed 3 iterations");
}

#[cfg(unix)]
#[test]
fn sigint_cancels_mid_iteration_and_exits_130_within_a_second() {
    // 300 ms per iteration; interrupt in the middle of the third one.
    let mut child = spawn(
        "dummy_service",
        &["--iterations", "100", "--interval-ms", "300"],
    );
    std::thread::sleep(Duration::from_millis(750));
    let sent = Instant::now();
    common::signal(&child, "INT");
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    let took = sent.elapsed();
    let out = read_all(child.stdout.take());
    assert_eq!(status.code(), Some(130), "stdout: {out}");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    let n: u64 = out
        .trim()
        .strip_prefix("Cancelled after ")
        .and_then(|s| s.strip_suffix(" iterations"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    // Started ~750 ms ago at 300 ms per iteration; allow for a slow process start.
    assert!(n <= 2, "{n} iterations reported after ~750 ms");
}
