//! The handlers of the operations API. Each is a few lines over [`Operations`]; the
//! `#[utoipa::path]` on each is both its OpenAPI entry and its route (see `router`).

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::StreamLimit;
use super::events::{EventStream, MAX_MULTIPLEXED, event_stream, multiplexed_stream};
use super::extract::{ApiJson, ApiQuery, OpId};
use super::openapi::OperationEvent;
use super::response::{ApiError, ApiResponse, ApiResult, ErrorResponse, OperationListResponse};
use crate::{
    MetricsPage, OperationFilter, OperationId, OperationInfo, OperationStatus, OperationType,
    Operations, OrchestratorError,
};

/// Largest page a list request may ask for.
pub(crate) const MAX_LIMIT: usize = 1000;
/// How long `/wait` waits when the request does not say.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest `/wait` ever waits, whatever the request says.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);
/// The largest integer query parameter (`offset`, `cursor`, `timeout_ms`) accepted:
/// 2^53 − 1, the largest integer every JSON client represents exactly. The documented
/// `maximum` and the check are the same number.
pub(crate) const MAX_QUERY_INTEGER: u64 = (1 << 53) - 1;

/// Query of `GET /operations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only operations with this status (case-insensitive).
    #[serde(default, deserialize_with = "status_param")]
    #[param(value_type = Option<OperationStatus>)]
    status: Option<OperationStatus>,
    /// Only operations of this type (`DUMMY`, `DATA_LOAD`, `TRAINING`, `BACKTEST` or a
    /// custom name; case-insensitive, `-` and spaces read as `_`). Empty: no type filter.
    #[param(value_type = Option<String>, pattern = "^([A-Za-z]([A-Za-z0-9_ -]{0,62}[A-Za-z0-9_-])?)?$")]
    operation_type: Option<String>,
    /// Only operations carrying this label, as `key:value` (see
    /// `OperationMetadata::labels`).
    #[param(value_type = Option<String>, pattern = "^[^:]+:")]
    label: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// How many matches to skip (default 0; at most 2^53 − 1).
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    offset: Option<u64>,
    /// Only `PENDING` and `RUNNING` operations (default `false`).
    active_only: Option<bool>,
    /// Only the children of this operation (an operation id).
    #[param(value_type = Option<OperationId>)]
    parent_id: Option<String>,
}

/// `value` if it is at most [`MAX_QUERY_INTEGER`], else 400 `INVALID_QUERY`.
fn checked_integer(name: &str, value: u64) -> Result<u64, ApiError> {
    if value > MAX_QUERY_INTEGER {
        return Err(ApiError::invalid_query(format!(
            "{name} must be at most {MAX_QUERY_INTEGER}, got {value}"
        )));
    }
    Ok(value)
}

