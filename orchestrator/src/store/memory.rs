//! [`MemoryStore`]: the store of a registry without a database.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::{MetricsPage, OperationFilter, OperationId, OperationList, OperationStatus};

use super::rules::{
    check_fence, check_resume, check_save_checkpoint, check_transition, interrupted_message,
};
use super::{
    CancelRequest, Checkpoint, DEFAULT_MAX_METRICS, Fence, Finish, Flush, FlushReply, InstanceId,
    NewOperation, OperationStore, OrphanScope, Prune, StoreError, StoredOperation,
};

/// An [`OperationStore`] in memory: nothing outlives the process. The default store,
/// and the reference the database backends are held to.
///
/// Clones share the same records, like two connections to one database.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use orchestrator::store::{Fence, InstanceId, MemoryStore, NewOperation, OperationStore};
/// use orchestrator::{OperationId, OperationStatus, OperationType};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), orchestrator::store::StoreError> {
/// let store = MemoryStore::new();
/// let id = OperationId::generate(&OperationType::DUMMY);
/// let fence = Fence::first(InstanceId::generate());
/// store.create(&NewOperation::new(id.clone(), OperationType::DUMMY, fence)).await?;
/// let replica = store.clone();
/// assert_eq!(replica.get(&id).await?.map(|s| s.info.status), Some(OperationStatus::Pending));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    max_metrics: usize,
}

#[derive(Debug, Default)]
struct State {
    ops: HashMap<OperationId, Row>,
    instances: HashMap<InstanceId, SystemTime>,
    /// Insertion order, the tie-break of "newest first".
    next_seq: u64,
}

#[derive(Debug)]
struct Row {
    op: StoredOperation,
    seq: u64,
    metrics: BTreeMap<u64, serde_json::Value>,
    /// One past the highest metric index ever stored: the cursor.
    metrics_next: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            max_metrics: DEFAULT_MAX_METRICS,
        }
    }

    /// Keeps at most `max` metric records per operation (at least 1), dropping the
    /// oldest.
    #[must_use]
    pub fn with_max_metrics_per_operation(mut self, max: usize) -> Self {
        self.max_metrics = max.max(1);
        self
    }

    fn row<'a>(state: &'a mut State, id: &OperationId) -> Result<&'a mut Row, StoreError> {
        state
            .ops
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }
}

fn is_live(
    instances: &HashMap<InstanceId, SystemTime>,
    owner: InstanceId,
    now: SystemTime,
) -> bool {
    instances.get(&owner).is_some_and(|&expires| expires > now)
}

impl Row {
    fn store_metrics(&mut self, first_index: u64, records: &[serde_json::Value], max: usize) {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        let end = first_index.saturating_add(records.len() as u64);
        self.metrics_next = self.metrics_next.max(end);
        let keep_from = self.metrics_next.saturating_sub(max);
        for (index, record) in (first_index..).zip(records) {
            if index >= keep_from {
                self.metrics.insert(index, record.clone());
            }
        }
        self.metrics = self.metrics.split_off(&keep_from);
    }
}

#[async_trait]
impl OperationStore for MemoryStore {
    async fn create(&self, op: &NewOperation) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        if state.ops.contains_key(&op.operation_id) {
            return Err(StoreError::AlreadyExists(op.operation_id.clone()));
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.ops.insert(
            op.operation_id.clone(),
            Row {
                op: op.to_stored(),
                seq,
                metrics: BTreeMap::new(),
                metrics_next: 0,
            },
        );
        Ok(())
    }

    async fn start(
        &self,
        id: &OperationId,
        fence: Fence,
        started_at: SystemTime,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        check_fence(id, row.op.fence, fence)?;
        check_transition(id, row.op.info.status, OperationStatus::Running)?;
        row.op.info.status = OperationStatus::Running;
        row.op.info.started_at = Some(started_at);
        Ok(())
    }

