//! [`PostgresStore`]: operations shared by replicas in one PostgreSQL database.
//!
//! Statements run on a deadpool of tokio-postgres connections (no TLS); cancel
//! notifications arrive on one dedicated connection per listener (`LISTEN`). Every
//! connection's `search_path` is the store's schema, so one database can hold several
//! independent stores (one per test, one per environment). A flush is one
//! transaction: the lease upsert, one `UPDATE … FROM unnest(…)` for all progress, three
//! set-based statements for all metrics, and the read of pending cancels. `create`,
//! `start`, `finish`, `save_checkpoint` and `resume` are one statement each, without a
//! transaction (one round trip: statements are prepared once per connection); a refused
//! one then reads the row to say why.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::{MetricsPage, OperationFilter, OperationId, OperationList, OperationStatus};

use super::codec::{COLUMNS, INFO_COLUMNS, RESUMABLE, RawRow, from_nanos, to_nanos};
use super::rules::{
    INTERRUPTED_AFTER, INTERRUPTED_BEFORE, check_fence, check_resume, check_save_checkpoint,
    check_transition,
};
use super::{
    CancelNotifications, CancelRequest, Checkpoint, DEFAULT_MAX_METRICS, Fence, Finish, Flush,
    FlushReply, InstanceId, NewOperation, OperationStore, OrphanScope, Prune, StoreError,
    StoredOperation,
};

mod listen;
mod schema;

use schema::{MIGRATIONS, SCHEMA_VERSION};

const ACTIVE: &str = "('PENDING', 'RUNNING')";
const TERMINAL: &str = "('COMPLETED', 'FAILED', 'CANCELLED')";

/// The longest cancel reason a notification carries (`NOTIFY` payloads are limited
/// to 8000 bytes); the flush carries the whole one.
const MAX_NOTIFIED_REASON: usize = 2048;

/// An [`OperationStore`] in PostgreSQL, for several replicas (feature `postgres`).
///
/// The store creates its schema and tables and migrates them (versioned in table
/// `store_schema`, under an advisory lock, idempotent: replicas may start together).
/// Cancel requests are also pushed to their owner with `pg_notify` in the same
/// transaction (see [`cancel_notifications`](OperationStore::cancel_notifications)).
///
/// # Examples
///
/// ```no_run
/// use std::time::SystemTime;
/// use orchestrator::store::{InstanceId, OperationStore, OrphanScope, PostgresStore, DEFAULT_LEASE};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), orchestrator::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", "orchestrator").await?;
/// let me = InstanceId::generate();
/// store.register_instance(me, DEFAULT_LEASE, SystemTime::now()).await?;
/// let mut cancels = store.cancel_notifications(me).await?.expect("postgres pushes cancels");
/// // Another replica sweeps the operations of dead ones; any replica may.
/// store.fail_orphans(OrphanScope::ExpiredLeases, SystemTime::now()).await?;
/// # drop(cancels.recv());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    schema: String,
    channel: String,
    location: String,
    max_metrics: usize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("max_metrics", &self.max_metrics)
            .finish_non_exhaustive()
    }
}

fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Database(Box::new(other)),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(Box::new(e)))
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// The store's statements go through these rather than tokio-postgres' string queries,
// which parse an unnamed statement afresh each time (a round trip of its own before the
// bind and execute). Here each text is prepared once per pooled connection and kept in
// deadpool's statement cache (keyed by the text; the texts built at run time, `list`'s
// filters and `fail_orphans`' scopes, come in a few shapes, so the cache stays small).

async fn execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    client.execute(&statement, params).await.map_err(db)
}

async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    client.query(&statement, params).await.map_err(db)
}

async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    client.query_opt(&statement, params).await.map_err(db)
}

async fn query_one<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(db)?;
    client.query_one(&statement, params).await.map_err(db)
}

fn read_row(row: &Row) -> Result<RawRow, tokio_postgres::Error> {
    Ok(RawRow {
        id: row.try_get(0)?,
        operation_type: row.try_get(1)?,
        description: row.try_get(2)?,
        status: row.try_get(3)?,
        created_at: row.try_get(4)?,
        started_at: row.try_get(5)?,
        completed_at: row.try_get(6)?,
        progress: row.try_get(7)?,
        metadata: row.try_get(8)?,
        error_message: row.try_get(9)?,
        result_summary: row.try_get(10)?,
        parent_id: row.try_get(11)?,
        cancel_reason: row.try_get(12)?,
        cancel_requested_at: row.try_get(13)?,
        owner: row.try_get(14)?,
        attempt: row.try_get(15)?,
        host_url: row.try_get(16)?,
        host_operation_id: row.try_get(17)?,
        checkpoint_step: row.try_get(18)?,
        checkpoint_at: row.try_get(19)?,
        checkpoint: None,
    })
}