fn status_param<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OperationStatus>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ListQuery {
    fn into_filter(self) -> Result<OperationFilter, ApiError> {
        let limit = self.limit.unwrap_or(OperationFilter::DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_query(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let offset = checked_integer("offset", self.offset.unwrap_or(0))?;
        let mut filter = OperationFilter::new()
            .with_limit(limit)
            .with_offset(usize::try_from(offset).unwrap_or(usize::MAX));
        if let Some(status) = self.status {
            filter = filter.with_status(status);
        }
        if let Some(kind) = self.operation_type.filter(|k| !k.is_empty()) {
            // Exactly what the document's pattern says: no surrounding whitespace.
            if kind.trim() != kind {
                return Err(ApiError::invalid_query(format!(
                    "operation_type {kind:?} has surrounding whitespace"
                )));
            }
            let kind =
                OperationType::new(&kind).map_err(|e| ApiError::invalid_query(e.to_string()))?;
            filter = filter.with_type(kind);
        }
        if let Some(label) = self.label {
            let (key, value) = label
                .split_once(':')
                .filter(|(key, _)| !key.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid_query(format!("label must be `key:value`, got {label:?}"))
                })?;
            filter = filter.with_label(key, value);
        }
        if self.active_only.unwrap_or(false) {
            filter = filter.active_only();
        }
        if let Some(parent) = self.parent_id {
            let parent = parent
                .parse()
                .map_err(|e: crate::InvalidOperationId| ApiError::invalid_query(e.to_string()))?;
            filter = filter.with_parent(parent);
        }
        Ok(filter)
    }
}

/// Lists operations, newest first, filtered and paged.
#[utoipa::path(
    get,
    path = "/operations",
    tag = "operations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of operations with the total match count and the active count", body = OperationListResponse),
        (status = 400, description = "`INVALID_QUERY`: a malformed or out-of-range parameter", body = ErrorResponse),
    )
)]
pub(crate) async fn list_operations(
    State(ops): State<Operations>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<OperationListResponse, ApiError> {
    Ok(ops.cluster().list(&query.into_filter()?).await?.into())
}

/// Lists the children of an operation (those it started with `spawn_child`), newest
/// first, filtered and paged as the list is.
#[utoipa::path(
    get,
    path = "/operations/{id}/children",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The parent operation's id"), ListQuery),
    responses(
        (status = 200, description = "A page of the operation's children", body = OperationListResponse),
        (status = 400, description = "`INVALID_OPERATION_ID`, or `INVALID_QUERY`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`: no such parent", body = ErrorResponse),
    )
)]
pub(crate) async fn operation_children(
    State(ops): State<Operations>,
    OpId(id): OpId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<OperationListResponse, ApiError> {
    let cluster = ops.cluster();
    cluster.get(&id).await?;
    let filter = query.into_filter()?.with_parent(id);
    Ok(cluster.list(&filter).await?.into())
}

/// Reads one operation.
#[utoipa::path(
    get,
    path = "/operations/{id}",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id")),
    responses(
        (status = 200, description = "The operation's current record", body = ApiResponse<OperationInfo>),
        (status = 400, description = "`INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
    )
)]
pub(crate) async fn get_operation(
    State(ops): State<Operations>,
    OpId(id): OpId,
) -> ApiResult<OperationInfo> {
    Ok(ops.cluster().get(&id).await?.into())
}

/// Body of `POST /operations/{id}/cancel` (optional: an empty body is fine).
///
/// # Examples
///
/// ```
/// use orchestrator::http::CancelRequest;
///
/// let req: CancelRequest = serde_json::from_str(r#"{"reason": "superseded"}"#)?;
/// assert_eq!(req.reason.as_deref(), Some("superseded"));
/// assert_eq!(serde_json::from_str::<CancelRequest>("{}")?, CancelRequest::default());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CancelRequest {
    /// Why it is cancelled; recorded as `cancel_reason` (default `cancelled via API`).
    pub reason: Option<String>,
}

/// Requests cancellation of an active operation.
///
/// A `PENDING` operation is `CANCELLED` at once; a `RUNNING` one keeps its status, with
/// `cancel_reason` set, until it stops (at its next cancellation check, or when its
/// grace period ends).
#[utoipa::path(
    post,
    path = "/operations/{id}/cancel",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id")),
    request_body(content = CancelRequest, description = "Optional reason", content_type = "application/json"),
    responses(
        (status = 200, description = "Cancellation requested; the record after the request", body = ApiResponse<OperationInfo>),
        (status = 400, description = "`INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
        (status = 409, description = "`OPERATION_FINISHED`: it already reached a terminal state", body = ErrorResponse),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorResponse),
        (status = 408, description = "`REQUEST_TIMEOUT`: the body did not arrive in time", body = ErrorResponse),
        (status = 415, description = "`INVALID_REQUEST`: the content type is not JSON (even with an empty body)", body = ErrorResponse),
        (status = 422, description = "`INVALID_REQUEST`: malformed JSON or an unknown field", body = ErrorResponse),
    )
)]
pub(crate) async fn cancel_operation(
    State(ops): State<Operations>,
    OpId(id): OpId,
    ApiJson(req): ApiJson<CancelRequest>,
) -> ApiResult<OperationInfo> {
    let reason = req.reason.as_deref().unwrap_or("cancelled via API");
    ops.cluster().cancel(&id, reason).await?;
    Ok(ops.cluster().get(&id).await?.into())
}

