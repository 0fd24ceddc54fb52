//! The background sweeper: removes finished operations older than the retention.
//!
//! It is a plain thread, not a task: `cleanup` is synchronous, and a task would die
//! with the runtime it was spawned on (the temporary runtime of `run_sync`, say),
//! leaving finished records to pile up for ever. The thread holds only a weak
//! reference to the registry and is woken to exit when the registry is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::Operations;
use crate::operations::Shared;

/// Owned by the registry: dropping it stops the sweeper thread.
#[derive(Debug, Default)]
pub(crate) struct Stop(Arc<Signal>);

#[derive(Debug, Default)]
struct Signal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Drop for Stop {
    fn drop(&mut self) {
        *self.0.stopped.lock() = true;
        self.0.wake.notify_all();
    }
}

/// Starts the sweeper thread of `registry`, which runs every `interval`.
pub(crate) fn start(registry: Weak<Shared>, interval: Duration) {
    let Some(shared) = registry.upgrade() else {
        return;
    };
    let signal = shared.sweeper.0.clone();
    drop(shared);
    let spawned = std::thread::Builder::new()
        .name("orchestrator-sweeper".to_owned())
        .spawn(move || {
            loop {
                {
                    let mut stopped = signal.stopped.lock();
                    if !*stopped {
                        signal.wake.wait_for(&mut stopped, interval);
                    }
                    if *stopped {
                        return;
                    }
                }
                let Some(shared) = registry.upgrade() else {
                    return;
                };
                let retention = shared.retention;
                let removed = Operations::from_shared(shared).cleanup(retention);
                if removed > 0 {
                    tracing::debug!(removed, "swept finished operations");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the sweeper thread; finished operations are kept until `cleanup` is called or the retained limit evicts them");
    }
}
