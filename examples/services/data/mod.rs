//! `DataService`: loads OHLCV bars from CSV as a managed operation.
//!
//! The file is parsed on Tokio's blocking pool through
//! [`OperationContext::spawn_blocking`], in segments of [`parse::SEGMENT_BYTES`]:
//! after each segment it reports progress (segments as steps, rows as items, bytes in
//! the context) and checks for cancellation, and between two reads of a slow input.
//! Bad rows are counted, never fatal (a line longer than a segment or a timestamp
//! past year 9999 included); memory stays at one segment whatever the file holds.
//!
//! What a client may ask for is bounded: a `path` is resolved inside the service's data
//! directory ([`DataService::with_data_dir`]; canonicalised, no `..` or symlink out of
//! it, regular files only) and every refusal is the same [`LoadError::Unavailable`],
//! which tells no file's content nor whether a path outside exists. A synthetic load
//! is at most [`DataService::with_max_rows`] rows, and its file never outlives the
//! load (see [`sweep_stale_files`]).

pub mod generate;
mod load;
pub mod parse;
mod temp;

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use orchestrator::client::OperationAdapter;
use orchestrator::http::{ApiError, ApiJson, ApiResult};
use orchestrator::{
    Cancelled, OperationContext, OperationInfo, OperationStatus, Operations, ServiceOrchestrator,
    StartedOperation, managed_operation,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use load::{load_file, load_reader};
use parse::{FormatError, InvalidRow};
pub use temp::{STALE_AFTER, sweep_stale_files};

/// Rows generated when no file is given.
pub const DEFAULT_ROWS: u64 = 2_000_000;
/// The default of [`DataService::with_max_rows`]: the most rows a synthetic load may
/// generate (about 250 MB of CSV).
pub const DEFAULT_MAX_ROWS: u64 = 5_000_000;
/// The default of [`DataService::with_data_dir`]: `data`, relative to the working
/// directory of the process.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The bar interval gaps are measured against: `30s`, `1m`, `5m`, `1h`, `1d`, …
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::Timeframe;
///
/// let tf: Timeframe = "15m".parse().unwrap();
/// assert_eq!(tf.seconds(), 900);
/// assert_eq!(tf.to_string(), "15m");
/// assert!("7q".parse::<Timeframe>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeframe {
    seconds: i64,
}

impl Timeframe {
    /// One minute, the default.
    pub const MINUTE: Self = Self { seconds: 60 };

    /// The interval in seconds.
    pub const fn seconds(self) -> i64 {
        self.seconds
    }
}

impl Default for Timeframe {
    fn default() -> Self {
        Self::MINUTE
    }
}

impl FromStr for Timeframe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            format!("invalid timeframe {s:?}: expected a number and s, m, h or d (e.g. 1m, 4h, 1d)")
        };
        let s = s.trim();
        let unit = match s.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(err()),
        };
        let n: i64 = s[..s.len() - 1].parse().map_err(|_| err())?;
        match n.checked_mul(unit) {
            Some(seconds) if n > 0 && seconds <= 366 * 86_400 => Ok(Self { seconds }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where the bars come from.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::CsvSource;
///
/// let file = CsvSource::File("2024/eurusd.csv".into()); // inside the data directory
/// assert_eq!(file.path().to_str(), Some("2024/eurusd.csv"));
/// let CsvSource::Synthetic { rows, keep, .. } = CsvSource::synthetic(1000, 7) else {
///     unreachable!()
/// };
/// assert_eq!((rows, keep), (1000, false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvSource {
    /// An existing file, relative to the service's data directory (or an absolute path
    /// inside it).
    File(PathBuf),
    /// A synthetic random walk of `rows` bars, generated into `path` first (as part of
    /// the operation; `path` must not exist yet) and removed when the load ends unless
    /// `keep`.
    Synthetic {
        /// Bars to generate.
        rows: u64,
        /// Seed of the random walk.
        seed: u64,
        /// Where to write it.
        path: PathBuf,
        /// Keep the file after the load.
        keep: bool,
    },
}

impl CsvSource {
    /// A synthetic source in the system temp directory, removed after the load, under
    /// a name unique to this process run and call,
    /// `orchestrator-ohlcv-{pid}-{run}-{n}.csv` (the form [`sweep_stale_files`] knows).
    pub fn synthetic(rows: u64, seed: u64) -> Self {
        Self::synthetic_in(&std::env::temp_dir(), rows, seed)
    }

    /// [`synthetic`](Self::synthetic) in `dir` instead of the system temp directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator_examples::data::CsvSource;
    ///
    /// let source = CsvSource::synthetic_in("/var/tmp".as_ref(), 10, 1);
    /// assert!(source.path().starts_with("/var/tmp"));
    /// ```
    pub fn synthetic_in(dir: &Path, rows: u64, seed: u64) -> Self {
        Self::Synthetic {
            rows,
            seed,
            path: temp::synthetic_path(dir),
            keep: false,
        }
    }

    /// A synthetic source in the system temp directory that is kept after the load,
    /// under a name the sweep of stale files leaves alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator_examples::data::CsvSource;
    ///
    /// assert!(matches!(CsvSource::synthetic_kept(10, 1), CsvSource::Synthetic { keep: true, .. }));
    /// ```
    pub fn synthetic_kept(rows: u64, seed: u64) -> Self {
        Self::Synthetic {
            rows,
            seed,
            path: temp::kept_path(&std::env::temp_dir()),
            keep: true,
        }
    }

    /// The file that is (or will be) read.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) | Self::Synthetic { path, .. } => path,
        }
    }
}

