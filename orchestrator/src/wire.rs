//! Types of the operations API's wire contract that both sides use: the server
//! (feature `http`) answers with them, the client (feature `client`) reads them.

use serde::{Deserialize, Serialize};

use crate::OperationInfo;

/// What `DELETE /operations/{id}` did.
///
/// # Examples
///
/// ```
/// use orchestrator::DeletedOperation;
///
/// let json = serde_json::json!({"deleted": true, "operation": {
///     "operation_id": "op_dummy_20261122_160501_9f3a1c2e", "operation_type": "DUMMY",
///     "status": "COMPLETED", "created_at": "2026-11-22T16:05:01Z"}});
/// let deleted: DeletedOperation = serde_json::from_value(json)?;
/// assert!(deleted.deleted);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct DeletedOperation {
    /// `true`: the operation had finished and was removed from the registry.
    /// `false`: it was active, so cancellation was requested instead (as by
    /// `POST …/cancel`); delete it again once it has finished to remove it.
    pub deleted: bool,
    /// The removed record, or the record after the cancellation request.
    pub operation: OperationInfo,
}

impl DeletedOperation {
    /// What the server answers after acting on `operation`.
    pub const fn new(deleted: bool, operation: OperationInfo) -> Self {
        Self { deleted, operation }
    }
}

/// The `error.code` of the operations API's error envelope: the codes the library
/// answers with, and [`Other`](Self::Other) for a service's own.
///
/// On the wire it is the SCREAMING_SNAKE_CASE string (`"OPERATION_NOT_FOUND"`); a
/// code this version does not know reads as [`Other`](Self::Other), so a client keeps
/// working against a newer server. The server's [`http::code`](crate::http::code)
/// constants are the same strings.
///
/// # Examples
///
/// ```
/// use orchestrator::ErrorCode;
///
/// let code: ErrorCode = serde_json::from_str(r#""OPERATION_FINISHED""#)?;
/// assert_eq!(code, ErrorCode::OperationFinished);
/// assert_eq!(code.as_str(), "OPERATION_FINISHED");
/// let custom: ErrorCode = serde_json::from_str(r#""ROWS_TOO_MANY""#)?;
/// assert_eq!(custom, ErrorCode::Other("ROWS_TOO_MANY".into()));
/// assert_eq!(serde_json::to_string(&custom)?, r#""ROWS_TOO_MANY""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the path segment is not a well-formed operation id.
    InvalidOperationId,
    /// 400: a query parameter is malformed or out of range.
    InvalidQuery,
    /// 415 or 422: the request body was rejected.
    InvalidRequest,
    /// 413: the request body is larger than the route accepts.
    PayloadTooLarge,
    /// 404: no operation with this id.
    OperationNotFound,
    /// 409: the operation already ended, so it cannot be cancelled.
    OperationFinished,
    /// 409: the operation is still active, so it cannot be deleted.
    OperationActive,
    /// 409: the state machine does not allow the requested transition.
    IllegalTransition,
    /// 404: no route matches the path.
    NotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 500: a fault of the server.
    InternalError,
    /// 429: as many active operations as the registry allows.
    TooManyOperations,
    /// 503: too much abandoned blocking work still runs.
    AbandonedWorkLimit,
    /// 401: a missing or wrong bearer token.
    Unauthorized,
    /// 503: as many event streams and long-polls as allowed.
    TooManyStreams,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 414: the request target is too long.
    UriTooLong,
    /// 431: the request headers are too large.
    HeadersTooLarge,
    /// 503: the host service an operation is routed to is unavailable.
    HostUnavailable,
    /// 503: the operation store (a durable registry's database) is unavailable.
    StoreUnavailable,
    /// 409: the operation cannot be resumed (completed, still active, or no fn here
    /// resumes its kind).
    OperationNotResumable,
    /// 409: the operation never saved a checkpoint to resume from.
    NoCheckpoint,
    /// 409: another resume of the same attempt won.
    AlreadyResumed,
    /// Any other code: a service's own (`ROWS_TOO_MANY`), or the client's stand-in
    /// `HTTP_<status>` for an answer without an error envelope.
    Other(String),
}

