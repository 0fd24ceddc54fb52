//! The response envelope and the one place where errors become status codes.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::{ErrorCode, InvalidOperationId, OrchestratorError};

/// The error codes the operations API answers with, in `error.code`: the wire strings
/// of [`ErrorCode`](crate::ErrorCode), kept as `&str` aliases for [`ApiError::new`].
///
/// Services may use their own codes as well (see [`ApiError::new`]).
pub mod code {
    /// 400: the path segment is not a well-formed operation id.
    pub const INVALID_OPERATION_ID: &str = "INVALID_OPERATION_ID";
    /// 400: a query parameter is malformed or out of range.
    pub const INVALID_QUERY: &str = "INVALID_QUERY";
    /// 415 (not JSON) or 422 (malformed JSON, wrong field types, invalid values): the
    /// request body was rejected.
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    /// 413: the request body is larger than the route accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// 404: no operation with this id (never existed, deleted, or cleaned up).
    pub const OPERATION_NOT_FOUND: &str = "OPERATION_NOT_FOUND";
    /// 409: the operation already reached a terminal state, so it cannot be cancelled.
    pub const OPERATION_FINISHED: &str = "OPERATION_FINISHED";
    /// 409: the operation is still pending or running, so it cannot be deleted.
    pub const OPERATION_ACTIVE: &str = "OPERATION_ACTIVE";
    /// 409: the state machine does not allow the requested transition.
    pub const ILLEGAL_TRANSITION: &str = "ILLEGAL_TRANSITION";
    /// 404: no route matches the path.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// 405: the route exists but not for this method.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// 500: a fault of the server, never of the request.
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    /// 429: the registry has as many active operations as it allows; retry later
    /// (`Retry-After` says when).
    pub const TOO_MANY_OPERATIONS: &str = "TOO_MANY_OPERATIONS";
    /// 503: too many cancelled operations still run blocking work that ignored the
    /// cancellation, so new operations are refused until some of it returns.
    pub const ABANDONED_WORK_LIMIT: &str = "ABANDONED_WORK_LIMIT";
    /// 503: the host service an operation is routed to (feature `host`) cannot be
    /// reached, answered 5xx or answered something that is not the operations API.
    pub const HOST_UNAVAILABLE: &str = "HOST_UNAVAILABLE";
    /// 503: the operation store (a durable registry's database) cannot be reached:
    /// new operations are refused, and reads of other replicas' operations fail,
    /// until it is back (`Retry-After` says when to try again).
    pub const STORE_UNAVAILABLE: &str = "STORE_UNAVAILABLE";
    /// 401: the route needs a bearer token and the request had none, or a wrong one
    /// (see [`BearerAuthLayer`](crate::http::BearerAuthLayer)).
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// 409: the operation cannot be resumed: it completed, it is still active, or no
    /// fn is registered here to resume its kind.
    pub const OPERATION_NOT_RESUMABLE: &str = "OPERATION_NOT_RESUMABLE";
    /// 409: the operation never saved a checkpoint, so there is nothing to resume from.
    pub const NO_CHECKPOINT: &str = "NO_CHECKPOINT";
    /// 409: another resume of the same attempt won; the operation runs its next attempt.
    pub const ALREADY_RESUMED: &str = "ALREADY_RESUMED";
    /// 503 with `Retry-After`: as many event streams and long-polls are open as the
    /// API allows (see [`Api::with_max_streams`](crate::http::Api::with_max_streams)).
    pub const TOO_MANY_STREAMS: &str = "TOO_MANY_STREAMS";
    /// 408: the request body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// 414: the request target (path and query) is longer than the server accepts.
    pub const URI_TOO_LONG: &str = "URI_TOO_LONG";
    /// 431: the request headers are larger than the server accepts.
    pub const HEADERS_TOO_LARGE: &str = "HEADERS_TOO_LARGE";
}