/// Body of `POST /operations/{id}/resume`: an empty object (`{}`), or no body with
/// `content-type: application/json`. Unknown fields are refused (422), so that
/// options added later cannot be silently ignored by an older server.
///
/// # Examples
///
/// ```
/// use orchestrator::http::ResumeRequest;
///
/// assert_eq!(serde_json::from_str::<ResumeRequest>("{}")?, ResumeRequest::default());
/// assert!(serde_json::from_str::<ResumeRequest>(r#"{"from": 3}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ResumeRequest {}

/// Resumes a `FAILED` or `CANCELLED` operation from its last checkpoint.
///
/// Starts its next attempt (same id, `attempt` + 1) with the fn this server registered
/// for its kind, which continues from the state the operation last saved; follow it
/// as any operation (`/wait`, `/events`). With a store, any replica can resume any
/// operation; of two resumes at once, one wins (the other gets `ALREADY_RESUMED`).
#[utoipa::path(
    post,
    path = "/operations/{id}/resume",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id")),
    request_body(content = ResumeRequest, description = "Empty (`{}`, or no body)", content_type = "application/json"),
    responses(
        (status = 200, description = "The new attempt's record (`PENDING` or `RUNNING`, `attempt` one more)", body = ApiResponse<OperationInfo>),
        (status = 400, description = "`INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
        (status = 409, description = "`OPERATION_NOT_RESUMABLE`: it completed, is still active, or this server resumes no operation of its kind; `NO_CHECKPOINT`: it never saved a checkpoint; `ALREADY_RESUMED`: another resume won", body = ErrorResponse),
        (status = 408, description = "`REQUEST_TIMEOUT`: the body did not arrive in time", body = ErrorResponse),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorResponse),
        (status = 415, description = "`INVALID_REQUEST`: the content type is not JSON (even with an empty body)", body = ErrorResponse),
        (status = 422, description = "`INVALID_REQUEST`: malformed JSON or an unknown field", body = ErrorResponse),
        (status = 429, description = "`TOO_MANY_OPERATIONS`", body = ErrorResponse),
    )
)]
pub(crate) async fn resume_operation(
    State(ops): State<Operations>,
    OpId(id): OpId,
    ApiJson(ResumeRequest {}): ApiJson<ResumeRequest>,
) -> ApiResult<OperationInfo> {
    Ok(ops.resume(&id).await?.into())
}

pub use crate::wire::DeletedOperation;

/// Cancels an active operation, or removes a finished one.
#[utoipa::path(
    delete,
    path = "/operations/{id}",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id")),
    responses(
        (status = 200, description = "`deleted: true` when a finished operation was removed; `deleted: false` when an active one was asked to cancel", body = ApiResponse<DeletedOperation>),
        (status = 400, description = "`INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
    )
)]
pub(crate) async fn delete_operation(
    State(ops): State<Operations>,
    OpId(id): OpId,
) -> ApiResult<DeletedOperation> {
    let cluster = ops.cluster();
    let (deleted, operation) = match cluster.cancel(&id, "cancelled via DELETE").await {
        Ok(_) => (false, cluster.get(&id).await?),
        Err(OrchestratorError::AlreadyFinished { .. }) => (true, cluster.delete(&id).await?),
        Err(e) => return Err(e.into()),
    };
    Ok(DeletedOperation::new(deleted, operation).into())
}

/// Query of `GET /operations/{id}/metrics`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MetricsQuery {
    /// Only records after this cursor (default 0: all retained records; at most
    /// 2^53 − 1).
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    cursor: Option<u64>,
}

