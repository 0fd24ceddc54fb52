//! A registry on a store, through the public API: write-through, replicas reading and
//! cancelling each other's operations, orphans, stale writers, restarts and an
//! unreachable store. Every scenario runs on each backend (`durable!`): the memory
//! store shared by two registries in one process, a SQLite file, a PostgreSQL schema.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use orchestrator::store::{
    CancelNotifications, Checkpoint, Fence, Finish, Flush, FlushReply, InstanceId, NewOperation,
    OperationStore, OrphanScope, Prune, StoreError, StoreState, StoredOperation,
};
use orchestrator::{
    Cancelled, MetricsPage, OperationContext, OperationFilter, OperationId, OperationList,
    OperationSpec, OperationStatus, Operations, OrchestratorError,
};

#[path = "support/stores.rs"]
mod stores;
mod support;

use stores::{Store, TestDb};

/// Fast enough for tests, slow enough to be real: a flush every 50 ms, a lease of
/// 400 ms (so an orphan is found within about half a second).
const FLUSH: Duration = Duration::from_millis(50);
const LEASE: Duration = Duration::from_millis(400);
/// Generous bounds for what must happen "within one flush / one lease".
const PATIENCE: Duration = Duration::from_secs(5);

async fn replica(store: Store) -> Operations {
    Operations::builder()
        .with_flush_interval(FLUSH)
        .with_lease(LEASE)
        .open(store)
        .await
        .expect("the store is reachable")
}

/// Polls `check` until it returns `Some`, for at most `PATIENCE`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stored(store: &Store, id: &OperationId) -> StoredOperation {
    store
        .get(id)
        .await
        .expect("store readable")
        .expect("operation stored")
}

/// An operation that reports progress until it is cancelled.
fn busy(ops: &Operations) -> orchestrator::OperationHandle<u64, Cancelled> {
    ops.spawn(
        OperationSpec::new("busy").with_total_steps(1_000_000),
        |ctx: OperationContext| async move {
            let mut step = 0;
            loop {
                step += 1;
                ctx.progress(step, format!("step {step}"));
                ctx.sleep(Duration::from_millis(5)).await?;
            }
        },
    )
    .expect("spawned")
}

mod scenarios {
    use super::*;

    /// Create, start and the end are in the store once `wait` returns; metrics
    /// arrive with the flush, once each.
    pub async fn lifecycle_is_written_through(db: TestDb) {
        let ops = replica(db.reopen().await).await;
        let handle = ops
            .spawn(
                OperationSpec::new("sum").with_total_steps(3),
                |ctx: OperationContext| async move {
                    for i in 1..=3_u64 {
                        ctx.metric(serde_json::json!({ "epoch": i, "loss": 1.0 / i as f64 }));
                        ctx.progress(i, format!("epoch {i}"));
                    }
                    Ok::<_, String>(7)
                },
            )
            .expect("spawned");
        let id = handle.id().clone();
        let info = ops.wait(&id).await.expect("waited");
        assert_eq!(info.status, OperationStatus::Completed);
        // Acknowledged means durable: no polling needed.
        let record = stored(&db.store, &id).await;
        assert_eq!(record.info.status, OperationStatus::Completed);
        assert_eq!(record.info.result_summary, Some(7.into()));
        assert_eq!(record.info.progress.steps_completed, 3);
        // The metrics arrive with the next flushes, and never twice.
        let page = eventually("three metric records", || async {
            let page = db.store.metrics(&id, 0).await.ok()??;
            (page.metrics.len() >= 3).then_some(page)
        })
        .await;
        tokio::time::sleep(FLUSH * 4).await;
        let again = db.store.metrics(&id, 0).await.unwrap().unwrap();
        assert_eq!(again.metrics, page.metrics);
        assert_eq!(again.metrics.len(), 3);
        assert_eq!(again.metrics[2]["epoch"], 3);
    }

