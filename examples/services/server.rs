//! The HTTP app of the `axum_server` example: the operations API and the two start
//! endpoints under `/api/v1`, with the envelope for unknown routes.

use axum::Router;
use orchestrator::{Operations, http};

use crate::data::{self, DataService};
use crate::dummy::{self, DummyService};

/// `/api/v1/operations…`, `/api/v1/openapi.json`, `POST /api/v1/dummy/start` and
/// `POST /api/v1/data/load`, all over `ops`; request bodies up to 64 KiB (`ApiJson`).
pub fn app(ops: Operations) -> Router {
    let api = http::router(ops.clone())
        .merge(dummy::routes(DummyService::new(ops.clone())))
        .merge(data::routes(DataService::new(ops)))
        .method_not_allowed_fallback(http::method_not_allowed);
    Router::new().nest("/api/v1", api).fallback(http::not_found)
}
