//! `axum_server` on a durable store, as processes: `kill -9` of a SQLite server and
//! its restart; two replicas on one PostgreSQL reading and cancelling each other's
//! operations, and one replica `kill -9`ed while the other takes over its record.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::{Guard, http, operation, serve};

/// A folder of its own under the temp dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "orchestrator-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a dummy operation of `iterations` steps of `interval_ms`; returns its id.
fn start_dummy(addr: SocketAddr, iterations: u64, interval_ms: u64) -> String {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/dummy/start",
        &format!(r#"{{"iterations": {iterations}, "interval_ms": {interval_ms}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["operation_id"]
        .as_str()
        .expect("an operation id")
        .to_owned()
}

/// Polls `GET /operations/{id}` on `addr` until `f` accepts the record.
fn until(
    addr: SocketAddr,
    id: &str,
    limit: Duration,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let record = operation(addr, id);
        if f(&record) {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last record {record}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_is(record: &serde_json::Value, status: &str) -> bool {
    record["status"] == status
}

#[test]
fn a_killed_sqlite_server_restarts_with_its_running_operation_interrupted() {
    let dir = TempDir::new("sqlite-kill");
    let store = format!("sqlite:{}", dir.0.join("ops.db").display());
    let env = [("ORCHESTRATOR_STORE", store.as_str())];

    let (server, _, addr) = serve("axum_server", &env);
    let done = start_dummy(addr, 2, 10);
    let (status, body) = http(
        addr,
        "GET",
        &format!("/api/v1/operations/{done}/wait?timeout_ms=5000"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "COMPLETED", "{body}");
    let running = start_dummy(addr, 10_000, 50);
    until(addr, &running, Duration::from_secs(5), "running", |r| {
        status_is(r, "RUNNING")
    });
    // kill -9: no shutdown, no last flush.
    drop(server);

    let (_server, _, addr) = serve("axum_server", &env);
    let interrupted = operation(addr, &running);
    assert_eq!(interrupted["status"], "FAILED", "{interrupted}");
    let message = interrupted["error_message"].as_str().unwrap_or_default();
    assert!(message.starts_with("interrupted"), "{interrupted}");
    let kept = operation(addr, &done);
    assert_eq!(kept["status"], "COMPLETED", "{kept}");
    assert_eq!(
        kept["result_summary"], body["data"]["result_summary"],
        "{kept}"
    );
    let (status, list) = http(addr, "GET", "/api/v1/operations", "");
    assert_eq!(status, 200);
    assert_eq!(list["total_count"], 2, "{list}");
    let (status, health) = http(addr, "GET", "/api/v1/health", "");
    assert_eq!(status, 200);
    assert_eq!(health["data"]["status"], "OK", "{health}");
}

#[test]
fn a_server_whose_store_cannot_be_opened_exits_with_a_clear_error() {
    let dir = TempDir::new("sqlite-bad");
    let not_a_db = dir.0.join("garbage.db");
    std::fs::write(&not_a_db, vec![0x5a_u8; 8192]).expect("write");
    for (store, expect) in [
        (format!("sqlite:{}", not_a_db.display()), "garbage.db"),
        ("mysql://nope".to_owned(), "invalid store URL"),
        (
            "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
            "cannot open the operation store postgres://postgres@127.0.0.1:1/postgres",
        ),
    ] {
        let out = std::process::Command::new(common::example_binary("axum_server"))
            .args(["--addr", "127.0.0.1:0", "--store-retry-secs", "1"])
            .env("ORCHESTRATOR_STORE", &store)
            .output()
            .expect("run axum_server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{store}: {err}");
        assert!(err.contains(expect), "{store}: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{store}: it must not serve"
        );
    }
}

const POSTGRES_URL: &str = "ORCHESTRATOR_TEST_POSTGRES_URL";

/// The test database's URL; with `CI=true` it must be set (`.ci/run` starts one).
fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{POSTGRES_URL} is not set, and with CI=true the replica tests must run"
            );
            eprintln!("{POSTGRES_URL} is not set: replica test not run");
            None
        }
    }
}