/// A row of [`COLUMNS`]: [`read_row`] and the checkpoint.
fn read_stored(row: &Row) -> Result<RawRow, tokio_postgres::Error> {
    Ok(RawRow {
        checkpoint: row.try_get(20)?,
        ..read_row(row)?
    })
}

fn invalid(id: &str, cause: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::InvalidRecord {
        id: id.to_owned(),
        cause: Box::new(cause),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value`
    /// string) and opens the store in `schema` (lower-case letters, digits and `_`,
    /// at most 40), creating or migrating it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Connect`] for an invalid URL or schema name or an unreachable
    /// server, [`StoreError::SchemaTooNew`] when a newer version of this library wrote
    /// the schema, a database error otherwise.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        let connect_error = |location: &str, cause: BoxedCause| StoreError::Connect {
            location: location.to_owned(),
            cause,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| connect_error("(invalid connection URL)", Box::new(e)))?;
        let location = describe(&config, schema);
        let valid_schema = !schema.is_empty()
            && schema.len() <= 40
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid_schema {
            return Err(connect_error(
                &location,
                format!(
                    "invalid schema name {schema:?} (lower-case letters, digits and _, \
                     at most 40, not starting with a digit)"
                )
                .into(),
            ));
        }
        config.options(format!("-c search_path={schema}"));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .build()
            .map_err(|e| connect_error(&location, Box::new(e)))?;
        let store = Self {
            pool,
            config,
            schema: schema.to_owned(),
            channel: format!("orchestrator_cancel_{schema}"),
            location,
            max_metrics: DEFAULT_MAX_METRICS,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Keeps at most `max` metric records per operation (at least 1), dropping the
    /// oldest at each flush.
    #[must_use]
    pub fn with_max_metrics_per_operation(mut self, max: usize) -> Self {
        self.max_metrics = max.max(1);
        self
    }

    /// The schema the store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(cause) => StoreError::Connect {
                location: self.location.clone(),
                cause: Box::new(cause),
            },
            other => pool_error(other),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("orchestrator store {}", self.schema)],
        )
        .await
        .map_err(db)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; \
             CREATE TABLE IF NOT EXISTS {0}.store_schema (version BIGINT NOT NULL)",
            self.schema
        ))
        .await
        .map_err(db)?;
        let found: Option<i64> = tx
            .query_opt("SELECT version FROM store_schema", &[])
            .await
            .map_err(db)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(db)?;
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                location: self.location.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let from = usize::try_from(found.max(0)).unwrap_or(0);
        for step in &MIGRATIONS[from..] {
            tx.batch_execute(step).await.map_err(db)?;
        }
        if found == 0 {
            tx.execute(
                "INSERT INTO store_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(db)?;
        } else if found != SCHEMA_VERSION {
            tx.execute("UPDATE store_schema SET version = $1", &[&SCHEMA_VERSION])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }
}

type BoxedCause = Box<dyn std::error::Error + Send + Sync>;

/// `postgres://user@host:port/db (schema s)`, without the password.
fn describe(config: &tokio_postgres::Config, schema: &str) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "postgres://{}@{}:{}/{} (schema {schema})",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or(""),
    )
}

/// The status and fence of `id`, locked for the write that follows.
async fn lock_state(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &OperationId,
) -> Result<(OperationStatus, Fence), StoreError> {
    state(
        tx,
        id,
        "SELECT status, owner, attempt FROM operations WHERE id = $1 FOR UPDATE",
    )
    .await
}

/// The status and fence of `id` as committed now, to say why a guarded write matched
/// no row.
async fn read_state(
    client: &deadpool_postgres::Client,
    id: &OperationId,
) -> Result<(OperationStatus, Fence), StoreError> {
    state(
        client,
        id,
        "SELECT status, owner, attempt FROM operations WHERE id = $1",
    )
    .await
}

/// `sql` reads `status, owner, attempt` of row `$1`; [`StoreError::NotFound`] without it.
async fn state<C: GenericClient>(
    client: &C,
    id: &OperationId,
    sql: &str,
) -> Result<(OperationStatus, Fence), StoreError> {
    let row = query_opt(client, sql, &[&id.as_str()])
        .await?
        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
    parse_state(id, &row)
}

