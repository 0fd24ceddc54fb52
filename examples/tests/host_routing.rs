//! Training routed to a host service, as an operator runs it: a `training_host`
//! process, an `axum_server` process told by its environment to train there, and
//! `cli train` against the server — all real processes on loopback.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Guard, Lines, example_binary, http, metric_count, operation, read_all, serve, wait_with_timeout,
};
use serde_json::Value;

/// Counts the host's request log lines (`method=GET path=… status=…`, on stderr)
/// that match `needle`, as they come.
struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    fn new(child: &mut Child) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log").push(line);
            }
        });
        Self(lines)
    }

    fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// A host and a server routed to it (with `extra` settings).
fn routed(extra: &[(&str, &str)]) -> (Guard, SocketAddr, Guard, SocketAddr) {
    let (host, _, host_addr) = serve("training_host", &[]);
    let url = format!("http://{host_addr}");
    let mut env = vec![
        ("USE_TRAINING_HOST_SERVICE", "true"),
        ("TRAINING_HOST_SERVICE_URL", url.as_str()),
    ];
    env.extend_from_slice(extra);
    let (server, _, addr) = serve("axum_server", &env);
    (host, host_addr, server, addr)
}

/// Polls until `f` gives `Some`; panics after `limit`.
fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cli_train(addr: SocketAddr, args: &[&str]) -> Child {
    let url = format!("http://{addr}");
    Command::new(example_binary("cli"))
        .args(["train"])
        .args(args)
        .args(["--url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cli")
}

/// The only operation of `addr`'s registry.
fn only_operation(addr: SocketAddr) -> Option<Value> {
    let (_, page) = http(addr, "GET", "/api/v1/operations", "");
    page["data"][0].as_object().map(|_| page["data"][0].clone())
}

#[test]
fn cli_train_through_a_routed_server_completes_with_the_hosts_result() {
    let (_host, host_addr, _server, addr) = routed(&[]);
    let mut cli = Guard(cli_train(
        addr,
        &["--epochs", "5", "--epoch-delay-ms", "20"],
    ));
    let status = wait_with_timeout(&mut cli.0, Duration::from_secs(30));
    let out = read_all(cli.0.stdout.take());
    let err = read_all(cli.0.stderr.take());
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.trim().starts_with("Trained 5 epochs: loss "), "{out}");

    let proxy = only_operation(addr).expect("the proxy");
    assert_eq!(proxy["status"], "COMPLETED", "{proxy}");
    assert_eq!(proxy["host_url"], format!("http://{host_addr}"));
    let host_id = proxy["host_operation_id"].as_str().expect("host id");
    let on_host = operation(host_addr, host_id);
    assert_eq!(on_host["status"], "COMPLETED", "{on_host}");
    assert_eq!(proxy["result_summary"], on_host["result_summary"]);
    let id = proxy["operation_id"].as_str().expect("id");
    assert_eq!(
        metric_count(addr, id),
        5,
        "one epoch record each, copied by cursor"
    );
    assert!(on_host.get("host_url").is_none(), "the host trains locally");
}

#[test]
fn ctrl_c_in_the_cli_cancels_on_the_host_then_the_proxy() {
    let (_host, host_addr, _server, addr) = routed(&[]);
    let mut cli = Guard(cli_train(
        addr,
        &["--epochs", "1000", "--epoch-delay-ms", "20"],
    ));
    let (id, host_id) = eventually(Duration::from_secs(20), "an epoch on the host", || {
        let proxy = only_operation(addr)?;
        let id = proxy["operation_id"].as_str()?.to_owned();
        let host_id = proxy["host_operation_id"].as_str()?.to_owned();
        (metric_count(addr, &id) >= 1).then_some((id, host_id))
    });
    let asked = Instant::now();
    common::signal(&cli.0, "INT");
    eventually(Duration::from_secs(2), "CANCELLED on the host", || {
        (operation(host_addr, &host_id)["status"] == "CANCELLED").then_some(())
    });
    let status = wait_with_timeout(&mut cli.0, Duration::from_secs(15));
    let out = read_all(cli.0.stdout.take());
    let err = read_all(cli.0.stderr.take());
    assert_eq!(status.code(), Some(130), "stdout: {out}\nstderr: {err}");
    let proxy = operation(addr, &id);
    assert_eq!(proxy["status"], "CANCELLED", "{proxy}");
    let on_host = operation(host_addr, &host_id);
    let n = on_host["result_summary"]["epochs_completed"]
        .as_u64()
        .expect("count");
    assert_eq!(proxy["result_summary"]["epochs_completed"], n);
    assert_eq!(out.trim(), format!("Cancelled after {n}/1000 epochs"));
    assert!(asked.elapsed() < Duration::from_secs(10));
}