/// What a handler of the operations API returns: the envelope or an error envelope.
///
/// `?` converts [`OrchestratorError`] (and anything else with a `From` impl into
/// [`ApiError`]) into the right status and code, so a start endpoint is one line.
///
/// # Examples
///
/// ```
/// use axum::extract::State;
/// use orchestrator::http::{ApiJson, ApiResult};
/// use orchestrator::{OperationSpec, Operations, StartedOperation};
///
/// #[derive(serde::Deserialize)]
/// struct Start { seconds: u64 }
///
/// async fn start(State(ops): State<Operations>, ApiJson(req): ApiJson<Start>) -> ApiResult<StartedOperation> {
///     Ok(ops.spawn(OperationSpec::new("nap"), move |ctx| async move { ctx.sleep(std::time::Duration::from_secs(req.seconds)).await })?.started().into())
/// }
/// # let _: axum::Router = axum::Router::new().route("/nap", axum::routing::post(start)).with_state(Operations::new());
/// ```
pub type ApiResult<T> = Result<ApiResponse<T>, ApiError>;

pub use crate::wire::{ApiResponse, ErrorBody, ErrorResponse, OperationListResponse};

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

impl IntoResponse for OperationListResponse {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// An error answered in the error envelope, with its HTTP status.
///
/// Every error of the operations API goes through this type: the `From` impls below are
/// the single mapping from runtime errors to status codes:
///
/// | error                                     | status | code                   |
/// | ----------------------------------------- | ------ | ---------------------- |
/// | [`InvalidOperationId`]                    | 400    | `INVALID_OPERATION_ID` |
/// | [`OrchestratorError::NotFound`]           | 404    | `OPERATION_NOT_FOUND`  |
/// | [`OrchestratorError::AlreadyFinished`]    | 409    | `OPERATION_FINISHED`   |
/// | [`OrchestratorError::StillActive`]        | 409    | `OPERATION_ACTIVE`     |
/// | [`OrchestratorError::IllegalTransition`]  | 409    | `ILLEGAL_TRANSITION`   |
/// | [`OrchestratorError::NotResumable`], [`OrchestratorError::NoResumer`] | 409 | `OPERATION_NOT_RESUMABLE` |
/// | [`OrchestratorError::NoCheckpoint`]       | 409    | `NO_CHECKPOINT`        |
/// | [`OrchestratorError::AlreadyResumed`]     | 409    | `ALREADY_RESUMED`      |
/// | [`OrchestratorError::TooManyOperations`]  | 429    | `TOO_MANY_OPERATIONS`  |
/// | [`OrchestratorError::AbandonedWorkLimit`] | 503    | `ABANDONED_WORK_LIMIT` |
/// | [`OrchestratorError::HostUnavailable`]    | 503    | `HOST_UNAVAILABLE`     |
/// | [`OrchestratorError::StoreUnavailable`]   | 503    | `STORE_UNAVAILABLE`    |
/// | [`OrchestratorError::HostRejected`]       | the host's 4xx | the host's code |
/// | any other [`OrchestratorError`]           | 500    | `INTERNAL_ERROR`       |
///
/// Request-shape errors come from the extractors: [`ApiJson`](super::ApiJson) (413,
/// 415, 422) and [`ApiQuery`](super::ApiQuery) (400).
///
/// # Examples
///
/// ```
/// use axum::http::StatusCode;
/// use orchestrator::http::{ApiError, code};
/// use orchestrator::{OperationId, OperationType, OrchestratorError};
///
/// let id = OperationId::generate(&OperationType::DUMMY);
/// let err = ApiError::from(OrchestratorError::NotFound(id));
/// assert_eq!(err.status(), StatusCode::NOT_FOUND);
/// assert_eq!(err.code(), code::OPERATION_NOT_FOUND);
///
/// let custom = ApiError::invalid_request("rows must be at most 20000000");
/// assert_eq!(custom.status(), StatusCode::UNPROCESSABLE_ENTITY);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with any status and code (services may add their own codes).
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, answered with a `Retry-After` header of `after` (in whole
    /// seconds, rounded up, at least 1): for 429 and 503 answers a client should retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::http::StatusCode;
    /// use axum::response::IntoResponse;
    /// use orchestrator::http::ApiError;
    ///
    /// let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_OPERATIONS", "at the limit")
    ///     .with_retry_after(Duration::from_millis(1500));
    /// assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    /// let response = err.into_response();
    /// assert_eq!(response.headers()["retry-after"], "2");
    /// ```
    #[must_use]
    pub const fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// When the client should retry, if the error says (see
    /// [`with_retry_after`](Self::with_retry_after)).
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// 422 `INVALID_REQUEST`: the body parsed but its values are not acceptable.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::INVALID_REQUEST,
            message,
        )
    }

    /// 400 `INVALID_QUERY`: a query parameter is malformed or out of range.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID_QUERY, message)
    }

    /// The HTTP status.
    pub const fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code (see [`code`]).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The code, typed.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from(&*self.code)
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The body this error is answered with.
    pub fn to_body(&self) -> ErrorResponse {
        ErrorResponse::new(ErrorCode::from(&*self.code), self.message.clone())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// What `Retry-After` says when a registry limit refuses a new operation.
const RETRY_LIMITED: Duration = Duration::from_secs(5);

/// What `Retry-After` says while the operation store is unavailable.
const RETRY_STORE: Duration = Duration::from_secs(2);

impl From<OrchestratorError> for ApiError {
    fn from(err: OrchestratorError) -> Self {
        let status = match &err {
            OrchestratorError::NotFound(_) => {
                return Self::new(
                    StatusCode::NOT_FOUND,
                    code::OPERATION_NOT_FOUND,
                    err.to_string(),
                );
            }
            OrchestratorError::AlreadyFinished { .. } => {
                (StatusCode::CONFLICT, code::OPERATION_FINISHED)
            }
            OrchestratorError::StillActive { .. } => (StatusCode::CONFLICT, code::OPERATION_ACTIVE),
            OrchestratorError::IllegalTransition { .. } | OrchestratorError::NotRunning { .. } => {
                (StatusCode::CONFLICT, code::ILLEGAL_TRANSITION)
            }
            OrchestratorError::NotResumable { .. } | OrchestratorError::NoResumer { .. } => {
                (StatusCode::CONFLICT, code::OPERATION_NOT_RESUMABLE)
            }
            OrchestratorError::NoCheckpoint(_) => (StatusCode::CONFLICT, code::NO_CHECKPOINT),
            OrchestratorError::AlreadyResumed { .. } => {
                (StatusCode::CONFLICT, code::ALREADY_RESUMED)
            }
            // Retry-After: a guess, not a promise; operations end when they end.
            OrchestratorError::TooManyOperations { .. } => {
                return Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    code::TOO_MANY_OPERATIONS,
                    err.to_string(),
                )
                .with_retry_after(RETRY_LIMITED);
            }
            OrchestratorError::AbandonedWorkLimit { .. } => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::ABANDONED_WORK_LIMIT,
                    err.to_string(),
                )
                .with_retry_after(RETRY_LIMITED);
            }
            OrchestratorError::HostUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, code::HOST_UNAVAILABLE)
            }
            OrchestratorError::StoreUnavailable { .. } => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::STORE_UNAVAILABLE,
                    err.to_string(),
                )
                .with_retry_after(RETRY_STORE);
            }
            // The host's own answer, passed through (422 stays 422).
            OrchestratorError::HostRejected {
                status,
                code,
                message,
                ..
            } => {
                let status = StatusCode::from_u16(*status)
                    .ok()
                    .filter(StatusCode::is_client_error)
                    .unwrap_or(StatusCode::BAD_REQUEST);
                return Self::new(status, code.clone(), message.clone());
            }
            OrchestratorError::CancelReasonTooLong { .. }
            | OrchestratorError::MetricTooLarge { .. }
            | OrchestratorError::CheckpointTooLarge { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code::INVALID_REQUEST)
            }
            OrchestratorError::NoRuntime
            | OrchestratorError::Runtime(_)
            | OrchestratorError::Serialize(_)
            | OrchestratorError::InvalidCheckpoint(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR)
            }
        };
        Self::new(status.0, status.1, err.to_string())
    }
}

impl From<InvalidOperationId> for ApiError {
    fn from(err: InvalidOperationId) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_OPERATION_ID,
            err.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = %self.code, message = %self.message, "operations API error");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = %self.code, message = %self.message, "operations API request rejected");
        }
        let mut response = json_response(self.status, &self.to_body());
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Serialises `body` as the JSON response; a value that cannot be serialised (a
/// result summary with non-string map keys, say) becomes a 500 envelope, never a panic.
fn json_response<B: Serialize>(status: StatusCode, body: &B) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_ERROR,
            format!("could not serialise the response: {e}"),
        )
        .into_response(),
    }
}
