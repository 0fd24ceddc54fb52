//! A lifecycle writer lane: applies the create, start and end of its operations in
//! the order they happened, one at a time, retrying a failed write with backoff until
//! the store takes it. A registry runs several lanes (an operation always in the same
//! one), so different operations' writes overlap while each one's stay in order.
//!
//! Every write is idempotent against a retry: when a try that timed out was in fact
//! applied, the retry is refused (`AlreadyExists`, `IllegalTransition`,
//! `AlreadyFinished`) and the writer moves on, so nothing is applied twice.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Finish, NewOperation, StoreError};
use crate::{OperationInfo, OperationStatus};

use super::{Durable, Step, Write};

/// The first retry waits this long; each next one twice as long, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Applies the writes of `rx` until every sender is gone (the registry and all its
/// entries were dropped).
pub(crate) async fn run(durable: std::sync::Weak<Durable>, mut rx: mpsc::UnboundedReceiver<Write>) {
    while let Some(write) = rx.recv().await {
        // The entry holds the ledger, which holds the `Durable`: it is alive.
        let Some(d) = durable.upgrade() else {
            return;
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            match apply(&d, &write).await {
                Ok(()) => break,
                Err(e) if is_transient(&e) => {
                    tracing::warn!(operation_id = %write.entry.id, step = ?write.step, error = %e, retry_in = ?backoff, "operation store write failed; retrying");
                    d.health.writer_failed(&e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    // Refused: applied by an earlier try, or the store moved on (the
                    // operation was declared an orphan by another replica).
                    tracing::debug!(operation_id = %write.entry.id, step = ?write.step, error = %e, "operation store refused a write");
                    break;
                }
            }
        }
        d.health.writer_ok();
        write.entry.mark_persisted(write.step);
        d.applied();
    }
}

/// A failure worth retrying: the store could not be reached or failed, as opposed to
/// a refusal of the write itself.
const fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(_) | StoreError::Connect { .. })
}

async fn apply(d: &Durable, write: &Write) -> Result<(), StoreError> {
    let store = &*d.store;
    let entry = &write.entry;
    let fence = d.fence(entry);
    match write.step {
        Step::Create => {
            let info = entry.info();
            // As registered: the work may have started and moved on meanwhile, and
            // a PENDING record must not show progress.
            let mut progress = crate::OperationProgress::default();
            progress.steps_total = info.progress.steps_total;
            let op = NewOperation::from_info(&info, fence).with_progress(progress);
            match store.create(&op).await {
                Err(StoreError::AlreadyExists(_)) => Ok(()),
                other => other,
            }
        }
        Step::Start => {
            let started_at = entry.started_at().unwrap_or(entry.created_at());
            store.start(&entry.id, fence, started_at).await
        }
        Step::Finish => {
            let finish = finish_of(entry.info());
            store.finish(&entry.id, fence, &finish).await
        }
    }
}

/// The store's terminal transition for a finished record: its status, time, final
/// progress and cancel reason, with the summary (also the partial one kept by a
/// failed or cancelled operation) and the error.
fn finish_of(mut info: OperationInfo) -> Finish {
    let at = info.completed_at.unwrap_or(info.created_at);
    let mut finish = match info.status {
        OperationStatus::Completed => Finish::completed(
            at,
            info.result_summary
                .take()
                .unwrap_or(serde_json::Value::Null),
        ),
        OperationStatus::Failed => {
            Finish::failed(at, info.error_message.take().unwrap_or_default())
        }
        _ => Finish::cancelled(at),
    }
    .with_progress(info.progress);
    if let Some(summary) = info.result_summary {
        finish = finish.with_result(summary);
    }
    if let Some(error) = info.error_message {
        finish = finish.with_error(error);
    }
    if let Some(reason) = info.cancel_reason {
        finish = finish.with_cancel_reason(reason);
    }
    finish
}
