//! [`SqliteStore`]: durable operations in one SQLite file.
//!
//! One connection, owned by one writer thread that runs every statement (reads too:
//! simple, and one connection's reads always see its own writes). The async methods
//! send a job over a channel and await its reply on a tokio oneshot, so no database
//! work ever runs on a runtime thread. WAL journal, `synchronous=NORMAL` (a commit is
//! durable across a process crash; a power loss may lose the last commits but never
//! corrupts the file), a busy timeout for other processes on the same file, and
//! `BEGIN IMMEDIATE` for every write so two processes on one file serialise.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::{MetricsPage, OperationFilter, OperationId, OperationList, OperationStatus};

use super::codec::{COLUMNS, INFO_COLUMNS, RESUMABLE, RawRow, from_nanos, to_nanos};
use super::rules::{
    INTERRUPTED_AFTER, INTERRUPTED_BEFORE, check_fence, check_resume, check_save_checkpoint,
    check_transition,
};
use super::{
    CancelRequest, Checkpoint, DEFAULT_MAX_METRICS, Fence, Finish, Flush, FlushReply, InstanceId,
    NewOperation, OperationStore, OrphanScope, Prune, StoreError, StoredOperation,
};

const ACTIVE: &str = "('PENDING', 'RUNNING')";
const TERMINAL: &str = "('COMPLETED', 'FAILED', 'CANCELLED')";

mod schema;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// An [`OperationStore`] in one SQLite file (feature `sqlite`; SQLite is compiled in).
///
/// The store creates its schema in a new file and migrates an older one (versioned by
/// `PRAGMA user_version`, idempotent: opening a file twice is fine, also from two
/// processes). A file of a newer schema version, or one that is not a database, is
/// refused with an error naming the file. Clones share the one writer thread, which
/// stops when the last clone is dropped.
///
/// # Examples
///
/// ```no_run
/// use std::time::SystemTime;
/// use orchestrator::store::{InstanceId, OperationStore, OrphanScope, SqliteStore, DEFAULT_LEASE};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), orchestrator::store::StoreError> {
/// let store = SqliteStore::open("operations.db").await?;
/// let me = InstanceId::generate();
/// store.register_instance(me, DEFAULT_LEASE, SystemTime::now()).await?;
/// // A single node: whatever the previous run left running was interrupted.
/// let interrupted = store.fail_orphans(OrphanScope::AllBut(me), SystemTime::now()).await?;
/// println!("{} operations were interrupted by the restart", interrupted.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
    max_metrics: usize,
}

impl SqliteStore {
    /// Opens (creating it if needed) the store in the file at `path` and brings its
    /// schema to the current version.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the file is not a SQLite database or is damaged,
    /// [`StoreError::SchemaTooNew`] when a newer version of this library wrote it,
    /// [`StoreError::Open`] when it cannot be opened (permissions, missing directory).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = tokio::sync::oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("orchestrator-sqlite".into())
            .spawn(move || {
                let mut conn = match open_connection(&thread_path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                if ready.send(Ok(())).is_err() {
                    return;
                }
                while let Ok(job) = queue.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                cause: Box::new(e),
            })?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(Self {
            jobs,
            path,
            max_metrics: DEFAULT_MAX_METRICS,
        })
    }

    /// Keeps at most `max` metric records per operation (at least 1), dropping the
    /// oldest at each flush.
    #[must_use]
    pub fn with_max_metrics_per_operation(mut self, max: usize) -> Self {
        self.max_metrics = max.max(1);
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer thread and awaits its result.
    async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(Box::new(e)))
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |e: rusqlite::Error| classify_open_error(path, e);
    let mut conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(open_error)?;
    // The first statement that reads the file: a non-database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "SQLite store is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_error)?;
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

fn classify_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            cause: Box::new(e),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            cause: Box::new(e),
        },
    }
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: row.get(0)?,
        operation_type: row.get(1)?,
        description: row.get(2)?,
        status: row.get(3)?,
        created_at: row.get(4)?,
        started_at: row.get(5)?,
        completed_at: row.get(6)?,
        progress: row.get(7)?,
        metadata: row.get(8)?,
        error_message: row.get(9)?,
        result_summary: row.get(10)?,
        parent_id: row.get(11)?,
        cancel_reason: row.get(12)?,
        cancel_requested_at: row.get(13)?,
        owner: row.get(14)?,
        attempt: row.get(15)?,
        host_url: row.get(16)?,
        host_operation_id: row.get(17)?,
        checkpoint_step: row.get(18)?,
        checkpoint_at: row.get(19)?,
        checkpoint: None,
    })
}

