//! PostgreSQL restarted while 100 operations run: every one ends with its true final
//! state in the store, and no metric record is written twice.
//!
//! The test starts a PostgreSQL of its own (Debian's binaries, `initdb` into a temp
//! dir, a free loopback port, `fsync=off`), so restarting it disturbs no other test.
//! Without PostgreSQL's binaries it does not run, except with `CI=true`, where it
//! fails (`.ci/run` installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::store::{OperationStore, PostgresStore, StoreState};
use orchestrator::{OperationContext, OperationSpec, OperationStatus, Operations};

/// The newest `/usr/lib/postgresql/*/bin` with `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// A PostgreSQL of the test's own, stopped and removed at the end.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Server {
    fn start(bin: PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let data = std::env::temp_dir().join(format!(
            "orchestrator-pg-restart-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&data).expect("data dir");
        // Root cannot run PostgreSQL: run it as `postgres` then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let server = Self {
            bin,
            data,
            port,
            as_postgres,
        };
        if as_postgres {
            assert!(
                Command::new("chown")
                    .args(["postgres"])
                    .arg(&server.data)
                    .status()
                    .is_ok_and(|s| s.success()),
                "chown the data dir to postgres"
            );
        }
        server.run(&format!(
            "'{}' -D '{}' -A trust -U postgres",
            server.bin.join("initdb").display(),
            server.data.display()
        ));
        server.pg_ctl("start");
        server
    }

    fn run(&self, command: &str) {
        let status = if self.as_postgres {
            Command::new("su")
                .args(["postgres", "-c", &format!("{command} >/dev/null")])
                .status()
        } else {
            Command::new("sh")
                .args(["-c", &format!("{command} >/dev/null")])
                .status()
        };
        assert!(status.is_ok_and(|s| s.success()), "failed: {command}");
    }

    fn pg_ctl(&self, action: &str) {
        self.run(&format!(
            "'{}' -D '{}' -l '{}' -w -m fast -o \"-c fsync=off -c listen_addresses=127.0.0.1 -p {} -k '{}'\" {action}",
            self.bin.join("pg_ctl").display(),
            self.data.display(),
            self.data.join("log").display(),
            self.port,
            self.data.display(),
        ));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pg_ctl("stop")));
        let _ = std::fs::remove_dir_all(self.data());
    }
}

const OPERATIONS: u64 = 100;
const STEPS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_loses_nothing_and_duplicates_nothing() {
    let Some(bin) = postgres_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL's binaries are not installed, and with CI=true this test must run"
        );
        eprintln!("PostgreSQL's binaries are not installed: restart test not run");
        return;
    };
    let server = Server::start(bin);
    let store: Arc<dyn OperationStore> = Arc::new(
        PostgresStore::connect(&server.url(), "restart")
            .await
            .expect("connect"),
    );
    // A lease far longer than the outage: this instance stays the owner.
    let ops = Operations::builder()
        .with_flush_interval(Duration::from_millis(100))
        .with_lease(Duration::from_secs(60))
        .open(store.clone())
        .await
        .expect("open");
    let mut ids = Vec::new();
    for n in 0..OPERATIONS {
        let handle = ops
            .spawn(
                OperationSpec::new("step").with_total_steps(STEPS),
                move |ctx: OperationContext| async move {
                    for i in 1..=STEPS {
                        ctx.metric(serde_json::json!({ "op": n, "i": i }));
                        ctx.progress(i, format!("step {i}"));
                        ctx.sleep(Duration::from_millis(50)).await?;
                    }
                    Ok::<_, orchestrator::Cancelled>(n)
                },
            )
            .expect("spawned");
        handle.persisted().await;
        ids.push(handle.id().clone());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The database goes down; a tenth of the operations are cancelled meanwhile,
    // and the registry notices (health degraded) before it comes back.
    server.pg_ctl("stop");
    let down_at = Instant::now();
    for id in ids.iter().step_by(10) {
        ops.cancel(id, "cancelled while the database was down")
            .expect("cancel");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while ops.store_health().map(|h| h.state) != Some(StoreState::Degraded) {
        assert!(Instant::now() < deadline, "the outage was not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Long enough for several failed flushes and retried ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.pg_ctl("start");
    let restart = down_at.elapsed();
    eprintln!("database down for {restart:?}");

    for id in &ids {
        let info = tokio::time::timeout(Duration::from_secs(60), ops.wait(id))
            .await
            .expect("every end is written once the database is back")
            .expect("waited");
        let stored = store.get(id).await.expect("readable").expect("stored");
        assert_eq!(stored.info.status, info.status, "{id}");
        assert_eq!(stored.info.result_summary, info.result_summary, "{id}");
        assert_eq!(stored.info.cancel_reason, info.cancel_reason, "{id}");
    }
    let cancelled = ids
        .iter()
        .filter(|id| {
            ops.get(id)
                .is_ok_and(|i| i.status == OperationStatus::Cancelled)
        })
        .count();
    assert_eq!(cancelled, 10, "the ten cancelled ones, and only them");

    // Every record once, in order: compare with the registry's own log after the
    // final flush.
    let report = ops.shutdown("test over").await;
    assert!(report.is_clean());
    for id in &ids {
        let local = ops.metrics(id, 0).expect("local metrics").metrics;
        let stored = store
            .metrics(id, 0)
            .await
            .expect("readable")
            .expect("stored")
            .metrics;
        assert_eq!(
            stored, local,
            "{id}: the store has each record exactly once"
        );
    }
}
