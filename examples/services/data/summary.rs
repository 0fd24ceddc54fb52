//! [`LoadSummary`]: what a load reports, and its one-fact-per-line report.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Timeframe;
use super::parse::InvalidRow;

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

pub(super) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