/// Reads the metric records of an operation after a cursor.
#[utoipa::path(
    get,
    path = "/operations/{id}/metrics",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id"), MetricsQuery),
    responses(
        (status = 200, description = "Records after `cursor`, oldest first, and the cursor to pass next", body = ApiResponse<MetricsPage>),
        (status = 400, description = "`INVALID_OPERATION_ID` or `INVALID_QUERY`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
    )
)]
pub(crate) async fn operation_metrics(
    State(ops): State<Operations>,
    OpId(id): OpId,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<MetricsPage> {
    let cursor = checked_integer("cursor", query.cursor.unwrap_or(0))?;
    Ok(ops.cluster().metrics(&id, cursor).await?.into())
}

/// Query of `GET /operations/{id}/wait`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WaitQuery {
    /// How long to wait in milliseconds (default 30 000; values above 60 000 wait
    /// 60 000; at most 2^53 − 1).
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    timeout_ms: Option<u64>,
}

/// Long-polls until the operation reaches a terminal state, or the timeout passes.
///
/// Wakes on the terminal transition itself, not by polling. Check `status` in the
/// answer: terminal when it ended, `PENDING`/`RUNNING` when the timeout passed first.
#[utoipa::path(
    get,
    path = "/operations/{id}/wait",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id"), WaitQuery),
    responses(
        (status = 200, description = "The final record, or the current one at the timeout", body = ApiResponse<OperationInfo>),
        (status = 400, description = "`INVALID_OPERATION_ID` or `INVALID_QUERY`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
        (status = 503, description = "`TOO_MANY_STREAMS`: as many streams and long-polls are open as allowed", body = ErrorResponse,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn wait_operation(
    State(ops): State<Operations>,
    State(streams): State<StreamLimit>,
    OpId(id): OpId,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> ApiResult<OperationInfo> {
    let timeout_ms = checked_integer("timeout_ms", query.timeout_ms.unwrap_or(0))?;
    let timeout = query
        .timeout_ms
        .map_or(DEFAULT_WAIT, |_| Duration::from_millis(timeout_ms))
        .min(MAX_WAIT);
    let _slot = streams.acquire()?;
    let cluster = ops.cluster();
    let info = match tokio::time::timeout(timeout, cluster.wait(&id)).await {
        Ok(finished) => finished?,
        Err(_elapsed) => cluster.get(&id).await?,
    };
    Ok(info.into())
}

/// Streams the operation's progress as Server-Sent Events.
///
/// An event `progress` (data: the `OperationInfo` JSON) whenever the progress or status
/// changed (pushed by the operation, coalesced to at most one per 100 ms); then one event `done` with the
/// terminal record, and the stream ends. For an operation that already finished, the
/// `done` event is the only one.
#[utoipa::path(
    get,
    path = "/operations/{id}/events",
    tag = "operations",
    params(("id" = OperationId, Path, description = "The operation id")),
    responses(
        (status = 200, description = "`text/event-stream`: `progress` events, then one `done` event; each event's data is an OperationInfo as JSON", content_type = "text/event-stream", body = OperationEvent),
        (status = 400, description = "`INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 404, description = "`OPERATION_NOT_FOUND`", body = ErrorResponse),
        (status = 503, description = "`TOO_MANY_STREAMS`: as many streams and long-polls are open as allowed", body = ErrorResponse,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn operation_events(
    State(ops): State<Operations>,
    State(streams): State<StreamLimit>,
    OpId(id): OpId,
) -> Result<EventStream, ApiError> {
    let slot = streams.acquire()?;
    let first = ops.cluster().get(&id).await?;
    Ok(event_stream(&ops, &first, slot))
}

/// Query of `GET /operations/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// The operations to follow: 1–60 operation ids, comma-separated.
    // `^ID(,ID){0,59}$`, ID the operation id's pattern with its type slug bounded so
    // that every id the pattern allows is at most 128 characters (so valid). No
    // `maxLength`: the pattern bounds it (7,739 ASCII bytes, within the server's 8 KiB
    // request target), and a longer value would meet the server's 414 before the
    // handler's 400.
    #[param(value_type = String, pattern = "^op_[a-z0-9_]{1,100}_[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])_([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9]|60)_[0-9a-f]{8}(,op_[a-z0-9_]{1,100}_[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])_([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9]|60)_[0-9a-f]{8}){0,59}$")]
    ids: String,
}

impl EventsQuery {
    /// The ids, in order, without repeats; 400 for more than [`MAX_MULTIPLEXED`]
    /// (repeats counted: the documented pattern counts them) or an item that is not
    /// an operation id (an empty list is one empty item).
    fn ids(&self) -> Result<Vec<OperationId>, ApiError> {
        let items = self.ids.split(',');
        if items.clone().count() > MAX_MULTIPLEXED {
            return Err(ApiError::invalid_query(format!(
                "ids names more than {MAX_MULTIPLEXED} operations"
            )));
        }
        let mut ids: Vec<OperationId> = Vec::new();
        for raw in items {
            let id: OperationId = raw.parse()?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// Streams the progress of several operations as Server-Sent Events, on one
/// connection.
///
/// The events of each operation are those of `/operations/{id}/events` (`progress`
/// records, then one `done`; the data is the `OperationInfo` JSON, which names the
/// operation), interleaved as they come; an id that is not known gets one `gone`
/// event (data `{"operation_id": …}`) first. The stream ends once every known
/// operation has sent its `done`. One stream counts once against the cap, whatever
/// it follows: a page showing many running operations needs one connection, not one
/// per operation (a browser opens at most 6 to one HTTP/1.1 server).
#[utoipa::path(
    get,
    path = "/operations/events",
    tag = "operations",
    params(EventsQuery),
    responses(
        (status = 200, description = "`text/event-stream`: `progress` and `done` events of each operation, `gone` for unknown ids", content_type = "text/event-stream", body = OperationEvent),
        (status = 400, description = "`INVALID_QUERY` (no `ids`, more than 60) or `INVALID_OPERATION_ID`", body = ErrorResponse),
        (status = 503, description = "`TOO_MANY_STREAMS`: as many streams and long-polls are open as allowed", body = ErrorResponse,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn multiplexed_events(
    State(ops): State<Operations>,
    State(streams): State<StreamLimit>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<EventStream, ApiError> {
    let ids = query.ids()?;
    let slot = streams.acquire()?;
    let cluster = ops.cluster();
    let (mut found, mut missing) = (Vec::with_capacity(ids.len()), Vec::new());
    for id in ids {
        match cluster.get(&id).await {
            Ok(info) => found.push(info),
            Err(OrchestratorError::NotFound(_)) => missing.push(id),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(multiplexed_stream(&ops, &found, missing, slot))
}

/// `GET /health`: whether this replica is serving, and how its store is doing.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `OK`, or `DEGRADED` while the store fails (running operations go on; new ones
    /// are refused with 503 `STORE_UNAVAILABLE` until it is back).
    status: crate::store::StoreState,
    /// This process's `PENDING` and `RUNNING` operations.
    active_count: usize,
    /// The store's state; `null` for a registry without one.
    store: Option<crate::store::StoreHealth>,
}

/// Reports whether this replica is healthy: always 200 while it serves, with
/// `status` `DEGRADED` when its operation store is failing.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "`OK`, or `DEGRADED` while the operation store fails", body = ApiResponse<Health>),
    )
)]
pub(crate) async fn health(State(ops): State<Operations>) -> ApiResult<Health> {
    let store = ops.store_health();
    Ok(Health {
        status: store
            .as_ref()
            .map_or(crate::store::StoreState::Ok, |s| s.state),
        active_count: ops.active_count(),
        store,
    }
    .into())
}
