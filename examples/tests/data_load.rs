//! Runs the built `data_load` example as a process: the summary and exit 0, a clear
//! failure and exit 1, SIGINT mid-load with exit 130, and no synthetic file left after
//! a SIGKILL.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{example_binary, read_all, spawn, wait_with_timeout};
use orchestrator_examples::data::{Timeframe, generate};

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "orchestrator-example-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        Self(dir)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
fn a_missing_file_or_one_outside_the_data_dir_fails_alike_with_exit_one() {
    let dir = TempDir::new("refused");
    std::fs::create_dir_all(dir.0.join("data")).expect("mkdir");
    std::fs::write(dir.0.join("secret.csv"), "SECRET\n").expect("write");
    let data_dir = dir.0.join("data");
    let data_dir = data_dir.to_str().expect("utf-8 path");
    for path in ["missing.csv", "../secret.csv", "../missing.csv"] {
        let mut child = spawn("data_load", &["--data-dir", data_dir, "--path", path]);
        let status = wait_with_timeout(&mut child, Duration::from_secs(30));
        let err = read_all(child.stderr.take());
        assert_eq!(status.code(), Some(1), "stderr: {err}");
        assert!(
            err.contains(&format!(
                "Failed: cannot load {path}: no such regular file in the data directory"
            )),
            "{err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
    }
}

#[test]
fn rows_above_max_rows_are_refused_with_exit_one() {
    let mut child = spawn("data_load", &["--rows", "2000", "--max-rows", "1000"]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("--rows 2000 is over the limit of 1000 rows"),
        "{err}"
    );
}

/// SIGKILL mid-generation leaves nothing behind: the synthetic file is unlinked as soon
/// as it is created (it is open, yet not in the directory). And a stale file of a dead
/// run (one that could not unlink: another OS, an older version) is swept by the next
/// run.
#[cfg(target_os = "linux")]
#[test]
fn sigkill_mid_generation_leaves_no_file_and_stale_files_are_swept() {
    let tmp = TempDir::new("sigkill");
    let stale = "orchestrator-ohlcv-4000000000-00000000000000ff-0.csv";
    std::fs::write(tmp.0.join(stale), "x\n").expect("plant");
    let mut child = Command::new(example_binary("data_load"))
        .args(["--rows", "5000000"])
        .env("TMPDIR", &tmp.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start data_load");
    // Wait until the process holds its synthetic file open.
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let open = loop {
        let open = std::fs::read_dir(&fds).ok().and_then(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .find(|target| target.starts_with(&tmp.0))
        });
        if let Some(target) = open {
            break target;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("data_load exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no synthetic file opened");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        open.to_string_lossy().ends_with(" (deleted)"),
        "the open file is still linked: {}",
        open.display()
    );
    assert_eq!(tmp.names(), Vec::<String>::new(), "stale file not swept");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(tmp.names(), Vec::<String>::new(), "left behind by SIGKILL");

    // A stale file is swept by the next run.
    std::fs::write(tmp.0.join(stale), "x\n").expect("plant");
    let status = Command::new(example_binary("data_load"))
        .args(["--rows", "1000"])
        .env("TMPDIR", &tmp.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run data_load");
    assert!(status.success());
    assert_eq!(tmp.names(), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn sigint_cancels_the_load_and_exits_130_with_the_row_count() {
    const ROWS: u64 = 1_000_000;
    let dir = TempDir::new("sigint");
    let path = dir.0.join("bars.csv");
    let file = std::fs::File::create(&path).expect("create");
    generate::write_random_walk(file, ROWS, Timeframe::MINUTE, 5, |_| {
        ControlFlow::Continue(())
    })
    .expect("generate");

    let data_dir = dir.0.to_str().expect("utf-8");
    let mut child = spawn("data_load", &["--data-dir", data_dir, "--path", "bars.csv"]);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    common::signal(&child, "INT");
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let took = sent.elapsed();
    let out = read_all(child.stdout.take());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_loads_each_file_as_a_child_and_reports_the_one_that_failed() {
    use orchestrator::{OperationFilter, OperationStatus, Operations};
    use orchestrator_examples::data::{BatchSummary, DataService};

    let dir = TempDir::new("batch");
    for (name, rows) in [("a.csv", 500), ("b.csv", 700)] {
        let file = std::fs::File::create(dir.0.join(name)).expect("create");
        generate::write_random_walk(file, rows, Timeframe::MINUTE, 7, |_| {
            ControlFlow::Continue(())
        })
        .expect("write");
    }
    let ops = Operations::new();
    let svc = DataService::new(ops.clone()).with_data_dir(&dir.0);
    let paths = ["a.csv", "missing.csv", "b.csv"]
        .map(PathBuf::from)
        .to_vec();
    let batch = svc
        .spawn_load_files(paths, Timeframe::MINUTE)
        .expect("started");
    let info = tokio::time::timeout(Duration::from_secs(30), ops.wait(batch.id()))
        .await
        .expect("in time")
        .expect("known");
    // A failed file is the batch's to report, not its end.
    assert_eq!(info.status, OperationStatus::Completed, "{info:?}");
    assert_eq!(info.progress.percentage, 100.0);
    let summary: BatchSummary = info.result_as().expect("a batch summary");
    assert_eq!((summary.files, summary.loaded, summary.failed), (3, 2, 1));
    assert_eq!(summary.rows_loaded, 1200);
    let missing = &summary.results[1];
    assert_eq!(missing.status, OperationStatus::Failed);
    assert!(
        missing
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no such regular file")),
        "{missing:?}"
    );

    // Each file was an operation of its own under the batch.
    let children = ops.list(&OperationFilter::new().with_parent(batch.id().clone()));
    assert_eq!(children.total_count, 3);
    for child in &children.operations {
        assert_eq!(child.parent_id.as_ref(), Some(batch.id()));
        assert_eq!(child.operation_type.as_str(), "DATA_LOAD");
        let path = child.metadata.parameters["path"]
            .as_str()
            .unwrap_or_default();
        let expected = summary
            .results
            .iter()
            .find(|r| r.operation_id == child.operation_id)
            .expect("a child of the summary");
        assert_eq!(path, expected.path.to_str().unwrap_or_default());
        assert_eq!(child.status, expected.status);
    }
}
