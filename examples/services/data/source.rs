//! [`CsvSource`]: where the bars of a load come from, a file or a synthetic walk.

use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::sweep_stale_files;
use super::temp;

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