    /// B reads A's running operation (progress from A's flush), lists it, and
    /// cancels it; A's operation observes the cancel and ends CANCELLED with B's
    /// reason, which B sees.
    pub async fn a_replica_reads_and_cancels_anothers_operation(db: TestDb) {
        let a = replica(db.reopen().await).await;
        let b = replica(db.reopen().await).await;
        let handle = busy(&a);
        handle.persisted().await;
        let id = handle.id().clone();
        assert!(b.get(&id).is_err(), "not local to B");
        let seen = eventually("B sees A's progress", || async {
            let info = b.cluster().get(&id).await.ok()?;
            (info.progress.steps_completed > 0).then_some(info)
        })
        .await;
        assert_eq!(seen.status, OperationStatus::Running);
        let list = b.cluster().list(&OperationFilter::default()).await.unwrap();
        assert!(list.operations.iter().any(|o| o.operation_id == id));
        assert!(list.active_count >= 1);

        let asked = Instant::now();
        let status = b.cluster().cancel(&id, "stop from B").await.unwrap();
        assert_eq!(
            status,
            OperationStatus::Running,
            "stays RUNNING until the owner ends it"
        );
        let outcome = tokio::time::timeout(PATIENCE, handle.outcome())
            .await
            .expect("A's op ended");
        assert!(
            matches!(outcome, orchestrator::Outcome::Cancelled(_)),
            "{outcome:?}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "cancel took {:?}",
            asked.elapsed()
        );
        let done = tokio::time::timeout(PATIENCE, b.cluster().wait(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status, OperationStatus::Cancelled);
        assert_eq!(done.cancel_reason.as_deref(), Some("stop from B"));
        // A cancel of a finished operation is refused the same way on every replica.
        assert!(matches!(
            b.cluster().cancel(&id, "again").await,
            Err(OrchestratorError::AlreadyFinished { .. })
        ));
    }

    /// A replica that stops flushing (its registry is gone: the process died) leaves
    /// its running operation to a live replica, which marks it FAILED `interrupted`
    /// within the lease plus one sweep; nothing is rerun.
    pub async fn a_dead_replicas_operations_are_interrupted(db: TestDb) {
        let a = replica(db.reopen().await).await;
        let b = replica(db.reopen().await).await;
        let id = a.create(OperationSpec::new("hand")).unwrap();
        a.start(&id).unwrap();
        eventually("A's start is written", || async {
            let s = db.store.get(&id).await.ok()??;
            (s.info.status == OperationStatus::Running).then_some(())
        })
        .await;
        let died = Instant::now();
        drop(a);
        let failed = eventually("B interrupts A's operation", || async {
            let info = b.cluster().get(&id).await.ok()?;
            info.status.is_terminal().then_some(info)
        })
        .await;
        assert_eq!(failed.status, OperationStatus::Failed);
        let message = failed.error_message.unwrap_or_default();
        assert!(message.starts_with("interrupted"), "{message}");
        // Lease 400 ms + one flush interval + slack.
        assert!(
            died.elapsed() < Duration::from_secs(3),
            "took {:?}",
            died.elapsed()
        );
    }

    /// When the store declares this instance's operation interrupted (its lease was
    /// taken as expired), the late owner's writes are refused: its local run stops,
    /// and the store keeps the newer state.
    pub async fn a_stale_writer_cannot_overwrite_a_newer_state(db: TestDb) {
        let a = replica(db.reopen().await).await;
        let handle = busy(&a);
        handle.persisted().await;
        let id = handle.id().clone();
        eventually("A's start is written", || async {
            let s = db.store.get(&id).await.ok()??;
            (s.info.status == OperationStatus::Running).then_some(())
        })
        .await;
        // Another replica's sweep (here: one that counts every other instance dead).
        let other = InstanceId::generate();
        let swept = db
            .store
            .fail_orphans(OrphanScope::AllBut(other), SystemTime::now())
            .await
            .unwrap();
        assert!(swept.contains(&id));
        // A's next flush learns it; A stops the work and its end is refused.
        let outcome = tokio::time::timeout(PATIENCE, handle.outcome())
            .await
            .expect("A stopped");
        assert!(
            matches!(outcome, orchestrator::Outcome::Cancelled(_)),
            "{outcome:?}"
        );
        let local = a.wait(&id).await.unwrap();
        assert!(
            local
                .cancel_reason
                .unwrap_or_default()
                .starts_with("interrupted")
        );
        tokio::time::sleep(FLUSH * 4).await;
        let record = stored(&db.store, &id).await;
        assert_eq!(
            record.info.status,
            OperationStatus::Failed,
            "the sweep's state stands"
        );
        assert!(
            record
                .info
                .error_message
                .unwrap_or_default()
                .starts_with("interrupted")
        );
    }

    /// The single-node restart: an exclusive registry on the store of a previous
    /// run fails what that run left running, and keeps what it finished.
    pub async fn a_restart_interrupts_what_the_previous_run_left_running(db: TestDb) {
        let first = Operations::builder()
            .with_exclusive_store()
            .open(db.reopen().await)
            .await
            .unwrap();
        let done = first
            .spawn(OperationSpec::new("quick"), |_ctx| async {
                Ok::<_, String>("kept")
            })
            .unwrap();
        let done = done.id().clone();
        first.wait(&done).await.unwrap();
        let running = first.create(OperationSpec::new("hand")).unwrap();
        first.start(&running).unwrap();
        eventually("the start is written", || async {
            let s = db.store.get(&running).await.ok()??;
            (s.info.status == OperationStatus::Running).then_some(())
        })
        .await;
        drop(first);

        let second = Operations::builder()
            .with_exclusive_store()
            .open(db.reopen().await)
            .await
            .unwrap();
        let interrupted = second.cluster().get(&running).await.unwrap();
        assert_eq!(interrupted.status, OperationStatus::Failed);
        assert!(
            interrupted
                .error_message
                .unwrap_or_default()
                .starts_with("interrupted")
        );
        let kept = second.cluster().get(&done).await.unwrap();
        assert_eq!(kept.status, OperationStatus::Completed);
        assert_eq!(kept.result_summary, Some("kept".into()));
    }

    /// The store lost while an operation runs: the operation goes on in memory, new
    /// operations are refused, health says degraded; once the store is back, the
    /// writes are applied in order (the end is there, the metrics once each).
    pub async fn a_lost_store_degrades_and_catches_up(db: TestDb) {
        let flaky = Arc::new(Flaky::new(db.reopen().await));
        let ops = replica(flaky.clone()).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = ops
            .spawn(
                OperationSpec::new("through"),
                |ctx: OperationContext| async move {
                    ctx.metric(serde_json::json!({ "n": 1 }));
                    let _ = rx.await;
                    ctx.metric(serde_json::json!({ "n": 2 }));
                    Ok::<_, String>(42)
                },
            )
            .unwrap();
        handle.persisted().await;
        let id = handle.id().clone();
        flaky.down.store(true, Ordering::SeqCst);
        eventually("health degraded", || async {
            let h = ops.store_health()?;
            (h.state == StoreState::Degraded).then_some(())
        })
        .await;
        assert!(matches!(
            ops.spawn(OperationSpec::new("new"), |_ctx| async {
                Ok::<_, String>(())
            }),
            Err(OrchestratorError::StoreUnavailable { .. })
        ));
        // The running operation finishes in memory meanwhile.
        tx.send(()).unwrap();
        let local = eventually("the op ends in memory", || async {
            let info = ops.get(&id).ok()?;
            info.status.is_terminal().then_some(info)
        })
        .await;
        assert_eq!(local.status, OperationStatus::Completed);
        // `wait` acknowledges only a durable end: not while the store is down.
        assert!(
            tokio::time::timeout(FLUSH * 4, ops.wait(&id))
                .await
                .is_err()
        );
        flaky.down.store(false, Ordering::SeqCst);
        let info = tokio::time::timeout(PATIENCE, ops.wait(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.status, OperationStatus::Completed);
        let record = stored(&db.store, &id).await;
        assert_eq!(record.info.status, OperationStatus::Completed);
        assert_eq!(record.info.result_summary, Some(42.into()));
        let page = eventually("both metric records", || async {
            let page = db.store.metrics(&id, 0).await.ok()??;
            (page.metrics.len() >= 2).then_some(page)
        })
        .await;
        assert_eq!(page.metrics.len(), 2, "{page:?}");
        eventually("health ok", || async {
            let h = ops.store_health()?;
            (h.state == StoreState::Ok).then_some(())
        })
        .await;
        assert!(
            flaky.refused.load(Ordering::SeqCst) > 0,
            "the outage was seen"
        );
    }

    /// Any replica prunes the store: finished operations past the retention, and the
    /// oldest beyond the retained-count cap; active ones never.
    pub async fn the_store_is_pruned_by_retention_and_count(db: TestDb) {
        let ops = Operations::builder()
            .with_flush_interval(FLUSH)
            .with_lease(LEASE)
            .with_max_retained(2)
            .open(db.reopen().await)
            .await
            .unwrap();
        let active = ops.create(OperationSpec::new("hand")).unwrap();
        let mut done = Vec::new();
        for _ in 0..5 {
            let handle = ops
                .spawn(OperationSpec::new("quick"), |_ctx| async {
                    Ok::<_, String>(())
                })
                .unwrap();
            ops.wait(handle.id()).await.unwrap();
            done.push(handle.id().clone());
        }
        let kept = eventually("the store keeps the two newest finished", || async {
            let list = db.store.list(&OperationFilter::default()).await.ok()?;
            (list.total_count == 3).then_some(list)
        })
        .await;
        let ids: Vec<&OperationId> = kept.operations.iter().map(|o| &o.operation_id).collect();
        assert!(ids.contains(&&active), "the active one stays: {ids:?}");
        assert!(
            ids.contains(&&done[4]) && ids.contains(&&done[3]),
            "{ids:?}"
        );

        let short = Operations::builder()
            .with_flush_interval(FLUSH)
            .with_lease(LEASE)
            .with_retention(Duration::from_millis(1))
            .open(db.reopen().await)
            .await
            .unwrap();
        eventually("finished ones past the retention are pruned", || async {
            let list = db.store.list(&OperationFilter::default()).await.ok()?;
            (list.total_count == 1).then_some(())
        })
        .await;
        assert!(db.store.get(&active).await.unwrap().is_some());
        drop(short);
    }
}

macro_rules! durable {
    ($module:ident, $make:path, $available:path) => {
        mod $module {
            use super::*;
            durable!(@tests $make, $available;
                lifecycle_is_written_through,
                a_replica_reads_and_cancels_anothers_operation,
                a_dead_replicas_operations_are_interrupted,
                a_stale_writer_cannot_overwrite_a_newer_state,
                a_restart_interrupts_what_the_previous_run_left_running,
                a_lost_store_degrades_and_catches_up,
                the_store_is_pruned_by_retention_and_count,
            );
        }
    };
    (@tests $make:path, $available:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $available() {
                    scenarios::$name($make().await).await;
                }
            }
        )*
    };
}

