//! Durable operations: the [`OperationStore`] trait and its backends.
//!
//! The registry keeps its in-memory hot path; a store makes operations outlive the
//! process and lets several replicas share one registry. Every backend is held to one
//! conformance suite (`tests/store_conformance.rs`):
//!
//! | backend         | feature    | for                                          |
//! | --------------- | ---------- | -------------------------------------------- |
//! | [`MemoryStore`] | —          | today's behaviour: one process, nothing kept |
//! | `SqliteStore`   | `sqlite`   | one file, one node, survives restarts        |
//! | `PostgresStore` | `postgres` | several replicas sharing one database        |
//!
//! (`SqliteStore` and `PostgresStore` are documented when their feature is on.)
//!
//! # The model
//!
//! - **Instances.** Each process start registers a fresh [`InstanceId`] with a lease
//!   (10 s by default, [`DEFAULT_LEASE`]). Its [`flush`](OperationStore::flush) renews
//!   the lease; an instance whose lease expired is dead.
//! - **Fencing.** Every operation has an owner instance and an attempt, its
//!   [`Fence`]. [`start`](OperationStore::start), [`finish`](OperationStore::finish),
//!   [`save_checkpoint`](OperationStore::save_checkpoint) and the progress of a flush
//!   carry the writer's fence and are refused with [`StoreError::Fenced`] unless it
//!   equals the stored one; nothing changes then.
//! - **One writer per operation.** Only the owner writes lifecycle transitions. Other
//!   replicas only *request* a cancel ([`request_cancel`](OperationStore::request_cancel)):
//!   the operation stays `RUNNING` (or `PENDING`) with `cancel_reason` and
//!   `cancel_requested_at` set, the owner's next flush returns the request, and the
//!   owner records `CANCELLED` through `finish`. The exceptions are the orphan sweep
//!   and a resume, which both move the operation away from its owner.
//! - **Orphans.** [`fail_orphans`](OperationStore::fail_orphans), run by any live
//!   replica, turns the `PENDING`/`RUNNING` operations of dead instances `FAILED` with
//!   an `error_message` starting `interrupted: `, in one idempotent update; nothing is
//!   rerun. The dead owner's later writes are fenced out by the state machine
//!   ([`StoreError::AlreadyFinished`]) and its flush lists them as
//!   [`rejected`](FlushReply::rejected).
//! - **Checkpoints.** While `RUNNING`, the owner may
//!   [`save_checkpoint`](OperationStore::save_checkpoint) a [`Checkpoint`] (JSON
//!   state, a step, when): fenced like `start`, refused while `PENDING`
//!   ([`StoreError::NotRunning`]) and once it ended ([`StoreError::AlreadyFinished`]);
//!   each save replaces the last one. [`get`](OperationStore::get) reads it back in
//!   [`StoredOperation::checkpoint`].
//! - **Resume.** Any replica may [`resume`](OperationStore::resume) a `FAILED`
//!   (interrupted, or an error) or `CANCELLED` operation that has a checkpoint: in one
//!   guarded write it becomes `PENDING` again, owned by the resumer at the next
//!   attempt, with its end (times, error, result, cancel request) cleared and its
//!   checkpoint, metrics (the cursor continues) and identity kept. The resumer names
//!   the attempt it saw; if the stored one moved on ([`StoreError::AttemptMoved`]) it
//!   lost to another resume, so of two at once exactly one wins. The new fence then
//!   drives `start`/`finish` as for a new operation, and every write of the old attempt
//!   is refused with [`StoreError::Fenced`]. A `COMPLETED`, `PENDING` or `RUNNING`
//!   operation is [`NotResumable`](StoreError::NotResumable), one without a checkpoint
//!   [`NoCheckpoint`](StoreError::NoCheckpoint).
//! - **Cancel of a `PENDING` operation** is a request too (the owner holds it in its
//!   queue, and the local registry already ends a cancelled `PENDING` operation at
//!   once): the store keeps it `PENDING` with the reason until the owner records the end.
//! - **Time.** Calls that depend on the clock take `now` (the caller's clock), so the
//!   store has no clock of its own and leases are testable without sleeping. Replicas
//!   must keep their clocks within a small fraction of the lease of each other.
//!
//! # In the registry
//!
//! [`OperationsBuilder::open`](crate::OperationsBuilder::open) attaches a store to a
//! registry; [`Operations::cluster`](crate::Operations::cluster) reads and cancels
//! across replicas; [`Operations::store_health`](crate::Operations::store_health)
//! says whether the store keeps up. The registry uses the store like this:
//!
//! 1. At `open`: a fresh [`InstanceId`],
//!    [`register_instance`](OperationStore::register_instance) with the lease, then
//!    [`fail_orphans`](OperationStore::fail_orphans) (`OrphanScope::AllBut(me)` for an
//!    [exclusive](crate::OperationsBuilder::with_exclusive_store) store, else
//!    `ExpiredLeases`). A store that cannot be reached is an error: no registry.
//! 2. `create`, `start` and the end commit in memory first, then queue their write;
//!    writer lanes apply them ([`create`](OperationStore::create),
//!    [`start`](OperationStore::start), [`finish`](OperationStore::finish)), each
//!    operation's in order in one lane, retrying a failed one with backoff (health `DEGRADED` meanwhile, new operations refused).
//!    A refusal of a retry (`AlreadyExists`, `AlreadyFinished`, …) means the first try
//!    was applied, or that another replica declared the operation an orphan: either
//!    way the store's record stands. [`Operations::wait`](crate::Operations::wait)
//!    returns only once the end is written; the HTTP layer answers a start only once
//!    its create is written.
//! 3. A flush every interval (1 s default): one [`Flush`] with the progress of each
//!    running operation whose progress changed and the metric records appended since
//!    the last successful flush (upserted by cursor index: a retried flush never
//!    duplicates); it renews the lease, trips the local token of each returned
//!    [`CancelRequest`], and stops each [`rejected`](FlushReply::rejected) operation
//!    (declared interrupted elsewhere). A failed flush is retried at the next tick;
//!    progress updates never wait on it.
//! 4. Every flush interval, `fail_orphans(OrphanScope::ExpiredLeases, now)` (an orphan
//!    is found within the lease plus one flush interval); every lease,
//!    [`prune`](OperationStore::prune) by retention and by the retained-count cap.
//! 5. Reads ([`Cluster`](crate::Cluster)): a local operation from memory; any other
//!    from [`get`](OperationStore::get) / [`metrics`](OperationStore::metrics); `list`
//!    is [`list`](OperationStore::list) with local records in place of the stored
//!    ones; `cancel` of an operation that is not local is
//!    [`request_cancel`](OperationStore::request_cancel); `wait` and the event stream
//!    of another replica's operation re-read it from the store.
//! 6. A listener on [`cancel_notifications`](OperationStore::cancel_notifications)
//!    (when it is `Some`, PostgreSQL) trips the local token of each request at once;
//!    the flush remains the path that cannot lose one.
//!
//! All of it runs on one thread of the registry's own ("orchestrator-store"), with a
//! current-thread runtime, so it outlives the runtime that created the registry.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use orchestrator::store::{
//!     Fence, Finish, Flush, InstanceId, MemoryStore, NewOperation, OperationStore, DEFAULT_LEASE,
//! };
//! use orchestrator::{OperationId, OperationStatus, OperationType};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), orchestrator::store::StoreError> {
//! let store: Arc<dyn OperationStore> = Arc::new(MemoryStore::new());
//! let me = InstanceId::generate();
//! store.register_instance(me, DEFAULT_LEASE, SystemTime::now()).await?;
//!
//! let id = OperationId::generate(&OperationType::DUMMY);
//! let fence = Fence::first(me);
//! store.create(&NewOperation::new(id.clone(), OperationType::DUMMY, fence)).await?;
//! store.start(&id, fence, SystemTime::now()).await?;
//!
//! // Another replica asks for a cancel; the owner hears of it at its next flush.
//! store.request_cancel(&id, "user asked", SystemTime::now()).await?;
//! let reply = store.flush(&Flush::new(me, DEFAULT_LEASE, SystemTime::now())).await?;
//! assert_eq!(reply.cancels[0].reason, "user asked");
//!
//! store.finish(&id, fence, &Finish::cancelled(SystemTime::now())).await?;
//! let stored = store.get(&id).await?.expect("stored");
//! assert_eq!(stored.info.status, OperationStatus::Cancelled);
//! assert_eq!(stored.info.cancel_reason.as_deref(), Some("user asked"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::{MetricsPage, OperationFilter, OperationId, OperationList};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
mod error;
mod flush;
mod instance;
mod maintenance;
mod memory;
mod notifications;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
mod rules;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use crate::durable::health::{StoreHealth, StoreState};
pub use error::StoreError;
pub use flush::{CancelRequest, Flush, FlushReply, MetricBatch, ProgressUpdate};
pub use instance::{InstanceId, InvalidInstanceId};
pub use maintenance::{OrphanScope, Prune};
pub use memory::MemoryStore;
pub use notifications::CancelNotifications;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
pub use record::{Checkpoint, Fence, Finish, NewOperation, StoredOperation};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

