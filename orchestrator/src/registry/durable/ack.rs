//! Acknowledging a create only once it is durable, without making `spawn` async.
//!
//! A request handler runs inside [`scope`]; every operation registered in its task
//! meanwhile is collected, and the caller (the HTTP layer) waits for their creates to
//! be written before it answers. Outside a scope, or without a store, nothing is
//! collected.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::entry::Entry;

type Collected = Arc<Mutex<Vec<Arc<Entry>>>>;

tokio::task_local! {
    static CREATED: Collected;
}

/// Called by the registry for each operation it registers with a store.
pub(crate) fn created(entry: &Arc<Entry>) {
    let _ = CREATED.try_with(|c| c.lock().push(entry.clone()));
}

/// Runs `f`, returning its output and the operations it registered with a store.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) async fn scope<F: Future>(f: F) -> (F::Output, Vec<Arc<Entry>>) {
    let collected = Collected::default();
    let output = CREATED.scope(collected.clone(), f).await;
    let entries = std::mem::take(&mut *collected.lock());
    (output, entries)
}