/// `status, owner, attempt` in columns 0 to 2 of `row`.
fn parse_state(id: &OperationId, row: &Row) -> Result<(OperationStatus, Fence), StoreError> {
    let status: String = row.try_get(0).map_err(db)?;
    let owner: String = row.try_get(1).map_err(db)?;
    let attempt: i64 = row.try_get(2).map_err(db)?;
    Ok((
        status.parse().map_err(|e| invalid(id.as_str(), e))?,
        Fence::new(
            owner.parse().map_err(|e| invalid(id.as_str(), e))?,
            u32::try_from(attempt).map_err(|e| invalid(id.as_str(), e))?,
        ),
    ))
}

/// What `resume` checks of `id`: its status, fence and whether it has a checkpoint, as
/// `sql` reads them (`status, owner, attempt, checkpoint IS NOT NULL` of row `$1`).
async fn resume_state<C: GenericClient>(
    client: &C,
    id: &OperationId,
    sql: &str,
) -> Result<(OperationStatus, Fence, bool), StoreError> {
    let row = query_opt(client, sql, &[&id.as_str()])
        .await?
        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
    let (status, fence) = parse_state(id, &row)?;
    Ok((status, fence, row.try_get(3).map_err(db)?))
}

/// [`resume_state`] as committed now, to say why the guarded `resume` matched no row.
const READ_RESUME_STATE: &str =
    "SELECT status, owner, attempt, checkpoint IS NOT NULL FROM operations WHERE id = $1";

/// [`resume_state`] locked for the write that follows.
const LOCK_RESUME_STATE: &str = "SELECT status, owner, attempt, checkpoint IS NOT NULL \
    FROM operations WHERE id = $1 FOR UPDATE";

/// What `start` requires of an operation in `state`, checked in this order: the
/// writer's fence, then a status that may become `RUNNING`.
fn may_start(
    id: &OperationId,
    (status, current): (OperationStatus, Fence),
    writer: Fence,
) -> Result<(), StoreError> {
    check_fence(id, current, writer)?;
    check_transition(id, status, OperationStatus::Running)
}

/// What `finish` to `to` requires of an operation in `state`, checked in this order: the
/// writer's fence, a terminal `to`, then a status that may become `to`.
fn may_finish(
    id: &OperationId,
    (status, current): (OperationStatus, Fence),
    writer: Fence,
    to: OperationStatus,
) -> Result<(), StoreError> {
    check_fence(id, current, writer)?;
    if !to.is_terminal() {
        return Err(StoreError::IllegalTransition {
            id: id.clone(),
            from: status,
            to,
        });
    }
    check_transition(id, status, to)
}

/// The statuses that may become `to`: the guard of a transition's `UPDATE`, so that with
/// the fence it matches exactly the rows [`may_start`] and [`may_finish`] accept.
fn sources(to: OperationStatus) -> Vec<&'static str> {
    OperationStatus::ALL
        .into_iter()
        .filter(|from| from.can_become(to))
        .map(OperationStatus::as_str)
        .collect()
}

/// The row of a new operation, unless its id exists.
macro_rules! insert_operation {
    () => {
        "INSERT INTO operations (id, operation_type, description, status, created_at, \
         progress, metadata, parent_id, owner, attempt, host_url, host_operation_id) \
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO NOTHING"
    };
}

/// `create` without labels.
const CREATE: &str = insert_operation!();

/// `create` with labels (`$12` keys, `$13` values): the labels are written only with the
/// operation's row, in the same statement.
const CREATE_WITH_LABELS: &str = concat!(
    "WITH op AS (",
    insert_operation!(),
    " RETURNING id) \
     INSERT INTO operation_labels (operation_id, key, value) \
     SELECT op.id, l.k, l.v FROM op, unnest($12::text[], $13::text[]) AS l(k, v)"
);

/// `start`: the transition and its guard, for one statement without a transaction.
const START: &str = "UPDATE operations SET status = 'RUNNING', started_at = $2 \
    WHERE id = $1 AND owner = $3 AND attempt = $4 AND status = ANY($5)";

