//! Running a built example as a process.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `target/<profile>/examples/<name>`, built by `cargo test` before tests run.
pub fn example_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: run through `cargo test`, which builds the examples first",
        bin.display()
    );
    bin
}

pub fn spawn(name: &str, args: &[&str]) -> Child {
    Command::new(example_binary(name))
        .args(args)
        .env("ORCHESTRATOR_STORE", "memory:")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the example did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn read_all(pipe: Option<impl Read>) -> String {
    let mut out = String::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_string(&mut out).expect("read pipe");
    }
    out
}

/// Sends `signal` (`INT`, `TERM`) to the child.
#[cfg(unix)]
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Lines of stdout as they come, read on a thread so a deadline can be applied.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(stdout: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) for which `f` gives `Some`, within `limit`.
    pub fn find<T>(&mut self, limit: Duration, f: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = f(&line);
                    self.seen.push(line);
                    if let Some(v) = found {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no such line within {limit:?}; stdout so far: {:?}",
                    self.seen
                ),
            }
        }
    }
}

/// One HTTP/1.1 request on its own connection; returns status and JSON body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    (status, json)
}

/// A child process killed when the test ends, passed or not.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example `name` on `127.0.0.1:0` with only `env` for host routing (none
/// inherited from the shell), once it says where it listens.
pub fn serve(name: &str, env: &[(&str, &str)]) -> (Guard, Lines, SocketAddr) {
    let mut child = Command::new(example_binary(name))
        .args(["--addr", "127.0.0.1:0"])
        .env_remove("USE_TRAINING_HOST_SERVICE")
        .env_remove("TRAINING_HOST_SERVICE_URL")
        .env("ORCHESTRATOR_STORE", "memory:")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut stdout = Lines::new(child.stdout.take().expect("stdout"));
    let addr = stdout.find(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
    });
    (Guard(child), stdout, addr)
}

/// `GET /api/v1/operations/{id}`'s record (asserting 200).
pub fn operation(addr: SocketAddr, id: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}"), "");
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// How many metric records `GET /api/v1/operations/{id}/metrics` returns.
pub fn metric_count(addr: SocketAddr, id: &str) -> usize {
    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}/metrics"), "");
    assert_eq!(status, 200, "{body}");
    body["data"]["metrics"].as_array().map_or(0, Vec::len)
}
