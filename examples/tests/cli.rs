//! Runs the built `cli` example against the built `axum_server`, both as processes:
//! SIGINT to the CLI really cancels the operation on the server, `--json` output
//! parses, `--detach` and `ops …` work, and a server that is not running is one line.

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Lines, http, read_all, spawn, wait_with_timeout};

/// A child process killed when the test ends, passed or not.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `axum_server --addr 127.0.0.1:0`, once it says where it listens.
fn server() -> (Guard, SocketAddr) {
    let mut child = spawn("axum_server", &["--addr", "127.0.0.1:0"]);
    let mut stdout = Lines::new(child.stdout.take().expect("stdout"));
    let addr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });
    (Guard(child), addr)
}

/// Runs the CLI to its end; returns exit code, stdout and stderr.
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = spawn("cli", args);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    (status.code(), out, err)
}

fn operation(addr: SocketAddr, id: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}"), "");
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[cfg(unix)]
#[test]
fn sigint_cancels_the_operation_on_the_server_and_exits_130() {
    let (_server, addr) = server();
    let url = format!("http://{addr}");
    let spawned = Instant::now();
    let mut child = Guard(spawn(
        "cli",
        &[
            "dummy",
            "--iterations",
            "50",
            "--interval-ms",
            "100",
            "--url",
            &url,
        ],
    ));

    // The server runs it (the CLI listens for Ctrl+C from before it starts it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (_, page) = http(addr, "GET", "/api/v1/operations?status=RUNNING", "");
        if let Some(id) = page["data"][0]["operation_id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "nothing RUNNING on the server");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(1).saturating_sub(spawned.elapsed()));
    assert_eq!(
        operation(addr, &id)["status"],
        "RUNNING",
        "finished too early"
    );
    common::signal(&child.0, "INT");

    let status = wait_with_timeout(&mut child.0, Duration::from_secs(15));
    let out = read_all(child.0.stdout.take());
    let err = read_all(child.0.stderr.take());
    assert_eq!(status.code(), Some(130), "stdout: {out}\nstderr: {err}");
    assert!(err.contains(&format!("Started {id}")), "{err}");
    assert!(err.contains(&format!("Cancelling {id}")), "{err}");

    // The server's own record says CANCELLED, with the count the CLI reported.
    let info = operation(addr, &id);
    assert_eq!(info["status"], "CANCELLED", "{info}");
    assert_eq!(
        info["cancel_reason"], "cancelled from the CLI (Ctrl+C)",
        "{info}"
    );
    let n = info["result_summary"]["iterations_completed"]
        .as_u64()
        .expect("count");
    assert!((1..50).contains(&n), "{info}");
    assert_eq!(out.trim(), format!("Cancelled after {n} iterations"));

    // And `ops status` shows it so.
    let (code, out, err) = cli(&["ops", "status", &id, "--url", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with(&format!("{id}  DUMMY  CANCELLED")), "{out}");
}

#[test]
fn json_output_is_one_parseable_document() {
    let (_server, addr) = server();
    let url = format!("http://{addr}");
    let args = [
        "--json",
        "dummy",
        "--iterations",
        "3",
        "--interval-ms",
        "10",
        "--url",
        &url,
    ];
    let (code, out, err) = cli(&args);
    assert_eq!(code, Some(0), "{err}");
    let info: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    assert_eq!(info["status"], "COMPLETED");
    assert_eq!(info["result_summary"]["iterations_completed"], 3);

    let id = info["operation_id"].as_str().expect("id");
    let (code, out, _) = cli(&["--json", "ops", "status", id, "--url", &url]);
    assert_eq!(code, Some(0));
    let again: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(again, info);

    let (code, out, _) = cli(&["ops", "list", "--json", "--url", &url]);
    assert_eq!(code, Some(0));
    let page: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(page["total_count"], 1);
    assert_eq!(page["operations"][0]["operation_id"], id);
}

#[test]
fn detach_prints_the_id_and_ops_wait_follows_it() {
    let (_server, addr) = server();
    let url = format!("http://{addr}");
    let (code, out, err) = cli(&[
        "dummy",
        "--detach",
        "--iterations",
        "3",
        "--interval-ms",
        "50",
        "--url",
        &url,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_owned();
    assert!(id.starts_with("op_dummy_"), "{out}");

    let (code, out, err) = cli(&["ops", "wait", &id, "--url", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("Completed dummy task in "), "{out}");

    let (code, out, _) = cli(&["ops", "list", "--url", &url]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("ID "), "{out}");
    assert!(out.contains(&id) && out.contains("COMPLETED"), "{out}");

    let (code, _, err) = cli(&["ops", "cancel", &id, "--url", &url]);
    assert_eq!(code, Some(1));
    assert!(err.contains("(409 OPERATION_FINISHED)"), "{err}");
}

#[test]
fn a_server_that_is_not_running_is_one_clear_line_and_exit_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = format!("http://{addr}");
    let started = Instant::now();
    let (code, out, err) = cli(&["dummy", "--url", &url, "--retry-base-ms", "10"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "");
    // One line, no trace: what to do first, then the cause (said once).
    let prefix = format!("cannot reach {url}: is the server running?: ");
    assert!(err.starts_with(&prefix), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Connection refused"),
        "the cause is shown: {err}"
    );
    // 10 + 20 + 40 + 80 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(150));

    // The URL can come from the environment too.
    let mut child = std::process::Command::new(common::example_binary("cli"))
        .args(["ops", "list", "--retry-base-ms", "1"])
        .env("ORCHESTRATOR_URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cli");
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1));
    assert!(err.starts_with(&format!("cannot reach {url}")), "{err}");
}

#[test]
fn ops_metrics_follows_to_the_end_and_ops_delete_removes_or_cancels() {
    let (_server, addr) = server();
    let url = format!("http://{addr}");
    let start = |iterations: &str| {
        let (code, out, err) = cli(&[
            "dummy",
            "--detach",
            "--iterations",
            iterations,
            "--interval-ms",
            "50",
            "--url",
            &url,
        ]);
        assert_eq!(code, Some(0), "{err}");
        out.trim().to_owned()
    };
    let id = start("3");
    // Follows until the operation ends (the dummy task records no metrics).
    let (code, out, err) = cli(&["ops", "metrics", &id, "--follow", "--url", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "");
    assert_eq!(operation(addr, &id)["status"], "COMPLETED");

    let (code, out, err) = cli(&["ops", "delete", &id, "--url", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("Deleted {id} (COMPLETED)\n"));
    let (code, _, err) = cli(&["ops", "status", &id, "--url", &url]);
    assert_eq!(code, Some(1));
    assert!(err.contains("OPERATION_NOT_FOUND"), "{err}");

    let running = start("1000");
    let (code, out, err) = cli(&["ops", "delete", &running, "--url", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cancellation requested"), "{out}");
}