/// `finish`: the transition and its guard, for one statement without a transaction. The
/// stored progress, and a `cancel_reason` already stored (by `request_cancel`), are kept
/// unless the finish gives its own.
const FINISH: &str = "UPDATE operations SET status = $2, completed_at = $3, \
    progress = COALESCE($4, progress), error_message = $5, \
    result_summary = $6, cancel_reason = COALESCE($7, cancel_reason) \
    WHERE id = $1 AND owner = $8 AND attempt = $9 AND status = ANY($10)";

/// `save_checkpoint`: the write and its guard, for one statement without a transaction.
const SAVE_CHECKPOINT: &str = "UPDATE operations \
    SET checkpoint = $2, checkpoint_step = $3, checkpoint_at = $4 \
    WHERE id = $1 AND owner = $5 AND attempt = $6 AND status = 'RUNNING'";

/// `resume`: the new attempt (`$2` owner, `$3` attempt) and its guard (`$4` the expected
/// attempt), returning the new record; one statement without a transaction.
fn resume_sql() -> String {
    format!(
        "UPDATE operations SET status = 'PENDING', owner = $2, attempt = $3, \
         started_at = NULL, completed_at = NULL, error_message = NULL, \
         result_summary = NULL, cancel_reason = NULL, cancel_requested_at = NULL \
         WHERE id = $1 AND attempt = $4 AND status IN {RESUMABLE} \
         AND checkpoint IS NOT NULL RETURNING {COLUMNS}"
    )
}

async fn load<C: GenericClient>(
    client: &C,
    id: &OperationId,
) -> Result<Option<StoredOperation>, StoreError> {
    let row = query_opt(
        client,
        &format!("SELECT {COLUMNS} FROM operations WHERE id = $1"),
        &[&id.as_str()],
    )
    .await?;
    row.map(|row| read_stored(&row).map_err(db)?.parse())
        .transpose()
}

#[async_trait]
impl OperationStore for PostgresStore {
    async fn create(&self, op: &NewOperation) -> Result<(), StoreError> {
        let progress = json(&op.progress)?;
        let metadata = json(&op.metadata)?;
        let owner = op.fence.owner.to_string();
        let attempt = i64::from(op.fence.attempt);
        let keys: Vec<&str> = op.metadata.labels.keys().map(String::as_str).collect();
        let values: Vec<&str> = op.metadata.labels.values().map(String::as_str).collect();
        let params: [&(dyn ToSql + Sync); 13] = [
            &op.operation_id.as_str(),
            &op.operation_type.as_str(),
            &op.description,
            &to_nanos(op.created_at),
            &progress,
            &metadata,
            &op.parent_id.as_ref().map(OperationId::as_str),
            &owner,
            &attempt,
            &op.host_url,
            &op.host_operation_id.as_ref().map(OperationId::as_str),
            &keys,
            &values,
        ];
        // One statement, atomic on its own: no transaction around it.
        let (sql, params) = if keys.is_empty() {
            (CREATE, &params[..11])
        } else {
            (CREATE_WITH_LABELS, &params[..])
        };
        let client = self.client().await?;
        // Rows written: the operation's, or (with labels) its labels', none when its id
        // exists.
        if execute(&client, sql, params).await? == 0 {
            return Err(StoreError::AlreadyExists(op.operation_id.clone()));
        }
        Ok(())
    }

    async fn start(
        &self,
        id: &OperationId,
        fence: Fence,
        started_at: SystemTime,
    ) -> Result<(), StoreError> {
        let owner = fence.owner.to_string();
        let attempt = i64::from(fence.attempt);
        let sources = sources(OperationStatus::Running);
        let params: [&(dyn ToSql + Sync); 5] = [
            &id.as_str(),
            &to_nanos(started_at),
            &owner,
            &attempt,
            &sources,
        ];
        let mut client = self.client().await?;
        // One round trip when the start is allowed: the guard matches only a row that
        // `may_start` accepts, so no lock or transaction is needed around it.
        if execute(&client, START, &params).await? == 1 {
            return Ok(());
        }
        // No row matched: the refusal, from the row as it is now.
        may_start(id, read_state(&client, id).await?, fence)?;
        // The row changed between the two statements and now accepts the start (it was
        // created in between, or deleted and created again: nothing moves a row back):
        // decide under its lock, as a transaction.
        let tx = client.transaction().await.map_err(db)?;
        may_start(id, lock_state(&tx, id).await?, fence)?;
        execute(&tx, START, &params).await?;
        tx.commit().await.map_err(db)
    }

