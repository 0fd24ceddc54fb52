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
//!   [`Fence`]. [`start`](OperationStore::start), [`finish`](OperationStore::finish)
//!   and the progress of a flush carry the writer's fence and are refused with
//!   [`StoreError::Fenced`] unless it equals the stored one; nothing changes then.
//! - **One writer per operation.** Only the owner writes lifecycle transitions. Other
//!   replicas only *request* a cancel ([`request_cancel`](OperationStore::request_cancel)):
//!   the operation stays `RUNNING` (or `PENDING`) with `cancel_reason` and
//!   `cancel_requested_at` set, the owner's next flush returns the request, and the
//!   owner records `CANCELLED` through `finish`. The one exception is the orphan sweep.
//! - **Orphans.** [`fail_orphans`](OperationStore::fail_orphans), run by any live
//!   replica, turns the `PENDING`/`RUNNING` operations of dead instances `FAILED` with
//!   an `error_message` starting `interrupted: `, in one idempotent update; nothing is
//!   rerun. The dead owner's later writes are fenced out by the state machine
//!   ([`StoreError::AlreadyFinished`]) and its flush lists them as
//!   [`rejected`](FlushReply::rejected).
//! - **Cancel of a `PENDING` operation** is a request too (the owner holds it in its
//!   queue, and the local registry already ends a cancelled `PENDING` operation at
//!   once): the store keeps it `PENDING` with the reason until the owner records the end.
//! - **Time.** Calls that depend on the clock take `now` (the caller's clock), so the
//!   store has no clock of its own and leases are testable without sleeping. Replicas
//!   must keep their clocks within a small fraction of the lease of each other.
//!
//! # Wiring into the registry
//!
//! The registry calls the store like this (the integration is the next increment):
//!
//! 1. At start: `let me = InstanceId::generate()`,
//!    [`register_instance`](OperationStore::register_instance)`(me, lease, now)`; a
//!    single-node server then runs `fail_orphans(OrphanScope::AllBut(me), now)`.
//! 2. `create`: the in-memory entry, then `store.create(&NewOperation::from_info(&info,
//!    Fence::first(me)))` awaited before the id is handed out (write-through); on error
//!    the entry is removed again.
//! 3. `start` and every terminal transition: `store.start(id, fence, at)` /
//!    `store.finish(id, fence, &Finish::…)` awaited before the transition is reported
//!    (a `COMPLETED` is never lost). `Fenced` or `AlreadyFinished` from `finish` means
//!    another replica declared the operation an orphan: the local record follows the
//!    store's.
//! 4. A flush task every interval (1 s default): one [`Flush`] with the latest
//!    progress of each local running operation whose progress changed, and the metric
//!    records appended since the last successful flush (each batch carries its first
//!    cursor index, so a retried flush does not duplicate); then it trips the local
//!    token of each returned [`CancelRequest`] (with its reason), and stops treating
//!    the [`rejected`](FlushReply::rejected) ones as its own. A failed flush is retried
//!    with the same batches at the next tick; progress updates never wait on it.
//! 5. A sweeper every lease interval: `fail_orphans(OrphanScope::ExpiredLeases, now)`
//!    and `prune(&Prune::older_than(now, retention), now)`.
//! 6. Reads: a local operation from memory; any other id from
//!    [`get`](OperationStore::get) / [`metrics`](OperationStore::metrics); `list` is
//!    [`list`](OperationStore::list) with local records replacing the stored ones.
//!    `cancel` of an operation that is not local is `request_cancel`.
//! 7. A listener task on [`cancel_notifications`](OperationStore::cancel_notifications)
//!    (when it is `Some`): trips the local token of each request at once; the flush
//!    remains the path that cannot lose one.
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
pub use record::{Fence, Finish, NewOperation, StoredOperation};
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
/// (`AlreadyExists`, `IllegalTransition`, `AlreadyFinished`), a retried flush rewrites
/// the same values.
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
    /// whole store).
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
