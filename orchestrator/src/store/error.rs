//! What an [`OperationStore`](super::OperationStore) call can fail with.

use std::path::PathBuf;

use crate::{BoxError, OperationId, OperationStatus};

use super::Fence;

/// Errors of an [`OperationStore`](super::OperationStore).
///
/// The first group says a write was refused and nothing changed (the state machine or
/// the fence said no); the second that the database itself failed. Each message
/// carries its cause once, in the message itself.
///
/// # Examples
///
/// ```
/// use orchestrator::store::{Fence, InstanceId, StoreError};
/// use orchestrator::OperationId;
///
/// let id: OperationId = "op_dummy_20261122_160501_9f3a1c2e".parse()?;
/// let owner = Fence::new(InstanceId::from_random([1; 16]), 2);
/// let stale = Fence::new(InstanceId::from_random([2; 16]), 1);
/// let err = StoreError::Fenced { id, current: owner, writer: stale };
/// assert!(err.to_string().starts_with("stale write to operation op_dummy_20261122_160501_9f3a1c2e refused"));
/// # Ok::<(), orchestrator::InvalidOperationId>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No operation with this id is stored.
    #[error("operation not found in the store: {0}")]
    NotFound(OperationId),
    /// [`create`](super::OperationStore::create) of an id that is already stored.
    #[error("operation {0} is already stored")]
    AlreadyExists(OperationId),
    /// The writer is not the operation's current owner instance and attempt: a late
    /// or stale writer (a replica whose operation was declared an orphan, an older
    /// attempt). Nothing was written.
    #[error(
        "stale write to operation {id} refused: it belongs to instance {} attempt {}, \
         the write came from instance {} attempt {}",
        current.owner, current.attempt, writer.owner, writer.attempt
    )]
    Fenced {
        /// The operation.
        id: OperationId,
        /// Its current owner and attempt.
        current: Fence,
        /// The refused writer's.
        writer: Fence,
    },
    /// The state machine does not allow this transition (e.g. starting twice).
    /// Nothing was written.
    #[error("operation {id}: illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The operation.
        id: OperationId,
        /// Its stored status.
        from: OperationStatus,
        /// The status that was asked for.
        to: OperationStatus,
    },
    /// The operation already reached a terminal state: it cannot be finished or
    /// cancelled again. Nothing was written.
    #[error("operation {id} already finished ({status})")]
    AlreadyFinished {
        /// The operation.
        id: OperationId,
        /// Its terminal status.
        status: OperationStatus,
    },
    /// [`save_checkpoint`](super::OperationStore::save_checkpoint) of an operation that
    /// has not started (`PENDING`): a checkpoint is saved only while it runs (a
    /// terminal one is [`AlreadyFinished`](Self::AlreadyFinished)). Nothing was written.
    #[error("operation {id} is {status}, not RUNNING: a checkpoint is saved only while it runs")]
    NotRunning {
        /// The operation.
        id: OperationId,
        /// Its status.
        status: OperationStatus,
    },
    /// [`resume`](super::OperationStore::resume) of an operation that is not `FAILED` or
    /// `CANCELLED` (it completed, or it is still `PENDING` or `RUNNING`). Nothing was
    /// written.
    #[error("operation {id} is {status}: only a FAILED or CANCELLED operation can be resumed")]
    NotResumable {
        /// The operation.
        id: OperationId,
        /// Its status.
        status: OperationStatus,
    },
    /// [`resume`](super::OperationStore::resume) of an operation that never saved a
    /// checkpoint: there is nothing to resume from. Nothing was written.
    #[error("operation {0} has no checkpoint to resume from")]
    NoCheckpoint(OperationId),
    /// [`resume`](super::OperationStore::resume) expected another attempt than the
    /// stored one: another replica resumed it first (or the caller read a stale
    /// record). Nothing was written.
    #[error(
        "resume of operation {id} refused: expected attempt {expected}, but it is at \
         attempt {} (instance {}); it was resumed meanwhile, or the record read was stale",
        current.attempt, current.owner
    )]
    AttemptMoved {
        /// The operation.
        id: OperationId,
        /// The attempt the caller expected.
        expected: u32,
        /// Its current owner and attempt.
        current: Fence,
    },
    /// [`delete`](super::OperationStore::delete) of a `PENDING` or `RUNNING` operation.
    #[error("operation {id} is still active ({status}); it cannot be deleted")]
    StillActive {
        /// The operation.
        id: OperationId,
        /// Its status.
        status: OperationStatus,
    },
    /// The database file could not be opened or set up.
    #[error("could not open the operation store {}: {cause}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: BoxError,
    },
    /// The database server could not be reached or refused the connection, or the
    /// connection settings are invalid.
    #[error("could not connect to the operation store {location}: {cause}")]
    Connect {
        /// The server, database and schema (never the password).
        location: String,
        /// Why.
        cause: BoxError,
    },
    /// The file is not a database, or a damaged one.
    #[error(
        "{} is not a usable operation store (corrupt, or not a SQLite database): {cause}",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the database engine said.
        cause: BoxError,
    },
    /// The database was written by a newer version of this library: its schema is
    /// newer than the newest one this build knows, so it is left untouched.
    #[error(
        "{location} has operation-store schema version {found}, newer than version \
         {supported} that this build of orchestrator supports; upgrade orchestrator \
         or point it at another database"
    )]
    SchemaTooNew {
        /// The file (or database and schema).
        location: String,
        /// The database's schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A stored record could not be read back (a column that does not parse).
    #[error("the stored record of operation {id} is unreadable: {cause}")]
    InvalidRecord {
        /// The operation id as stored.
        id: String,
        /// What did not parse.
        cause: BoxError,
    },
    /// The database failed a statement.
    #[error("operation store database error: {0}")]
    Database(BoxError),
    /// The store was shut down (its writer thread or connection pool is gone).
    #[error("the operation store has shut down")]
    Closed,
}