durable!(memory_store, stores::memory, stores::always);
durable!(sqlite_store, stores::sqlite, stores::always);
durable!(postgres_store, stores::postgres, stores::postgres_available);

/// A store that fails every call with a database error while `down` is set: the
/// database unreachable, as the registry sees it, in front of a real store.
#[derive(Debug)]
struct Flaky {
    inner: Store,
    down: AtomicBool,
    refused: AtomicU32,
    /// Milliseconds each create takes (a slow database).
    create_delay_ms: AtomicU32,
    /// Milliseconds each finish takes.
    finish_delay_ms: AtomicU32,
}

impl Flaky {
    fn new(inner: Store) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            refused: AtomicU32::new(0),
            create_delay_ms: AtomicU32::new(0),
            finish_delay_ms: AtomicU32::new(0),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Database(
                "connection refused (test outage)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl OperationStore for Flaky {
    async fn create(&self, op: &NewOperation) -> Result<(), StoreError> {
        self.check()?;
        let delay = self.create_delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
        self.inner.create(op).await
    }
    async fn start(
        &self,
        id: &OperationId,
        fence: Fence,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.start(id, fence, at).await
    }
    async fn finish(
        &self,
        id: &OperationId,
        fence: Fence,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        self.check()?;
        let delay = self.finish_delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
        self.inner.finish(id, fence, finish).await
    }
    async fn save_checkpoint(
        &self,
        id: &OperationId,
        fence: Fence,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_checkpoint(id, fence, checkpoint).await
    }
    async fn resume(
        &self,
        id: &OperationId,
        by: InstanceId,
        expected_attempt: u32,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        self.check()?;
        self.inner.resume(id, by, expected_attempt, now).await
    }
    async fn flush(&self, flush: &Flush) -> Result<FlushReply, StoreError> {
        self.check()?;
        self.inner.flush(flush).await
    }
    async fn request_cancel(
        &self,
        id: &OperationId,
        reason: &str,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        self.check()?;
        self.inner.request_cancel(id, reason, now).await
    }
    async fn fail_orphans(
        &self,
        scope: OrphanScope,
        now: SystemTime,
    ) -> Result<Vec<OperationId>, StoreError> {
        self.check()?;
        self.inner.fail_orphans(scope, now).await
    }
    async fn get(&self, id: &OperationId) -> Result<Option<StoredOperation>, StoreError> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn list(&self, filter: &OperationFilter) -> Result<OperationList, StoreError> {
        self.check()?;
        self.inner.list(filter).await
    }
    async fn metrics(
        &self,
        id: &OperationId,
        cursor: u64,
    ) -> Result<Option<MetricsPage>, StoreError> {
        self.check()?;
        self.inner.metrics(id, cursor).await
    }
    async fn delete(&self, id: &OperationId) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn prune(&self, policy: &Prune, now: SystemTime) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.prune(policy, now).await
    }
    async fn cancel_notifications(
        &self,
        instance: InstanceId,
    ) -> Result<Option<CancelNotifications>, StoreError> {
        self.inner.cancel_notifications(instance).await
    }
}

