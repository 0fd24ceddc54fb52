//! The operations API over HTTP (feature `http`): an axum [`Router`] over an
//! [`Operations`] registry, with an OpenAPI document.
//!
//! Every answer is an envelope: `{"success": true, "data": …}` or
//! `{"success": false, "error": {"code": "…", "message": "…"}}` (see [`ApiResponse`],
//! [`ApiError`] and [`code`]). Client mistakes are always 4xx, never 500.
//!
//! | method & path (relative to the mount point)  | success                                               | errors                  |
//! | -------------------------------------------- | ----------------------------------------------------- | ----------------------- |
//! | `GET /operations?status=&operation_type=&label=&parent_id=&limit=&offset=&active_only=` | 200 `data: [OperationInfo]`, `total_count`, `active_count` | 400 `INVALID_QUERY` |
//! | `GET /operations/{id}/children?…`            | 200 as the list: the operation's children (`spawn_child`) | 400, 404 |
//! | `GET /operations/{id}`                       | 200 `OperationInfo`                                   | 400, 404                |
//! | `DELETE /operations/{id}`                    | 200 `{deleted, operation}`: cancels an active one, removes a finished one | 400, 404 |
//! | `POST /operations/{id}/cancel` body `{"reason"?}` | 200 `OperationInfo` after the request            | 400, 404, 409 `OPERATION_FINISHED`, 413, 415, 422 |
//! | `POST /operations/{id}/resume` body `{}` (optional) | 200 `OperationInfo` of the new attempt (`attempt` + 1) | 400, 404, 409 `OPERATION_NOT_RESUMABLE` / `NO_CHECKPOINT` / `ALREADY_RESUMED`, 413, 415, 422, 429 |
//! | `GET /operations/{id}/metrics?cursor=N`      | 200 `{metrics, cursor, dropped}`                      | 400, 404                |
//! | `GET /operations/{id}/wait?timeout_ms=`      | 200 `OperationInfo` when terminal or at the timeout (default 30 s, at most 60 s) | 400, 404 |
//! | `GET /operations/{id}/events`                | `text/event-stream`: `progress` events, then `done`   | 400, 404                |
//! | `GET /operations/events?ids=ID,ID,…`         | `text/event-stream`: the events of up to 60 operations on one connection (`gone` for an unknown id) | 400 |
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
//! #[serde(default, deny_unknown_fields)]
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
//!     http::serve(listener, app).await;
//!     Ok(())
//! }
//! ```

mod auth;
mod events;
mod extract;
mod handlers;
mod openapi;
mod response;
mod serve;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, OriginalUri, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{BearerAuth, BearerAuthLayer};
pub use extract::{ApiJson, ApiQuery, BODY_READ_TIMEOUT, DRAIN_BYTES};
pub use handlers::{CancelRequest, DeletedOperation, ResumeRequest};
pub use response::{
    ApiError, ApiResponse, ApiResult, ErrorBody, ErrorResponse, OperationListResponse, code,
};
pub use serve::{Server, serve};

use crate::Operations;

/// The largest request body [`ApiJson`] accepts by default (and so the cancel route).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The operations API as a router, ready to [`nest`](Router::nest) under any prefix (or
/// [`merge`](Router::merge) at the root), with the default limits of [`Api`].
///
/// The routes are relative (`/operations`, `/operations/{id}`, …, `/openapi.json`);
/// the state is applied, so merge your own routes in with `.merge(...)` after giving
/// them their state (or through [`Api::with_routes`], to have them in the served
/// OpenAPI document too). The router has no fallback, so it merges with yours; set
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
    Api::new(ops).into_router()
}

