//! Extractors whose rejections are the error envelope, never axum's plain-text bodies.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::{ApiError, code};
use crate::OperationId;

/// A JSON request body whose rejections are [`ApiError`]s in the envelope.
///
/// | request                                        | answer                        |
/// | ---------------------------------------------- | ----------------------------- |
/// | empty body (any or no content type)            | parsed as `{}`                |
/// | non-empty body without `application/json`      | 415 `INVALID_REQUEST`         |
/// | malformed JSON, wrong field types or values    | 422 `INVALID_REQUEST`         |
/// | larger than the route's body limit             | 413 `PAYLOAD_TOO_LARGE`       |
///
/// Reading an empty body as `{}` makes a body optional for request types whose fields
/// all have defaults (`#[serde(default)]`), and gives a clear `missing field` 422 for
/// the others. The size limit is axum's
/// [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) (2 MB unless a layer changes it;
/// 64 KiB on the routes of [`router`](super::router)).
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
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = has_json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    format!("could not read the request body: {}", rejection.body_text()),
                )
            }
        })?;
        let body: &[u8] = if bytes.trim_ascii().is_empty() {
            b"{}"
        } else if is_json {
            &bytes
        } else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_REQUEST,
                "expected a JSON body with `content-type: application/json`",
            ));
        };
        serde_json::from_slice(body)
            .map(ApiJson)
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
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
