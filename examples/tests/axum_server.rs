//! Runs the built `axum_server` example as a process: it prints its address, serves
//! the start endpoint and the operations API, and on SIGTERM cancels what runs and
//! exits 0.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Lines, http, spawn, wait_with_timeout};

fn operation(addr: SocketAddr, id: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}"), "");
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn start_dummy(addr: SocketAddr, body: &str) -> String {
    let (status, reply) = http(addr, "POST", "/api/v1/dummy/start", body);
    assert_eq!(status, 200, "{reply}");
    reply["data"]["operation_id"]
        .as_str()
        .expect("operation_id")
        .to_owned()
}

#[cfg(unix)]
#[test]
fn serves_the_api_and_exits_zero_on_sigterm_after_cancelling() {
    let mut child = spawn("axum_server", &["--addr", "127.0.0.1:0"]);
    let mut stdout = Lines::new(child.stdout.take().expect("stdout"));
    let addr: SocketAddr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });

    // The README's scenario: a short dummy shows progress, then COMPLETED.
    let short = start_dummy(addr, r#"{"iterations": 5, "interval_ms": 100}"#);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut percentages = Vec::new();
    let done = loop {
        let info = operation(addr, &short);
        percentages.push(info["progress"]["percentage"].as_f64().unwrap_or(0.0));
        if info["status"] == "COMPLETED" {
            break info;
        }
        assert!(Instant::now() < deadline, "not completed in time: {info}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(done["progress"]["steps_completed"], 5);
    assert!(
        percentages.iter().any(|&p| p > 0.0 && p < 100.0),
        "no progress seen in between: {percentages:?}"
    );

    // A long one is running when SIGTERM arrives.
    let long = start_dummy(addr, r#"{"iterations": 100, "interval_ms": 200}"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while operation(addr, &long)["status"] != "RUNNING" {
        assert!(Instant::now() < deadline, "not RUNNING within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    common::signal(&child, "TERM");
    stdout.find(Duration::from_secs(10), |line| {
        line.starts_with("shutting down: cancelled 1 operations in ")
            .then_some(())
    });
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    let stderr = common::read_all(child.stderr.take());
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
    assert!(!stderr.contains("left running"), "stderr: {stderr}");
}

#[cfg(unix)]
#[test]
fn max_active_refuses_starts_beyond_it_with_429() {
    let mut child = spawn(
        "axum_server",
        &["--addr", "127.0.0.1:0", "--max-active", "1"],
    );
    let mut stdout = Lines::new(child.stdout.take().expect("stdout"));
    let addr: SocketAddr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });
    let running = start_dummy(addr, r#"{"iterations": 100, "interval_ms": 200}"#);
    let (status, reply) = http(
        addr,
        "POST",
        "/api/v1/dummy/start",
        r#"{"iterations": 1, "interval_ms": 1}"#,
    );
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["error"]["code"], "TOO_MANY_OPERATIONS");
    let (status, list) = http(addr, "GET", "/api/v1/operations", "");
    assert_eq!(status, 200);
    assert_eq!(list["total_count"], 1, "{list}");
    assert_eq!(list["data"][0]["operation_id"], running.as_str());
    common::signal(&child, "TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn refuses_an_address_it_cannot_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut child = spawn("axum_server", &["--addr", &addr]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let stderr = common::read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("cannot listen on"), "stderr: {stderr}");
}