/// The operations API with its limits and a service's own documented routes: builds
/// the [`Router`] and the OpenAPI document served at `/openapi.json` together.
///
/// A service's start endpoints, written with `#[utoipa::path]` and collected with
/// `utoipa_axum`'s [`OpenApiRouter`] and `routes!`, are merged with
/// [`with_routes`](Self::with_routes): they are routed *and* appear in the served
/// document, with no second `/openapi.json` route to overlap.
///
/// Every `POST` route of the result answers 415 `INVALID_REQUEST` to a request whose
/// `content-type` is not JSON, body or not: a browser's cross-site "simple" request
/// (`text/plain`, form types) cannot start or cancel anything. Event streams and
/// long-polls together are capped (see [`with_max_streams`](Self::with_max_streams)).
///
/// # Examples
///
/// ```
/// use axum::extract::State;
/// use orchestrator::http::{self, ApiJson, ApiResult};
/// use orchestrator::{OperationSpec, Operations, StartedOperation};
/// use utoipa_axum::{router::OpenApiRouter, routes};
///
/// #[derive(serde::Deserialize, utoipa::ToSchema)]
/// #[serde(deny_unknown_fields)]
/// struct NapRequest { seconds: u64 }
///
/// /// Starts a nap.
/// #[utoipa::path(post, path = "/nap/start", request_body = NapRequest,
///     responses((status = 200, description = "Started", body = http::ApiResponse<StartedOperation>)))]
/// async fn start_nap(State(ops): State<Operations>, ApiJson(req): ApiJson<NapRequest>) -> ApiResult<StartedOperation> {
///     Ok(ops.spawn(OperationSpec::new("nap"), move |ctx| async move {
///         ctx.sleep(std::time::Duration::from_secs(req.seconds)).await
///     })?.started().into())
/// }
///
/// let ops = Operations::new();
/// let (router, doc) = http::Api::new(ops.clone())
///     .with_max_streams(256)
///     .with_routes(OpenApiRouter::new().routes(routes!(start_nap)).with_state(ops))
///     .split();
/// assert!(doc.paths.paths.contains_key("/nap/start"));
/// let app: axum::Router = axum::Router::new().nest("/api/v1", router).fallback(http::not_found);
/// ```
#[must_use]
pub struct Api {
    ops: Operations,
    max_streams: usize,
    routes: OpenApiRouter,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("max_streams", &self.max_streams)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// How many event streams and long-polls may be open at once by default.
    pub const DEFAULT_MAX_STREAMS: usize = 1024;

    /// The operations API over `ops`, with no routes of the service yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let app: axum::Router = orchestrator::http::Api::new(orchestrator::Operations::new()).into_router();
    /// ```
    pub fn new(ops: Operations) -> Self {
        Self {
            ops,
            max_streams: Self::DEFAULT_MAX_STREAMS,
            routes: OpenApiRouter::new(),
        }
    }

    /// At most `max` event streams (`/events`) and long-polls (`/wait`) open at once,
    /// in all (default 1,024; at least 1). Beyond it those routes answer 503
    /// `TOO_MANY_STREAMS` with `Retry-After`.
    ///
    /// # Examples
    ///
    /// ```
    /// let app: axum::Router = orchestrator::http::Api::new(orchestrator::Operations::new())
    ///     .with_max_streams(64)
    ///     .into_router();
    /// ```
    pub fn with_max_streams(mut self, max: usize) -> Self {
        self.max_streams = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Merges a service's own documented routes (state already applied): they are
    /// served and described in the OpenAPI document.
    ///
    /// # Panics
    ///
    /// As [`Router::merge`]: when a route of `routes` overlaps one of the API's
    /// (`/operations…`, `/openapi.json`).
    ///
    /// # Examples
    ///
    /// See [`Api`].
    pub fn with_routes(mut self, routes: OpenApiRouter) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// The router and the OpenAPI document it serves at `/openapi.json`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (router, doc) = orchestrator::http::Api::new(orchestrator::Operations::new()).split();
    /// assert!(doc.paths.paths.contains_key("/operations/{id}/events"));
    /// # let _: axum::Router = router;
    /// ```
    pub fn split(self) -> (Router, utoipa::openapi::OpenApi) {
        let doc = Arc::new(OnceLock::new());
        let ops = self.ops.clone();
        let state = ApiState {
            ops: self.ops,
            streams: StreamLimit(Arc::new(Semaphore::new(self.max_streams))),
            doc: Arc::clone(&doc),
        };
        let (router, mut document) = api()
            .with_state::<()>(state)
            .merge(self.routes)
            .split_for_parts();
        openapi::document_server_limits(&mut document);
        let _ = doc.set(document.clone());
        // A route layer runs only for a matched route and method, so a POST to a
        // GET-only path stays a 405, not a 415.
        let router = router
            .route_layer(axum::middleware::from_fn(require_json))
            .method_not_allowed_fallback(method_not_allowed);
        (acknowledge_creates(router, &ops), document)
    }

    /// The router alone (see [`split`](Self::split)).
    ///
    /// # Examples
    ///
    /// ```
    /// let app: axum::Router = orchestrator::http::Api::new(orchestrator::Operations::new()).into_router();
    /// ```
    pub fn into_router(self) -> Router {
        self.split().0
    }
}

/// The state of the API's own routes.
#[derive(Clone)]
pub(crate) struct ApiState {
    ops: Operations,
    streams: StreamLimit,
    doc: Arc<OnceLock<utoipa::openapi::OpenApi>>,
}

impl FromRef<ApiState> for Operations {
    fn from_ref(state: &ApiState) -> Self {
        state.ops.clone()
    }
}

impl FromRef<ApiState> for StreamLimit {
    fn from_ref(state: &ApiState) -> Self {
        state.streams.clone()
    }
}

/// The shared cap on open event streams and long-polls.
#[derive(Clone)]
pub(crate) struct StreamLimit(Arc<Semaphore>);

/// What a client over the stream cap is told to wait before retrying.
const STREAMS_RETRY_AFTER: Duration = Duration::from_secs(5);

impl StreamLimit {
    /// A slot, held for as long as the stream or long-poll is open.
    pub(crate) fn acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.0).try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::TOO_MANY_STREAMS,
                "too many event streams and long-polls are open; retry later",
            )
            .with_retry_after(STREAMS_RETRY_AFTER)
        })
    }
}

