//! `DataService`: loads OHLCV bars from CSV as a managed operation.
//!
//! The file is parsed on Tokio's blocking pool through
//! [`OperationContext::spawn_blocking`], in segments of [`parse::SEGMENT_BYTES`]:
//! after each segment it reports progress (segments as steps, rows as items, bytes in
//! the context) and checks for cancellation. Bad rows are counted, never fatal; an
//! unreadable file fails the operation with a message naming the path.

pub mod generate;
pub mod parse;

use std::fmt;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

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

use parse::{FormatError, InvalidRow, Parser, SEGMENT_BYTES, Stats};

/// Rows generated when no file is given.
pub const DEFAULT_ROWS: u64 = 2_000_000;
/// The most rows a synthetic load may ask for over HTTP (about 1 GB of CSV).
pub const MAX_ROWS: u64 = 20_000_000;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvSource {
    /// An existing file.
    File(PathBuf),
    /// A synthetic random walk of `rows` bars, generated into `path` first (as part of
    /// the operation) and removed after the load unless `keep`.
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
    /// A synthetic source in the system temp directory, under a name unique to this
    /// process and call: `orchestrator-ohlcv-{pid}-{n}.csv`.
    pub fn synthetic(rows: u64, seed: u64) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("orchestrator-ohlcv-{}-{n}.csv", std::process::id());
        Self::Synthetic {
            rows,
            seed,
            path: std::env::temp_dir().join(name),
            keep: false,
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
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an OHLCV CSV at all (no or wrong header).
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: FormatError,
    },
    /// The synthetic file could not be written.
    Generate {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The operation was cancelled before the load began (or the runtime went away).
    Cancelled,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Format { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Generate { path, source } => {
                write!(
                    f,
                    "cannot write synthetic data to {}: {source}",
                    path.display()
                )
            }
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<Cancelled> for LoadError {
    fn from(_: Cancelled) -> Self {
        Self::Cancelled
    }
}

/// Loads OHLCV bars as managed operations.
#[derive(Debug, Clone)]
pub struct DataService {
    ops: Operations,
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
    /// A service whose operations live in `ops`.
    pub const fn new(ops: Operations) -> Self {
        Self { ops }
    }

    /// The domain logic: generate the file if asked to (first 25 % of the progress),
    /// then parse it on the blocking pool (the rest).
    ///
    /// `#[managed_operation]` generates `start_load_csv(source, timeframe)`,
    /// `run_load_csv(..)` and `run_load_csv_sync(..)` next to it.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be generated, opened, read, or has no header.
    #[managed_operation(operation_type = "data_load", description = "data load")]
    pub async fn load_csv(
        &self,
        ctx: OperationContext,
        source: CsvSource,
        timeframe: Timeframe,
    ) -> Result<LoadSummary, LoadError> {
        ctx.set_context("path", source.path().display().to_string());
        ctx.set_context("timeframe", timeframe.to_string());
        let (path, generated, keep, load_ctx) = match source {
            CsvSource::File(path) => (path, false, true, ctx.clone()),
            CsvSource::Synthetic {
                rows,
                seed,
                path,
                keep,
            } => {
                let gen_ctx = ctx.phase(0.0..25.0).with_total_steps(rows);
                let out = path.clone();
                let written = gen_ctx
                    .spawn_blocking(move |ctx| generate_file(&ctx, &out, rows, timeframe, seed))
                    .await
                    .map_err(LoadError::from)
                    .and_then(|r| r)
                    .and_then(|()| ctx.checkpoint().map_err(LoadError::from));
                if let Err(e) = written {
                    if !keep {
                        let _ = std::fs::remove_file(&path);
                    }
                    return Err(e);
                }
                (path, true, keep, ctx.phase(25.0..100.0))
            }
        };
        let file = path.clone();
        let result = load_ctx
            .spawn_blocking(move |ctx| load_file(&ctx, &file, timeframe))
            .await;
        if generated && !keep {
            let _ = std::fs::remove_file(&path);
        }
        let mut summary = result??;
        summary.generated = generated;
        Ok(summary)
    }
}

fn generate_file(
    ctx: &OperationContext,
    path: &Path,
    rows: u64,
    timeframe: Timeframe,
    seed: u64,
) -> Result<(), LoadError> {
    let err = |source| LoadError::Generate {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(err)?;
    generate::write_random_walk(file, rows, timeframe, seed, |written| {
        ctx.progress(written, format!("Generating: {written}/{rows} rows"));
        if ctx.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(err)?;
    Ok(())
}

/// The blocking load loop: segments of [`SEGMENT_BYTES`], progress and a cancellation
/// check after each. Returns a partial summary (`complete: false`) when cancelled.
///
/// # Errors
///
/// [`LoadError::Io`] when the file cannot be opened or read, [`LoadError::Format`]
/// when its first line is not the header.
pub fn load_file(
    ctx: &OperationContext,
    path: &Path,
    timeframe: Timeframe,
) -> Result<LoadSummary, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let bytes_total = file.metadata().map_err(io_err)?.len();
    let segments = bytes_total.div_ceil(SEGMENT_BYTES as u64).max(1);
    ctx.set_total_steps(segments);
    let total_mib = mib(bytes_total);
    let started = Instant::now();
    let mut parser = Parser::new(timeframe);
    let mut format_error = None;
    let mut bytes_read = 0;
    let mut step = 0;
    let mut complete = true;
    parse::for_each_segment(file, SEGMENT_BYTES, |segment, read| {
        if let Err(e) = parser.feed(segment) {
            format_error = Some(e);
            return ControlFlow::Break(());
        }
        bytes_read = read;
        step += 1;
        let rows = parser.stats().rows;
        ctx.items(rows);
        ctx.set_context("bytes_read", read);
        ctx.progress(
            step.min(segments),
            format!("{rows} rows, {:.1}/{total_mib:.1} MiB", mib(read)),
        );
        if ctx.is_cancelled() {
            complete = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(io_err)?;
    let format_err = |source| LoadError::Format {
        path: path.to_owned(),
        source,
    };
    if let Some(e) = format_error {
        return Err(format_err(e));
    }
    let parse_seconds = started.elapsed().as_secs_f64();
    let stats = if complete {
        parser.finish().map_err(format_err)?
    } else {
        parser.stats().clone()
    };
    Ok(summary(
        path,
        timeframe,
        stats,
        complete,
        bytes_read,
        bytes_total,
        parse_seconds,
    ))
}

fn summary(
    path: &Path,
    timeframe: Timeframe,
    stats: Stats,
    complete: bool,
    bytes_read: u64,
    bytes_total: u64,
    parse_seconds: f64,
) -> LoadSummary {
    LoadSummary {
        path: path.display().to_string(),
        generated: false,
        complete,
        timeframe,
        rows_loaded: stats.rows,
        invalid_rows: stats.invalid_rows,
        invalid_samples: stats.first_invalid,
        first_timestamp: stats.first_timestamp.and_then(rfc3339),
        last_timestamp: stats.last_timestamp.and_then(rfc3339),
        gaps: stats.gaps,
        missing_bars: stats.missing_bars,
        out_of_order: stats.out_of_order,
        min_low: stats.min_low,
        max_high: stats.max_high,
        total_volume: stats.total_volume,
        bytes_read,
        bytes_total,
        parse_seconds,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rfc3339(unix: i64) -> Option<String> {
    let secs = u64::try_from(unix).ok()?;
    let t = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

/// Body of `POST /api/v1/data/load`; every field is optional. Without `path`, `rows`
/// bars (default 2 000 000) are generated into a temp file first.
///
/// The example trusts `path`: any file the server can read may be loaded. A real
/// service would resolve it inside a data directory of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadRequest {
    /// A CSV file on the server.
    pub path: Option<PathBuf>,
    /// Bars to generate when there is no `path` (1 to 20 000 000).
    pub rows: Option<u64>,
    /// Gap timeframe (default `1m`).
    pub timeframe: Option<Timeframe>,
    /// Seed of the synthetic random walk (default 42).
    pub seed: Option<u64>,
}

impl LoadRequest {
    /// The source this request asks for.
    ///
    /// # Errors
    ///
    /// 422 `INVALID_REQUEST` when both `path` and `rows` are given, or `rows` is out of
    /// range.
    pub fn source(&self) -> Result<CsvSource, ApiError> {
        match (&self.path, self.rows) {
            (Some(_), Some(_)) => Err(ApiError::invalid_request(
                "give either `path` or `rows`, not both",
            )),
            (Some(path), None) => Ok(CsvSource::File(path.clone())),
            (None, rows) => {
                let rows = rows.unwrap_or(DEFAULT_ROWS);
                if !(1..=MAX_ROWS).contains(&rows) {
                    return Err(ApiError::invalid_request(format!(
                        "rows must be between 1 and {MAX_ROWS}, got {rows}"
                    )));
                }
                Ok(CsvSource::synthetic(rows, self.seed.unwrap_or(42)))
            }
        }
    }
}

/// `POST /data/load`: validate, start, answer with the id.
///
/// # Errors
///
/// 415/422 `INVALID_REQUEST` for a body that is not a valid [`LoadRequest`].
pub async fn start_load(
    State(svc): State<DataService>,
    ApiJson(req): ApiJson<LoadRequest>,
) -> ApiResult<StartedOperation> {
    let timeframe = req.timeframe.unwrap_or_default();
    Ok(svc.start_load_csv(req.source()?, timeframe)?.into())
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

    fn start_payload(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
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
