//! SQLite-only behaviour: the file's schema version and damage, a restart.

use super::*;
use crate::OperationType;
use crate::store::{InstanceId, MetricBatch};

/// A path in the temp directory, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self(std::env::temp_dir().join(format!(
            "orchestrator-{name}-{}-{nanos}.db",
            std::process::id()
        )))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_naming_file_and_versions() {
    let file = TempDb::new("newer");
    drop(SqliteStore::open(&file.0).await.unwrap());
    let conn = Connection::open(&file.0).unwrap();
    conn.pragma_update(None, "user_version", 7).unwrap();
    drop(conn);
    let err = SqliteStore::open(&file.0).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&file.0.display().to_string()), "{message}");
    assert!(message.contains("version 7"), "{message}");
    assert!(message.contains("version 1"), "{message}");
}

#[tokio::test]
async fn a_corrupt_file_is_refused_naming_it() {
    let file = TempDb::new("corrupt");
    std::fs::write(
        &file.0,
        b"this is not a database, just some text ".repeat(200),
    )
    .unwrap();
    let err = SqliteStore::open(&file.0).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&file.0.display().to_string()), "{message}");
    assert!(message.contains("corrupt"), "{message}");
}

#[tokio::test]
async fn an_unopenable_path_names_it() {
    let file = TempDb::new("missing-dir");
    let path = file.0.join("nested").join("ops.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_restarted_process_sees_results_and_fails_what_was_running() {
    let file = TempDb::new("restart");
    let now = SystemTime::now();
    let (done, was_running, was_pending) = {
        let store = SqliteStore::open(&file.0).await.unwrap();
        let before = InstanceId::generate();
        store
            .register_instance(before, Duration::from_secs(3600), now)
            .await
            .unwrap();
        let fence = Fence::first(before);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let id = OperationId::generate(&OperationType::DUMMY);
            store
                .create(&NewOperation::new(id.clone(), OperationType::DUMMY, fence))
                .await
                .unwrap();
            ids.push(id);
        }
        store.start(&ids[0], fence, now).await.unwrap();
        store
            .finish(
                &ids[0],
                fence,
                &Finish::completed(now, serde_json::json!({"rows": 42})),
            )
            .await
            .unwrap();
        store.start(&ids[1], fence, now).await.unwrap();
        // The process dies: nothing is closed gracefully beyond dropping the handle.
        (ids[0].clone(), ids[1].clone(), ids[2].clone())
    };

    let store = SqliteStore::open(&file.0).await.unwrap();
    let me = InstanceId::generate();
    store
        .register_instance(me, Duration::from_secs(10), now)
        .await
        .unwrap();
    let info = store.get(&done).await.unwrap().unwrap().info;
    assert_eq!(info.status, OperationStatus::Completed);
    assert_eq!(info.result_summary, Some(serde_json::json!({"rows": 42})));
    // The old lease is still valid: only the at-start sweep ends its operations.
    assert!(
        store
            .fail_orphans(OrphanScope::ExpiredLeases, now)
            .await
            .unwrap()
            .is_empty()
    );
    let mut failed = store
        .fail_orphans(OrphanScope::AllBut(me), now)
        .await
        .unwrap();
    failed.sort();
    let mut expected = vec![was_running.clone(), was_pending.clone()];
    expected.sort();
    assert_eq!(failed, expected);
    for id in [&was_running, &was_pending] {
        let info = store.get(id).await.unwrap().unwrap().info;
        assert_eq!(info.status, OperationStatus::Failed);
        let message = info.error_message.unwrap_or_default();
        assert!(message.starts_with("interrupted: "), "{message}");
    }
    assert_eq!(
        store.get(&done).await.unwrap().unwrap().info.status,
        OperationStatus::Completed
    );
}

#[tokio::test]
async fn metrics_are_bounded_per_operation() {
    let file = TempDb::new("bounded");
    let store = SqliteStore::open(&file.0)
        .await
        .unwrap()
        .with_max_metrics_per_operation(3);
    let me = InstanceId::generate();
    let fence = Fence::first(me);
    let id = OperationId::generate(&OperationType::DUMMY);
    store
        .create(&NewOperation::new(id.clone(), OperationType::DUMMY, fence))
        .await
        .unwrap();
    let records: Vec<_> = (0..5).map(serde_json::Value::from).collect();
    let flush = Flush::new(me, Duration::from_secs(10), SystemTime::now())
        .with_metrics(MetricBatch::new(id.clone(), 1, 0, records));
    store.flush(&flush).await.unwrap();
    let page = store.metrics(&id, 0).await.unwrap().unwrap();
    assert_eq!(page.metrics, [2, 3, 4].map(serde_json::Value::from));
    assert_eq!((page.cursor, page.dropped), (5, 2));
}
