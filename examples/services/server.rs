//! The HTTP app of the `axum_server` example: the operations API and the two start
//! endpoints under `/api/v1`, with the envelope for unknown routes.

use axum::Router;
use orchestrator::{Operations, ServiceOrchestrator as _, http};

use crate::data::{self, DataService};
use crate::dummy::{self, DummyService};

/// `/api/v1/operations…`, `/api/v1/openapi.json`, `POST /api/v1/dummy/start` and
/// `POST /api/v1/data/load`, all over `ops`; request bodies up to 64 KiB (`ApiJson`),
/// at most [`Api::DEFAULT_MAX_STREAMS`](http::Api::DEFAULT_MAX_STREAMS) streams and
/// long-polls.
pub fn app(ops: Operations) -> Router {
    app_with(ops, http::Api::DEFAULT_MAX_STREAMS, None)
}

/// [`app`] with a stream cap and, when `token` is `Some`, bearer authentication on
/// every route ([`http::BearerAuthLayer`]).
pub fn app_with(ops: Operations, max_streams: usize, token: Option<&str>) -> Router {
    app_with_data(DataService::new(ops), max_streams, token)
}

/// [`app_with`] over a configured [`DataService`] (its data directory and row limit;
/// the operations are its registry's).
pub fn app_with_data(data: DataService, max_streams: usize, token: Option<&str>) -> Router {
    let ops = data.operations().clone();
    // Documented routes (in /openapi.json) go through `with_routes`; the data-load
    // route is merged undocumented until it has its `#[utoipa::path]`.
    let api = http::Api::new(ops.clone())
        .with_max_streams(max_streams)
        .with_routes(dummy::routes(DummyService::new(ops)))
        .into_router()
        .merge(data::routes(data))
        .method_not_allowed_fallback(http::method_not_allowed);
    let app = Router::new().nest("/api/v1", api).fallback(http::not_found);
    match token {
        Some(token) => app.layer(http::BearerAuthLayer::new(token)),
        None => app,
    }
}