/// Over HTTP, a start is answered only once the operation's record is in the store,
/// however slow the store: the id a client gets survives a crash of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_start_is_answered_once_the_create_is_stored() {
    let db = stores::sqlite().await;
    let slow = Arc::new(Flaky::new(db.reopen().await));
    slow.create_delay_ms.store(300, Ordering::SeqCst);
    let server = support::serve(replica(slow.clone()).await).await;
    let id = server.client.start_dummy(100, 10).await;
    assert!(
        db.store.get(&id).await.unwrap().is_some(),
        "the start was answered before the create was stored"
    );
}

/// The store down: new operations are refused with 503 `STORE_UNAVAILABLE` (and
/// `Retry-After`), reads that need it too (never a 500), health says `DEGRADED`;
/// all is well again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_while_the_store_is_down() {
    let db = stores::sqlite().await;
    let flaky = Arc::new(Flaky::new(db.reopen().await));
    let server = support::serve(replica(flaky.clone()).await).await;
    let c = &server.client;
    assert_eq!(c.get("/api/v1/health").await.data()["status"], "OK");
    flaky.down.store(true, Ordering::SeqCst);
    let health = eventually("health degraded", || async {
        let reply = c.get("/api/v1/health").await;
        (reply.data()["status"] == "DEGRADED").then_some(reply)
    })
    .await;
    let store = &health.data()["store"];
    assert!(
        store["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("test outage"),
        "{store}"
    );
    assert!(store["failing_since"].is_string(), "{store}");

    let refused = c
        .post_json(
            "/api/v1/dummy/start",
            &serde_json::json!({"iterations": 1, "interval_ms": 1}),
        )
        .await;
    assert_eq!(refused.error_code(503), "STORE_UNAVAILABLE");
    let listed = c.get("/api/v1/operations").await;
    assert_eq!(listed.error_code(503), "STORE_UNAVAILABLE");
    let unknown = c
        .get("/api/v1/operations/op_dummy_20260101_000000_00000000")
        .await;
    assert_eq!(unknown.error_code(503), "STORE_UNAVAILABLE");

    flaky.down.store(false, Ordering::SeqCst);
    eventually("health ok", || async {
        let reply = c.get("/api/v1/health").await;
        (reply.data()["status"] == "OK").then_some(())
    })
    .await;
    c.start_dummy(1, 1).await;
}

