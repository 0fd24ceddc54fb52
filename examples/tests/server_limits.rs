//! The built `axum_server` as a process against hostile clients: silent sockets under
//! a low open-file limit, bearer auth with the built `cli`, and a shutdown that gives
//! an open event stream its `done` event and exits within its bounds.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lines, example_binary, http, read_all, wait_with_timeout};

/// A child process killed when the test ends, passed or not.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listening(child: &mut Child) -> (Lines, SocketAddr) {
    let mut stdout = Lines::new(child.stdout.take().expect("stdout"));
    let addr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });
    (stdout, addr)
}

/// `axum_server --addr 127.0.0.1:0 ARGS` with `env` set.
fn server(args: &[&str], env: &[(&str, &str)]) -> (Guard, Lines, SocketAddr) {
    let mut cmd = Command::new(example_binary("axum_server"));
    cmd.args(["--addr", "127.0.0.1:0"])
        .args(args)
        .env("ORCHESTRATOR_STORE", "memory:")
        .env_remove("ORCHESTRATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start axum_server");
    let (lines, addr) = listening(&mut child);
    (Guard(child), lines, addr)
}

/// One GET on its own connection with an optional bearer token: the status line's code.
fn get_status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"))
}

#[cfg(unix)]
#[test]
fn silent_sockets_under_a_low_open_file_limit_do_not_lock_out_clients() {
    // 256 descriptors for the server; 400 silent sockets would exhaust them (the old
    // server then stopped accepting for good: no header timeout freed any).
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 256 && exec \"$0\" --addr 127.0.0.1:0",
            example_binary("axum_server").to_str().expect("utf-8 path"),
        ])
        .env("ORCHESTRATOR_STORE", "memory:")
        .env_remove("ORCHESTRATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start axum_server under ulimit");
    let (_lines, addr) = listening(&mut child);
    let _guard = Guard(child);
    let mut silent = Vec::new();
    for _ in 0..400 {
        // The old server stopped accepting here: its backlog filled and connects
        // timed out.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => silent.push(s),
            Err(e) => panic!("connect #{} failed: {e}", silent.len()),
        }
    }
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(get_status(addr, "/api/v1/operations", None), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_cli_with_the_token_works_against_a_server_that_requires_it() {
    let token = "test-token-5f2c9a";
    let (_guard, _lines, addr) = server(&[], &[("ORCHESTRATOR_TOKEN", token)]);
    let url = format!("http://{addr}");
    assert_eq!(get_status(addr, "/api/v1/operations", None), 401);
    assert_eq!(get_status(addr, "/api/v1/operations", Some("wrong")), 401);
    assert_eq!(get_status(addr, "/api/v1/operations", Some(token)), 200);

    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(example_binary("cli"));
        cmd.args(["--url", &url])
            .args(args)
            .env_remove("ORCHESTRATOR_TOKEN")
            .env("ORCHESTRATOR_RETRY_BASE_MS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start cli");
        let status = wait_with_timeout(&mut child, Duration::from_secs(30));
        let out = read_all(child.stdout.take());
        let err = read_all(child.stderr.take());
        (status.code(), out, err)
    };
    // From the environment, as the server reads it.
    let (code, out, err) = run(
        &[("ORCHESTRATOR_TOKEN", token)],
        &["dummy", "--iterations", "2", "--interval-ms", "10"],
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("Completed 2 iterations"), "stdout: {out}");
    // From the flag.
    let (code, out, err) = run(&[], &["--token", token, "--json", "ops", "list"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    // Without it: one clear 401, no retries.
    let (code, out, err) = run(&[], &["ops", "list"]);
    assert_ne!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("UNAUTHORIZED"), "stderr: {err}");
}

#[cfg(unix)]
#[test]
fn shutdown_gives_an_open_event_stream_its_done_event_and_exits_in_bounds() {
    let (mut guard, mut lines, addr) = server(&["--grace-secs", "2"], &[]);
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/dummy/start",
        r#"{"iterations": 1000, "interval_ms": 100}"#,
    );
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut sse = TcpStream::connect(addr).expect("connect");
    sse.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        sse,
        "GET /api/v1/operations/{id}/events HTTP/1.1\r\nhost: {addr}\r\n\r\n"
    )
    .expect("send");
    let mut head = [0u8; 64];
    let n = sse.read(&mut head).expect("the stream starts");
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);

    let sent = Instant::now();
    common::signal(&guard.0, "TERM");
    let mut rest = String::new();
    let _ = sse.read_to_string(&mut rest);
    assert!(rest.contains("event: done"), "no done event: {rest}");
    assert!(rest.contains("\"status\":\"CANCELLED\""), "{rest}");
    lines.find(Duration::from_secs(10), |line| {
        line.starts_with("shutting down").then_some(())
    });
    let status = wait_with_timeout(&mut guard.0, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    // Grace (2 s) + drain (5 s) at most; here the operation stops at once.
    assert!(
        sent.elapsed() < Duration::from_secs(7),
        "took {:?}",
        sent.elapsed()
    );
}