/// One `axum_server` replica on `url`, schema `schema`, with a 2 s lease.
fn replica(url: &str, schema: &str) -> (Guard, SocketAddr) {
    let (guard, _, addr) = serve(
        "axum_server",
        &[
            ("ORCHESTRATOR_STORE", url),
            ("ORCHESTRATOR_STORE_SCHEMA", schema),
            ("ORCHESTRATOR_LEASE_MS", "2000"),
        ],
    );
    (guard, addr)
}

#[test]
fn two_replicas_on_postgres_share_read_and_cancel_and_take_over_a_killed_ones_record() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!(
        "replicas_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let (a, a_addr) = replica(&url, &schema);
    let (_b, b_addr) = replica(&url, &schema);

    // Started on A, read on B with A's progress.
    let id = start_dummy(a_addr, 10_000, 20);
    let seen = until(
        b_addr,
        &id,
        Duration::from_secs(5),
        "B sees progress",
        |r| status_is(r, "RUNNING") && r["progress"]["steps_completed"].as_u64() > Some(0),
    );
    assert_eq!(seen["operation_id"], id.as_str());

    // Cancelled on B with the unchanged `cli`: A's operation ends CANCELLED within
    // 2 s, seen on both.
    let asked = Instant::now();
    let out = std::process::Command::new(common::example_binary("cli"))
        .args(["--url", &format!("http://{b_addr}"), "ops", "cancel", &id])
        .args(["--reason", "cancelled on B"])
        .output()
        .expect("run cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ended = until(a_addr, &id, Duration::from_secs(2), "A cancels", |r| {
        status_is(r, "CANCELLED")
    });
    let took = asked.elapsed();
    assert_eq!(ended["cancel_reason"], "cancelled on B", "{ended}");
    let on_b = until(b_addr, &id, Duration::from_secs(2), "B sees it", |r| {
        status_is(r, "CANCELLED")
    });
    assert_eq!(on_b["cancel_reason"], "cancelled on B");
    // `cli ops wait` on B follows A's finished operation to its end.
    let out = std::process::Command::new(common::example_binary("cli"))
        .args([
            "--url",
            &format!("http://{b_addr}"),
            "--json",
            "ops",
            "wait",
            &id,
        ])
        .output()
        .expect("run cli");
    let waited: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(waited["status"], "CANCELLED", "{waited}");
    eprintln!("cross-replica cancel observed on A after {took:?}");

    // A killed mid-run: B marks its operation FAILED interrupted within the lease
    // (2 s) and one flush interval (1 s), plus slack for a loaded machine.
    let orphan = start_dummy(a_addr, 10_000, 20);
    until(
        b_addr,
        &orphan,
        Duration::from_secs(5),
        "B sees it running",
        |r| status_is(r, "RUNNING"),
    );
    let killed = Instant::now();
    drop(a);
    let failed = until(
        b_addr,
        &orphan,
        Duration::from_secs(8),
        "B interrupts it",
        |r| status_is(r, "FAILED"),
    );
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("interrupted"),
        "{failed}"
    );
    eprintln!(
        "orphan failed by B {:?} after A was killed",
        killed.elapsed()
    );
}