/// How long a response waits for the creates of the operations its request started
/// to be written to the store before it gives up (and cancels them).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes every route of `router` answer only once the operations it started are in
/// `ops`'s store (a durable registry, see
/// [`OperationsBuilder::open`](crate::OperationsBuilder::open)), so that an id a
/// client is given survives a crash of this process. A start whose create the store
/// does not take within 10 s is cancelled and answered 503 `STORE_UNAVAILABLE`.
/// Without a store it returns `router` as it is.
///
/// [`Api`]'s routes (and those given to [`Api::with_routes`]) have it already; use it
/// for start routes merged next to the API.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::post};
/// use orchestrator::{Operations, http};
///
/// let ops = Operations::new();
/// let starts: Router = Router::new().route("/nap/start", post(|| async { "started" }));
/// let app = http::Api::new(ops.clone())
///     .into_router()
///     .merge(http::acknowledge_creates(starts, &ops));
/// # let _: Router = app;
/// ```
pub fn acknowledge_creates<S>(router: Router<S>, ops: &Operations) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if ops.durable().is_none() {
        return router;
    }
    router.route_layer(axum::middleware::from_fn_with_state(
        ops.clone(),
        acknowledge,
    ))
}

/// The layer of [`acknowledge_creates`]: runs the request collecting the operations it
/// registers, then waits for their creates to be stored (or cancels them and answers
/// 503 after `ACK_TIMEOUT`).
async fn acknowledge(State(ops): State<Operations>, req: Request, next: Next) -> Response {
    let (response, created) = crate::durable::ack::scope(next.run(req)).await;
    if created.is_empty() {
        return response;
    }
    let written = futures::future::join_all(
        created
            .iter()
            .map(|e| e.persisted_to(crate::durable::Step::Create)),
    );
    if tokio::time::timeout(ACK_TIMEOUT, written).await.is_ok() {
        return response;
    }
    for entry in &created {
        let _ = ops.cancel(
            &entry.id,
            "the operation store did not take the operation in time",
        );
    }
    let reason = ops
        .store_health()
        .and_then(|h| h.last_error)
        .unwrap_or_else(|| "the store did not answer in time".to_owned());
    axum::response::IntoResponse::into_response(ApiError::from(
        crate::OrchestratorError::StoreUnavailable { reason },
    ))
}

/// 415 for a `POST` whose `content-type` is not JSON, whatever its body.
async fn require_json(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !extract::has_json_content_type(req.headers()) {
        return axum::response::IntoResponse::into_response(extract::not_json());
    }
    next.run(req).await
}

/// The OpenAPI 3 document of [`router`]'s routes and of the data model, with paths
/// relative to the mount point. Built once; each call returns a copy, for example to
/// merge a service's own paths in (or use [`Api::with_routes`], which also serves them).
///
/// # Examples
///
/// ```
/// let doc = orchestrator::http::openapi();
/// assert!(doc.paths.paths.contains_key("/operations/{id}"));
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = api().split_for_parts().1;
        openapi::document_server_limits(&mut doc);
        doc
    })
    .clone()
}

/// The single list of routes: each `routes!` entry registers the handler with axum and
/// its `#[utoipa::path]` with the document, so the two cannot drift apart.
fn api() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(handlers::list_operations))
        .routes(routes!(handlers::get_operation, handlers::delete_operation))
        .routes(routes!(handlers::cancel_operation))
        .routes(routes!(handlers::resume_operation))
        .routes(routes!(handlers::operation_children))
        .routes(routes!(handlers::operation_metrics))
        .routes(routes!(handlers::wait_operation))
        .routes(routes!(handlers::operation_events))
        .routes(routes!(handlers::multiplexed_events))
        .routes(routes!(openapi_json))
        .routes(routes!(handlers::health))
}

/// The OpenAPI document of this API, with `servers` set to where it is mounted.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
async fn openapi_json(
    State(state): State<ApiState>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> OpenApiJson {
    let mut doc = state.doc.get().cloned().unwrap_or_else(openapi);
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