/// Another replica's operation over HTTP: its record, metrics and event stream
/// (progress from the store, then `done` when its owner ends it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_another_replicas_operation() {
    let db = stores::sqlite().await;
    let a = replica(db.reopen().await).await;
    let b = support::serve(replica(db.reopen().await).await).await;
    let handle = a
        .spawn(
            OperationSpec::new("metered").with_total_steps(1_000),
            |ctx: OperationContext| async move {
                for i in 1..=1_000_u64 {
                    ctx.metric(serde_json::json!({ "i": i }));
                    ctx.progress(i, format!("step {i}"));
                    ctx.sleep(Duration::from_millis(10)).await?;
                }
                Ok::<_, Cancelled>(())
            },
        )
        .unwrap();
    handle.persisted().await;
    let id = handle.id().clone();
    let record = b.client.get(&format!("/api/v1/operations/{id}")).await;
    assert_eq!(record.data()["operation_id"], id.as_str());
    let metrics = eventually("B serves A's metrics", || async {
        let reply = b
            .client
            .get(&format!("/api/v1/operations/{id}/metrics"))
            .await;
        let n = reply.data()["metrics"].as_array().map_or(0, Vec::len);
        (n > 0).then_some(reply)
    })
    .await;
    assert_eq!(metrics.data()["metrics"][0]["i"], 1);

    let mut events = b.client.events(&id).await;
    let (first, _) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event")
        .expect("not ended");
    assert_eq!(first, "progress");
    handle.cancel("enough").unwrap();
    let mut last = None;
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("events go on until done")
    {
        last = Some(event);
    }
    let (name, data) = last.expect("a last event");
    assert_eq!(name, "done");
    assert_eq!(data["status"], "CANCELLED");
}

/// DELETE of an operation that just ended, while its end is still on its way to the
/// store: it waits for the end to be written, then removes the record from both (the
/// fuzzer found a 409 here, and the record coming back from the queued end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_delete_right_after_the_end_removes_the_record_everywhere() {
    let db = stores::sqlite().await;
    let slow = Arc::new(Flaky::new(db.reopen().await));
    slow.finish_delay_ms.store(300, Ordering::SeqCst);
    let ops = replica(slow.clone()).await;
    let server = support::serve(ops.clone()).await;
    let id = server.client.start_dummy(1, 1).await;
    eventually("the end in memory", || async {
        ops.get(&id).ok()?.status.is_terminal().then_some(())
    })
    .await;
    let deleted = server
        .client
        .delete(&format!("/api/v1/operations/{id}"))
        .await;
    assert_eq!(deleted.data()["deleted"], true, "{deleted:?}");
    // The DELETE waited for the queued end: nothing is left to write it back.
    assert!(
        db.store.get(&id).await.unwrap().is_none(),
        "the record came back"
    );
    assert!(ops.get(&id).is_err());
}