/// Starts a training run of `epochs` epochs, pausing `delay_ms` after each; returns
/// its id.
fn start_training(addr: SocketAddr, epochs: u64, delay_ms: u64) -> String {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/training/start",
        &format!(r#"{{"epochs": {epochs}, "batches_per_epoch": 4, "epoch_delay_ms": {delay_ms}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["operation_id"]
        .as_str()
        .expect("an operation id")
        .to_owned()
}

/// `cli --json ops resume ID` against `addr`: the resumed run's final record, after
/// the CLI followed it to its end (exit code 0).
fn cli_resume(addr: SocketAddr, id: &str) -> serde_json::Value {
    let out = std::process::Command::new(common::example_binary("cli"))
        .args([
            "--url",
            &format!("http://{addr}"),
            "--json",
            "ops",
            "resume",
            id,
        ])
        .output()
        .expect("run cli");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("attempt 2"), "{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The epochs of the run's metric records, in order.
fn metric_epochs(addr: SocketAddr, id: &str) -> Vec<u64> {
    let (status, body) = http(addr, "GET", &format!("/api/v1/operations/{id}/metrics"), "");
    assert_eq!(status, 200, "{body}");
    body["data"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["epoch"].as_u64().expect("an epoch"))
        .collect()
}

/// The resumed run trained each epoch after `checkpoint` once, and none before it
/// again: no epoch twice in the records, every one after the checkpoint there, the
/// summary counting all `epochs`.
fn assert_resumed_once(done: &serde_json::Value, epochs: &[u64], checkpoint: u64, all: u64) {
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempt"], 2, "{done}");
    let summary = &done["result_summary"];
    assert_eq!(summary["epochs_completed"], all, "{done}");
    assert_eq!(summary["resumed_after_epoch"], checkpoint, "{done}");
    let mut seen = epochs.to_vec();
    seen.dedup();
    assert_eq!(
        seen.len(),
        epochs.len(),
        "an epoch trained twice: {epochs:?}"
    );
    let after: Vec<u64> = epochs.iter().copied().filter(|e| *e > checkpoint).collect();
    assert_eq!(
        after,
        (checkpoint + 1..=all).collect::<Vec<_>>(),
        "{epochs:?}"
    );
}

#[test]
fn a_training_run_killed_with_its_sqlite_server_resumes_from_its_last_checkpoint() {
    let dir = TempDir::new("sqlite-resume");
    let store = format!("sqlite:{}", dir.0.join("ops.db").display());
    let env = [
        ("ORCHESTRATOR_STORE", store.as_str()),
        ("ORCHESTRATOR_FLUSH_MS", "50"),
    ];
    let epochs = 12;
    let (server, _, addr) = serve("axum_server", &env);
    let id = start_training(addr, epochs, 150);
    until(addr, &id, Duration::from_secs(10), "3 epochs saved", |r| {
        r["checkpoint_step"].as_u64() >= Some(3)
    });
    // kill -9 mid-run.
    drop(server);

    let (_server, _, addr) = serve("axum_server", &env);
    let failed = operation(addr, &id);
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("interrupted"),
        "{failed}"
    );
    assert_eq!(failed["attempt"], 1, "{failed}");
    let checkpoint = failed["checkpoint_step"].as_u64().expect("a checkpoint");
    assert!((3..epochs).contains(&checkpoint), "{failed}");

    let done = cli_resume(addr, &id);
    assert_resumed_once(&done, &metric_epochs(addr, &id), checkpoint, epochs);
    assert!(
        done["result_summary"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!(
                "Trained {epochs} epochs (resumed after epoch {checkpoint})"
            )),
        "{done}"
    );

    // Completed now: resuming again is refused, and says why.
    let (status, again) = http(
        addr,
        "POST",
        &format!("/api/v1/operations/{id}/resume"),
        "{}",
    );
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "OPERATION_NOT_RESUMABLE", "{again}");
}

#[test]
fn a_training_run_of_a_killed_postgres_replica_resumes_on_the_other() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!(
        "resume_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let (a, a_addr) = replica(&url, &schema);
    let (_b, b_addr) = replica(&url, &schema);
    let epochs = 10;
    let id = start_training(a_addr, epochs, 200);
    // B reads A's checkpoints from the database.
    until(
        b_addr,
        &id,
        Duration::from_secs(10),
        "B sees 2 epochs saved",
        |r| r["checkpoint_step"].as_u64() >= Some(2),
    );
    drop(a);
    let failed = until(
        b_addr,
        &id,
        Duration::from_secs(8),
        "B interrupts it",
        |r| status_is(r, "FAILED"),
    );
    let checkpoint = failed["checkpoint_step"].as_u64().expect("a checkpoint");
    assert!((2..epochs).contains(&checkpoint), "{failed}");

    let done = cli_resume(b_addr, &id);
    assert_resumed_once(&done, &metric_epochs(b_addr, &id), checkpoint, epochs);
}