/// What a load reports: the operation's `result_summary`, also when it was cancelled
/// part-way (then `complete` is `false` and the counts are those reached).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// The file read.
    pub path: String,
    /// Whether the file was generated for this load.
    pub generated: bool,
    /// Whether the whole file was read (`false` when cancelled).
    pub complete: bool,
    /// The timeframe gaps were measured against.
    pub timeframe: Timeframe,
    /// Valid bars loaded.
    pub rows_loaded: u64,
    /// Rows rejected (bad numbers, `low > high`, negative volume, wrong column count).
    pub invalid_rows: u64,
    /// The first rejected rows, by line number (the header is line 1).
    pub invalid_samples: Vec<InvalidRow>,
    /// The first bar's time, RFC 3339.
    pub first_timestamp: Option<String>,
    /// The last bar's time, RFC 3339.
    pub last_timestamp: Option<String>,
    /// Places where consecutive bars are more than one timeframe apart.
    pub gaps: u64,
    /// Bars missing in those gaps.
    pub missing_bars: u64,
    /// Bars not after the one before them.
    pub out_of_order: u64,
    /// Lowest low.
    pub min_low: Option<f64>,
    /// Highest high.
    pub max_high: Option<f64>,
    /// Sum of volumes.
    pub total_volume: f64,
    /// Bytes of the file read.
    pub bytes_read: u64,
    /// Size of the file.
    pub bytes_total: u64,
    /// Time spent parsing, in seconds.
    pub parse_seconds: f64,
}

/// The report of a finished load, one fact per line:
///
/// ```text
/// Loaded 5000 rows from /tmp/bars.csv (0.2 MiB) in 0.01 s (0.50 M rows/s)
///   first bar     2020-01-01T00:00:00Z
///   last bar      2020-01-04T11:19:00Z
///   gaps          0 (0 missing 1m bars), 0 out of order
///   invalid rows  0
///   price range   98.1234 – 101.5678, volume 123456
/// ```
impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        let rate = s.rows_loaded as f64 / s.parse_seconds.max(1e-9);
        writeln!(
            f,
            "Loaded {} rows from {} ({:.1} MiB) in {:.2} s ({:.2} M rows/s)",
            s.rows_loaded,
            s.path,
            mib(s.bytes_total),
            s.parse_seconds,
            rate / 1e6
        )?;
        let none = "-";
        writeln!(
            f,
            "  first bar     {}",
            s.first_timestamp.as_deref().unwrap_or(none)
        )?;
        writeln!(
            f,
            "  last bar      {}",
            s.last_timestamp.as_deref().unwrap_or(none)
        )?;
        write!(
            f,
            "  gaps          {} ({} missing {} bars), {} out of order",
            s.gaps, s.missing_bars, s.timeframe, s.out_of_order
        )?;
        let samples: Vec<String> = s
            .invalid_samples
            .iter()
            .map(|r| format!("line {} ({})", r.line, r.reason))
            .collect();
        if samples.is_empty() {
            write!(f, "\n  invalid rows  0")?;
        } else {
            let more = if (s.invalid_rows as usize) > samples.len() {
                ", …"
            } else {
                ""
            };
            write!(
                f,
                "\n  invalid rows  {}: {}{more}",
                s.invalid_rows,
                samples.join(", ")
            )?;
        }
        if let (Some(lo), Some(hi)) = (s.min_low, s.max_high) {
            write!(
                f,
                "\n  price range   {lo:.4} – {hi:.4}, volume {:.0}",
                s.total_volume
            )?;
        }
        Ok(())
    }
}

/// Why a load failed.
///
/// No message quotes a file's content; a path shown is the one the caller gave.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::LoadError;
///
/// let refused = LoadError::Unavailable { path: "../../etc/shadow".into() };
/// assert_eq!(
///     refused.to_string(),
///     "cannot load ../../etc/shadow: no such regular file in the data directory"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The requested path is not a regular file inside the data directory: missing,
    /// outside it (through `..`, an absolute path or a symlink), a directory or a
    /// device. One error for all, so a client learns nothing about files outside.
    #[error("cannot load {}: no such regular file in the data directory", path.display())]
    Unavailable {
        /// The path as requested.
        path: PathBuf,
    },
    /// The file is not a regular file (a directory, a device, a pipe): given to
    /// [`load_file`] directly.
    #[error("cannot load {}: not a regular file", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an OHLCV CSV at all (no or wrong header).
    #[error("{}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: FormatError,
    },
    /// The synthetic file could not be written.
    #[error("cannot write synthetic data to {}: {source}", path.display())]
    Generate {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A synthetic load asked for more rows than the service allows.
    #[error("cannot generate {rows} rows: the limit is {max}")]
    TooManyRows {
        /// Rows asked for.
        rows: u64,
        /// The service's limit ([`DataService::with_max_rows`]).
        max: u64,
    },
    /// The operation was cancelled before the load began (or the runtime went away).
    #[error("cancelled")]
    Cancelled,
}

impl From<Cancelled> for LoadError {
    fn from(_: Cancelled) -> Self {
        Self::Cancelled
    }
}

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

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

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

/// The service's routes (`POST /data/load`), to merge next to the operations API.
pub fn routes(svc: DataService) -> Router {
    Router::new()
        .route("/data/load", post(start_load))
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
