//! Reading a CSV into a [`LoadSummary`]: opening a file (inside the data directory,
//! regular files only) and the blocking segment loop.

use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use orchestrator::OperationContext;

use super::parse::{self, Chunk, Parser, SEGMENT_BYTES, Stats};
use super::summary::mib;
use super::{LoadError, LoadSummary, Timeframe};

/// Resolves `requested` inside `data_dir` and opens it: canonical, inside, a regular
/// file; anything else is the one [`LoadError::Unavailable`].
pub(super) fn open_in_data_dir(
    data_dir: &Path,
    requested: &Path,
) -> Result<(File, u64), LoadError> {
    let refused = || LoadError::Unavailable {
        path: requested.to_owned(),
    };
    let root = std::fs::canonicalize(data_dir).map_err(|e| {
        tracing::warn!(data_dir = %data_dir.display(), error = %e, "data directory unavailable");
        refused()
    })?;
    // `join` of an absolute path is that path: it is then checked like any other.
    let full = std::fs::canonicalize(root.join(requested)).map_err(|_| refused())?;
    if !full.starts_with(&root) {
        return Err(refused());
    }
    open_regular(&full).map_err(|_| refused())
}

/// Why [`open_regular`] refused a path.
enum OpenError {
    NotRegular,
    Io(std::io::Error),
}

/// Opens `path` only if it is a regular file: checked before opening (so a FIFO is not
/// opened, which would block) and again on the open handle (in case it was swapped).
fn open_regular(path: &Path) -> Result<(File, u64), OpenError> {
    if !std::fs::metadata(path).map_err(OpenError::Io)?.is_file() {
        return Err(OpenError::NotRegular);
    }
    let file = File::open(path).map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular);
    }
    Ok((file, meta.len()))
}

/// Loads the file at `path` as given (no data-directory confinement: for trusted
/// callers, tests and benches) with [`load_reader`].
///
/// # Errors
///
/// [`LoadError::NotRegularFile`] for a directory, device or pipe (never opened),
/// [`LoadError::Io`] when the file cannot be opened or read, [`LoadError::Format`]
/// when its first line is not the header.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationContext;
/// use orchestrator_examples::data::{LoadError, Timeframe, load_file};
///
/// let err = load_file(&OperationContext::detached(), "/dev/zero".as_ref(), Timeframe::MINUTE);
/// # #[cfg(unix)]
/// assert!(matches!(err, Err(LoadError::NotRegularFile { .. })));
/// ```
pub fn load_file(
    ctx: &OperationContext,
    path: &Path,
    timeframe: Timeframe,
) -> Result<LoadSummary, LoadError> {
    let (file, size) = open_regular(path).map_err(|e| match e {
        OpenError::NotRegular => LoadError::NotRegularFile {
            path: path.to_owned(),
        },
        OpenError::Io(source) => LoadError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    load_reader(ctx, file, size, path, timeframe)
}

/// The blocking load loop over any reader: segments of [`SEGMENT_BYTES`], progress and
/// a cancellation check after each, and a cancellation check after every read that
/// completes no segment (a slow input, or a line too long to keep). Returns a partial
/// summary (`complete: false`) when cancelled. `size` is the expected length in bytes
/// (for progress), `path` the name used in the summary and in errors.
///
/// # Errors
///
/// [`LoadError::Io`] when the reader fails, [`LoadError::Format`] when the first line
/// is not the header.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationContext;
/// use orchestrator_examples::data::{Timeframe, load_reader};
///
/// let csv = "timestamp,open,high,low,close,volume\n1577836800,1,2,0.5,1.5,10\n";
/// let ctx = OperationContext::detached();
/// let summary = load_reader(&ctx, csv.as_bytes(), csv.len() as u64, "mem.csv".as_ref(), Timeframe::MINUTE)?;
/// assert_eq!(summary.rows_loaded, 1);
/// # Ok::<(), orchestrator_examples::data::LoadError>(())
/// ```
pub fn load_reader<R: Read>(
    ctx: &OperationContext,
    reader: R,
    size: u64,
    path: &Path,
    timeframe: Timeframe,
) -> Result<LoadSummary, LoadError> {
    let bytes_total = size;
    let segments = bytes_total.div_ceil(SEGMENT_BYTES as u64).max(1);
    ctx.set_total_steps(segments);
    let total_mib = mib(bytes_total);
    let started = Instant::now();
    let mut parser = Parser::new(timeframe);
    let mut format_error = None;
    let mut bytes_read = 0;
    let mut step = 0;
    let mut complete = true;
    parse::for_each_segment(reader, SEGMENT_BYTES, |chunk, read| {
        bytes_read = read;
        let fed = match chunk {
            Chunk::Lines(segment) => parser.feed(segment),
            Chunk::LongLine => parser.feed_long_line(),
            Chunk::Reading => {
                if ctx.is_cancelled() {
                    complete = false;
                    return ControlFlow::Break(());
                }
                return ControlFlow::Continue(());
            }
        };
        if let Err(e) = fed {
            format_error = Some(e);
            return ControlFlow::Break(());
        }
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
    .map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
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

/// RFC 3339 of a Unix time; `None` where it cannot be written (before 1970, after
/// 9999: the parser rejects those rows, this is the second line of defence).
fn rfc3339(unix: i64) -> Option<String> {
    use std::fmt::Write as _;
    let secs = u64::try_from(unix).ok()?;
    let t = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    let mut out = String::new();
    // `to_string()` would panic: humantime's `Display` errors past year 9999.
    write!(out, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
    Some(out)
}
