//! The one conformance suite every `OperationStore` is held to: the same async test
//! functions (module `suite`), instantiated once per backend by `conformance!`.
//!
//! A backend is a factory giving a fresh, empty database ([`TestDb`]) and a way to open
//! it again (another replica, or the same process restarted). Time is the suite's
//! own fake clock ([`t`]): the store takes `now` in every clock-dependent call, so
//! leases expire without sleeping.

use std::time::{Duration, SystemTime};

use orchestrator::store::{
    Checkpoint, Fence, Finish, Flush, InstanceId, MetricBatch, NewOperation, OrphanScope,
    PostgresStore, ProgressUpdate, Prune, StoreError, StoredOperation,
};
use orchestrator::{
    OperationFilter, OperationId, OperationMetadata, OperationProgress, OperationStatus,
    OperationType,
};

#[path = "support/stores.rs"]
mod stores;

use stores::{
    Store, TempSchema, TestDb, always, memory, postgres, postgres_available, postgres_url, sqlite,
};

const LEASE: Duration = Duration::from_secs(10);

/// The suite's clock: `secs` after a fixed instant.
fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn id(kind: &OperationType) -> OperationId {
    OperationId::generate(kind)
}

fn progress(percentage: f64, step: &str) -> OperationProgress {
    let mut p = OperationProgress::default();
    p.percentage = percentage;
    p.current_step = step.to_owned();
    p
}

async fn register(store: &Store, at: SystemTime) -> InstanceId {
    let me = InstanceId::generate();
    store.register_instance(me, LEASE, at).await.unwrap();
    me
}

/// A `PENDING` operation of `kind` owned by `fence`, created at `at`.
async fn pending(store: &Store, kind: &OperationType, fence: Fence, at: SystemTime) -> OperationId {
    let op = id(kind);
    let new = NewOperation::new(op.clone(), kind.clone(), fence).with_created_at(at);
    store.create(&new).await.unwrap();
    op
}

async fn running(store: &Store, fence: Fence, at: SystemTime) -> OperationId {
    let op = pending(store, &OperationType::DUMMY, fence, at).await;
    store.start(&op, fence, at).await.unwrap();
    op
}

async fn status(store: &Store, op: &OperationId) -> OperationStatus {
    store.get(op).await.unwrap().unwrap().info.status
}

mod suite {
    use super::*;

    /// Every field written at create, start, flush and finish reads back as written.
    pub(super) async fn create_get_round_trip<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::new(me, 1);
        let kind = OperationType::TRAINING;
        let op = id(&kind);
        let parent = id(&OperationType::DUMMY);
        let metadata = OperationMetadata::new()
            .with_parameter("symbol", "AAPL")
            .with_parameter("rows", 1_000)
            .with_parameter("nested", serde_json::json!({"a": [1, 2.5, null]}))
            .with_label("team", "ml")
            .with_label("tier", "gpu");
        let mut initial = progress(0.5, "queued");
        initial.steps_total = 10;
        initial.items_total = Some(50);
        initial.phase = Some("prepare".into());
        initial.eta_seconds = Some(1.5);
        initial.context.insert("epoch".into(), 0.into());
        let created_at = t(1) + Duration::from_nanos(123_456_789);
        store
            .create(
                &NewOperation::new(op.clone(), kind.clone(), fence)
                    .with_description("train a model \u{1f916}")
                    .with_created_at(created_at)
                    .with_metadata(metadata.clone())
                    .with_parent(parent.clone())
                    .with_progress(initial.clone()),
            )
            .await
            .unwrap();

        let stored = store.get(&op).await.unwrap().expect("stored");
        assert_eq!(stored.fence, fence);
        assert_eq!(stored.cancel_requested_at, None);
        let info = &stored.info;
        assert_eq!(info.operation_id, op);
        assert_eq!(info.operation_type, kind);
        assert_eq!(info.description, "train a model \u{1f916}");
        assert_eq!(info.status, OperationStatus::Pending);
        assert_eq!(info.created_at, created_at);
        assert_eq!(info.started_at, None);
        assert_eq!(info.completed_at, None);
        assert_eq!(info.progress, initial);
        assert_eq!(info.metadata, metadata);
        assert_eq!(info.error_message, None);
        assert_eq!(info.result_summary, None);
        assert_eq!(info.parent_id.as_ref(), Some(&parent));
        // The list finds it by its parent, and nothing under another one.
        let children = store
            .list(&OperationFilter::new().with_parent(parent.clone()))
            .await
            .unwrap();
        assert_eq!(children.total_count, 1);
        assert_eq!(children.operations[0].operation_id, op);
        let stranger = OperationId::generate(&kind);
        let none = store
            .list(&OperationFilter::new().with_parent(stranger))
            .await
            .unwrap();
        assert_eq!((none.total_count, none.operations.len()), (0, 0));
        assert_eq!(info.attempt, 1);
        assert_eq!((info.checkpoint_at, info.checkpoint_step), (None, None));
        assert_eq!(info.cancel_reason, None);
        assert_eq!(info.abandoned, None);
        assert_eq!(
            (info.host_url.as_deref(), info.host_operation_id.as_ref()),
            (None, None)
        );

        // A proxy keeps where its operation runs.
        let proxy = id(&kind);
        let on_host = id(&kind);
        store
            .create(
                &NewOperation::new(proxy.clone(), kind.clone(), fence)
                    .with_host("http://gpu-1:5002", on_host.clone()),
            )
            .await
            .unwrap();
        let stored_proxy = store.get(&proxy).await.unwrap().expect("stored");
        assert_eq!(
            stored_proxy.info.host_url.as_deref(),
            Some("http://gpu-1:5002")
        );
        assert_eq!(stored_proxy.info.host_operation_id.as_ref(), Some(&on_host));

        let started_at = t(2) + Duration::from_nanos(7);
        store.start(&op, fence, started_at).await.unwrap();
        let mut midway = progress(40.0, "Epoch 4/10");
        midway.steps_completed = 4;
        midway.steps_total = 10;
        midway.items_processed = 20;
        store
            .flush(
                &Flush::new(me, LEASE, t(2)).with_progress(ProgressUpdate::new(
                    op.clone(),
                    1,
                    midway.clone(),
                )),
            )
            .await
            .unwrap();
        let info = store.get(&op).await.unwrap().unwrap().info;
        assert_eq!(info.status, OperationStatus::Running);
        assert_eq!(info.started_at, Some(started_at));
        assert_eq!(info.progress, midway);

        let mut last = progress(100.0, "done");
        last.steps_completed = 10;
        let summary = serde_json::json!({"rows": 42, "loss": 0.125, "tags": ["a", null]});
        let completed_at = t(3) + Duration::from_nanos(999_999_999);
        store
            .finish(
                &op,
                fence,
                &Finish::completed(completed_at, summary.clone()).with_progress(last.clone()),
            )
            .await
            .unwrap();
        let stored = store.get(&op).await.unwrap().unwrap();
        let info = &stored.info;
        assert_eq!(info.status, OperationStatus::Completed);
        assert_eq!(info.started_at, Some(started_at));
        assert_eq!(info.completed_at, Some(completed_at));
        assert_eq!(info.progress, last);
        assert_eq!(info.result_summary.as_ref(), Some(&summary));
        assert_eq!(info.error_message, None);
        assert_eq!(info.metadata, metadata);
        assert_eq!(info.created_at, created_at);
        assert_eq!(stored.fence, fence);