#[test]
fn kill_9_of_the_host_fails_the_proxy_naming_the_host() {
    let (mut host, host_addr, _server, addr) = routed(&[("TRAINING_HOST_SERVICE_GRACE_SECS", "1")]);
    let (status, started) = http(
        addr,
        "POST",
        "/api/v1/training/start",
        r#"{"epochs": 1000, "epoch_delay_ms": 20}"#,
    );
    assert_eq!(status, 200, "{started}");
    let id = started["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually(Duration::from_secs(20), "an epoch", || {
        (metric_count(addr, &id) >= 1).then_some(())
    });
    host.0.kill().expect("kill -9 the host");
    let killed = Instant::now();
    let failed = eventually(Duration::from_secs(10), "the proxy FAILED", || {
        let info = operation(addr, &id);
        (info["status"] != "RUNNING").then_some(info)
    });
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let message = failed["error_message"].as_str().expect("message");
    assert!(
        message.contains(&format!("http://{host_addr}")),
        "{message}"
    );
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        killed.elapsed() < Duration::from_secs(6),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn a_routed_server_refuses_a_bad_setting_at_start_and_reports_a_down_host() {
    // A set flag without a URL: the server does not start.
    let out = Command::new(example_binary("axum_server"))
        .args(["--addr", "127.0.0.1:0"])
        .env("ORCHESTRATOR_STORE", "memory:")
        .env("USE_TRAINING_HOST_SERVICE", "true")
        .env_remove("TRAINING_HOST_SERVICE_URL")
        .output()
        .expect("run axum_server");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("USE_TRAINING_HOST_SERVICE is true but TRAINING_HOST_SERVICE_URL is not set"),
        "{err}"
    );
    // A host that is down: a clear 503 naming it, and nothing registered.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = format!("http://{down}");
    let (_server, _, addr) = serve(
        "axum_server",
        &[
            ("USE_TRAINING_HOST_SERVICE", "true"),
            ("TRAINING_HOST_SERVICE_URL", url.as_str()),
        ],
    );
    let (status, reply) = http(addr, "POST", "/api/v1/training/start", r#"{"epochs": 3}"#);
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "HOST_UNAVAILABLE");
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains(&url), "{message}");
    assert!(
        only_operation(addr).is_none(),
        "no local record left behind"
    );
}

#[test]
fn sixty_four_pollers_of_a_proxy_cause_one_host_read_per_second() {
    let mut host = Command::new(example_binary("training_host"))
        .args(["--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start training_host");
    let log = RequestLog::new(&mut host);
    let mut stdout = Lines::new(host.stdout.take().expect("stdout"));
    let _host = Guard(host);
    let host_addr: SocketAddr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });
    let url = format!("http://{host_addr}");
    let (_server, _, addr) = serve(
        "axum_server",
        &[
            ("USE_TRAINING_HOST_SERVICE", "true"),
            ("TRAINING_HOST_SERVICE_URL", url.as_str()),
        ],
    );
    let (status, started) = http(
        addr,
        "POST",
        "/api/v1/training/start",
        r#"{"epochs": 10000, "epoch_delay_ms": 20}"#,
    );
    assert_eq!(status, 200, "{started}");
    let id = started["data"]["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let host_id = operation(addr, &id)["host_operation_id"]
        .as_str()
        .expect("host id")
        .to_owned();
    let record_reads = format!("path=/api/v1/operations/{host_id} status");
    let before = log.count(&record_reads);
    let window = Duration::from_secs(5);
    let started = Instant::now();
    let polls = Arc::new(AtomicUsize::new(0));
    let pollers: Vec<_> = (0..64)
        .map(|_| {
            let (id, polls) = (id.clone(), polls.clone());
            std::thread::spawn(move || {
                while started.elapsed() < window {
                    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}"), "");
                    assert_eq!(status, 200, "{body}");
                    assert_eq!(body["data"]["status"], "RUNNING");
                    polls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for p in pollers {
        p.join().expect("poller");
    }
    let host_reads = log.count(&record_reads) - before;
    let polls = polls.load(Ordering::Relaxed);
    assert!(polls > 640, "the pollers read {polls} times");
    assert!(
        (2..=8).contains(&host_reads),
        "{polls} reads of the proxy in 5 s caused {host_reads} reads of the host's record"
    );
    let (status, _) = http(
        addr,
        "POST",
        &format!("/api/v1/operations/{id}/cancel"),
        "{}",
    );
    assert_eq!(status, 200);
}