/// `(variant, wire string)` of every named code, in one place.
macro_rules! known_codes {
    ($($variant:ident => $wire:literal,)*) => {
        impl ErrorCode {
            /// The code as it is on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(code) => code,
                }
            }
        }

        impl From<&str> for ErrorCode {
            fn from(code: &str) -> Self {
                match code {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

known_codes! {
    InvalidOperationId => "INVALID_OPERATION_ID",
    InvalidQuery => "INVALID_QUERY",
    InvalidRequest => "INVALID_REQUEST",
    PayloadTooLarge => "PAYLOAD_TOO_LARGE",
    OperationNotFound => "OPERATION_NOT_FOUND",
    OperationFinished => "OPERATION_FINISHED",
    OperationActive => "OPERATION_ACTIVE",
    IllegalTransition => "ILLEGAL_TRANSITION",
    NotFound => "NOT_FOUND",
    MethodNotAllowed => "METHOD_NOT_ALLOWED",
    InternalError => "INTERNAL_ERROR",
    TooManyOperations => "TOO_MANY_OPERATIONS",
    AbandonedWorkLimit => "ABANDONED_WORK_LIMIT",
    Unauthorized => "UNAUTHORIZED",
    TooManyStreams => "TOO_MANY_STREAMS",
    RequestTimeout => "REQUEST_TIMEOUT",
    UriTooLong => "URI_TOO_LONG",
    HeadersTooLarge => "HEADERS_TOO_LARGE",
    HostUnavailable => "HOST_UNAVAILABLE",
    StoreUnavailable => "STORE_UNAVAILABLE",
    OperationNotResumable => "OPERATION_NOT_RESUMABLE",
    NoCheckpoint => "NO_CHECKPOINT",
    AlreadyResumed => "ALREADY_RESUMED",
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        match Self::from(code.as_str()) {
            Self::Other(_) => Self::Other(code),
            known => known,
        }
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(code))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// The success envelope: `{"success": true, "data": …}`.
///
/// # Examples
///
/// ```
/// use orchestrator::ApiResponse;
///
/// let body = ApiResponse::new(vec![1, 2, 3]);
/// assert_eq!(serde_json::to_value(&body)?, serde_json::json!({"success": true, "data": [1, 2, 3]}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ApiResponse<T> {
    /// Always `true`.
    pub success: bool,
    /// The payload.
    pub data: T,
}

impl<T> ApiResponse<T> {
    /// Wraps `data` in a success envelope.
    pub const fn new(data: T) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

impl<T> From<T> for ApiResponse<T> {
    fn from(data: T) -> Self {
        Self::new(data)
    }
}

/// The list envelope: a page of operations with the counts a UI needs.
///
/// ```json
/// {"success": true, "data": [/* OperationInfo, newest first */], "total_count": 42, "active_count": 3}
/// ```
///
/// # Examples
///
/// ```
/// use orchestrator::{OperationFilter, OperationListResponse, OperationSpec, Operations};
///
/// let ops = Operations::new();
/// ops.create(OperationSpec::new("dummy"))?;
/// let page = OperationListResponse::from(ops.list(&OperationFilter::new().with_limit(10)));
/// assert_eq!((page.data.len(), page.total_count, page.active_count), (1, 1, 1));
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct OperationListResponse {
    /// Always `true`.
    pub success: bool,
    /// The page, newest first.
    pub data: Vec<OperationInfo>,
    /// How many operations matched the filter (before paging).
    pub total_count: usize,
    /// How many operations in the registry are `PENDING` or `RUNNING`.
    pub active_count: usize,
}

impl From<crate::OperationList> for OperationListResponse {
    fn from(list: crate::OperationList) -> Self {
        Self {
            success: true,
            data: list.operations,
            total_count: list.total_count,
            active_count: list.active_count,
        }
    }
}

impl From<OperationListResponse> for crate::OperationList {
    fn from(page: OperationListResponse) -> Self {
        Self {
            operations: page.data,
            total_count: page.total_count,
            active_count: page.active_count,
        }
    }
}

/// The error envelope: `{"success": false, "error": {"code": …, "message": …}}`.
///
/// # Examples
///
/// ```
/// use orchestrator::{ErrorCode, ErrorResponse};
///
/// let body: ErrorResponse = serde_json::from_str(
///     r#"{"success": false, "error": {"code": "INVALID_REQUEST", "message": "rows must be positive"}}"#,
/// )?;
/// assert_eq!(body.error.code, ErrorCode::InvalidRequest);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ErrorResponse {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorBody,
}

impl ErrorResponse {
    /// An error envelope with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            success: false,
            error: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

/// The `error` object of an [`ErrorResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ErrorBody {
    /// A stable, machine-readable code.
    #[cfg_attr(feature = "http", schema(value_type = String))]
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_and_unknown_ones_are_kept() {
        for wire in [
            "INVALID_OPERATION_ID",
            "INVALID_QUERY",
            "INVALID_REQUEST",
            "PAYLOAD_TOO_LARGE",
            "OPERATION_NOT_FOUND",
            "OPERATION_FINISHED",
            "OPERATION_ACTIVE",
            "ILLEGAL_TRANSITION",
            "NOT_FOUND",
            "METHOD_NOT_ALLOWED",
            "INTERNAL_ERROR",
            "TOO_MANY_OPERATIONS",
            "ABANDONED_WORK_LIMIT",
            "UNAUTHORIZED",
            "TOO_MANY_STREAMS",
            "REQUEST_TIMEOUT",
            "URI_TOO_LONG",
            "HEADERS_TOO_LARGE",
            "HOST_UNAVAILABLE",
            "STORE_UNAVAILABLE",
        ] {
            let code = ErrorCode::from(wire);
            assert!(!matches!(code, ErrorCode::Other(_)), "{wire}");
            assert_eq!(code.as_str(), wire);
        }
        assert_eq!(
            ErrorCode::from("HTTP_502"),
            ErrorCode::Other("HTTP_502".into())
        );
    }
}
