//! The synthetic files of loads without a path: their names, their removal, and the
//! sweep of files left behind by a killed process.
//!
//! A synthetic file is named `orchestrator-ohlcv-{pid}-{run}-{n}.csv`: the process id,
//! a random id of this process run (so a restarted server that got the same pid, as a
//! container's pid 1 does, still tells its files from a dead run's) and a counter.
//! The file is unlinked as soon as it is created and then written and read through
//! the open handle (on Windows it is opened with `FILE_SHARE_DELETE` for that), so
//! nothing is left in the directory on any exit, SIGKILL included. Where the name
//! cannot be removed while the file is open, a guard tries again when the load ends
//! (error, panic and cancel included), and [`sweep_stale_files`] removes the files of
//! processes that no longer run.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "orchestrator-ohlcv-";
const SUFFIX: &str = ".csv";

/// Where the liveness of a pid cannot be checked (no `/proc`), a synthetic file older
/// than this is taken as left behind.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This process run's random id, part of every synthetic file name.
fn run_id() -> u64 {
    static RUN: OnceLock<u64> = OnceLock::new();
    *RUN.get_or_init(|| fastrand::u64(..))
}

/// A fresh synthetic file name in `dir`: `orchestrator-ohlcv-{pid}-{run}-{n}.csv`.
pub(crate) fn synthetic_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{PREFIX}{}-{:016x}-{n}{SUFFIX}",
        std::process::id(),
        run_id()
    ))
}

/// A file name in `dir` for a synthetic file that is kept: not of the swept form.
pub(crate) fn kept_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{PREFIX}kept-{}-{:016x}-{n}{SUFFIX}",
        std::process::id(),
        run_id()
    ))
}

/// The pid and run id of a synthetic file name, `None` for any other name.
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let mut parts = rest.split('-');
    let (pid, run, n) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = run.len() == 16 && run.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some() || !digits(pid) || !digits(n) || !hex {
        return None;
    }
    Some((pid.parse().ok()?, u64::from_str_radix(run, 16).ok()?))
}

/// Whether process `pid` runs, where that can be told (`/proc`).
fn pid_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

/// Removes the synthetic files in `dir` that no live process owns: those of a pid that
/// no longer runs, of an earlier run of this process's pid, or (where pids cannot be
/// checked) older than [`STALE_AFTER`]. Only regular files of exactly the synthetic
/// name form are touched; links, kept files and everything else are left alone.
/// Returns how many were removed.
///
/// # Errors
///
/// When `dir` cannot be listed. Files that cannot be removed are skipped.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::sweep_stale_files;
///
/// let dir = std::env::temp_dir().join(format!("sweep-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// // A file of a pid that cannot run (pids stay below 2^22).
/// let stale = dir.join("orchestrator-ohlcv-4000000000-00000000000000ff-0.csv");
/// std::fs::write(&stale, "timestamp,open,high,low,close,volume\n")?;
/// # #[cfg(target_os = "linux")]
/// assert_eq!(sweep_stale_files(&dir)?, 1);
/// # #[cfg(target_os = "linux")]
/// assert!(!stale.exists());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sweep_stale_files(dir: &Path) -> io::Result<usize> {
    let (own_pid, own_run) = (std::process::id(), run_id());
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some((pid, run)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        // `DirEntry::metadata` does not follow links.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let stale = if pid == own_pid {
            run != own_run
        } else {
            match pid_alive(pid) {
                Some(alive) => !alive,
                None => meta
                    .modified()
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE_AFTER),
            }
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Sweeps `dir` the first time this process writes a synthetic file there.
pub(crate) fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let first = SWEPT
        .lock()
        .map(|mut swept| {
            swept
                .get_or_insert_with(HashSet::new)
                .insert(dir.to_owned())
        })
        .unwrap_or(false);
    if first {
        match sweep_stale_files(dir) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(dir = %dir.display(), removed = n, "removed stale synthetic files");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot sweep stale synthetic files");
            }
        }
    }
}

/// A synthetic file being written and read: created new (never an existing file or
/// link), unlinked at once where the OS allows it, otherwise removed on drop (best
/// effort: an OS that cannot remove an open file leaves it to the sweep).
#[derive(Debug)]
pub(crate) struct TempCsv {
    file: File,
    /// The path still to remove on drop (`None`: unlinked already, or kept).
    remove: Option<PathBuf>,
}

impl TempCsv {
    /// Creates `path`; `keep` leaves it in place after the load.
    pub(crate) fn create(path: &Path, keep: bool) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            // FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE: the name can be
            // removed while the file is open.
            options.share_mode(7);
        }
        let file = options.open(path)?;
        // The open handle keeps the data once the name is gone: unlink now.
        let unlinked = keep || std::fs::remove_file(path).is_ok();
        let remove = (!unlinked).then(|| path.to_owned());
        Ok(Self { file, remove })
    }

    /// The open file.
    pub(crate) const fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        if let Some(path) = self.remove.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        let path = synthetic_path(Path::new("/x"));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert_eq!(parse_name(name), Some((std::process::id(), run_id())));
        let kept = kept_path(Path::new("/x"));
        let kept = kept.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert_eq!(parse_name(kept), None);
        for other in [
            "orchestrator-ohlcv-1-2.csv",
            "orchestrator-ohlcv-12-00000000000000ff-3.csv.bak",
            "orchestrator-ohlcv-x-00000000000000ff-3.csv",
            "orchestrator-ohlcv-12-00000000000000ff-3-4.csv",
            "bars.csv",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
