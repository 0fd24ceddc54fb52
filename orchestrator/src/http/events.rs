//! `GET /operations/{id}/events`: progress as Server-Sent Events.
//!
//! The stream is a plain [`Stream`](futures::Stream) with no task of its own: when the
//! client disconnects, hyper drops the response body, which drops the stream and with
//! it the watch on the operation. Nothing is left behind.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::{
    OperationId, OperationInfo, OperationProgress, OperationStatus, OperationWatch, Operations,
};

/// The least time between two events of one stream: changes in between are
/// coalesced into one event.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How often a comment line is sent while nothing changes, so idle proxies keep the
/// connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE response of the events routes.
pub(crate) type EventStream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// The most ids one multiplexed stream (`GET /operations/events?ids=`) takes: 60 ids
/// of the longest kind are 7,739 bytes, within the server's 8 KiB request target.
pub(crate) const MAX_MULTIPLEXED: usize = 60;

/// One event before it is numbered: its name and the record it carries.
type Change = (&'static str, OperationInfo);

/// What was last sent: the status and the progress without its ETA (which moves with
/// the clock, not with the work).
#[derive(PartialEq)]
struct Seen {
    status: OperationStatus,
    progress: OperationProgress,
}

impl Seen {
    fn of(info: &OperationInfo) -> Self {
        let mut progress = info.progress.clone();
        progress.eta_seconds = None;
        Self {
            status: info.status,
            progress,
        }
    }
}

struct State {
    watch: OperationWatch,
    /// When the last event was sent: changes within `CHECK_INTERVAL` of it are
    /// coalesced into the next one.
    sent_at: Option<Instant>,
    last: Option<Seen>,
}

/// The stream of `first`'s operation; `slot` (its place under the stream cap) is held
/// until the stream is dropped.
///
/// It is pushed, not polled: it waits on the operation's change notification
/// ([`OperationWatch`]), so an idle stream costs nothing but its keep-alive comment;
/// a busy one sends at most one event per `CHECK_INTERVAL`.
pub(crate) fn event_stream(
    ops: &Operations,
    first: &OperationInfo,
    slot: OwnedSemaphorePermit,
) -> EventStream {
    sse(numbered(changes(ops, first), slot))
}

/// The events of several operations in one stream (the multiplexed route): each
/// operation's `progress` and `done` events as [`event_stream`] sends them,
/// interleaved as they come, one `gone` event (data `{"operation_id": …}`) for each
/// id in `missing`; the stream ends once every operation has sent its `done`. One
/// `slot` for the whole stream.
pub(crate) fn multiplexed_stream(
    ops: &Operations,
    found: &[OperationInfo],
    missing: Vec<OperationId>,
    slot: OwnedSemaphorePermit,
) -> EventStream {
    let gone = stream::iter(missing).map(|id| Ok(gone_event(&id)));
    let each = stream::select_all(found.iter().map(|first| changes(ops, first)));
    sse(gone.chain(numbered(each.boxed(), slot)).boxed())
}

/// `changes` numbered from 1 as SSE events, holding `slot` (its place under the
/// stream cap) as long as the stream lives.
fn numbered(
    changes: BoxStream<'static, Change>,
    slot: OwnedSemaphorePermit,
) -> BoxStream<'static, Result<Event, Infallible>> {
    changes
        .enumerate()
        .map(move |(seq, (name, info))| {
            let _ = &slot;
            Ok(event(name, seq as u64 + 1, &info))
        })
        .boxed()
}

/// The response of an events route: `events`, with a keep-alive comment while idle.
fn sse(events: BoxStream<'static, Result<Event, Infallible>>) -> EventStream {
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// The changes of `first`'s operation: `progress` records, then `done`.
fn changes(ops: &Operations, first: &OperationInfo) -> BoxStream<'static, Change> {
    let watch = if first.status.is_terminal() {
        None
    } else {
        // NotFound only if it ended and was deleted since `first` was read.
        ops.watch(&first.operation_id).ok()
    };
    match watch {
        None if first.status.is_terminal() => {
            stream::once(std::future::ready(("done", first.clone()))).boxed()
        }
        // Another replica's operation: read from the store.
        None if ops.durable().is_some() => remote_changes(ops.clone(), first),
        None => stream::empty().boxed(),
        Some(watch) => {
            let state = State {
                watch,
                sent_at: None,
                last: None,
            };
            stream::unfold(Some(state), next_change).boxed()
        }
    }
}

/// The next change: a `progress` record once something changed, or the `done` record
/// as soon as the operation ends; `None` after `done`.
async fn next_change(state: Option<State>) -> Option<(Change, Option<State>)> {
    let mut st = state?;
    loop {
        if let Some(sent_at) = st.sent_at {
            st.watch.changed().await;
            tokio::time::sleep_until(sent_at + CHECK_INTERVAL).await;
        }
        // The version first, then the record: a change in between is sent next time.
        st.watch.mark_seen();
        let info = st.watch.get();
        if info.status.is_terminal() {
            // `done` is an acknowledgement: with a store, only once the end is in it.
            st.watch.finished().await;
            return Some((("done", info), None));
        }
        st.sent_at = Some(Instant::now());
        let seen = Seen::of(&info);
        if st.last.as_ref() != Some(&seen) {
            st.last = Some(seen);
            return Some((("progress", info), Some(st)));
        }
    }
}

/// How often the stream of another replica's operation re-reads it from the store
/// (whose progress is itself at most one flush interval old).
const REMOTE_POLL: Duration = Duration::from_millis(250);

/// The changes of an operation owned by another replica: its stored record, re-read
/// every `REMOTE_POLL`, sent when it changed; `done` at the end. A read that fails
/// (the store unreachable) is retried at the next poll; the stream ends if the
/// operation is gone.
fn remote_changes(ops: Operations, first: &OperationInfo) -> BoxStream<'static, Change> {
    let start = (ops, first.operation_id.clone(), Seen::of(first));
    let opening = stream::once(std::future::ready(("progress", first.clone())));
    let rest = stream::unfold(Some(start), |state| async move {
        let (ops, id, mut last) = state?;
        loop {
            tokio::time::sleep(REMOTE_POLL).await;
            let info = match ops.cluster().get(&id).await {
                Ok(info) => info,
                Err(crate::OrchestratorError::NotFound(_)) => return None,
                Err(_) => continue,
            };
            if info.status.is_terminal() {
                return Some((("done", info), None));
            }
            let seen = Seen::of(&info);
            if seen != last {
                last = seen;
                return Some((("progress", info), Some((ops, id, last))));
            }
        }
    });
    opening.chain(rest).boxed()
}

fn event(name: &str, seq: u64, info: &OperationInfo) -> Event {
    // An OperationInfo is always serialisable (string keys; serde_json writes a
    // non-finite float as null), but never panic in a response body.
    let data = serde_json::to_string(info).unwrap_or_else(|e| {
        serde_json::json!({"operation_id": info.operation_id, "error": e.to_string()}).to_string()
    });
    Event::default().event(name).id(seq.to_string()).data(data)
}

/// The `gone` event of the multiplexed stream: `id` is not (or no longer) known.
fn gone_event(id: &OperationId) -> Event {
    Event::default()
        .event("gone")
        .data(serde_json::json!({ "operation_id": id }).to_string())
}
