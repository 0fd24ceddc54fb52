//! Runs the built `data_load` example as a process: the summary and exit 0, a clear
//! failure and exit 1, and SIGINT mid-load with exit 130.

mod common;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use common::{read_all, spawn, wait_with_timeout};
use orchestrator_examples::data::{Timeframe, generate};

#[test]
fn loads_a_synthetic_file_prints_the_summary_and_exits_zero() {
    let mut child = spawn("data_load", &["--rows", "5000", "--timeframe", "1m"]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    let mut lines = out.lines();
    let first = lines.next().unwrap_or("");
    assert!(first.starts_with("Loaded 5000 rows from "), "{out}");
    assert!(out.contains("first bar     2020-01-01T00:00:00Z"), "{out}");
    assert!(out.contains("invalid rows  0"), "{out}");
    // It said where it generated the file, and removed it.
    let path = err
        .lines()
        .find_map(|l| l.split(" into ").nth(1))
        .and_then(|rest| rest.split(" (removed").next())
        .unwrap_or_else(|| panic!("no path in {err:?}"));
    assert!(!std::path::Path::new(path).exists(), "{path} left behind");
}

#[test]
fn an_unreadable_file_fails_with_its_path_and_exit_one() {
    let missing = std::env::temp_dir().join("orchestrator-example-test-missing.csv");
    let missing = missing.to_str().expect("utf-8 path");
    let mut child = spawn("data_load", &["--path", missing]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains(&format!("Failed: cannot read {missing}")),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn sigint_cancels_the_load_and_exits_130_with_the_row_count() {
    const ROWS: u64 = 1_000_000;
    let path = std::env::temp_dir().join(format!(
        "orchestrator-example-test-{}.csv",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).expect("create");
    generate::write_random_walk(file, ROWS, Timeframe::MINUTE, 5, |_| {
        ControlFlow::Continue(())
    })
    .expect("generate");

    let mut child = spawn("data_load", &["--path", path.to_str().expect("utf-8")]);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    common::signal(&child, "INT");
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let took = sent.elapsed();
    let out = read_all(child.stdout.take());
    let _ = std::fs::remove_file(&path);
    if status.code() == Some(0) {
        // Loaded all before the signal landed (a very fast machine): nothing to cancel.
        assert!(out.starts_with(&format!("Loaded {ROWS} rows")), "{out}");
        return;
    }
    assert_eq!(status.code(), Some(130), "stdout: {out}");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    let n: u64 = out
        .trim()
        .strip_prefix("Cancelled after ")
        .and_then(|s| s.strip_suffix(" rows"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    assert!(n < ROWS, "{n} rows reported");
}