    async fn finish(
        &self,
        id: &OperationId,
        fence: Fence,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        check_fence(id, row.op.fence, fence)?;
        let info = &mut row.op.info;
        if !finish.status.is_terminal() {
            return Err(StoreError::IllegalTransition {
                id: id.clone(),
                from: info.status,
                to: finish.status,
            });
        }
        check_transition(id, info.status, finish.status)?;
        info.status = finish.status;
        info.completed_at = Some(finish.completed_at);
        if let Some(progress) = &finish.progress {
            info.progress = progress.clone();
        }
        info.error_message.clone_from(&finish.error_message);
        info.result_summary.clone_from(&finish.result_summary);
        if finish.cancel_reason.is_some() {
            info.cancel_reason.clone_from(&finish.cancel_reason);
        }
        Ok(())
    }

    async fn save_checkpoint(
        &self,
        id: &OperationId,
        fence: Fence,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        check_save_checkpoint(id, row.op.info.status, row.op.fence, fence)?;
        row.op.checkpoint = Some(checkpoint.clone());
        row.op.info.checkpoint_at = Some(checkpoint.saved_at);
        row.op.info.checkpoint_step = Some(checkpoint.step);
        Ok(())
    }

    async fn resume(
        &self,
        id: &OperationId,
        by: InstanceId,
        expected_attempt: u32,
        _now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        let op = &mut row.op;
        let attempt = check_resume(
            id,
            op.info.status,
            op.fence,
            op.checkpoint.is_some(),
            expected_attempt,
        )?;
        op.fence = Fence::new(by, attempt);
        op.cancel_requested_at = None;
        let info = &mut op.info;
        info.attempt = attempt;
        info.instance_id = Some(by);
        info.status = OperationStatus::Pending;
        info.started_at = None;
        info.completed_at = None;
        info.error_message = None;
        info.result_summary = None;
        info.cancel_reason = None;
        Ok(op.clone())
    }

    async fn flush(&self, flush: &Flush) -> Result<FlushReply, StoreError> {
        let mut state = self.state.lock();
        let lease_expires_at = flush.now + flush.lease;
        state.instances.insert(flush.instance, lease_expires_at);
        let mut rejected = Vec::new();
        for update in &flush.progress {
            let writer = Fence::new(flush.instance, update.attempt);
            match state.ops.get_mut(&update.operation_id) {
                Some(row) if row.op.fence == writer && row.op.info.status.is_active() => {
                    row.op.info.progress = update.progress.clone();
                }
                _ => rejected.push(update.operation_id.clone()),
            }
        }
        for batch in &flush.metrics {
            let writer = Fence::new(flush.instance, batch.attempt);
            match state.ops.get_mut(&batch.operation_id) {
                Some(row) if row.op.fence == writer => {
                    row.store_metrics(batch.first_index, &batch.records, self.max_metrics);
                }
                _ => {}
            }
        }
        let mut cancels: Vec<(u64, CancelRequest)> = state
            .ops
            .values()
            .filter(|row| row.op.fence.owner == flush.instance && row.op.info.status.is_active())
            .filter_map(|row| {
                let requested_at = row.op.cancel_requested_at?;
                Some((
                    row.seq,
                    CancelRequest {
                        operation_id: row.op.info.operation_id.clone(),
                        attempt: row.op.fence.attempt,
                        reason: row.op.info.cancel_reason.clone().unwrap_or_default(),
                        requested_at,
                    },
                ))
            })
            .collect();
        cancels.sort_by_key(|(seq, _)| *seq);
        Ok(FlushReply {
            lease_expires_at,
            cancels: cancels.into_iter().map(|(_, c)| c).collect(),
            rejected,
        })
    }