    async fn finish(
        &self,
        id: &OperationId,
        fence: Fence,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let progress = finish.progress.as_ref().map(json).transpose()?;
        let summary = finish.result_summary.as_ref().map(json).transpose()?;
        let owner = fence.owner.to_string();
        let attempt = i64::from(fence.attempt);
        let sources = sources(finish.status);
        let params: [&(dyn ToSql + Sync); 10] = [
            &id.as_str(),
            &finish.status.as_str(),
            &to_nanos(finish.completed_at),
            &progress,
            &finish.error_message,
            &summary,
            &finish.cancel_reason,
            &owner,
            &attempt,
            &sources,
        ];
        let mut client = self.client().await?;
        // One round trip when the finish is allowed: the guard matches only a row that
        // `may_finish` accepts (never for a status that is not terminal, which is only
        // refused), so no lock or transaction is needed around it.
        if finish.status.is_terminal() && execute(&client, FINISH, &params).await? == 1 {
            return Ok(());
        }
        // No row matched: the refusal, from the row as it is now.
        may_finish(id, read_state(&client, id).await?, fence, finish.status)?;
        // The row changed between the two statements and now accepts the finish (it was
        // created in between, or deleted and created again: nothing moves a row back):
        // decide under its lock, as a transaction.
        let tx = client.transaction().await.map_err(db)?;
        may_finish(id, lock_state(&tx, id).await?, fence, finish.status)?;
        execute(&tx, FINISH, &params).await?;
        tx.commit().await.map_err(db)
    }

    async fn save_checkpoint(
        &self,
        id: &OperationId,
        fence: Fence,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let state = json(&checkpoint.state)?;
        let owner = fence.owner.to_string();
        let attempt = i64::from(fence.attempt);
        let params: [&(dyn ToSql + Sync); 6] = [
            &id.as_str(),
            &state,
            &int(checkpoint.step),
            &to_nanos(checkpoint.saved_at),
            &owner,
            &attempt,
        ];
        let may_save = |(status, current)| check_save_checkpoint(id, status, current, fence);
        let mut client = self.client().await?;
        // One round trip when the save is allowed, as `start`.
        if execute(&client, SAVE_CHECKPOINT, &params).await? == 1 {
            return Ok(());
        }
        // No row matched: the refusal, from the row as it is now.
        may_save(read_state(&client, id).await?)?;
        // It started between the two statements: decide under its lock.
        let tx = client.transaction().await.map_err(db)?;
        may_save(lock_state(&tx, id).await?)?;
        execute(&tx, SAVE_CHECKPOINT, &params).await?;
        tx.commit().await.map_err(db)
    }

    async fn resume(
        &self,
        id: &OperationId,
        by: InstanceId,
        expected_attempt: u32,
        _now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let owner = by.to_string();
        let expected = i64::from(expected_attempt);
        let next = expected + 1;
        let params: [&(dyn ToSql + Sync); 4] = [&id.as_str(), &owner, &next, &expected];
        let sql = resume_sql();
        let may_resume = |(status, current, has_checkpoint)| {
            check_resume(id, status, current, has_checkpoint, expected_attempt)
        };
        let mut client = self.client().await?;
        // One round trip when the resume is allowed: the guard matches only a row that
        // `check_resume` accepts (never at attempt `u32::MAX`, which is only refused).
        // Of two replicas resuming at once, the second's update waits for the first's
        // and then no longer matches (the attempt moved).
        if expected_attempt < u32::MAX {
            if let Some(row) = query_opt(&client, &sql, &params).await? {
                return read_stored(&row).map_err(db)?.parse();
            }
        }
        // No row matched: the refusal, from the row as it is now.
        may_resume(resume_state(&client, id, READ_RESUME_STATE).await?)?;
        // It ended between the two statements and is resumable now: decide under its
        // lock.
        let tx = client.transaction().await.map_err(db)?;
        may_resume(resume_state(&tx, id, LOCK_RESUME_STATE).await?)?;
        let row = query_one(&tx, &sql, &params).await?;
        tx.commit().await.map_err(db)?;
        read_stored(&row).map_err(db)?.parse()
    }

