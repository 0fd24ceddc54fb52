//! The operations API over HTTP (feature `http`): an axum [`Router`] over an
//! [`Operations`] registry, with an OpenAPI document.
//!
//! Every answer is an envelope: `{"success": true, "data": …}` or
//! `{"success": false, "error": {"code": "…", "message": "…"}}` (see [`ApiResponse`],
//! [`ApiError`] and [`code`]). Client mistakes are always 4xx, never 500.
//!
//! | method & path (relative to the mount point)  | success                                               | errors                  |
//! | -------------------------------------------- | ----------------------------------------------------- | ----------------------- |
//! | `GET /operations?status=&operation_type=&limit=&offset=&active_only=` | 200 `data: [OperationInfo]`, `total_count`, `active_count` | 400 `INVALID_QUERY` |
//! | `GET /operations/{id}`                       | 200 `OperationInfo`                                   | 400, 404                |
//! | `DELETE /operations/{id}`                    | 200 `{deleted, operation}`: cancels an active one, removes a finished one | 400, 404 |
//! | `POST /operations/{id}/cancel` body `{"reason"?}` | 200 `OperationInfo` after the request            | 400, 404, 409 `OPERATION_FINISHED`, 413, 415, 422 |
//! | `GET /operations/{id}/metrics?cursor=N`      | 200 `{metrics, cursor, dropped}`                      | 400, 404                |
//! | `GET /operations/{id}/wait?timeout_ms=`      | 200 `OperationInfo` when terminal or at the timeout (default 30 s, at most 60 s) | 400, 404 |
//! | `GET /operations/{id}/events`                | `text/event-stream`: `progress` events, then `done`   | 400, 404                |
//! | `GET /openapi.json`                          | the OpenAPI 3.1 document of these routes              |                         |
//!
//! `limit` is 1–1000 (default 100); `status` is one of `PENDING`, `RUNNING`,
//! `COMPLETED`, `FAILED`, `CANCELLED` (any case). Routes of the API answer an unknown
//! method with 405 `METHOD_NOT_ALLOWED`; give the outer router [`not_found`] as its
//! fallback so unknown paths get the envelope too (404 `NOT_FOUND`).
//!
//! A service's own start endpoint is one line with [`ApiJson`] and [`ApiResult`].
//!
//! # Examples
//!
//! Mount the API under `/api/v1` next to a start endpoint, and serve it:
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, extract::State, routing::post};
//! use orchestrator::http::{self, ApiJson, ApiResult};
//! use orchestrator::{OperationSpec, Operations, StartedOperation};
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default)]
//! struct NapRequest { seconds: u64 }
//!
//! async fn start_nap(State(ops): State<Operations>, ApiJson(req): ApiJson<NapRequest>) -> ApiResult<StartedOperation> {
//!     Ok(ops.spawn(OperationSpec::new("nap"), move |ctx| async move {
//!         ctx.sleep(Duration::from_secs(req.seconds)).await
//!     })?.started().into())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let ops = Operations::new();
//!     let api = http::router(ops.clone())
//!         .merge(Router::new().route("/nap/start", post(start_nap)).with_state(ops));
//!     let app = Router::new().nest("/api/v1", api).fallback(http::not_found);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     axum::serve(listener, app).await
//! }
//! ```

mod events;
mod extract;
mod handlers;
mod openapi;
mod response;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode, Uri};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::{ApiJson, ApiQuery, DRAIN_BYTES};
pub use handlers::{CancelRequest, DeletedOperation};
pub use response::{
    ApiError, ApiResponse, ApiResult, ErrorBody, ErrorResponse, OperationListResponse, code,
};

use crate::Operations;

/// The largest request body [`ApiJson`] accepts by default (and so the cancel route).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The operations API as a router, ready to [`nest`](Router::nest) under any prefix (or
/// [`merge`](Router::merge) at the root).
///
/// The routes are relative (`/operations`, `/operations/{id}`, …, `/openapi.json`);
/// the state is applied, so merge your own routes in with `.merge(...)` after giving
/// them their state. The router has no fallback, so it merges with yours; set
/// [`not_found`] as the outermost router's fallback.
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use orchestrator::{Operations, http};
///
/// let app: Router = Router::new()
///     .nest("/api/v1", http::router(Operations::new()))
///     .fallback(http::not_found);
/// ```
pub fn router(ops: Operations) -> Router {
    let (router, _) = api().split_for_parts();
    router
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ops)
}

/// The OpenAPI 3 document of [`router`]'s routes and of the data model, with paths
/// relative to the mount point. Built once; each call returns a copy, for example to
/// merge a service's own paths in.
///
/// # Examples
///
/// ```
/// let doc = orchestrator::http::openapi();
/// assert!(doc.paths.paths.contains_key("/operations/{id}"));
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api().split_for_parts().1).clone()
}

/// The single list of routes: each `routes!` entry registers the handler with axum and
/// its `#[utoipa::path]` with the document, so the two cannot drift apart.
fn api() -> OpenApiRouter<Operations> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(handlers::list_operations))
        .routes(routes!(handlers::get_operation, handlers::delete_operation))
        .routes(routes!(handlers::cancel_operation))
        .routes(routes!(handlers::operation_metrics))
        .routes(routes!(handlers::wait_operation))
        .routes(routes!(handlers::operation_events))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of this API, with `servers` set to where it is mounted.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
async fn openapi_json(OriginalUri(original): OriginalUri, uri: Uri) -> OpenApiJson {
    let mut doc = openapi();
    // Nested under a prefix, `uri` has the prefix stripped; `original` does not.
    if let Some(prefix) = original.path().strip_suffix(uri.path()) {
        if !prefix.is_empty() {
            doc.servers = Some(vec![utoipa::openapi::Server::new(prefix)]);
        }
    }
    OpenApiJson(doc)
}

/// The OpenAPI document is served bare (tools expect it so), not in the envelope.
struct OpenApiJson(utoipa::openapi::OpenApi);

impl axum::response::IntoResponse for OpenApiJson {
    fn into_response(self) -> axum::response::Response {
        match self.0.to_json() {
            Ok(json) => (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response(),
            Err(e) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                format!("could not serialise the OpenAPI document: {e}"),
            )
            .into_response(),
        }
    }
}

/// A fallback handler answering 404 `NOT_FOUND` in the envelope: set it on the
/// outermost router with [`Router::fallback`].
///
/// # Examples
///
/// ```
/// use axum::Router;
///
/// let app: Router = Router::new().fallback(orchestrator::http::not_found);
/// ```
pub async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        code::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

/// A handler answering 405 `METHOD_NOT_ALLOWED` in the envelope, for
/// [`Router::method_not_allowed_fallback`] ([`router`] sets it on its own routes).
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::post};
///
/// let app: Router = Router::new()
///     .route("/start", post(|| async {}))
///     .method_not_allowed_fallback(orchestrator::http::method_not_allowed);
/// ```
pub async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
