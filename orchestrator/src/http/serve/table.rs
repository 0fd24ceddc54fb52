//! The connection table: the open connections oldest first, admission under the
//! connection cap (evicting one that never sent a request, invariant 3 of the module
//! `serve`), and the record of one connection with its in-flight count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Server;

/// 1,024, or ¾ of the soft open-file limit when that is lower (read from
/// `/proc/self/limits` on Linux; elsewhere 1,024).
pub(super) fn default_max_connections() -> usize {
    let from_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        })
        .map(|soft| (soft / 4 * 3).max(1));
    from_limit.map_or(Server::DEFAULT_MAX_CONNECTIONS, |n| {
        n.min(Server::DEFAULT_MAX_CONNECTIONS)
    })
}

/// The open connections, oldest first.
#[derive(Default)]
pub(super) struct Table {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Table {
    /// Inserts `conn` if there is room, or can be made by evicting the oldest
    /// connection that never sent a request head (invariant 3).
    pub(super) fn admit(&self, conn: &Arc<Conn>, max: usize) -> bool {
        let mut conns = self.conns.lock();
        if conns.len() >= max {
            let victim = conns
                .values()
                .find(|c| !c.served.load(Ordering::Acquire))
                .map(|c| c.id);
            let Some(victim) = victim.and_then(|id| conns.remove(&id)) else {
                return false;
            };
            victim.evict.cancel();
        }
        conns.insert(conn.id, Arc::clone(conn));
        true
    }

    /// Closes up to `n` of the oldest connections that never sent a request head;
    /// returns how many.
    pub(super) fn evict_unserved(&self, n: usize) -> usize {
        let mut conns = self.conns.lock();
        let victims: Vec<u64> = conns
            .values()
            .filter(|c| !c.served.load(Ordering::Acquire))
            .take(n)
            .map(|c| c.id)
            .collect();
        for id in &victims {
            if let Some(victim) = conns.remove(id) {
                victim.evict.cancel();
            }
        }
        victims.len()
    }

    pub(super) fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.conns.lock().len()
    }
}

/// What the server knows about one connection.
pub(super) struct Conn {
    pub(super) id: u64,
    opened: Instant,
    /// A complete request head arrived (the service was called at least once).
    served: AtomicBool,
    /// Requests whose handler has not returned yet.
    pub(super) in_flight: AtomicUsize,
    /// Milliseconds after `opened` when a byte was last read or written.
    last_activity_ms: AtomicU64,
    /// Cancelled to close the connection at once (eviction).
    pub(super) evict: CancellationToken,
}

impl Conn {
    pub(super) fn new(id: u64) -> Self {
        Self {
            id,
            opened: Instant::now(),
            served: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(0),
            evict: CancellationToken::new(),
        }
    }

    pub(super) fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    pub(super) fn idle_deadline(&self, idle: Duration) -> Instant {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.opened + last + idle
    }
}

/// Decrements the in-flight count when a handler returns (or is dropped).
pub(super) struct InFlight(Arc<Conn>);

impl InFlight {
    pub(super) fn start(conn: Arc<Conn>) -> Self {
        conn.served.store(true, Ordering::Release);
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}