        // A failure straight from PENDING keeps the last progress when none is given.
        let failed = pending(store, &kind, fence, t(4)).await;
        store
            .finish(&failed, fence, &Finish::failed(t(5), "disk full"))
            .await
            .unwrap();
        let info = store.get(&failed).await.unwrap().unwrap().info;
        assert_eq!(info.status, OperationStatus::Failed);
        assert_eq!(info.error_message.as_deref(), Some("disk full"));
        assert_eq!(info.result_summary, None);
        assert_eq!(info.progress, OperationProgress::default());
        assert_eq!(info.parent_id, None);
        assert_eq!(info.description, "");

        // The same id twice is refused and changes nothing.
        let again = NewOperation::new(op.clone(), OperationType::DUMMY, fence);
        assert!(matches!(
            store.create(&again).await,
            Err(StoreError::AlreadyExists(ref dup)) if *dup == op
        ));
        assert_eq!(store.get(&op).await.unwrap().unwrap(), stored);

        assert!(store.get(&id(&kind)).await.unwrap().is_none());
    }

    /// A write by another instance, or by an older (or unknown newer) attempt, is
    /// refused with `Fenced` and changes nothing: the stale-writer case.
    pub(super) async fn fenced_writes_refuse_stale_writers<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let owner = register(store, t(0)).await;
        let other = register(store, t(0)).await;
        let current = Fence::new(owner, 2);
        let op = pending(store, &OperationType::DUMMY, current, t(0)).await;
        let before = store.get(&op).await.unwrap().unwrap();

        for writer in [
            Fence::new(other, 2),
            Fence::new(owner, 1),
            Fence::new(owner, 3),
        ] {
            match store.start(&op, writer, t(1)).await {
                Err(StoreError::Fenced {
                    id,
                    current: c,
                    writer: w,
                }) => {
                    assert_eq!((id, c, w), (op.clone(), current, writer));
                }
                other => panic!("start by {writer:?}: expected Fenced, got {other:?}"),
            }
            assert!(matches!(
                store
                    .finish(&op, writer, &Finish::failed(t(1), "stale"))
                    .await,
                Err(StoreError::Fenced { .. })
            ));
        }
        assert_eq!(store.get(&op).await.unwrap().unwrap(), before);

        store.start(&op, current, t(1)).await.unwrap();
        let running = store.get(&op).await.unwrap().unwrap();
        for writer in [Fence::new(other, 2), Fence::new(owner, 1)] {
            let err = store
                .finish(
                    &op,
                    writer,
                    &Finish::completed(t(2), serde_json::json!("late")),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
            assert!(err.to_string().contains(&owner.to_string()), "{err}");
        }
        // Progress and metrics of a stale writer are not written either.
        let reply = store
            .flush(
                &Flush::new(other, LEASE, t(2))
                    .with_progress(ProgressUpdate::new(op.clone(), 2, progress(99.0, "stale")))
                    .with_metrics(MetricBatch::new(
                        op.clone(),
                        2,
                        0,
                        vec![serde_json::json!(1)],
                    )),
            )
            .await
            .unwrap();
        assert_eq!(reply.rejected, std::slice::from_ref(&op));
        let reply = store
            .flush(
                &Flush::new(owner, LEASE, t(2))
                    .with_progress(ProgressUpdate::new(op.clone(), 1, progress(98.0, "old")))
                    .with_metrics(MetricBatch::new(
                        op.clone(),
                        1,
                        0,
                        vec![serde_json::json!(2)],
                    )),
            )
            .await
            .unwrap();
        assert_eq!(reply.rejected, std::slice::from_ref(&op));
        assert_eq!(store.get(&op).await.unwrap().unwrap(), running);
        let page = store.metrics(&op, 0).await.unwrap().unwrap();
        assert!(page.metrics.is_empty());
        assert_eq!(page.cursor, 0);

        store
            .finish(&op, current, &Finish::completed(t(3), serde_json::json!(1)))
            .await
            .unwrap();
        assert_eq!(status(store, &op).await, OperationStatus::Completed);
    }

    /// Start and the terminal transition happen exactly once; later ones are refused
    /// and the first outcome stays.
    pub(super) async fn terminal_transitions_exactly_once<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let op = running(store, fence, t(0)).await;
        assert!(matches!(
            store.start(&op, fence, t(1)).await,
            Err(StoreError::IllegalTransition {
                from: OperationStatus::Running,
                to: OperationStatus::Running,
                ..
            })
        ));
        let mut not_terminal = Finish::failed(t(1), "x");
        not_terminal.status = OperationStatus::Running;
        assert!(matches!(
            store.finish(&op, fence, &not_terminal).await,
            Err(StoreError::IllegalTransition { .. })
        ));
        assert_eq!(status(store, &op).await, OperationStatus::Running);

        store
            .finish(
                &op,
                fence,
                &Finish::completed(t(2), serde_json::json!({"n": 1})),
            )
            .await
            .unwrap();
        let done = store.get(&op).await.unwrap().unwrap();
        for finish in [
            Finish::failed(t(3), "late failure"),
            Finish::cancelled(t(3)).with_cancel_reason("late cancel"),
            Finish::completed(t(3), serde_json::json!({"n": 2})),
        ] {
            assert!(matches!(
                store.finish(&op, fence, &finish).await,
                Err(StoreError::AlreadyFinished {
                    status: OperationStatus::Completed,
                    ..
                })
            ));
        }
        assert!(matches!(
            store.start(&op, fence, t(3)).await,
            Err(StoreError::AlreadyFinished { .. })
        ));
        // A late progress update is ignored.
        let reply = store
            .flush(
                &Flush::new(me, LEASE, t(3)).with_progress(ProgressUpdate::new(
                    op.clone(),
                    1,
                    progress(10.0, "late"),
                )),
            )
            .await
            .unwrap();
        assert_eq!(reply.rejected, std::slice::from_ref(&op));
        assert_eq!(store.get(&op).await.unwrap().unwrap(), done);

        // PENDING may end directly; unknown ids are NotFound.
        let queued = pending(store, &OperationType::DUMMY, fence, t(4)).await;
        store
            .finish(
                &queued,
                fence,
                &Finish::cancelled(t(5)).with_cancel_reason("shutdown"),
            )
            .await
            .unwrap();
        let info = store.get(&queued).await.unwrap().unwrap().info;
        assert_eq!(info.status, OperationStatus::Cancelled);
        assert_eq!(info.cancel_reason.as_deref(), Some("shutdown"));
        assert_eq!(info.started_at, None);
        let unknown = id(&OperationType::DUMMY);
        assert!(matches!(
            store.start(&unknown, fence, t(6)).await,
            Err(StoreError::NotFound(ref x)) if *x == unknown
        ));
        assert!(matches!(
            store
                .finish(&unknown, fence, &Finish::failed(t(6), "x"))
                .await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// One flush writes every progress update and metric batch, renews the lease (an
    /// orphan sweep after the original lease but before the renewed one spares the
    /// instance) and returns the pending cancels of that instance only, until the
    /// owner records the end.
    pub(super) async fn flush_batches_renews_lease_and_returns_own_cancels<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let a = register(store, t(0)).await;
        let b = register(store, t(0)).await;
        let (fa, fb) = (Fence::first(a), Fence::first(b));
        let a1 = running(store, fa, t(0)).await;
        let a2 = running(store, fa, t(0)).await;
        let b1 = running(store, fb, t(0)).await;
        store.request_cancel(&a1, "stop a1", t(1)).await.unwrap();
        store.request_cancel(&b1, "stop b1", t(1)).await.unwrap();

        let records = vec![
            serde_json::json!({"loss": 0.5}),
            serde_json::json!({"loss": 0.25}),
        ];
        let reply = store
            .flush(
                &Flush::new(a, LEASE, t(8))
                    .with_progress(ProgressUpdate::new(a1.clone(), 1, progress(10.0, "a1")))
                    .with_progress(ProgressUpdate::new(a2.clone(), 1, progress(20.0, "a2")))
                    .with_metrics(MetricBatch::new(a2.clone(), 1, 0, records.clone())),
            )
            .await
            .unwrap();
        assert_eq!(reply.lease_expires_at, t(18));
        assert!(reply.rejected.is_empty(), "{:?}", reply.rejected);
        assert_eq!(reply.cancels.len(), 1, "{:?}", reply.cancels);
        let cancel = &reply.cancels[0];
        assert_eq!(cancel.operation_id, a1);
        assert_eq!(cancel.reason, "stop a1");
        assert_eq!(cancel.attempt, 1);
        assert_eq!(cancel.requested_at, t(1));

        let info = store.get(&a1).await.unwrap().unwrap().info;
        assert_eq!(info.progress, progress(10.0, "a1"));
        assert_eq!(info.status, OperationStatus::Running);
        assert_eq!(
            store.get(&a2).await.unwrap().unwrap().info.progress,
            progress(20.0, "a2")
        );
        let page = store.metrics(&a2, 0).await.unwrap().unwrap();
        assert_eq!(page.metrics, records);
        assert_eq!(page.cursor, 2);

        // B's lease (t10) expired, A's was renewed to t18.
        let orphans = store
            .fail_orphans(OrphanScope::ExpiredLeases, t(15))
            .await
            .unwrap();
        assert_eq!(orphans, std::slice::from_ref(&b1));
        assert_eq!(status(store, &a1).await, OperationStatus::Running);

        // The request comes back until the owner records the end.
        let reply = store.flush(&Flush::new(a, LEASE, t(16))).await.unwrap();
        assert_eq!(reply.cancels.len(), 1);
        assert_eq!(reply.lease_expires_at, t(26));
        store
            .finish(&a1, fa, &Finish::cancelled(t(17)))
            .await
            .unwrap();
        let reply = store.flush(&Flush::new(a, LEASE, t(17))).await.unwrap();
        assert!(reply.cancels.is_empty(), "{:?}", reply.cancels);
        // B's cancel request is not B's any more either: its operation ended.
        let reply = store.flush(&Flush::new(b, LEASE, t(17))).await.unwrap();
        assert!(reply.cancels.is_empty(), "{:?}", reply.cancels);
    }

    /// A cancel request leaves the status to the owner: RUNNING (and PENDING) stay so
    /// with `cancel_reason` and `cancel_requested_at`; the first request's are kept;
    /// the owner's CANCELLED keeps the requested reason.
    pub(super) async fn request_cancel_is_recorded_for_the_owner<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let run = running(store, fence, t(0)).await;
        let stored = store
            .request_cancel(&run, "user asked", t(1))
            .await
            .unwrap();
        assert_eq!(stored.info.status, OperationStatus::Running);
        assert_eq!(stored.info.cancel_reason.as_deref(), Some("user asked"));
        assert_eq!(stored.cancel_requested_at, Some(t(1)));
        assert_eq!(store.get(&run).await.unwrap().unwrap(), stored);
        let again = store.request_cancel(&run, "second", t(2)).await.unwrap();
        assert_eq!(again, stored);

        // PENDING: decided to be a request too (the owner holds it in its queue).
        let queued = pending(store, &OperationType::DUMMY, fence, t(0)).await;
        let stored = store
            .request_cancel(&queued, "not needed", t(3))
            .await
            .unwrap();
        assert_eq!(stored.info.status, OperationStatus::Pending);
        assert_eq!(stored.info.cancel_reason.as_deref(), Some("not needed"));
        let reply = store.flush(&Flush::new(me, LEASE, t(4))).await.unwrap();
        let mut requested: Vec<_> = reply
            .cancels
            .iter()
            .map(|c| c.operation_id.clone())
            .collect();
        requested.sort();
        let mut expected = vec![run.clone(), queued.clone()];
        expected.sort();
        assert_eq!(requested, expected);

        store
            .finish(
                &run,
                fence,
                &Finish::cancelled(t(5)).with_result(serde_json::json!("3 done")),
            )
            .await
            .unwrap();
        store
            .finish(&queued, fence, &Finish::cancelled(t(5)))
            .await
            .unwrap();
        let info = store.get(&run).await.unwrap().unwrap().info;
        assert_eq!(info.status, OperationStatus::Cancelled);
        assert_eq!(info.cancel_reason.as_deref(), Some("user asked"));
        assert_eq!(info.result_summary, Some(serde_json::json!("3 done")));
        assert_eq!(
            store
                .get(&queued)
                .await
                .unwrap()
                .unwrap()
                .info
                .cancel_reason
                .as_deref(),
            Some("not needed")
        );

        assert!(matches!(
            store.request_cancel(&run, "too late", t(6)).await,
            Err(StoreError::AlreadyFinished {
                status: OperationStatus::Cancelled,
                ..
            })
        ));
        assert!(matches!(
            store
                .request_cancel(&id(&OperationType::DUMMY), "who", t(6))
                .await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Operations of an instance whose lease expired (or that never had one) end
    /// FAILED `interrupted: …`; a live instance's and finished ones are untouched; a
    /// second sweep, here or by another replica, finds nothing; the dead owner's late
    /// writes are refused.
    pub(super) async fn orphan_sweep_fails_dead_instances_once<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let dead = register(store, t(0)).await;
        let live = register(store, t(0)).await;
        store.flush(&Flush::new(live, LEASE, t(9))).await.unwrap();
        let never_registered = InstanceId::generate();
        let (fd, fl) = (Fence::first(dead), Fence::first(live));
        let d_run = running(store, fd, t(1)).await;
        let d_pending = pending(store, &OperationType::DUMMY, fd, t(1)).await;
        let d_done = running(store, fd, t(1)).await;
        store
            .finish(&d_done, fd, &Finish::completed(t(2), serde_json::json!(1)))
            .await
            .unwrap();
        let d_done_before = store.get(&d_done).await.unwrap().unwrap();
        let l_run = running(store, fl, t(1)).await;
        let l_before = store.get(&l_run).await.unwrap().unwrap();
        let n_run = running(store, Fence::first(never_registered), t(1)).await;

        let mut orphans = store
            .fail_orphans(OrphanScope::ExpiredLeases, t(12))
            .await
            .unwrap();
        orphans.sort();
        let mut expected = vec![d_run.clone(), d_pending.clone(), n_run.clone()];
        expected.sort();
        assert_eq!(orphans, expected);
        for (op, owner) in [
            (&d_run, dead),
            (&d_pending, dead),
            (&n_run, never_registered),
        ] {
            let info = store.get(op).await.unwrap().unwrap().info;
            assert_eq!(info.status, OperationStatus::Failed);
            assert_eq!(info.completed_at, Some(t(12)));
            let message = info.error_message.unwrap_or_default();
            assert!(message.starts_with("interrupted: "), "{message}");
            assert!(message.contains(&owner.to_string()), "{message}");
        }
        assert_eq!(store.get(&d_done).await.unwrap().unwrap(), d_done_before);
        assert_eq!(store.get(&l_run).await.unwrap().unwrap(), l_before);

        // Idempotent: again here, and by another replica.
        let swept = store.get(&d_run).await.unwrap().unwrap();
        assert!(
            store
                .fail_orphans(OrphanScope::ExpiredLeases, t(13))
                .await
                .unwrap()
                .is_empty()
        );
        let replica = db.reopen().await;
        assert!(
            replica
                .fail_orphans(OrphanScope::ExpiredLeases, t(14))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.get(&d_run).await.unwrap().unwrap(), swept);

        // The dead owner comes back: its writes are refused, its flush says so.
        assert!(matches!(
            store
                .finish(&d_run, fd, &Finish::completed(t(15), serde_json::json!(2)))
                .await,
            Err(StoreError::AlreadyFinished {
                status: OperationStatus::Failed,
                ..
            })
        ));
        let reply = store
            .flush(
                &Flush::new(dead, LEASE, t(15)).with_progress(ProgressUpdate::new(
                    d_run.clone(),
                    1,
                    progress(50.0, "back"),
                )),
            )
            .await
            .unwrap();
        assert_eq!(reply.rejected, std::slice::from_ref(&d_run));
        assert_eq!(store.get(&d_run).await.unwrap().unwrap(), swept);

        // At start of a single node: every other instance is dead, lease or not.
        let l_pending = pending(store, &OperationType::DUMMY, fl, t(15)).await;
        let me = register(store, t(15)).await;
        let mine = running(store, Fence::first(me), t(15)).await;
        let mut orphans = store
            .fail_orphans(OrphanScope::AllBut(me), t(16))
            .await
            .unwrap();
        orphans.sort();
        let mut expected = vec![l_run.clone(), l_pending.clone()];
        expected.sort();
        assert_eq!(orphans, expected);
        assert_eq!(status(store, &mine).await, OperationStatus::Running);
        assert_eq!(status(store, &l_run).await, OperationStatus::Failed);
    }

    /// Two replicas sweeping at the same moment fail each orphan exactly once.
    pub(super) async fn concurrent_sweeps_fail_each_orphan_once<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let dead = register(store, t(0)).await;
        let mut all = Vec::new();
        for i in 0..20 {
            all.push(running(store, Fence::first(dead), t(i)).await);
        }
        let replica = db.reopen().await;
        let (one, two) = tokio::join!(
            store.fail_orphans(OrphanScope::ExpiredLeases, t(30)),
            replica.fail_orphans(OrphanScope::ExpiredLeases, t(31)),
        );
        let (one, two) = (one.unwrap(), two.unwrap());
        assert!(one.iter().all(|op| !two.contains(op)), "{one:?} / {two:?}");
        let mut union: Vec<_> = one.into_iter().chain(two).collect();
        union.sort();
        all.sort();
        assert_eq!(union, all);
    }

    /// `list`: filters (status, type, labels, active only), newest first with the
    /// insertion order as tie-break, paging, `total_count` before paging and
    /// `active_count` of the whole store.
    pub(super) async fn list_filters_pages_newest_first<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let mut made = Vec::new(); // oldest first
        for i in 0..6u64 {
            let kind = if i % 2 == 0 {
                OperationType::DUMMY
            } else {
                OperationType::TRAINING
            };
            let op = id(&kind);
            let tier = if i < 3 { "gpu" } else { "cpu" };
            store
                .create(
                    &NewOperation::new(op.clone(), kind, fence)
                        .with_created_at(t(i))
                        .with_metadata(OperationMetadata::new().with_label("tier", tier)),
                )
                .await
                .unwrap();
            made.push(op);
        }
        // 0 PENDING, 1 RUNNING, 2 COMPLETED, 3 FAILED, 4 RUNNING, 5 PENDING
        for i in [1, 2, 3, 4] {
            store.start(&made[i], fence, t(10)).await.unwrap();
        }
        store
            .finish(
                &made[2],
                fence,
                &Finish::completed(t(11), serde_json::json!(null)),
            )
            .await
            .unwrap();
        store
            .finish(&made[3], fence, &Finish::failed(t(11), "boom"))
            .await
            .unwrap();
        let newest_first: Vec<_> = made.iter().rev().cloned().collect();
        let ids = |list: &orchestrator::OperationList| -> Vec<OperationId> {
            list.operations
                .iter()
                .map(|i| i.operation_id.clone())
                .collect()
        };

        let all = store.list(&OperationFilter::new()).await.unwrap();
        assert_eq!(ids(&all), newest_first);
        assert_eq!((all.total_count, all.active_count), (6, 4));
        assert_eq!(all.operations[3].status, OperationStatus::Completed);

        let page = store
            .list(&OperationFilter::new().with_limit(2).with_offset(1))
            .await
            .unwrap();
        assert_eq!(ids(&page), newest_first[1..3]);
        assert_eq!((page.total_count, page.active_count), (6, 4));
        let past = store
            .list(&OperationFilter::new().with_offset(10))
            .await
            .unwrap();
        assert!(past.operations.is_empty());
        assert_eq!(past.total_count, 6);

        let running = store
            .list(&OperationFilter::new().with_status(OperationStatus::Running))
            .await
            .unwrap();
        assert_eq!(ids(&running), [made[4].clone(), made[1].clone()]);
        assert_eq!((running.total_count, running.active_count), (2, 4));

        let training = store
            .list(&OperationFilter::new().with_type("training"))
            .await
            .unwrap();
        assert_eq!(
            ids(&training),
            [made[5].clone(), made[3].clone(), made[1].clone()]
        );

        let active_gpu = store
            .list(
                &OperationFilter::new()
                    .active_only()
                    .with_label("tier", "gpu"),
            )
            .await
            .unwrap();
        assert_eq!(ids(&active_gpu), [made[1].clone(), made[0].clone()]);
        let none = store
            .list(
                &OperationFilter::new()
                    .with_label("tier", "gpu")
                    .with_label("team", "ml"),
            )
            .await
            .unwrap();
        assert_eq!(none.total_count, 0);
        let dummy_failed = store
            .list(
                &OperationFilter::new()
                    .with_type(OperationType::TRAINING)
                    .with_status(OperationStatus::Failed),
            )
            .await
            .unwrap();
        assert_eq!(ids(&dummy_failed), [made[3].clone()]);

        // Same creation time: the later insert is the newer.
        let first = pending(store, &OperationType::BACKTEST, fence, t(100)).await;
        let second = pending(store, &OperationType::BACKTEST, fence, t(100)).await;
        let tie = store
            .list(&OperationFilter::new().with_type("backtest"))
            .await
            .unwrap();
        assert_eq!(ids(&tie), [second, first]);
    }

    /// Metrics by cursor: a retried or overlapping batch does not duplicate records
    /// (they carry their cursor index); pages start at the cursor; unknown ids are
    /// `None`.
    pub(super) async fn metrics_by_cursor_without_duplicates<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let op = running(store, fence, t(0)).await;
        let empty = store.metrics(&op, 0).await.unwrap().unwrap();
        assert!(empty.metrics.is_empty());
        assert_eq!((empty.cursor, empty.dropped), (0, 0));

        let r: Vec<serde_json::Value> = (0..5)
            .map(|i| serde_json::json!({"epoch": i, "loss": 1.0 / f64::from(i + 1)}))
            .collect();
        let first = Flush::new(me, LEASE, t(1)).with_metrics(MetricBatch::new(
            op.clone(),
            1,
            0,
            r[..3].to_vec(),
        ));
        store.flush(&first).await.unwrap();
        store.flush(&first).await.unwrap(); // retried after a timeout
        let page = store.metrics(&op, 0).await.unwrap().unwrap();
        assert_eq!(page.metrics, r[..3]);
        assert_eq!(page.cursor, 3);

        // Overlapping: the registry resends from an older cursor.
        store
            .flush(&Flush::new(me, LEASE, t(2)).with_metrics(MetricBatch::new(
                op.clone(),
                1,
                2,
                r[2..5].to_vec(),
            )))
            .await
            .unwrap();
        let page = store.metrics(&op, 0).await.unwrap().unwrap();
        assert_eq!(page.metrics, r);
        assert_eq!((page.cursor, page.dropped), (5, 0));
        let page = store.metrics(&op, 3).await.unwrap().unwrap();
        assert_eq!(page.metrics, r[3..]);
        assert_eq!(page.cursor, 5);
        let page = store.metrics(&op, 5).await.unwrap().unwrap();
        assert!(page.metrics.is_empty());
        assert_eq!(page.cursor, 5);
        let page = store.metrics(&op, 100).await.unwrap().unwrap();
        assert!(page.metrics.is_empty());
        assert_eq!((page.cursor, page.dropped), (5, 0));

        // The records of the last flush after the end are kept.
        store
            .finish(&op, fence, &Finish::completed(t(3), serde_json::json!(1)))
            .await
            .unwrap();
        store
            .flush(&Flush::new(me, LEASE, t(4)).with_metrics(MetricBatch::new(
                op.clone(),
                1,
                5,
                vec![serde_json::json!("final")],
            )))
            .await
            .unwrap();
        let page = store.metrics(&op, 5).await.unwrap().unwrap();
        assert_eq!(page.metrics, [serde_json::json!("final")]);
        assert_eq!(page.cursor, 6);

        assert!(
            store
                .metrics(&id(&OperationType::DUMMY), 0)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Pruning by age and by count removes terminal operations (and their metrics)
    /// and never an active one, however old.
    pub(super) async fn prune_by_age_and_count_keeps_active<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let old_running = running(store, fence, t(0)).await;
        let old_pending = pending(store, &OperationType::DUMMY, fence, t(0)).await;
        let mut ended = Vec::new(); // (op, completed at)
        for done_at in [1, 2, 50, 60] {
            let op = running(store, fence, t(0)).await;
            store
                .flush(&Flush::new(me, LEASE, t(0)).with_metrics(MetricBatch::new(
                    op.clone(),
                    1,
                    0,
                    vec![serde_json::json!(done_at)],
                )))
                .await
                .unwrap();
            store
                .finish(&op, fence, &Finish::failed(t(done_at), "x"))
                .await
                .unwrap();
            ended.push(op);
        }
        assert_eq!(store.prune(&Prune::nothing(), t(100)).await.unwrap(), 0);

        // By age: finished before t(40).
        let removed = store
            .prune(&Prune::older_than(t(100), Duration::from_secs(60)), t(100))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        for op in &ended[..2] {
            assert!(store.get(op).await.unwrap().is_none());
            assert!(store.metrics(op, 0).await.unwrap().is_none());
        }
        for op in &ended[2..] {
            assert!(store.get(op).await.unwrap().is_some());
        }

        // By count: only the most recently finished one stays.
        assert_eq!(
            store
                .prune(&Prune::nothing().with_max_finished(1), t(100))
                .await
                .unwrap(),
            1
        );
        assert!(store.get(&ended[2]).await.unwrap().is_none());
        assert!(store.get(&ended[3]).await.unwrap().is_some());
        assert_eq!(
            store
                .metrics(&ended[3], 0)
                .await
                .unwrap()
                .unwrap()
                .metrics
                .len(),
            1
        );

        assert_eq!(
            store
                .prune(
                    &Prune::older_than(t(1000), Duration::ZERO).with_max_finished(0),
                    t(1000)
                )
                .await
                .unwrap(),
            1
        );
        assert_eq!(status(store, &old_running).await, OperationStatus::Running);
        assert_eq!(status(store, &old_pending).await, OperationStatus::Pending);
        let left = store.list(&OperationFilter::new()).await.unwrap();
        assert_eq!((left.total_count, left.active_count), (2, 2));
    }

    /// `delete` removes a terminal operation only.
    pub(super) async fn delete_only_terminal<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let op = running(store, fence, t(0)).await;
        assert!(matches!(
            store.delete(&op).await,
            Err(StoreError::StillActive {
                status: OperationStatus::Running,
                ..
            })
        ));
        store
            .finish(&op, fence, &Finish::failed(t(1), "x"))
            .await
            .unwrap();
        store.delete(&op).await.unwrap();
        assert!(store.get(&op).await.unwrap().is_none());
        assert!(matches!(
            store.delete(&op).await,
            Err(StoreError::NotFound(_))
        ));
    }

    /// Opening the same database again (twice) migrates nothing twice and shares the
    /// data both ways: any replica answers for any operation.
    pub(super) async fn reopen_is_idempotent_and_shares_data<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let op = running(store, fence, t(0)).await;
        store
            .finish(
                &op,
                fence,
                &Finish::completed(t(1), serde_json::json!({"ok": true})),
            )
            .await
            .unwrap();
        let first = db.reopen().await;
        let second = db.reopen().await;
        let stored = store.get(&op).await.unwrap().unwrap();
        assert_eq!(first.get(&op).await.unwrap().unwrap(), stored);
        assert_eq!(second.get(&op).await.unwrap().unwrap(), stored);
        let other = register(&second, t(2)).await;
        let theirs = running(&second, Fence::first(other), t(2)).await;
        assert_eq!(status(store, &theirs).await, OperationStatus::Running);
        // A cancel requested here reaches the owner through its own flush there.
        store
            .request_cancel(&theirs, "from a replica", t(3))
            .await
            .unwrap();
        let reply = second.flush(&Flush::new(other, LEASE, t(4))).await.unwrap();
        assert_eq!(reply.cancels.len(), 1);
        assert_eq!(reply.cancels[0].reason, "from a replica");
        assert_eq!(
            first
                .list(&OperationFilter::new())
                .await
                .unwrap()
                .total_count,
            2
        );
    }

    /// Where a backend pushes cancel requests (`cancel_notifications` is `Some`), a
    /// request recorded by another replica reaches the owner's stream, and another
    /// instance's requests do not. Backends without one return `None`.
    pub(super) async fn pushed_cancels_reach_their_owner_only<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let other = register(store, t(0)).await;
        let Some(mut pushed) = store.cancel_notifications(me).await.unwrap() else {
            return;
        };
        let mine = running(store, Fence::first(me), t(0)).await;
        let theirs = running(store, Fence::first(other), t(0)).await;
        let replica = db.reopen().await;
        replica
            .request_cancel(&theirs, "not yours", t(1))
            .await
            .unwrap();
        replica
            .request_cancel(&mine, "from a replica", t(2))
            .await
            .unwrap();
        // A repeated request is not pushed again (the first one stands).
        replica.request_cancel(&mine, "again", t(3)).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), pushed.recv())
            .await
            .expect("the notification arrives")
            .expect("the listener is running");
        assert_eq!(got.operation_id, mine);
        assert_eq!(got.reason, "from a replica");
        assert_eq!(got.attempt, 1);
        assert_eq!(got.requested_at, t(2));
        // Nothing else is queued: a marker request pushed after them comes next.
        let marker = running(store, Fence::first(me), t(4)).await;
        replica
            .request_cancel(&marker, "marker", t(5))
            .await
            .unwrap();
        let next = tokio::time::timeout(Duration::from_secs(30), pushed.recv())
            .await
            .expect("the marker arrives")
            .expect("the listener is running");
        assert_eq!(next.operation_id, marker);
    }

    /// A running operation whose owner saved checkpoint `step` at `at`.
    async fn checkpointed(store: &Store, fence: Fence, step: u64, at: SystemTime) -> OperationId {
        let op = running(store, fence, at).await;
        store
            .save_checkpoint(&op, fence, &saved(step, at))
            .await
            .unwrap();
        op
    }

    fn saved(step: u64, at: SystemTime) -> Checkpoint {
        Checkpoint::new(
            serde_json::json!({"epoch": step, "weights": [0.5, -1.25], "note": "\u{1f4be}"}),
            step,
            at + Duration::from_nanos(42),
        )
    }

    /// The owner saves checkpoints while RUNNING; `get` (and a record returned by
    /// `request_cancel`) reads the last one back exactly, each save replacing the one
    /// before; the rest of the record is untouched.
    pub(super) async fn checkpoint_saved_by_the_owner_reads_back<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let fence = Fence::first(me);
        let op = running(store, fence, t(0)).await;
        assert_eq!(store.get(&op).await.unwrap().unwrap().checkpoint, None);
        let before = store.get(&op).await.unwrap().unwrap();

        store
            .save_checkpoint(&op, fence, &saved(3, t(1)))
            .await
            .unwrap();
        let stored = store.get(&op).await.unwrap().unwrap();
        assert_eq!(stored.checkpoint, Some(saved(3, t(1))));
        // The record shows when and at which step; nothing else changes.
        let mut shown = before.info.clone();
        shown.checkpoint_at = Some(saved(3, t(1)).saved_at);
        shown.checkpoint_step = Some(3);
        assert_eq!(stored.info, shown);
        assert_eq!(before.info.attempt, 1);
        // The record names its owner instance.
        assert_eq!(before.info.instance_id, Some(me));
        assert_eq!(stored.fence, fence);

        // A later save replaces it, a retried one rewrites the same.
        let last = Checkpoint::new(serde_json::json!([1, {"k": null}]), 7, t(2));
        store.save_checkpoint(&op, fence, &last).await.unwrap();
        store.save_checkpoint(&op, fence, &last).await.unwrap();
        let stored = store.get(&op).await.unwrap().unwrap();
        assert_eq!(stored.checkpoint.as_ref(), Some(&last));
        // Another replica's view, and a cancel request's returned record, carry it.
        let replica = db.reopen().await;
        assert_eq!(replica.get(&op).await.unwrap().unwrap(), stored);
        let requested = replica.request_cancel(&op, "stop", t(3)).await.unwrap();
        assert_eq!(requested.checkpoint.as_ref(), Some(&last));
        // Listing shows the checkpoint's step and time (not its state).
        let listed = store.list(&OperationFilter::new()).await.unwrap();
        assert_eq!(listed.operations[0].checkpoint_step, Some(7));
        assert_eq!(listed.operations[0].instance_id, Some(me));
        assert_eq!(listed.operations[0].checkpoint_at, Some(t(2)));
        assert_eq!(
            store
                .list(&OperationFilter::new())
                .await
                .unwrap()
                .operations[0]
                .operation_id,
            op
        );
        // The end keeps it.
        store
            .finish(&op, fence, &Finish::cancelled(t(4)))
            .await
            .unwrap();
        assert_eq!(
            store.get(&op).await.unwrap().unwrap().checkpoint.as_ref(),
            Some(&last)
        );
    }

    /// A checkpoint of another instance or attempt is `Fenced`; before the start it is
    /// `NotRunning`, after the end (the owner's, or the orphan sweep's)
    /// `AlreadyFinished`; unknown ids `NotFound`. Nothing changes.
    pub(super) async fn checkpoint_refused_to_stale_writers_and_outside_running<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let owner = register(store, t(0)).await;
        let other = register(store, t(0)).await;
        let current = Fence::new(owner, 2);
        let op = pending(store, &OperationType::DUMMY, current, t(0)).await;
        // PENDING: not yet (the owner's fence, so it is the status that refuses).
        let err = store
            .save_checkpoint(&op, current, &saved(1, t(1)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotRunning { ref id, status: OperationStatus::Pending } if *id == op),
            "{err:?}"
        );
        assert!(err.to_string().contains("PENDING"), "{err}");

        store.start(&op, current, t(1)).await.unwrap();
        store
            .save_checkpoint(&op, current, &saved(1, t(1)))
            .await
            .unwrap();
        let before = store.get(&op).await.unwrap().unwrap();
        for writer in [
            Fence::new(other, 2),
            Fence::new(owner, 1),
            Fence::new(owner, 3),
        ] {
            match store.save_checkpoint(&op, writer, &saved(9, t(2))).await {
                Err(StoreError::Fenced {
                    id,
                    current: c,
                    writer: w,
                }) => assert_eq!((id, c, w), (op.clone(), current, writer)),
                other => panic!("save by {writer:?}: expected Fenced, got {other:?}"),
            }
        }
        assert_eq!(store.get(&op).await.unwrap().unwrap(), before);

        store
            .finish(&op, current, &Finish::completed(t(3), serde_json::json!(1)))
            .await
            .unwrap();
        let done = store.get(&op).await.unwrap().unwrap();
        assert!(matches!(
            store.save_checkpoint(&op, current, &saved(9, t(4))).await,
            Err(StoreError::AlreadyFinished {
                status: OperationStatus::Completed,
                ..
            })
        ));
        assert_eq!(store.get(&op).await.unwrap().unwrap(), done);

        // The dead owner's checkpoint after the sweep: the sweep's FAILED stands.
        let dead = register(store, t(0)).await;
        let orphan = checkpointed(store, Fence::first(dead), 1, t(0)).await;
        store.flush(&Flush::new(owner, LEASE, t(9))).await.unwrap();
        store
            .fail_orphans(OrphanScope::ExpiredLeases, t(15))
            .await
            .unwrap();
        let swept = store.get(&orphan).await.unwrap().unwrap();
        assert!(matches!(
            store
                .save_checkpoint(&orphan, Fence::first(dead), &saved(2, t(16)))
                .await,
            Err(StoreError::AlreadyFinished {
                status: OperationStatus::Failed,
                ..
            })
        ));
        assert_eq!(store.get(&orphan).await.unwrap().unwrap(), swept);

        let unknown = id(&OperationType::DUMMY);
        assert!(matches!(
            store.save_checkpoint(&unknown, current, &saved(1, t(5))).await,
            Err(StoreError::NotFound(ref x)) if *x == unknown
        ));
    }

    /// What every successful resume leaves: `resumed` is `before` at the next attempt,
    /// owned by `by`, PENDING, its end cleared, the rest kept; `get` reads the same.
    async fn assert_resumed(
        store: &Store,
        before: &StoredOperation,
        resumed: &StoredOperation,
        by: InstanceId,
    ) {
        assert_eq!(resumed.fence, Fence::new(by, before.fence.attempt + 1));
        assert_eq!(resumed.cancel_requested_at, None);
        assert_eq!(resumed.checkpoint, before.checkpoint);
        assert!(resumed.checkpoint.is_some());
        let (info, was) = (&resumed.info, &before.info);
        assert_eq!(info.attempt, was.attempt + 1);
        // The record names the instance that runs the new attempt.
        assert_eq!(info.instance_id, Some(by));
        assert_eq!(info.checkpoint_step, was.checkpoint_step);
        assert_eq!(info.checkpoint_at, was.checkpoint_at);
        assert_eq!(info.status, OperationStatus::Pending);
        assert_eq!(info.started_at, None);
        assert_eq!(info.completed_at, None);
        assert_eq!(info.error_message, None);
        assert_eq!(info.result_summary, None);
        assert_eq!(info.cancel_reason, None);
        assert_eq!(info.operation_id, was.operation_id);
        assert_eq!(info.operation_type, was.operation_type);
        assert_eq!(info.description, was.description);
        assert_eq!(info.metadata, was.metadata);
        assert_eq!(info.created_at, was.created_at);
        assert_eq!(info.parent_id, was.parent_id);
        assert_eq!(info.progress, was.progress);
        assert_eq!(
            store.get(&info.operation_id).await.unwrap().as_ref(),
            Some(resumed)
        );
    }

    /// The old attempt's writes are all refused after a resume; the new fence runs
    /// the new attempt to its end.
    async fn assert_new_attempt_runs(store: &Store, op: &OperationId, old: Fence, new: Fence) {
        assert!(matches!(
            store.start(op, old, t(40)).await,
            Err(StoreError::Fenced { .. })
        ));
        assert!(matches!(
            store.finish(op, old, &Finish::failed(t(40), "late")).await,
            Err(StoreError::Fenced { .. })
        ));
        assert!(matches!(
            store.save_checkpoint(op, old, &saved(99, t(40))).await,
            Err(StoreError::Fenced { .. })
        ));
        store.start(op, new, t(41)).await.unwrap();
        let reply = store
            .flush(
                &Flush::new(old.owner, LEASE, t(41)).with_progress(ProgressUpdate::new(
                    op.clone(),
                    old.attempt,
                    progress(99.0, "stale"),
                )),
            )
            .await
            .unwrap();
        assert_eq!(reply.rejected, std::slice::from_ref(op));
        assert!(matches!(
            store.save_checkpoint(op, old, &saved(99, t(41))).await,
            Err(StoreError::Fenced { .. })
        ));
        store
            .save_checkpoint(op, new, &saved(20, t(42)))
            .await
            .unwrap();
        assert!(matches!(
            store.finish(op, old, &Finish::failed(t(42), "late")).await,
            Err(StoreError::Fenced { .. })
        ));
        store
            .finish(
                op,
                new,
                &Finish::completed(t(43), serde_json::json!({"resumed": true})),
            )
            .await
            .unwrap();
        let stored = store.get(op).await.unwrap().unwrap();
        assert_eq!(stored.info.status, OperationStatus::Completed);
        assert_eq!(stored.info.started_at, Some(t(41)));
        assert_eq!(stored.fence, new);
        assert_eq!(stored.checkpoint, Some(saved(20, t(42))));
    }

    /// An operation interrupted by the orphan sweep (FAILED), with a checkpoint, is
    /// resumed by a live replica: PENDING at attempt 2, owned by it; the new fence
    /// starts and finishes it, the old one is refused.
    pub(super) async fn resume_of_an_interrupted_operation<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let dead = register(store, t(0)).await;
        let old = Fence::first(dead);
        let kind = OperationType::TRAINING;
        let op = id(&kind);
        let metadata = OperationMetadata::new()
            .with_parameter("epochs", 10)
            .with_label("team", "ml");
        store
            .create(
                &NewOperation::new(op.clone(), kind.clone(), old)
                    .with_description("train")
                    .with_created_at(t(0) + Duration::from_nanos(5))
                    .with_metadata(metadata),
            )
            .await
            .unwrap();
        store.start(&op, old, t(1)).await.unwrap();
        store
            .save_checkpoint(&op, old, &saved(4, t(2)))
            .await
            .unwrap();
        store
            .flush(
                &Flush::new(dead, LEASE, t(3)).with_progress(ProgressUpdate::new(
                    op.clone(),
                    1,
                    progress(40.0, "Epoch 4/10"),
                )),
            )
            .await
            .unwrap();
        let live = register(store, t(12)).await;
        assert_eq!(
            store
                .fail_orphans(OrphanScope::ExpiredLeases, t(14))
                .await
                .unwrap(),
            std::slice::from_ref(&op)
        );
        let before = store.get(&op).await.unwrap().unwrap();
        assert_eq!(before.info.status, OperationStatus::Failed);

        let replica = db.reopen().await;
        let resumed = replica.resume(&op, live, 1, t(15)).await.unwrap();
        assert_resumed(store, &before, &resumed, live).await;
        assert_eq!(resumed.fence.attempt, 2);
        // The resumer's lease is live: the next sweep spares the new attempt.
        assert!(
            store
                .fail_orphans(OrphanScope::ExpiredLeases, t(16))
                .await
                .unwrap()
                .is_empty()
        );
        assert_new_attempt_runs(store, &op, old, resumed.fence).await;
    }

    /// A CANCELLED operation with a checkpoint is resumed too; its cancel request is
    /// cleared, so the new owner's flush does not return it.
    pub(super) async fn resume_of_a_cancelled_operation<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let a = register(store, t(0)).await;
        let b = register(store, t(0)).await;
        let old = Fence::first(a);
        let op = checkpointed(store, old, 2, t(1)).await;
        store.request_cancel(&op, "user asked", t(2)).await.unwrap();
        store
            .finish(&op, old, &Finish::cancelled(t(3)))
            .await
            .unwrap();
        let before = store.get(&op).await.unwrap().unwrap();
        assert_eq!(before.info.cancel_reason.as_deref(), Some("user asked"));

        let resumed = store.resume(&op, b, 1, t(4)).await.unwrap();
        assert_resumed(store, &before, &resumed, b).await;
        let reply = store.flush(&Flush::new(b, LEASE, t(5))).await.unwrap();
        assert!(reply.cancels.is_empty(), "{:?}", reply.cancels);
        assert_new_attempt_runs(store, &op, old, resumed.fence).await;
    }

    /// COMPLETED, RUNNING and PENDING are `NotResumable`; FAILED or CANCELLED without
    /// a checkpoint `NoCheckpoint`; another attempt than the stored one
    /// `AttemptMoved` (also for a retried resume that was applied); unknown ids
    /// `NotFound`. Nothing changes.
    pub(super) async fn resume_refusals<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let me = register(store, t(0)).await;
        let other = register(store, t(0)).await;
        let fence = Fence::first(me);

        let done = checkpointed(store, fence, 1, t(0)).await;
        store
            .finish(&done, fence, &Finish::completed(t(1), serde_json::json!(1)))
            .await
            .unwrap();
        let run = checkpointed(store, fence, 1, t(0)).await;
        let queued = pending(store, &OperationType::DUMMY, fence, t(0)).await;
        for (op, want) in [
            (&done, OperationStatus::Completed),
            (&run, OperationStatus::Running),
            (&queued, OperationStatus::Pending),
        ] {
            let before = store.get(op).await.unwrap().unwrap();
            let err = store.resume(op, other, 1, t(2)).await.unwrap_err();
            assert!(
                matches!(err, StoreError::NotResumable { ref id, status } if id == op && status == want),
                "{want}: {err:?}"
            );
            assert!(err.to_string().contains(want.as_str()), "{err}");
            assert_eq!(store.get(op).await.unwrap().unwrap(), before);
        }

        let failed = running(store, fence, t(0)).await;
        store
            .finish(&failed, fence, &Finish::failed(t(1), "boom"))
            .await
            .unwrap();
        let cancelled = pending(store, &OperationType::DUMMY, fence, t(0)).await;
        store
            .finish(&cancelled, fence, &Finish::cancelled(t(1)))
            .await
            .unwrap();
        for op in [&failed, &cancelled] {
            let before = store.get(op).await.unwrap().unwrap();
            let err = store.resume(op, other, 1, t(2)).await.unwrap_err();
            assert!(
                matches!(err, StoreError::NoCheckpoint(ref id) if id == op),
                "{err:?}"
            );
            assert!(err.to_string().contains("no checkpoint"), "{err}");
            assert_eq!(store.get(op).await.unwrap().unwrap(), before);
        }

        // The wrong attempt, before and after a resume.
        let resumable = checkpointed(store, fence, 1, t(0)).await;
        store
            .finish(&resumable, fence, &Finish::failed(t(1), "boom"))
            .await
            .unwrap();
        let before = store.get(&resumable).await.unwrap().unwrap();
        for expected in [0, 2] {
            match store.resume(&resumable, other, expected, t(2)).await {
                Err(StoreError::AttemptMoved {
                    id,
                    expected: e,
                    current,
                }) => assert_eq!((id, e, current), (resumable.clone(), expected, fence)),
                other => panic!("expected AttemptMoved, got {other:?}"),
            }
        }
        assert_eq!(store.get(&resumable).await.unwrap().unwrap(), before);
        let resumed = store.resume(&resumable, other, 1, t(3)).await.unwrap();
        let err = store.resume(&resumable, other, 1, t(4)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AttemptMoved { expected: 1, current, .. } if current == Fence::new(other, 2)),
            "{err:?}"
        );
        assert!(err.to_string().contains(&other.to_string()), "{err}");
        // The new attempt is PENDING: resuming it (at its attempt) is NotResumable.
        assert!(matches!(
            store.resume(&resumable, me, 2, t(5)).await,
            Err(StoreError::NotResumable {
                status: OperationStatus::Pending,
                ..
            })
        ));
        assert_eq!(store.get(&resumable).await.unwrap().unwrap(), resumed);

        let unknown = id(&OperationType::DUMMY);
        assert!(matches!(
            store.resume(&unknown, other, 1, t(6)).await,
            Err(StoreError::NotFound(ref x)) if *x == unknown
        ));
    }

    /// Replicas resuming the same attempt at once: exactly one wins, the others are
    /// told the attempt moved, and the record is the winner's.
    pub(super) async fn concurrent_resumes_exactly_one_wins<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let dead = register(store, t(0)).await;
        let mut ops = Vec::new();
        for i in 0..5 {
            ops.push(checkpointed(store, Fence::first(dead), i, t(i)).await);
        }
        store
            .fail_orphans(OrphanScope::AllBut(InstanceId::generate()), t(20))
            .await
            .unwrap();
        let mut replicas = vec![store.clone()];
        for _ in 0..3 {
            replicas.push(db.reopen().await);
        }
        for op in &ops {
            let tries = replicas.iter().map(|replica| {
                let (replica, op) = (replica.clone(), op.clone());
                tokio::spawn(async move {
                    let me = register(&replica, t(21)).await;
                    (me, replica.resume(&op, me, 1, t(22)).await)
                })
            });
            let results = futures::future::join_all(tries).await;
            let mut winners = Vec::new();
            for result in results {
                match result.unwrap() {
                    (me, Ok(resumed)) => winners.push((me, resumed)),
                    (
                        _,
                        Err(StoreError::AttemptMoved {
                            expected: 1,
                            current,
                            ..
                        }),
                    ) => {
                        assert_eq!(current.attempt, 2);
                    }
                    (_, Err(other)) => panic!("expected AttemptMoved, got {other:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "{winners:?}");
            let (winner, resumed) = winners.pop().unwrap();
            assert_eq!(resumed.fence, Fence::new(winner, 2));
            assert_eq!(store.get(op).await.unwrap().unwrap(), resumed);
        }
    }

    /// The metrics of the first attempt stay after a resume, the new attempt's flush
    /// appends after them (the cursor continues), and the old attempt's metrics are
    /// no longer written.
    pub(super) async fn resume_keeps_metrics_and_the_cursor_continues<F, Fut>(make: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = TestDb>,
    {
        let db = make().await;
        let store = &db.store;
        let a = register(store, t(0)).await;
        let old = Fence::first(a);
        let op = checkpointed(store, old, 1, t(0)).await;
        let first: Vec<_> = (0..3).map(|i| serde_json::json!({"loss": i})).collect();
        store
            .flush(&Flush::new(a, LEASE, t(1)).with_metrics(MetricBatch::new(
                op.clone(),
                1,
                0,
                first.clone(),
            )))
            .await
            .unwrap();
        store
            .finish(&op, old, &Finish::failed(t(2), "crashed"))
            .await
            .unwrap();
        let b = register(store, t(3)).await;
        let resumed = store.resume(&op, b, 1, t(3)).await.unwrap();
        let page = store.metrics(&op, 0).await.unwrap().unwrap();
        assert_eq!(page.metrics, first);
        assert_eq!(page.cursor, 3);

        store.start(&op, resumed.fence, t(4)).await.unwrap();
        let second: Vec<_> = (3..5).map(|i| serde_json::json!({"loss": i})).collect();
        store
            .flush(
                &Flush::new(b, LEASE, t(5))
                    .with_metrics(MetricBatch::new(op.clone(), 2, page.cursor, second.clone()))
                    // The old attempt's late batch is not written.
                    .with_metrics(MetricBatch::new(
                        op.clone(),
                        1,
                        3,
                        vec![serde_json::json!("stale")],
                    )),
            )
            .await
            .unwrap();
        store
            .flush(&Flush::new(a, LEASE, t(5)).with_metrics(MetricBatch::new(
                op.clone(),
                1,
                3,
                vec![serde_json::json!("stale")],
            )))
            .await
            .unwrap();
        let page = store.metrics(&op, 0).await.unwrap().unwrap();
        let all: Vec<_> = first.iter().chain(&second).cloned().collect();
        assert_eq!(page.metrics, all);
        assert_eq!((page.cursor, page.dropped), (5, 0));
        let tail = store.metrics(&op, 3).await.unwrap().unwrap();
        assert_eq!(tail.metrics, second);
    }
}

macro_rules! conformance {
    ($backend:ident, $make:path, $available:path) => {
        mod $backend {
            use super::*;
            conformance!(@tests $make, $available;
                create_get_round_trip,
                fenced_writes_refuse_stale_writers,
                terminal_transitions_exactly_once,
                flush_batches_renews_lease_and_returns_own_cancels,
                request_cancel_is_recorded_for_the_owner,
                orphan_sweep_fails_dead_instances_once,
                concurrent_sweeps_fail_each_orphan_once,
                list_filters_pages_newest_first,
                metrics_by_cursor_without_duplicates,
                prune_by_age_and_count_keeps_active,
                delete_only_terminal,
                reopen_is_idempotent_and_shares_data,
                pushed_cancels_reach_their_owner_only,
                checkpoint_saved_by_the_owner_reads_back,
                checkpoint_refused_to_stale_writers_and_outside_running,
                resume_of_an_interrupted_operation,
                resume_of_a_cancelled_operation,
                resume_refusals,
                concurrent_resumes_exactly_one_wins,
                resume_keeps_metrics_and_the_cursor_continues,
            );
        }
    };
    (@tests $make:path, $available:path; $($name:ident),* $(,)?) => {
        $(
            // Multi-threaded: a test database's cleanup (`Drop`) blocks its thread
            // while the store's connection tasks still need to run.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $available() {
                    suite::$name($make).await;
                }
            }
        )*
    };
}

conformance!(memory_store, memory, always);

conformance!(sqlite_store, sqlite, always);

conformance!(postgres_store, postgres, postgres_available);

/// A schema written by a newer version is refused, naming the database, the schema
/// and both versions; an invalid schema name is refused before connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_newer_schema() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!("conformance_newer_{}", std::process::id());
    let _cleanup = TempSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    drop(PostgresStore::connect(&url, &schema).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("UPDATE {schema}.store_schema SET version = 99"))
        .await
        .unwrap();
    let err = PostgresStore::connect(&url, &schema).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("schema {schema}")), "{message}");
    assert!(message.contains("version 99"), "{message}");
    assert!(message.contains("version 1"), "{message}");

    let err = PostgresStore::connect(&url, "x; DROP TABLE y")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid schema name"), "{err}");
}

/// An unreachable server is a `Connect` error naming it (no password), not a hang or
/// a panic; needs no database.
#[tokio::test]
async fn postgres_unreachable_server_is_named() {
    let err = PostgresStore::connect(
        "postgres://app:secret@127.0.0.1:1/appdb?connect_timeout=5",
        "orchestrator",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1/appdb"), "{message}");
    assert!(message.contains("schema orchestrator"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}