/// A row of [`COLUMNS`]: [`read_row`] and the checkpoint.
fn read_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        checkpoint: row.get(20)?,
        ..read_row(row)?
    })
}

fn load(conn: &Connection, id: &OperationId) -> Result<Option<StoredOperation>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM operations WHERE id = ?1"),
        [id.as_str()],
        read_stored,
    )
    .optional()
    .map_err(db)?
    .map(RawRow::parse)
    .transpose()
}

/// The status and fence of `id`, for the checks before a write.
fn load_state(conn: &Connection, id: &OperationId) -> Result<(OperationStatus, Fence), StoreError> {
    let row: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT status, owner, attempt FROM operations WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db)?;
    let (status, owner, attempt) = row.ok_or_else(|| StoreError::NotFound(id.clone()))?;
    let bad = |cause: Box<dyn std::error::Error + Send + Sync>| StoreError::InvalidRecord {
        id: id.to_string(),
        cause,
    };
    Ok((
        status.parse().map_err(|e| bad(Box::new(e)))?,
        Fence::new(
            owner.parse().map_err(|e| bad(Box::new(e)))?,
            u32::try_from(attempt).map_err(|e| bad(Box::new(e)))?,
        ),
    ))
}

fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)
}

#[async_trait]
impl OperationStore for SqliteStore {
    async fn create(&self, op: &NewOperation) -> Result<(), StoreError> {
        let op = op.clone();
        let progress = json(&op.progress)?;
        let metadata = json(&op.metadata)?;
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let inserted = tx
                .execute(
                    "INSERT INTO operations (id, operation_type, description, status, created_at, \
                     progress, metadata, parent_id, owner, attempt, host_url, host_operation_id) \
                     VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        op.operation_id.as_str(),
                        op.operation_type.as_str(),
                        op.description,
                        to_nanos(op.created_at),
                        progress,
                        metadata,
                        op.parent_id.as_ref().map(OperationId::as_str),
                        op.fence.owner.to_string(),
                        op.fence.attempt,
                        op.host_url,
                        op.host_operation_id.as_ref().map(OperationId::as_str),
                    ],
                )
                .map_err(db)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(op.operation_id));
            }
            {
                let mut label = tx
                    .prepare(
                        "INSERT INTO operation_labels (operation_id, key, value) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(db)?;
                for (key, value) in &op.metadata.labels {
                    label
                        .execute(params![op.operation_id.as_str(), key, value])
                        .map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn start(
        &self,
        id: &OperationId,
        fence: Fence,
        started_at: SystemTime,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, current) = load_state(&tx, &id)?;
            check_fence(&id, current, fence)?;
            check_transition(&id, status, OperationStatus::Running)?;
            tx.execute(
                "UPDATE operations SET status = 'RUNNING', started_at = ?2 \
                 WHERE id = ?1 AND owner = ?3 AND attempt = ?4 AND status = 'PENDING'",
                params![
                    id.as_str(),
                    to_nanos(started_at),
                    fence.owner.to_string(),
                    fence.attempt
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn finish(
        &self,
        id: &OperationId,
        fence: Fence,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let finish = finish.clone();
        let progress = finish.progress.as_ref().map(json).transpose()?;
        let summary = finish.result_summary.as_ref().map(json).transpose()?;
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, current) = load_state(&tx, &id)?;
            check_fence(&id, current, fence)?;
            if !finish.status.is_terminal() {
                return Err(StoreError::IllegalTransition {
                    id,
                    from: status,
                    to: finish.status,
                });
            }
            check_transition(&id, status, finish.status)?;
            tx.execute(
                &format!(
                    "UPDATE operations SET status = ?2, completed_at = ?3, \
                     progress = COALESCE(?4, progress), error_message = ?5, \
                     result_summary = ?6, cancel_reason = COALESCE(?7, cancel_reason) \
                     WHERE id = ?1 AND owner = ?8 AND attempt = ?9 AND status IN {ACTIVE}"
                ),
                params![
                    id.as_str(),
                    finish.status.as_str(),
                    to_nanos(finish.completed_at),
                    progress,
                    finish.error_message,
                    summary,
                    finish.cancel_reason,
                    fence.owner.to_string(),
                    fence.attempt,
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        id: &OperationId,
        fence: Fence,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let state = json(&checkpoint.state)?;
        let step = int(checkpoint.step);
        let saved_at = to_nanos(checkpoint.saved_at);
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, current) = load_state(&tx, &id)?;
            check_save_checkpoint(&id, status, current, fence)?;
            tx.execute(
                "UPDATE operations SET checkpoint = ?2, checkpoint_step = ?3, checkpoint_at = ?4 \
                 WHERE id = ?1 AND owner = ?5 AND attempt = ?6 AND status = 'RUNNING'",
                params![
                    id.as_str(),
                    state,
                    step,
                    saved_at,
                    fence.owner.to_string(),
                    fence.attempt
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn resume(
        &self,
        id: &OperationId,
        by: InstanceId,
        expected_attempt: u32,
        _now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, current) = load_state(&tx, &id)?;
            let has_checkpoint: bool = tx
                .query_row(
                    "SELECT checkpoint IS NOT NULL FROM operations WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let attempt = check_resume(&id, status, current, has_checkpoint, expected_attempt)?;
            let stored = tx
                .query_row(
                    &format!(
                        "UPDATE operations SET status = 'PENDING', owner = ?2, attempt = ?3, \
                         started_at = NULL, completed_at = NULL, error_message = NULL, \
                         result_summary = NULL, cancel_reason = NULL, cancel_requested_at = NULL \
                         WHERE id = ?1 AND attempt = ?4 AND status IN {RESUMABLE} \
                         AND checkpoint IS NOT NULL RETURNING {COLUMNS}"
                    ),
                    params![id.as_str(), by.to_string(), attempt, expected_attempt],
                    read_stored,
                )
                .map_err(db)?
                .parse()?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn flush(&self, flush: &Flush) -> Result<FlushReply, StoreError> {
        let instance = flush.instance.to_string();
        let lease_expires_at = flush.now + flush.lease;
        let progress = flush
            .progress
            .iter()
            .map(|u| Ok((u.operation_id.clone(), u.attempt, json(&u.progress)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let metrics = flush
            .metrics
            .iter()
            .map(|b| {
                let records = b.records.iter().map(json).collect::<Result<Vec<_>, _>>()?;
                Ok((b.operation_id.clone(), b.attempt, b.first_index, records))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let max_metrics = int(self.max_metrics as u64);
        self.call(move |conn| {
            let tx = immediate(conn)?;
            tx.execute(
                "INSERT INTO instances (id, lease_expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET lease_expires_at = excluded.lease_expires_at",
                params![instance, to_nanos(lease_expires_at)],
            )
            .map_err(db)?;
            let mut rejected = Vec::new();
            {
                let mut update = tx
                    .prepare(&format!(
                        "UPDATE operations SET progress = ?2 \
                         WHERE id = ?1 AND owner = ?3 AND attempt = ?4 AND status IN {ACTIVE}"
                    ))
                    .map_err(db)?;
                for (id, attempt, progress) in progress {
                    let written = update
                        .execute(params![id.as_str(), progress, instance, attempt])
                        .map_err(db)?;
                    if written == 0 {
                        rejected.push(id);
                    }
                }
            }
            for (id, attempt, first, records) in metrics {
                let next: Option<i64> = tx
                    .query_row(
                        "SELECT metrics_next FROM operations \
                         WHERE id = ?1 AND owner = ?2 AND attempt = ?3",
                        params![id.as_str(), instance, attempt],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                let Some(next) = next else { continue };
                let first = int(first);
                let end = first.saturating_add(int(records.len() as u64));
                let next = next.max(end);
                let keep_from = next.saturating_sub(max_metrics);
                let mut upsert = tx
                    .prepare(
                        "INSERT INTO operation_metrics (operation_id, idx, record) \
                         VALUES (?1, ?2, ?3) \
                         ON CONFLICT (operation_id, idx) DO UPDATE SET record = excluded.record",
                    )
                    .map_err(db)?;
                for (index, record) in (first..).zip(&records) {
                    if index >= keep_from {
                        upsert
                            .execute(params![id.as_str(), index, record])
                            .map_err(db)?;
                    }
                }
                tx.execute(
                    "UPDATE operations SET metrics_next = ?2 WHERE id = ?1",
                    params![id.as_str(), next],
                )
                .map_err(db)?;
                tx.execute(
                    "DELETE FROM operation_metrics WHERE operation_id = ?1 AND idx < ?2",
                    params![id.as_str(), keep_from],
                )
                .map_err(db)?;
            }
            let cancels = {
                let mut pending = tx
                    .prepare(&format!(
                        "SELECT id, attempt, cancel_reason, cancel_requested_at FROM operations \
                         WHERE owner = ?1 AND status IN {ACTIVE} \
                         AND cancel_requested_at IS NOT NULL ORDER BY seq"
                    ))
                    .map_err(db)?;
                let rows = pending
                    .query_map([&instance], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .map_err(db)?;
                let mut cancels = Vec::new();
                for row in rows {
                    let (id, attempt, reason, at) = row.map_err(db)?;
                    let bad = |cause: Box<dyn std::error::Error + Send + Sync>| {
                        StoreError::InvalidRecord {
                            id: id.clone(),
                            cause,
                        }
                    };
                    cancels.push(CancelRequest {
                        operation_id: id.parse().map_err(|e| bad(Box::new(e)))?,
                        attempt: u32::try_from(attempt).map_err(|e| bad(Box::new(e)))?,
                        reason: reason.unwrap_or_default(),
                        requested_at: from_nanos(at),
                    });
                }
                cancels
            };
            tx.commit().map_err(db)?;
            Ok(FlushReply {
                lease_expires_at,
                cancels,
                rejected,
            })
        })
        .await
    }

    async fn request_cancel(
        &self,
        id: &OperationId,
        reason: &str,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let id = id.clone();
        let reason = reason.to_owned();
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, _) = load_state(&tx, &id)?;
            if status.is_terminal() {
                return Err(StoreError::AlreadyFinished { id, status });
            }
            tx.execute(
                &format!(
                    "UPDATE operations SET cancel_requested_at = ?2, cancel_reason = ?3 \
                     WHERE id = ?1 AND cancel_requested_at IS NULL AND status IN {ACTIVE}"
                ),
                params![id.as_str(), to_nanos(now), reason],
            )
            .map_err(db)?;
            let stored = load(&tx, &id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn fail_orphans(
        &self,
        scope: OrphanScope,
        now: SystemTime,
    ) -> Result<Vec<OperationId>, StoreError> {
        self.call(move |conn| {
            let whose = match scope {
                OrphanScope::ExpiredLeases => {
                    "owner NOT IN (SELECT id FROM instances WHERE lease_expires_at > ?1)"
                }
                OrphanScope::AllBut(_) => "owner <> ?4",
            };
            let mut args = vec![
                Value::Integer(to_nanos(now)),
                Value::Text(INTERRUPTED_BEFORE.to_owned()),
                Value::Text(INTERRUPTED_AFTER.to_owned()),
            ];
            if let OrphanScope::AllBut(me) = scope {
                args.push(Value::Text(me.to_string()));
            }
            let tx = immediate(conn)?;
            let mut failed = {
                let mut sweep = tx
                    .prepare(&format!(
                        "UPDATE operations SET status = 'FAILED', completed_at = ?1, \
                         error_message = ?2 || owner || ?3 \
                         WHERE status IN {ACTIVE} AND {whose} RETURNING seq, id"
                    ))
                    .map_err(db)?;
                let rows = sweep
                    .query_map(rusqlite::params_from_iter(&args), |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            tx.commit().map_err(db)?;
            failed.sort_by_key(|(seq, _)| *seq);
            failed
                .into_iter()
                .map(|(_, id)| {
                    id.parse().map_err(|e| StoreError::InvalidRecord {
                        id,
                        cause: Box::new(e),
                    })
                })
                .collect()
        })
        .await
    }

    async fn get(&self, id: &OperationId) -> Result<Option<StoredOperation>, StoreError> {
        let id = id.clone();
        self.call(move |conn| load(conn, &id)).await
    }

    async fn list(&self, filter: &OperationFilter) -> Result<OperationList, StoreError> {
        let filter = filter.clone();
        self.call(move |conn| {
            let mut clauses = Vec::new();
            let mut args: Vec<Value> = Vec::new();
            if let Some(status) = filter.status {
                args.push(Value::Text(status.as_str().to_owned()));
                clauses.push(format!("status = ?{}", args.len()));
            }
            if filter.active_only {
                clauses.push(format!("status IN {ACTIVE}"));
            }
            if let Some(kind) = &filter.operation_type {
                args.push(Value::Text(kind.as_str().to_owned()));
                clauses.push(format!("operation_type = ?{}", args.len()));
            }
            if let Some(parent) = &filter.parent_id {
                args.push(Value::Text(parent.as_str().to_owned()));
                clauses.push(format!("parent_id = ?{}", args.len()));
            }
            for (key, value) in &filter.labels {
                args.push(Value::Text(key.clone()));
                args.push(Value::Text(value.clone()));
                clauses.push(format!(
                    "EXISTS (SELECT 1 FROM operation_labels l WHERE l.operation_id = o.id \
                     AND l.key = ?{} AND l.value = ?{})",
                    args.len() - 1,
                    args.len()
                ));
            }
            let filter_sql = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let tx = conn.transaction().map_err(db)?;
            let total: i64 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM operations o {filter_sql}"),
                    rusqlite::params_from_iter(&args),
                    |r| r.get(0),
                )
                .map_err(db)?;
            let active: i64 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM operations WHERE status IN {ACTIVE}"),
                    [],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let mut page_args = args.clone();
            page_args.push(Value::Integer(int(filter.limit as u64)));
            page_args.push(Value::Integer(int(filter.offset as u64)));
            let operations = {
                let mut page = tx
                    .prepare(&format!(
                        "SELECT {INFO_COLUMNS} FROM operations o {filter_sql} \
                         ORDER BY created_at DESC, seq DESC LIMIT ?{} OFFSET ?{}",
                        page_args.len() - 1,
                        page_args.len()
                    ))
                    .map_err(db)?;
                let rows = page
                    .query_map(rusqlite::params_from_iter(&page_args), read_row)
                    .map_err(db)?;
                let mut operations = Vec::new();
                for row in rows {
                    operations.push(row.map_err(db)?.parse()?.info);
                }
                operations
            };
            tx.commit().map_err(db)?;
            Ok(OperationList {
                operations,
                total_count: usize::try_from(total).unwrap_or(0),
                active_count: usize::try_from(active).unwrap_or(0),
            })
        })
        .await
    }

    async fn metrics(
        &self,
        id: &OperationId,
        cursor: u64,
    ) -> Result<Option<MetricsPage>, StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let next: Option<i64> = tx
                .query_row(
                    "SELECT metrics_next FROM operations WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            let Some(next) = next else {
                return Ok(None);
            };
            let first: Option<i64> = tx
                .query_row(
                    "SELECT MIN(idx) FROM operation_metrics WHERE operation_id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let mut metrics = Vec::new();
            {
                let mut page = tx
                    .prepare(
                        "SELECT record FROM operation_metrics \
                         WHERE operation_id = ?1 AND idx >= ?2 ORDER BY idx",
                    )
                    .map_err(db)?;
                let rows = page
                    .query_map(params![id.as_str(), int(cursor)], |r| r.get::<_, String>(0))
                    .map_err(db)?;
                for row in rows {
                    let text = row.map_err(db)?;
                    metrics.push(serde_json::from_str(&text).map_err(|e| {
                        StoreError::InvalidRecord {
                            id: id.to_string(),
                            cause: Box::new(e),
                        }
                    })?);
                }
            }
            tx.commit().map_err(db)?;
            let next = u64::try_from(next).unwrap_or(0);
            let first = first.map_or(next, |f| u64::try_from(f).unwrap_or(0));
            Ok(Some(MetricsPage {
                metrics,
                cursor: next,
                dropped: first.saturating_sub(cursor),
            }))
        })
        .await
    }

    async fn delete(&self, id: &OperationId) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let (status, _) = load_state(&tx, &id)?;
            if status.is_active() {
                return Err(StoreError::StillActive { id, status });
            }
            tx.execute("DELETE FROM operations WHERE id = ?1", [id.as_str()])
                .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn prune(&self, policy: &Prune, now: SystemTime) -> Result<usize, StoreError> {
        let policy = *policy;
        self.call(move |conn| {
            let tx = immediate(conn)?;
            let mut removed = 0;
            // The count cap first, ranked over every finished operation, as MemoryStore.
            if let Some(max) = policy.max_finished {
                removed += tx
                    .execute(
                        &format!(
                            "DELETE FROM operations WHERE seq IN (SELECT seq FROM operations \
                             WHERE status IN {TERMINAL} \
                             ORDER BY completed_at DESC, seq DESC LIMIT -1 OFFSET ?1)"
                        ),
                        [int(max as u64)],
                    )
                    .map_err(db)?;
            }
            if let Some(cutoff) = policy.finished_before {
                removed += tx
                    .execute(
                        &format!(
                            "DELETE FROM operations WHERE status IN {TERMINAL} AND completed_at < ?1"
                        ),
                        [to_nanos(cutoff)],
                    )
                    .map_err(db)?;
            }
            tx.execute(
                &format!(
                    "DELETE FROM instances WHERE lease_expires_at <= ?1 AND id NOT IN \
                     (SELECT owner FROM operations WHERE status IN {ACTIVE})"
                ),
                [to_nanos(now)],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
