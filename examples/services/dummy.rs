//! The reference `DummyService`: a loop of sleeps run as a managed operation.

use std::time::Duration;

use axum::extract::State;
use orchestrator::client::OperationAdapter;
use orchestrator::http::{ApiError, ApiJson, ApiResponse, ApiResult, ErrorResponse};
use orchestrator::{
    Cancelled, OperationContext, OperationInfo, OperationStatus, Operations, ServiceOrchestrator,
    StartedOperation, managed_operation,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole service: a registry handle and one managed operation.
#[derive(Debug, Clone)]
pub struct DummyService {
    ops: Operations,
}

impl ServiceOrchestrator for DummyService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "DummyService"
    }
}

/// What the dummy task reports when it ends, completed or cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DummySummary {
    /// Iterations that ran to the end.
    pub iterations_completed: u64,
    /// Iterations asked for.
    pub iterations: u64,
}

impl DummyService {
    /// A service whose operations live in `ops`.
    pub const fn new(ops: Operations) -> Self {
        Self { ops }
    }

    /// The domain logic: a plain loop. Sleeping through the context wakes it the
    /// moment the operation is cancelled; it then returns how far it got, so the
    /// operation ends `CANCELLED` with that summary.
    ///
    /// `#[managed_operation]` generates `start_dummy_task(iterations, interval)`,
    /// `run_dummy_task(..)` and `run_dummy_task_sync(..)` next to it.
    ///
    /// # Errors
    ///
    /// None in practice: a cancellation is reported through the summary.
    #[managed_operation(operation_type = "dummy", total_steps = iterations, description = "dummy task")]
    pub async fn dummy_task(
        &self,
        ctx: OperationContext,
        iterations: u64,
        interval: Duration,
    ) -> Result<DummySummary, Cancelled> {
        let mut completed = 0;
        for i in 1..=iterations {
            if ctx.sleep(interval).await.is_err() {
                break;
            }
            completed = i;
            ctx.progress(i, format!("Iteration {i}/{iterations}"));
        }
        Ok(DummySummary {
            iterations_completed: completed,
            iterations,
        })
    }
}

/// Body of `POST /api/v1/dummy/start`; every field is optional, an unknown one is a
/// 422 (a misspelt `iteratons` must not start a default 100 × 2 s run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DummyRequest {
    /// How many iterations (default 100; at most 1,000,000).
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(deserialize_with = "whole_number")]
    pub iterations: u64,
    /// Milliseconds per iteration (default 2000; at most 3,600,000).
    #[schema(minimum = 0, maximum = 3_600_000)]
    #[serde(deserialize_with = "whole_number")]
    pub interval_ms: u64,
}

/// A non-negative integer, also written as a float with no fraction (`5.0`): JSON
/// Schema calls both an integer, so both must be accepted.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(n) = n.as_u64() {
        return Ok(n);
    }
    match n.as_f64() {
        // Exact below 2^53; anything larger is out of every range here anyway.
        Some(f) if f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(f as u64)
        }
        _ => Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, got {n}"
        ))),
    }
}

impl Default for DummyRequest {
    fn default() -> Self {
        Self {
            iterations: 100,
            interval_ms: 2000,
        }
    }
}

impl DummyRequest {
    /// The most iterations a request may ask for.
    pub const MAX_ITERATIONS: u64 = 1_000_000;
    /// The longest interval a request may ask for, in milliseconds (an hour).
    pub const MAX_INTERVAL_MS: u64 = 3_600_000;

    /// The interval as a duration.
    pub const fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// Checks the bounds above.
    ///
    /// # Errors
    ///
    /// 422 `INVALID_REQUEST` naming the field out of range.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.iterations > Self::MAX_ITERATIONS {
            return Err(ApiError::invalid_request(format!(
                "iterations must be at most {}, got {}",
                Self::MAX_ITERATIONS,
                self.iterations
            )));
        }
        if self.interval_ms > Self::MAX_INTERVAL_MS {
            return Err(ApiError::invalid_request(format!(
                "interval_ms must be at most {}, got {}",
                Self::MAX_INTERVAL_MS,
                self.interval_ms
            )));
        }
        Ok(())
    }
}

/// `POST /dummy/start`: the whole endpoint is two lines.
///
/// # Errors
///
/// 415/422 `INVALID_REQUEST` for a body that is not the JSON of a [`DummyRequest`].
#[utoipa::path(
    post,
    path = "/dummy/start",
    tag = "dummy",
    request_body(content = DummyRequest, description = "Optional: every field has a default", content_type = "application/json"),
    responses(
        (status = 200, description = "Started; follow it at `/operations/{id}`", body = ApiResponse<StartedOperation>),
        (status = 408, description = "`REQUEST_TIMEOUT`: the body did not arrive in time", body = ErrorResponse),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorResponse),
        (status = 415, description = "`INVALID_REQUEST`: the content type is not JSON (even with an empty body)", body = ErrorResponse),
        (status = 422, description = "`INVALID_REQUEST`: malformed JSON, an unknown field, or a value out of range", body = ErrorResponse),
    )
)]
pub async fn start_dummy(
    State(svc): State<DummyService>,
    ApiJson(req): ApiJson<DummyRequest>,
) -> ApiResult<StartedOperation> {
    req.validate()?;
    Ok(svc.start_dummy_task(req.iterations, req.interval())?.into())
}

/// The service's documented routes (`POST /dummy/start`), for
/// [`Api::with_routes`](orchestrator::http::Api::with_routes).
pub fn routes(svc: DummyService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(start_dummy))
        .with_state(svc)
}

/// The CLI side of the dummy task: where to start it, with what, and how to word its
/// end with the task's own count. The executor does the rest (HTTP, polling, the bar,
/// Ctrl+C), for a server (`cli dummy`) and in process (`dummy_service`) alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct DummyAdapter(pub DummyRequest);

impl OperationAdapter for DummyAdapter {
    fn start_path(&self) -> &str {
        "/dummy/start"
    }

    type Request = DummyRequest;

    fn request(&self) -> &DummyRequest {
        &self.0
    }

    fn result_message(&self, info: &OperationInfo) -> Option<String> {
        let n = info
            .result_as::<DummySummary>()
            .map_or(info.progress.steps_completed, |s| s.iterations_completed);
        match info.status {
            OperationStatus::Completed => Some(format!("Completed {n} iterations")),
            OperationStatus::Cancelled => Some(format!("Cancelled after {n} iterations")),
            _ => None, // the default: `Failed: <the server's message>`
        }
    }
}