    async fn flush(&self, flush: &Flush) -> Result<FlushReply, StoreError> {
        let instance = flush.instance.to_string();
        let lease_expires_at = flush.now + flush.lease;
        // The last update of an operation wins; one row per operation in the batch.
        let mut progress: BTreeMap<&str, (i64, String)> = BTreeMap::new();
        for update in &flush.progress {
            progress.insert(
                update.operation_id.as_str(),
                (i64::from(update.attempt), json(&update.progress)?),
            );
        }
        // Metric rows, one per (operation, attempt, index), and each batch's end.
        let mut rows: BTreeMap<(&str, i64, i64), String> = BTreeMap::new();
        let mut ends: BTreeMap<(&str, i64), i64> = BTreeMap::new();
        for batch in &flush.metrics {
            let attempt = i64::from(batch.attempt);
            let first = int(batch.first_index);
            for (index, record) in (first..).zip(&batch.records) {
                rows.insert((batch.operation_id.as_str(), attempt, index), json(record)?);
            }
            let end = first.saturating_add(int(batch.records.len() as u64));
            let slot = ends
                .entry((batch.operation_id.as_str(), attempt))
                .or_insert(end);
            *slot = (*slot).max(end);
        }
        let max_metrics = int(self.max_metrics as u64);

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        execute(
            &tx,
            "INSERT INTO instances (id, lease_expires_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET lease_expires_at = excluded.lease_expires_at",
            &[&instance, &to_nanos(lease_expires_at)],
        )
        .await?;

        let mut rejected = Vec::new();
        if !progress.is_empty() {
            let ids: Vec<&str> = progress.keys().copied().collect();
            let attempts: Vec<i64> = progress.values().map(|(a, _)| *a).collect();
            let values: Vec<&str> = progress.values().map(|(_, p)| p.as_str()).collect();
            let written: Vec<String> = query(
                &tx,
                &format!(
                    "UPDATE operations o SET progress = u.progress \
                     FROM unnest($1::text[], $2::bigint[], $3::text[]) \
                         AS u(id, attempt, progress) \
                     WHERE o.id = u.id AND o.attempt = u.attempt AND o.owner = $4 \
                     AND o.status IN {ACTIVE} RETURNING o.id"
                ),
                &[&ids, &attempts, &values, &instance],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(db)?;
            // In the order the updates were given.
            for update in &flush.progress {
                let id = &update.operation_id;
                if !written.iter().any(|w| w == id.as_str()) && !rejected.contains(id) {
                    rejected.push(id.clone());
                }
            }
        }

        if !rows.is_empty() {
            let end_ids: Vec<&str> = ends.keys().map(|(id, _)| *id).collect();
            let end_attempts: Vec<i64> = ends.keys().map(|(_, a)| *a).collect();
            let end_values: Vec<i64> = ends.values().copied().collect();
            execute(
                &tx,
                "UPDATE operations o SET metrics_next = GREATEST(o.metrics_next, u.next) \
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(id, attempt, next) \
                 WHERE o.id = u.id AND o.attempt = u.attempt AND o.owner = $4",
                &[&end_ids, &end_attempts, &end_values, &instance],
            )
            .await?;
            let ids: Vec<&str> = rows.keys().map(|(id, _, _)| *id).collect();
            let attempts: Vec<i64> = rows.keys().map(|(_, a, _)| *a).collect();
            let indexes: Vec<i64> = rows.keys().map(|(_, _, i)| *i).collect();
            let records: Vec<&str> = rows.values().map(String::as_str).collect();
            execute(
                &tx,
                "INSERT INTO operation_metrics (operation_id, idx, record) \
                 SELECT u.id, u.idx, u.record \
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) \
                     AS u(id, attempt, idx, record) \
                 JOIN operations o ON o.id = u.id AND o.attempt = u.attempt AND o.owner = $5 \
                 WHERE u.idx >= o.metrics_next - $6 \
                 ON CONFLICT (operation_id, idx) DO UPDATE SET record = excluded.record",
                &[&ids, &attempts, &indexes, &records, &instance, &max_metrics],
            )
            .await?;
            execute(
                &tx,
                "DELETE FROM operation_metrics m USING operations o \
                 WHERE m.operation_id = o.id AND o.id = ANY($1) AND o.owner = $2 \
                 AND m.idx < o.metrics_next - $3",
                &[&end_ids, &instance, &max_metrics],
            )
            .await?;
        }

        let mut cancels = Vec::new();
        for row in query(
            &tx,
            &format!(
                "SELECT id, attempt, cancel_reason, cancel_requested_at FROM operations \
                 WHERE owner = $1 AND status IN {ACTIVE} \
                 AND cancel_requested_at IS NOT NULL ORDER BY seq"
            ),
            &[&instance],
        )
        .await?
        {
            let id: String = row.try_get(0).map_err(db)?;
            let attempt: i64 = row.try_get(1).map_err(db)?;
            let reason: Option<String> = row.try_get(2).map_err(db)?;
            let at: i64 = row.try_get(3).map_err(db)?;
            cancels.push(CancelRequest {
                operation_id: id.parse().map_err(|e| invalid(&id, e))?,
                attempt: u32::try_from(attempt).map_err(|e| invalid(&id, e))?,
                reason: reason.unwrap_or_default(),
                requested_at: from_nanos(at),
            });
        }
        tx.commit().await.map_err(db)?;
        Ok(FlushReply {
            lease_expires_at,
            cancels,
            rejected,
        })
    }

    async fn request_cancel(
        &self,
        id: &OperationId,
        reason: &str,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let (status, fence) = lock_state(&tx, id).await?;
        if status.is_terminal() {
            return Err(StoreError::AlreadyFinished {
                id: id.clone(),
                status,
            });
        }
        let requested = execute(
            &tx,
            &format!(
                "UPDATE operations SET cancel_requested_at = $2, cancel_reason = $3 \
                 WHERE id = $1 AND cancel_requested_at IS NULL AND status IN {ACTIVE}"
            ),
            &[&id.as_str(), &to_nanos(now), &reason],
        )
        .await?;
        if requested == 1 {
            let mut end = MAX_NOTIFIED_REASON.min(reason.len());
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let notice = json(&listen::Notice {
                operation_id: id.clone(),
                owner: fence.owner,
                attempt: fence.attempt,
                reason: reason[..end].to_owned(),
                requested_at: to_nanos(now),
            })?;
            execute(&tx, "SELECT pg_notify($1, $2)", &[&self.channel, &notice]).await?;
        }
        let stored = load(&tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn fail_orphans(
        &self,
        scope: OrphanScope,
        now: SystemTime,
    ) -> Result<Vec<OperationId>, StoreError> {
        let now = to_nanos(now);
        let spared = match scope {
            OrphanScope::AllBut(me) => me.to_string(),
            OrphanScope::ExpiredLeases => String::new(),
        };
        let whose = match scope {
            OrphanScope::ExpiredLeases => {
                "owner NOT IN (SELECT id FROM instances WHERE lease_expires_at > $1)"
            }
            OrphanScope::AllBut(_) => "owner <> $4",
        };
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&now, &INTERRUPTED_BEFORE, &INTERRUPTED_AFTER];
        if matches!(scope, OrphanScope::AllBut(_)) {
            params.push(&spared);
        }
        let client = self.client().await?;
        // SKIP LOCKED: two replicas sweeping together split the orphans instead of
        // waiting on (or deadlocking over) each other's rows.
        let rows = query(
            &client,
            &format!(
                "UPDATE operations SET status = 'FAILED', completed_at = $1, \
                 error_message = $2::text || owner || $3::text \
                 WHERE seq IN (SELECT seq FROM operations \
                     WHERE status IN {ACTIVE} AND {whose} ORDER BY seq FOR UPDATE SKIP LOCKED) \
                 AND status IN {ACTIVE} RETURNING seq, id"
            ),
            &params,
        )
        .await?;
        let mut failed = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get(0).map_err(db)?;
            let id: String = row.try_get(1).map_err(db)?;
            failed.push((seq, id));
        }
        failed.sort_by_key(|(seq, _)| *seq);
        failed
            .into_iter()
            .map(|(_, id)| id.parse().map_err(|e| invalid(&id, e)))
            .collect()
    }

    async fn get(&self, id: &OperationId) -> Result<Option<StoredOperation>, StoreError> {
        let client = self.client().await?;
        load(&client, id).await
    }

    async fn list(&self, filter: &OperationFilter) -> Result<OperationList, StoreError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(status) = filter.status {
            args.push(Box::new(status.as_str()));
            clauses.push(format!("status = ${}", args.len()));
        }
        if filter.active_only {
            clauses.push(format!("status IN {ACTIVE}"));
        }
        if let Some(kind) = &filter.operation_type {
            args.push(Box::new(kind.as_str().to_owned()));
            clauses.push(format!("operation_type = ${}", args.len()));
        }
        if let Some(parent) = &filter.parent_id {
            args.push(Box::new(parent.as_str().to_owned()));
            clauses.push(format!("parent_id = ${}", args.len()));
        }
        for (key, value) in &filter.labels {
            args.push(Box::new(key.clone()));
            args.push(Box::new(value.clone()));
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM operation_labels l WHERE l.operation_id = o.id \
                 AND l.key = ${} AND l.value = ${})",
                args.len() - 1,
                args.len()
            ));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let count_args: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
        let limit = int(filter.limit as u64);
        let offset = int(filter.offset as u64);
        let mut page_args = count_args.clone();
        page_args.push(&limit);
        page_args.push(&offset);

        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let total: i64 = query_one(
            &tx,
            &format!("SELECT COUNT(*) FROM operations o {filter_sql}"),
            &count_args,
        )
        .await?
        .try_get(0)
        .map_err(db)?;
        let active: i64 = query_one(
            &tx,
            &format!("SELECT COUNT(*) FROM operations WHERE status IN {ACTIVE}"),
            &[],
        )
        .await?
        .try_get(0)
        .map_err(db)?;
        let rows = query(
            &tx,
            &format!(
                "SELECT {INFO_COLUMNS} FROM operations o {filter_sql} \
                 ORDER BY created_at DESC, seq DESC LIMIT ${} OFFSET ${}",
                page_args.len() - 1,
                page_args.len()
            ),
            &page_args,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        let mut operations = Vec::with_capacity(rows.len());
        for row in &rows {
            operations.push(read_row(row).map_err(db)?.parse()?.info);
        }
        Ok(OperationList {
            operations,
            total_count: usize::try_from(total).unwrap_or(0),
            active_count: usize::try_from(active).unwrap_or(0),
        })
    }

    async fn metrics(
        &self,
        id: &OperationId,
        cursor: u64,
    ) -> Result<Option<MetricsPage>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let Some(row) = query_opt(
            &tx,
            "SELECT metrics_next, (SELECT MIN(idx) FROM operation_metrics \
             WHERE operation_id = $1) FROM operations WHERE id = $1",
            &[&id.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        let next: i64 = row.try_get(0).map_err(db)?;
        let first: Option<i64> = row.try_get(1).map_err(db)?;
        let rows = query(
            &tx,
            "SELECT record FROM operation_metrics \
             WHERE operation_id = $1 AND idx >= $2 ORDER BY idx",
            &[&id.as_str(), &int(cursor)],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        let mut metrics = Vec::with_capacity(rows.len());
        for row in rows {
            let text: String = row.try_get(0).map_err(db)?;
            metrics.push(serde_json::from_str(&text).map_err(|e| invalid(id.as_str(), e))?);
        }
        let next = u64::try_from(next).unwrap_or(0);
        let first = first.map_or(next, |f| u64::try_from(f).unwrap_or(0));
        Ok(Some(MetricsPage {
            metrics,
            cursor: next,
            dropped: first.saturating_sub(cursor),
        }))
    }

    async fn delete(&self, id: &OperationId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let (status, _) = lock_state(&tx, id).await?;
        if status.is_active() {
            return Err(StoreError::StillActive {
                id: id.clone(),
                status,
            });
        }
        execute(&tx, "DELETE FROM operations WHERE id = $1", &[&id.as_str()]).await?;
        tx.commit().await.map_err(db)
    }

    async fn prune(&self, policy: &Prune, now: SystemTime) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let mut removed = 0u64;
        // The count cap first, ranked over every finished operation, as MemoryStore.
        if let Some(max) = policy.max_finished {
            removed += execute(
                &tx,
                &format!(
                    "DELETE FROM operations WHERE seq IN (SELECT seq FROM operations \
                     WHERE status IN {TERMINAL} \
                     ORDER BY completed_at DESC, seq DESC OFFSET $1)"
                ),
                &[&int(max as u64)],
            )
            .await?;
        }
        if let Some(cutoff) = policy.finished_before {
            removed += execute(
                &tx,
                &format!("DELETE FROM operations WHERE status IN {TERMINAL} AND completed_at < $1"),
                &[&to_nanos(cutoff)],
            )
            .await?;
        }
        execute(
            &tx,
            &format!(
                "DELETE FROM instances WHERE lease_expires_at <= $1 AND id NOT IN \
                 (SELECT owner FROM operations WHERE status IN {ACTIVE})"
            ),
            &[&to_nanos(now)],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn cancel_notifications(
        &self,
        instance: InstanceId,
    ) -> Result<Option<CancelNotifications>, StoreError> {
        listen::listen(&self.config, &self.location, &self.channel, instance)
            .await
            .map(Some)
    }
}
