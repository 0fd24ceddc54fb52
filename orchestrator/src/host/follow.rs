//! The follower of one proxy: reads the host's record once per TTL, copies it into
//! the local entry, forwards a cancel, and ends the proxy as the host ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::HostService;
use super::check;
use super::start::error_chain;
use crate::client::ClientError;
use crate::entry::{Ending, Entry};
use crate::{OperationId, OperationInfo, OperationStatus};

/// How many ticks may pass without reading new metric records while the record does
/// not change (records usually come with a progress report, which triggers a read).
const METRICS_EVERY: u32 = 5;

/// Where the follower stands.
struct Follower {
    host: HostService,
    entry: Arc<Entry>,
    host_id: OperationId,
    /// The last accepted record's status.
    last_status: OperationStatus,
    /// The last accepted record, to tell whether it changed.
    last_seen: Option<OperationInfo>,
    /// The host's metric cursor copied so far.
    cursor: u64,
    ticks_since_metrics: u32,
    /// When the host last answered.
    last_contact: Instant,
    /// The cancel was taken by the host (or it had ended already).
    cancel_forwarded: bool,
}

impl HostService {
    /// Follows the proxy `entry` until the host's record ends (or the host is lost).
    pub(super) async fn follow(self, entry: Arc<Entry>) {
        let Some(remote) = entry.remote() else { return };
        let host_id = remote.host_operation_id.clone();
        let mut follower = Follower {
            host: self,
            entry,
            host_id,
            last_status: OperationStatus::Pending,
            last_seen: None,
            cursor: 0,
            ticks_since_metrics: 0,
            last_contact: Instant::now(),
            cancel_forwarded: false,
        };
        follower.run().await;
    }
}

impl Follower {
    async fn run(&mut self) {
        let mut tick = tokio::time::interval(self.host.ttl);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let cancel_pending = !self.cancel_forwarded && self.entry.token.is_cancelled();
            if !cancel_pending {
                let token = self.entry.token.clone();
                tokio::select! {
                    _ = tick.tick() => {}
                    () = token.cancelled(), if !self.cancel_forwarded => {}
                }
            }
            if !self.cancel_forwarded && self.entry.token.is_cancelled() {
                if let Some(ending) = self.forward_cancel().await {
                    self.end(ending);
                    return;
                }
            }
            if let Some(ending) = self.refresh().await {
                self.end(ending);
                return;
            }
            if !self.cancel_forwarded && self.entry.token.is_cancelled() {
                // The cancel did not get through: try again after one TTL, not at once.
                tick.tick().await;
            }
        }
    }

    /// Sends the cancel once; `Some` when the proxy must end (the host lost it).
    async fn forward_cancel(&mut self) -> Option<Ending> {
        let reason = self
            .entry
            .token
            .reason()
            .map_or_else(|| "cancelled".to_owned(), |r| r.to_string());
        match self.host.reads.cancel(&self.host_id, Some(&reason)).await {
            Ok(_) => {
                self.last_contact = Instant::now();
                self.cancel_forwarded = true;
                tracing::info!(operation_id = %self.entry.id, host = %self.host.url, "cancel forwarded to host service");
                None
            }
            // It ended meanwhile: the next read copies how.
            Err(ClientError::Rejected { status: 409, .. }) => {
                self.cancel_forwarded = true;
                None
            }
            Err(ClientError::Rejected { status: 404, .. }) => Some(self.lost()),
            Err(e) => {
                tracing::warn!(operation_id = %self.entry.id, host = %self.host.url, error = %e, "cannot forward the cancel yet; retrying");
                self.unreachable_for_too_long(&e)
            }
        }
    }

    /// Reads the host's record once and copies it; `Some` when the proxy must end.
    async fn refresh(&mut self) -> Option<Ending> {
        let info = match self.host.reads.get(&self.host_id).await {
            Ok(info) => info,
            Err(ClientError::Rejected { status: 404, .. }) => return Some(self.lost()),
            Err(e) => {
                tracing::debug!(operation_id = %self.entry.id, host = %self.host.url, error = %e, "host service read failed");
                return self.unreachable_for_too_long(&e);
            }
        };
        self.last_contact = Instant::now();
        if let Err(why) = check::next_record(&self.host_id, self.last_status, &info) {
            tracing::warn!(operation_id = %self.entry.id, host = %self.host.url, "ignoring a host record: {why}");
            return None;
        }
        let changed = self.last_seen.as_ref().is_none_or(|last| {
            last.progress != info.progress || last.result_summary != info.result_summary
        });
        self.last_status = info.status;
        self.ticks_since_metrics += 1;
        if changed || info.status.is_terminal() || self.ticks_since_metrics >= METRICS_EVERY {
            self.copy_metrics().await;
        }
        if changed {
            self.entry.mirror_progress(info.progress.clone());
            if !info.status.is_terminal() {
                if let Some(partial) = &info.result_summary {
                    self.entry.set_partial_result(partial.clone());
                }
            }
        }
        let ending = info.status.is_terminal().then(|| Ending::Mirrored {
            status: info.status,
            summary: info.result_summary.clone(),
            error: info.error_message.clone(),
        });
        self.last_seen = Some(info);
        ending
    }

    /// Copies the metric records after the cursor (every page of them).
    async fn copy_metrics(&mut self) {
        self.ticks_since_metrics = 0;
        // Bounded: a host that keeps handing out pages cannot keep the follower here.
        for _ in 0..64 {
            let page = match self.host.reads.metrics(&self.host_id, self.cursor).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::debug!(operation_id = %self.entry.id, error = %e, "cannot read the host's metrics");
                    return;
                }
            };
            if page.cursor <= self.cursor || page.metrics.is_empty() {
                self.cursor = self.cursor.max(page.cursor);
                return;
            }
            for record in page.metrics {
                let size = serde_json::to_vec(&record).map_or(usize::MAX, |v| v.len());
                if let Err(e) = self.entry.push_metric(record, size) {
                    tracing::warn!(operation_id = %self.entry.id, error = %e, "dropping a host metric record");
                }
            }
            self.cursor = page.cursor;
        }
    }

    /// `Some(FAILED)` once the host has been unreachable for the grace.
    fn unreachable_for_too_long(&self, e: &ClientError) -> Option<Ending> {
        let grace = self.host.grace;
        (self.last_contact.elapsed() >= grace).then(|| {
            Ending::Failed(format!(
                "host service {} unreachable for {}: {}",
                self.host.url,
                seconds(grace),
                error_chain(e)
            ))
        })
    }

    fn lost(&self) -> Ending {
        Ending::Failed(format!(
            "host service {} lost the operation {} (404)",
            self.host.url, self.host_id
        ))
    }

    fn end(&self, ending: Ending) {
        match self.entry.finish(ending) {
            Ok(status) => {
                tracing::info!(operation_id = %self.entry.id, host = %self.host.url, %status, "proxy ended");
            }
            Err(e) => {
                tracing::debug!(operation_id = %self.entry.id, error = %e, "proxy already ended");
            }
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
