//! The `POST /data/load` request: its body [`LoadRequest`], the handler and routes,
//! and the CLI's [`LoadAdapter`] that sends it.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use orchestrator::client::OperationAdapter;
use orchestrator::http::{ApiJson, ApiResult};
use orchestrator::{OperationInfo, OperationStatus, StartedOperation};
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::DEFAULT_MAX_ROWS;
use super::{DataService, LoadSummary, Timeframe};

/// Body of `POST /api/v1/data/load`; every field is optional, unknown fields are
/// refused (a typo must not start a default run). Without `path`, `rows` bars (default
/// 2 000 000) are generated into a temp file first.
///
/// `path` is resolved inside the server's data directory
/// ([`DataService::with_data_dir`]).
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::LoadRequest;
///
/// let req: LoadRequest = serde_json::from_str(r#"{"path": "bars.csv"}"#)?;
/// assert_eq!(req.path.as_deref(), Some("bars.csv".as_ref()));
/// assert!(serde_json::from_str::<LoadRequest>(r#"{"row": 10}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadRequest {
    /// A CSV file in the server's data directory, relative to it.
    pub path: Option<PathBuf>,
    /// Bars to generate when there is no `path` (1 to the server's `max_rows`,
    /// [`DEFAULT_MAX_ROWS`] by default).
    pub rows: Option<u64>,
    /// Gap timeframe (default `1m`).
    pub timeframe: Option<Timeframe>,
    /// Seed of the synthetic random walk (default 42).
    pub seed: Option<u64>,
}

/// `POST /data/load`: validate, start, answer with the id.
///
/// # Errors
///
/// 415/422 `INVALID_REQUEST` for a body that is not a valid [`LoadRequest`] (unknown
/// fields included) or asks for too many rows.
pub async fn start_load(
    State(svc): State<DataService>,
    ApiJson(req): ApiJson<LoadRequest>,
) -> ApiResult<StartedOperation> {
    let timeframe = req.timeframe.unwrap_or_default();
    Ok(svc.start_load_csv(svc.source(&req)?, timeframe)?.into())
}

/// The service's routes (`POST /data/load`, `POST /data/load_files`), to merge next
/// to the operations API.
pub fn routes(svc: DataService) -> Router {
    Router::new()
        .route("/data/load", post(start_load))
        .route("/data/load_files", post(super::start_load_files))
        .with_state(svc)
}

/// The CLI side of a load: start it at `POST /data/load` with a [`LoadRequest`]; report
/// the summary, or how many rows were loaded before a cancel.
#[derive(Debug, Clone, Default)]
pub struct LoadAdapter(pub LoadRequest);

impl OperationAdapter for LoadAdapter {
    fn start_path(&self) -> &str {
        "/data/load"
    }

    type Request = LoadRequest;

    fn request(&self) -> &LoadRequest {
        &self.0
    }

    fn result_message(&self, info: &OperationInfo) -> Option<String> {
        let summary = info.result_as::<LoadSummary>();
        match (info.status, summary) {
            (OperationStatus::Completed, Some(s)) => Some(s.to_string()),
            (OperationStatus::Cancelled, s) => Some(format!(
                "Cancelled after {} rows",
                s.map_or(info.progress.items_processed, |s| s.rows_loaded)
            )),
            _ => None, // the default: `Failed: <the server's message>`
        }
    }
}
