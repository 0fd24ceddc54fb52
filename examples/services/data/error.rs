//! [`LoadError`]: why a load failed.

use std::path::PathBuf;

use orchestrator::Cancelled;

use super::parse::FormatError;
#[cfg(doc)]
use super::{DataService, load_file};

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
    /// A batch load ([`DataService::load_files`]) asked for no file, or too many.
    #[error("a batch loads 1 to {max} files, got {files}")]
    BatchSize {
        /// Files asked for.
        files: usize,
        /// The most a batch may load ([`MAX_BATCH_FILES`](super::MAX_BATCH_FILES)).
        max: usize,
    },
    /// A child load could not be started (the registry refused it).
    #[error("cannot start the load of {}: {reason}", path.display())]
    Start {
        /// The file.
        path: PathBuf,
        /// The registry's refusal.
        reason: String,
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