    async fn request_cancel(
        &self,
        id: &OperationId,
        reason: &str,
        now: SystemTime,
    ) -> Result<StoredOperation, StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        let status = row.op.info.status;
        if status.is_terminal() {
            return Err(StoreError::AlreadyFinished {
                id: id.clone(),
                status,
            });
        }
        if row.op.cancel_requested_at.is_none() {
            row.op.cancel_requested_at = Some(now);
            row.op.info.cancel_reason = Some(reason.to_owned());
        }
        Ok(row.op.clone())
    }

    async fn fail_orphans(
        &self,
        scope: OrphanScope,
        now: SystemTime,
    ) -> Result<Vec<OperationId>, StoreError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut failed: Vec<(u64, OperationId)> = Vec::new();
        for row in state.ops.values_mut() {
            let owner = row.op.fence.owner;
            let orphan = match scope {
                OrphanScope::ExpiredLeases => !is_live(&state.instances, owner, now),
                OrphanScope::AllBut(me) => owner != me,
            };
            if orphan && row.op.info.status.is_active() {
                let info = &mut row.op.info;
                info.status = OperationStatus::Failed;
                info.completed_at = Some(now);
                info.error_message = Some(interrupted_message(owner));
                failed.push((row.seq, info.operation_id.clone()));
            }
        }
        failed.sort_by_key(|(seq, _)| *seq);
        Ok(failed.into_iter().map(|(_, id)| id).collect())
    }

    async fn get(&self, id: &OperationId) -> Result<Option<StoredOperation>, StoreError> {
        Ok(self.state.lock().ops.get(id).map(|row| row.op.clone()))
    }

    async fn list(&self, filter: &OperationFilter) -> Result<OperationList, StoreError> {
        let state = self.state.lock();
        let mut matched: Vec<&Row> = state
            .ops
            .values()
            .filter(|row| {
                let info = &row.op.info;
                filter.matches(
                    info.status,
                    &info.operation_type,
                    Some(&info.metadata),
                    info.parent_id.as_ref(),
                )
            })
            .collect();
        matched.sort_by_key(|row| Reverse((row.op.info.created_at, row.seq)));
        let active_count = state
            .ops
            .values()
            .filter(|row| row.op.info.status.is_active())
            .count();
        Ok(OperationList {
            total_count: matched.len(),
            operations: matched
                .into_iter()
                .skip(filter.offset)
                .take(filter.limit)
                .map(|row| row.op.info.clone())
                .collect(),
            active_count,
        })
    }

    async fn metrics(
        &self,
        id: &OperationId,
        cursor: u64,
    ) -> Result<Option<MetricsPage>, StoreError> {
        let state = self.state.lock();
        let Some(row) = state.ops.get(id) else {
            return Ok(None);
        };
        let first = row
            .metrics
            .first_key_value()
            .map_or(row.metrics_next, |(&k, _)| k);
        Ok(Some(MetricsPage {
            metrics: row
                .metrics
                .range(cursor..)
                .map(|(_, v)| v.clone())
                .collect(),
            cursor: row.metrics_next,
            dropped: first.saturating_sub(cursor),
        }))
    }

    async fn delete(&self, id: &OperationId) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let row = Self::row(&mut state, id)?;
        let status = row.op.info.status;
        if status.is_active() {
            return Err(StoreError::StillActive {
                id: id.clone(),
                status,
            });
        }
        state.ops.remove(id);
        Ok(())
    }

    async fn prune(&self, policy: &Prune, now: SystemTime) -> Result<usize, StoreError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut finished: Vec<(SystemTime, u64, OperationId)> = state
            .ops
            .values()
            .filter_map(|row| {
                let info = &row.op.info;
                let done = info.completed_at.filter(|_| info.status.is_terminal())?;
                Some((done, row.seq, info.operation_id.clone()))
            })
            .collect();
        // Newest first: whatever lies past `max_finished` goes.
        finished.sort_by_key(|&(done, seq, _)| Reverse((done, seq)));
        let mut removed = 0;
        for (rank, (done, _, id)) in finished.into_iter().enumerate() {
            let too_old = policy.finished_before.is_some_and(|cutoff| done < cutoff);
            let too_many = policy.max_finished.is_some_and(|max| rank >= max);
            if (too_old || too_many) && state.ops.remove(&id).is_some() {
                removed += 1;
            }
        }
        let ops = &state.ops;
        state.instances.retain(|&instance, &mut expires| {
            expires > now
                || ops
                    .values()
                    .any(|row| row.op.fence.owner == instance && row.op.info.status.is_active())
        });
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::OperationType;
    use crate::store::MetricBatch;

    #[tokio::test]
    async fn metrics_are_bounded_per_operation() {
        let store = MemoryStore::new().with_max_metrics_per_operation(3);
        let me = InstanceId::generate();
        let id = OperationId::generate(&OperationType::DUMMY);
        store
            .create(&NewOperation::new(
                id.clone(),
                OperationType::DUMMY,
                Fence::first(me),
            ))
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
}
