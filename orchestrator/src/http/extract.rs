//! Extractors whose rejections are the error envelope, never axum's plain-text bodies.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use super::{ApiError, code};
use crate::OperationId;

/// A JSON request body whose rejections are [`ApiError`]s in the envelope.
///
/// | request                                        | answer                        |
/// | ---------------------------------------------- | ----------------------------- |
/// | no `content-type: application/json` (or `…+json`), body or not | 415 `INVALID_REQUEST` |
/// | JSON content type, empty body                  | parsed as `{}`                |
/// | malformed JSON, wrong field types or values    | 422 `INVALID_REQUEST`         |
/// | anything but a JSON object (`[]`, `5`, `"x"`)  | 422 `INVALID_REQUEST`         |
/// | unknown fields, with `#[serde(deny_unknown_fields)]` on `T` | 422 `INVALID_REQUEST` |
/// | more than `LIMIT` bytes (default 64 KiB)       | 413 `PAYLOAD_TOO_LARGE`       |
/// | body not complete within [`BODY_READ_TIMEOUT`] | 408 `REQUEST_TIMEOUT`         |
///
/// Requiring the JSON content type even for an empty body is what stops cross-site
/// requests: a browser sends `text/plain` or a form type without asking the server
/// first, but never `application/json`. Reading an empty body as `{}` makes a body
/// optional for request types whose fields all have defaults (`#[serde(default)]`),
/// and gives a clear `missing field` 422 for the others. Put
/// `#[serde(deny_unknown_fields)]` on request types so that a misspelt field is a 422,
/// not a silently ignored option.
///
/// The size limit is the `LIMIT` parameter (`ApiJson<T, { 1 << 20 }>` for 1 MiB), not
/// axum's `DefaultBodyLimit`. A body over the limit is read and discarded up to
/// [`DRAIN_BYTES`] more before the 413 is answered, so the client reads the answer
/// instead of a connection reset while it is still sending; a larger one (by its
/// `Content-Length`, or as it arrives) is answered at once and its connection closed.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::post};
/// use orchestrator::http::{ApiJson, ApiResult};
///
/// #[derive(serde::Deserialize)]
/// #[serde(default)]
/// struct Greet { name: String }
///
/// impl Default for Greet {
///     fn default() -> Self { Self { name: "world".into() } }
/// }
///
/// async fn greet(ApiJson(req): ApiJson<Greet>) -> ApiResult<String> {
///     Ok(format!("hello {}", req.name).into())
/// }
///
/// let app: Router = Router::new().route("/greet", post(greet));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T, const LIMIT: usize = { super::MAX_BODY_BYTES }>(pub T);

/// How many bytes past its limit an oversized body is read and discarded before the
/// 413 is answered (see [`ApiJson`]).
pub const DRAIN_BYTES: usize = 1024 * 1024;

/// How long [`ApiJson`] waits for the whole request body before answering 408
/// `REQUEST_TIMEOUT` (a client trickling its body cannot hold a connection forever).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The 415 answer to a body that is not declared as JSON.
pub(crate) fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code::INVALID_REQUEST,
        "expected `content-type: application/json` (even with an empty body)",
    )
}

impl<T, S, const LIMIT: usize> FromRequest<S> for ApiJson<T, LIMIT>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(not_json());
        }
        let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, read_limited(req, LIMIT))
            .await
            .map_err(|_elapsed| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    code::REQUEST_TIMEOUT,
                    format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}"),
                )
            })??;
        // No body at all is `{}`; whitespace alone is not JSON (and not "no body").
        let body: &[u8] = match (bytes.as_slice(), bytes.trim_ascii()) {
            (b"", _) => b"{}",
            // serde fills a struct from an array by position, so `[]` would be a
            // request with every default: request bodies are objects.
            (_, object @ [b'{', ..]) => object,
            _ => {
                return Err(ApiError::invalid_request(
                    "invalid JSON body: expected a JSON object",
                ));
            }
        };
        serde_json::from_slice(body)
            .map(ApiJson)
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
    }
}

/// The body, if it has at most `limit` bytes; an oversized one is drained (up to
/// [`DRAIN_BYTES`] more) before the 413.
async fn read_limited(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let drain_up_to = limit.saturating_add(DRAIN_BYTES);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > drain_up_to as u64) {
        return Err(too_large());
    }
    let mut chunks = req.into_body().into_data_stream();
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                format!("could not read the request body: {e}"),
            )
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            body.extend_from_slice(&chunk);
        } else if seen > drain_up_to {
            break;
        }
    }
    if seen > limit {
        Err(too_large())
    } else {
        Ok(body)
    }
}

pub(crate) fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5
                && sub
                    .get(sub.len() - 5..)
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json")))
}

/// Query parameters whose rejections are 400 `INVALID_QUERY` in the envelope.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use orchestrator::http::{ApiQuery, ApiResult};
///
/// #[derive(serde::Deserialize)]
/// struct Page { limit: Option<u32> }
///
/// async fn page(ApiQuery(q): ApiQuery<Page>) -> ApiResult<u32> {
///     Ok(q.limit.unwrap_or(10).into())
/// }
///
/// let app: Router = Router::new().route("/page", get(page));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|rejection| ApiError::invalid_query(rejection.body_text()))
    }
}

/// The `{id}` path segment, validated: 400 `INVALID_OPERATION_ID` when malformed.
#[derive(Debug, Clone)]
pub(crate) struct OpId(pub(crate) OperationId);

impl<S: Send + Sync> FromRequestParts<S> for OpId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_OPERATION_ID,
                    rejection.body_text(),
                )
            })?;
        Ok(Self(raw.parse::<OperationId>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("application/+json", false),
            ("json", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(has_json_content_type(&headers), ok, "{value}");
        }
    }
}
