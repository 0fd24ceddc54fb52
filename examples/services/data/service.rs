//! [`DataService`]: its configuration, the source a request asks for, and the domain
//! fn `load_csv` (generate if asked, then parse on the blocking pool).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use orchestrator::http::ApiError;
use orchestrator::{OperationContext, Operations, ServiceOrchestrator, managed_operation};

use super::{
    CsvSource, DEFAULT_DATA_DIR, DEFAULT_MAX_ROWS, DEFAULT_ROWS, LoadError, LoadRequest,
    LoadSummary, Timeframe, generate, load, load_reader, sweep_stale_files, temp,
};

/// Loads OHLCV bars as managed operations.
///
/// Configured by builder: [`with_data_dir`](Self::with_data_dir) (default
/// [`DEFAULT_DATA_DIR`]), [`with_max_rows`](Self::with_max_rows) (default
/// [`DEFAULT_MAX_ROWS`]) and [`with_temp_dir`](Self::with_temp_dir) (default the system
/// temp directory).
///
/// # Examples
///
/// ```
/// use orchestrator::Operations;
/// use orchestrator_examples::data::DataService;
///
/// let svc = DataService::new(Operations::new())
///     .with_data_dir("/srv/bars")
///     .with_max_rows(1_000_000);
/// assert_eq!(svc.data_dir().to_str(), Some("/srv/bars"));
/// assert_eq!(svc.max_rows(), 1_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct DataService {
    ops: Operations,
    /// `None`: [`DEFAULT_DATA_DIR`].
    data_dir: Option<PathBuf>,
    max_rows: u64,
    /// `None`: the system temp directory.
    temp_dir: Option<PathBuf>,
}

impl ServiceOrchestrator for DataService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "DataService"
    }
}

impl DataService {
    /// A service whose operations live in `ops`, with the default data directory,
    /// row limit and temp directory.
    pub const fn new(ops: Operations) -> Self {
        Self {
            ops,
            data_dir: None,
            max_rows: DEFAULT_MAX_ROWS,
            temp_dir: None,
        }
    }

    /// Confines [`CsvSource::File`] paths to `dir`: they are resolved relative to it,
    /// canonicalised, and refused unless they name a regular file inside it. A relative
    /// `dir` is relative to the working directory at load time; it need not exist yet.
    #[must_use]
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The most rows a synthetic load may generate; a larger one is refused.
    #[must_use]
    pub const fn with_max_rows(mut self, max_rows: u64) -> Self {
        self.max_rows = max_rows;
        self
    }