/// How long an instance's lease lasts by default: 10 s, renewed by every flush.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// At most this many metric records are kept per operation by default (the oldest are
/// dropped), as in the registry.
pub const DEFAULT_MAX_METRICS: usize = 10_000;

/// Where operations are kept: one object-safe interface (`Arc<dyn OperationStore>`)
/// over every backend. See the [module docs](self) for the model and how the
/// registry uses it.
///
/// Every method is one round trip (one transaction) and is atomic: when it returns an
/// error of the refusal kind ([`StoreError::Fenced`], [`StoreError::IllegalTransition`],
/// [`StoreError::AlreadyFinished`], …) nothing was written.
///
/// # Cancellation safety
///
/// Dropping a returned future does not undo or tear a write: it is either applied
/// whole or not at all, and the caller cannot tell which. Every write is safe to
/// retry: a retried `create`/`start`/`finish` is refused if the first try was applied
/// (`AlreadyExists`, `IllegalTransition`, `AlreadyFinished`), a retried flush or
/// `save_checkpoint` rewrites the same values, a retried `resume` is refused with
/// `AttemptMoved` naming the new owner (the caller's own instance if the first try
/// was applied).
#[async_trait]
pub trait OperationStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new `PENDING` operation owned by `op.fence`.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`], or a database error.
    async fn create(&self, op: &NewOperation) -> Result<(), StoreError>;

    /// `PENDING → RUNNING` at `started_at`, by the owner.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Fenced`] unless `fence` is the stored
    /// owner and attempt; [`StoreError::IllegalTransition`] /
    /// [`StoreError::AlreadyFinished`] unless it is `PENDING`.
    async fn start(
        &self,
        id: &OperationId,
        fence: Fence,
        started_at: SystemTime,
    ) -> Result<(), StoreError>;

    /// The terminal transition, by the owner: exactly once per attempt.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start): `NotFound`, `Fenced`, `AlreadyFinished` when it already
    /// ended, `IllegalTransition` when `finish.status` is not terminal.
    async fn finish(
        &self,
        id: &OperationId,
        fence: Fence,
        finish: &Finish,
    ) -> Result<(), StoreError>;

    /// Saves `checkpoint` as the operation's resumable state, by the owner while it is
    /// `RUNNING`, replacing the previous one (of this attempt or an earlier one). The
    /// caller writes it through: it is not batched into a flush.
    ///
    /// # Errors
    ///
    /// Checked in this order: [`StoreError::NotFound`]; [`StoreError::Fenced`] unless
    /// `fence` is the stored owner and attempt; [`StoreError::NotRunning`] while it is
    /// `PENDING`; [`StoreError::AlreadyFinished`] once it ended (also when the orphan
    /// sweep ended it). Nothing is written then.
    async fn save_checkpoint(
        &self,
        id: &OperationId,
        fence: Fence,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError>;

    /// Starts a new attempt of a `FAILED` or `CANCELLED` operation that has a
    /// checkpoint, owned by `by`, if and only if its stored attempt is still
    /// `expected_attempt`: atomically it becomes `PENDING` with the fence
    /// `(by, expected_attempt + 1)`, without `started_at`, `completed_at`,
    /// `error_message`, `result_summary`, `cancel_reason` and `cancel_requested_at`.
    /// It keeps its id, description, metadata, parent, `created_at`, last progress,
    /// checkpoint and metrics (the new attempt's metrics continue from the stored
    /// cursor). Returns the new record; `by` then [`start`](Self::start)s it with the
    /// new fence, and every write of an older fence is refused with
    /// [`StoreError::Fenced`].
    ///
    /// Any replica may resume (the one exception, with the orphan sweep, to "only the
    /// owner writes"); of two resuming the same attempt at once exactly one wins.
    /// `now` is the caller's clock; the record keeps no time of the resume (the new
    /// attempt's `started_at` is set by its `start`). `by` should be registered
    /// ([`register_instance`](Self::register_instance)): a new attempt of an instance
    /// without a live lease is an orphan for the next sweep.
    ///
    /// # Errors
    ///
    /// Checked in this order: [`StoreError::NotFound`]; [`StoreError::AttemptMoved`]
    /// unless the stored attempt is `expected_attempt` (the loser of two concurrent
    /// resumes, or a retry of one that was applied); [`StoreError::NotResumable`]
    /// unless it is `FAILED` or `CANCELLED` (also at attempt `u32::MAX`);
    /// [`StoreError::NoCheckpoint`] when it never saved one. Nothing is written then.
    async fn resume(
        &self,
        id: &OperationId,
        by: InstanceId,
        expected_attempt: u32,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError>;

    /// Writes an instance's batched progress and metrics in one transaction, renews
    /// (or first registers) its lease until `flush.now + flush.lease`, and returns the
    /// pending cancel requests of its active operations.
    ///
    /// Progress is written only for operations that are active and owned by
    /// `flush.instance` at the update's attempt (the others are returned as
    /// [`rejected`](FlushReply::rejected)); metrics for any operation it owns at that
    /// attempt, upserted by cursor index.
    ///
    /// # Errors
    ///
    /// A database error; then nothing of the flush was written.
    async fn flush(&self, flush: &Flush) -> Result<FlushReply, StoreError>;

    /// Registers `instance` with a lease until `now + lease`: an empty
    /// [`flush`](Self::flush). Call it once at start, before creating operations.
    ///
    /// # Errors
    ///
    /// A database error.
    async fn register_instance(
        &self,
        instance: InstanceId,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.flush(&Flush::new(instance, lease, now))
            .await
            .map(drop)
    }

    /// Records a cancel request at `now`: sets `cancel_reason` and
    /// `cancel_requested_at` (the first request's are kept) and leaves the status to
    /// the owner, which receives the request with its next flush. Returns the record.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::AlreadyFinished`].
    async fn request_cancel(
        &self,
        id: &OperationId,
        reason: &str,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError>;

    /// Ends the `PENDING`/`RUNNING` operations of the instances `scope` names as
    /// `FAILED` at `now` with an `error_message` starting `interrupted: `, and returns
    /// their ids. Idempotent: a second sweep (by any replica) finds nothing more.
    ///
    /// # Errors
    ///
    /// A database error.
    async fn fail_orphans(
        &self,
        scope: OrphanScope,
        now: SystemTime,
    ) -> Result<Vec<OperationId>, StoreError>;

    /// The stored record, `None` when there is none.
    ///
    /// # Errors
    ///
    /// A database error, or [`StoreError::InvalidRecord`].
    async fn get(&self, id: &OperationId) -> Result<Option<StoredOperation>, StoreError>;

    /// One page of operations, as [`Operations::list`](crate::Operations::list):
    /// filtered, newest first, with `total_count` (matches) and `active_count` (the
    /// whole store). Only the records ([`OperationInfo`](crate::OperationInfo)): no
    /// owner, no checkpoint (they are not even read, to keep a page cheap); use
    /// [`get`](Self::get) for those.
    ///
    /// # Errors
    ///
    /// A database error, or [`StoreError::InvalidRecord`].
    async fn list(&self, filter: &OperationFilter) -> Result<OperationList, StoreError>;

    /// The operation's metric records from cursor index `cursor` on, as
    /// [`Operations::metrics`](crate::Operations::metrics); `None` when the operation
    /// is not stored.
    ///
    /// # Errors
    ///
    /// A database error, or [`StoreError::InvalidRecord`].
    async fn metrics(
        &self,
        id: &OperationId,
        cursor: u64,
    ) -> Result<Option<MetricsPage>, StoreError>;

    /// Removes a terminal operation and its metrics.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::StillActive`].
    async fn delete(&self, id: &OperationId) -> Result<(), StoreError>;

    /// Removes the terminal operations (and their metrics) `policy` selects, and the
    /// records of instances whose lease expired before `now` and that own no active
    /// operation; returns how many operations it removed. Never removes an active
    /// operation.
    ///
    /// # Errors
    ///
    /// A database error.
    async fn prune(&self, policy: &Prune, now: SystemTime) -> Result<usize, StoreError>;

    /// A push stream of the cancel requests recorded for `instance`'s operations, when
    /// the backend has one (`PostgresStore`: one dedicated `LISTEN` connection);
    /// `None` when the flush is the only way they arrive (the default).
    ///
    /// # Errors
    ///
    /// A database error (the listener's connection could not be opened).
    async fn cancel_notifications(
        &self,
        instance: InstanceId,
    ) -> Result<Option<CancelNotifications>, StoreError> {
        let _ = instance;
        Ok(None)
    }
}
