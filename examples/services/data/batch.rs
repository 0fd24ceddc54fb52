//! Loading several files as one operation: each file is a child operation of the
//! batch (`GET /operations/{id}/children` lists them), loaded side by side.
//! Cancelling the batch cancels every load still running; a file that fails to load
//! fails its child only, and the batch reports it.

use std::path::PathBuf;

use axum::extract::State;
use orchestrator::http::{ApiError, ApiJson, ApiResult};
use orchestrator::{
    OperationContext, OperationId, OperationSpec, OperationStatus, Outcome, StartedOperation,
    managed_operation,
};
use serde::{Deserialize, Serialize};

use super::{CsvSource, DataService, LoadError, LoadSummary, Timeframe};

/// The most files one batch may load.
pub const MAX_BATCH_FILES: usize = 64;

/// What a batch load returns: one line per file, in the order asked, and the totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// Files asked for.
    pub files: usize,
    /// Files loaded to the end.
    pub loaded: usize,
    /// Files whose load failed.
    pub failed: usize,
    /// Valid rows of every file loaded.
    pub rows_loaded: u64,
    /// Each file's load.
    pub results: Vec<FileLoad>,
}

/// How one file of a batch went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileLoad {
    /// The file, as asked.
    pub path: PathBuf,
    /// Its child operation.
    pub operation_id: OperationId,
    /// How the child ended.
    pub status: OperationStatus,
    /// Valid rows loaded (of a cancelled load: up to where it stopped).
    pub rows_loaded: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl DataService {
    /// Loads `paths` (each inside the data directory) as children of this operation,
    /// all at once: the batch's progress is the mean of theirs, a failed file is
    /// reported in the summary (the others go on), and cancelling the batch cancels
    /// them all.
    ///
    /// `#[managed_operation]` generates `start_load_files(paths, timeframe)` and the
    /// other forms next to it.
    ///
    /// # Errors
    ///
    /// [`LoadError::BatchSize`] for no file or more than [`MAX_BATCH_FILES`];
    /// [`LoadError::Start`] when the registry refuses a child.
    #[managed_operation(operation_type = "data_load_batch", description = "data load batch")]
    pub async fn load_files(
        &self,
        ctx: OperationContext,
        paths: Vec<PathBuf>,
        timeframe: Timeframe,
    ) -> Result<BatchSummary, LoadError> {
        if paths.is_empty() || paths.len() > MAX_BATCH_FILES {
            return Err(LoadError::BatchSize {
                files: paths.len(),
                max: MAX_BATCH_FILES,
            });
        }
        ctx.set_items_total(paths.len() as u64);
        let mut children = Vec::with_capacity(paths.len());
        for path in &paths {
            let svc = self.clone();
            let file = path.clone();
            let spec = OperationSpec::new("data_load")
                .with_description(format!("data load {}", path.display()))
                .with_parameter("path", path.display().to_string())
                .with_parameter("timeframe", timeframe.to_string())
                .with_progress_weight(1.0);
            let child = ctx
                .spawn_child(spec, move |child| async move {
                    svc.load_csv(child, CsvSource::File(file), timeframe).await
                })
                .map_err(|e| LoadError::Start {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            children.push(child);
        }
        let mut results = Vec::with_capacity(children.len());
        for (path, child) in paths.into_iter().zip(children) {
            let operation_id = child.id().clone();
            let (status, rows_loaded, error) = match child.outcome().await {
                Outcome::Completed(summary) => {
                    (OperationStatus::Completed, summary.rows_loaded, None)
                }
                Outcome::Cancelled(summary) => (
                    OperationStatus::Cancelled,
                    summary.as_ref().map_or(0, |s: &LoadSummary| s.rows_loaded),
                    None,
                ),
                Outcome::Failed(failure) => (OperationStatus::Failed, 0, Some(failure.to_string())),
            };
            results.push(FileLoad {
                path,
                operation_id,
                status,
                rows_loaded,
                error,
            });
            ctx.items(results.len() as u64);
        }
        let count = |s| results.iter().filter(|r| r.status == s).count();
        Ok(BatchSummary {
            files: results.len(),
            loaded: count(OperationStatus::Completed),
            failed: count(OperationStatus::Failed),
            rows_loaded: results.iter().map(|r| r.rows_loaded).sum(),
            results,
        })
    }
}

/// Body of `POST /api/v1/data/load_files`: the files (1 to [`MAX_BATCH_FILES`], each
/// inside the server's data directory) and the gap timeframe.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::BatchRequest;
///
/// let req: BatchRequest = serde_json::from_str(r#"{"paths": ["a.csv", "b.csv"]}"#)?;
/// assert_eq!(req.paths.len(), 2);
/// assert!(serde_json::from_str::<BatchRequest>(r#"{"path": "a.csv"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The files, relative to the data directory.
    pub paths: Vec<PathBuf>,
    /// Gap timeframe (default `1m`).
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
}

/// `POST /data/load_files`: validate, start the batch, answer with its id.
///
/// # Errors
///
/// 415/422 `INVALID_REQUEST` for a body that is not a valid [`BatchRequest`], no file
/// or more than [`MAX_BATCH_FILES`].
pub async fn start_load_files(
    State(svc): State<DataService>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<StartedOperation> {
    if req.paths.is_empty() || req.paths.len() > MAX_BATCH_FILES {
        return Err(ApiError::invalid_request(format!(
            "paths must list 1 to {MAX_BATCH_FILES} files, got {}",
            req.paths.len()
        )));
    }
    let timeframe = req.timeframe.unwrap_or_default();
    Ok(svc.start_load_files(req.paths, timeframe)?.into())
}