    /// Where synthetic files of [`source`](Self::source) are written.
    #[must_use]
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// The data directory, as configured (not canonicalised).
    pub fn data_dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_DATA_DIR))
    }

    /// The row limit of synthetic loads.
    pub const fn max_rows(&self) -> u64 {
        self.max_rows
    }

    /// Where synthetic files are written.
    pub fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Removes the synthetic files that killed runs left in [`temp_dir`](Self::temp_dir)
    /// (see [`sweep_stale_files`]); call it once at start-up. The first synthetic load
    /// of a process also sweeps, so forgetting this only delays the cleanup.
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use orchestrator::Operations;
    /// # use orchestrator_examples::data::DataService;
    /// let svc = DataService::new(Operations::new());
    /// let removed = svc.sweep_stale_files()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sweep_stale_files(&self) -> std::io::Result<usize> {
        sweep_stale_files(&self.temp_dir())
    }

    /// The source a [`LoadRequest`] asks for: its `path`, or a synthetic file of
    /// `rows` (default [`DEFAULT_ROWS`]) in [`temp_dir`](Self::temp_dir).
    ///
    /// # Errors
    ///
    /// 422 `INVALID_REQUEST` when both `path` and `rows` are given, or `rows` is not
    /// between 1 and [`max_rows`](Self::max_rows).
    ///
    /// # Examples
    ///
    /// ```
    /// # use orchestrator::Operations;
    /// use orchestrator_examples::data::{DataService, LoadRequest};
    ///
    /// let svc = DataService::new(Operations::new()).with_max_rows(1000);
    /// let too_many = LoadRequest { rows: Some(1001), ..Default::default() };
    /// assert!(svc.source(&too_many).is_err());
    /// ```
    pub fn source(&self, req: &LoadRequest) -> Result<CsvSource, ApiError> {
        match (&req.path, req.rows) {
            (Some(_), Some(_)) => Err(ApiError::invalid_request(
                "give either `path` or `rows`, not both",
            )),
            (Some(path), None) => Ok(CsvSource::File(path.clone())),
            (None, rows) => {
                let rows = rows.unwrap_or(DEFAULT_ROWS);
                let max = self.max_rows;
                if !(1..=max).contains(&rows) {
                    return Err(ApiError::invalid_request(format!(
                        "rows must be between 1 and {max}, got {rows}"
                    )));
                }
                Ok(CsvSource::synthetic_in(
                    &self.temp_dir(),
                    rows,
                    req.seed.unwrap_or(42),
                ))
            }
        }
    }

    /// The domain logic: generate the file if asked to (first 25 % of the progress),
    /// then parse it on the blocking pool (the rest).
    ///
    /// A [`CsvSource::File`] is resolved inside the [data directory](Self::with_data_dir);
    /// a [`CsvSource::Synthetic`] is refused above [`max_rows`](Self::max_rows), and its
    /// file is removed when the load ends however it ends (unless `keep`).
    ///
    /// `#[managed_operation]` generates `start_load_csv(source, timeframe)`,
    /// `run_load_csv(..)` and `run_load_csv_sync(..)` next to it.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the path is refused, the row count is over the limit, or the
    /// file cannot be generated, opened, read, or has no header.
    #[managed_operation(operation_type = "data_load", description = "data load")]
    pub async fn load_csv(
        &self,
        ctx: OperationContext,
        source: CsvSource,
        timeframe: Timeframe,
    ) -> Result<LoadSummary, LoadError> {
        ctx.set_context("path", source.path().display().to_string());
        ctx.set_context("timeframe", timeframe.to_string());
        match source {
            CsvSource::File(requested) => {
                let data_dir = self.data_dir().to_owned();
                ctx.spawn_blocking(move |ctx| {
                    let (file, size) = load::open_in_data_dir(&data_dir, &requested)?;
                    load_reader(&ctx, file, size, &requested, timeframe)
                })
                .await?
            }
            CsvSource::Synthetic {
                rows,
                seed,
                path,
                keep,
            } => {
                if rows > self.max_rows {
                    return Err(LoadError::TooManyRows {
                        rows,
                        max: self.max_rows,
                    });
                }
                // One blocking job from creation to the end of the parse, so the file's
                // guard is dropped (and the file removed) on every way out, even when
                // the operation is aborted after its grace period.
                let gen_ctx = ctx.phase(0.0..25.0).with_total_steps(rows);
                let load_ctx = ctx.phase(25.0..100.0);
                let mut summary = gen_ctx
                    .spawn_blocking(move |gen_ctx| {
                        generate_and_load(&gen_ctx, &load_ctx, &path, keep, rows, seed, timeframe)
                    })
                    .await??;
                summary.generated = true;
                Ok(summary)
            }
        }
    }
}

fn generate_and_load(
    gen_ctx: &OperationContext,
    load_ctx: &OperationContext,
    path: &Path,
    keep: bool,
    rows: u64,
    seed: u64,
    timeframe: Timeframe,
) -> Result<LoadSummary, LoadError> {
    let gen_err = |source| LoadError::Generate {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        temp::sweep_once(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        });
    }
    let temp = temp::TempCsv::create(path, keep).map_err(gen_err)?;
    generate_file(gen_ctx, temp.file(), rows, timeframe, seed).map_err(gen_err)?;
    gen_ctx.checkpoint()?;
    let mut file = temp.file();
    let size = file.seek(SeekFrom::End(0)).map_err(gen_err)?;
    file.rewind().map_err(gen_err)?;
    load_reader(load_ctx, file, size, path, timeframe)
}

fn generate_file(
    ctx: &OperationContext,
    file: &File,
    rows: u64,
    timeframe: Timeframe,
    seed: u64,
) -> std::io::Result<()> {
    generate::write_random_walk(file, rows, timeframe, seed, |written| {
        ctx.progress(written, format!("Generating: {written}/{rows} rows"));
        if ctx.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(())
}
