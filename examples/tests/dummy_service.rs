//! Runs the built `dummy_service` example as a process: the success path, and SIGINT
//! mid-iteration.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/dummy_service`, built by `cargo test` before tests run.
fn example_binary() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir
        .join("examples")
        .join(format!("dummy_service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: run through `cargo test`, which builds the examples first",
        bin.display()
    );
    bin
}

fn spawn(args: &[&str]) -> Child {
    Command::new(example_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dummy_service")
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("dummy_service did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout_of(child: &mut Child) -> String {
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    out
}

#[test]
fn completes_and_exits_zero() {
    let mut child = spawn(&["--iterations", "3", "--interval-ms", "50"]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let out = stdout_of(&mut child);
    assert_eq!(status.code(), Some(0), "stdout: {out}");
    assert_eq!(out.trim(), "Completed 3 iterations");
}

#[cfg(unix)]
#[test]
fn sigint_cancels_mid_iteration_and_exits_130_within_a_second() {
    // 300 ms per iteration; interrupt in the middle of the third one.
    let mut child = spawn(&["--iterations", "100", "--interval-ms", "300"]);
    std::thread::sleep(Duration::from_millis(750));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    let took = sent.elapsed();
    let out = stdout_of(&mut child);
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
