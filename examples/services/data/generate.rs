//! A synthetic OHLCV file: a seeded random walk, in the format [`super::parse`] reads.

use std::io::{self, Write};
use std::ops::ControlFlow;

use super::Timeframe;
use super::parse::HEADER;

/// 2020-01-01T00:00:00Z: where generated series start.
pub const START_TIMESTAMP: i64 = 1_577_836_800;

/// How often (in rows) the progress callback of [`write_random_walk`] is called.
pub const PROGRESS_EVERY: u64 = 64 * 1024;

/// Writes a header and `rows` bars of a seeded random walk to `out`, one bar per
/// `timeframe` from [`START_TIMESTAMP`], with a rare gap (about one in 20 000 bars
/// skips 1–10 bars) so the summary has gaps to report. Prices have 4 decimals.
///
/// `progress(rows_written)` is called every [`PROGRESS_EVERY`] rows; returning `Break`
/// stops early. Returns the number of rows written.
///
/// # Errors
///
/// Errors of `out`.
pub fn write_random_walk<W: Write>(
    out: W,
    rows: u64,
    timeframe: Timeframe,
    seed: u64,
    mut progress: impl FnMut(u64) -> ControlFlow<()>,
) -> io::Result<u64> {
    let mut out = io::BufWriter::with_capacity(256 * 1024, out);
    writeln!(out, "{HEADER}")?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let step = timeframe.seconds();
    let mut ts = START_TIMESTAMP;
    // Prices in ticks of 0.0001, so formatting is integer formatting.
    let mut close: i64 = 1_000_000;
    let mut written = 0;
    while written < rows {
        if written % PROGRESS_EVERY == 0 && written > 0 && progress(written).is_break() {
            break;
        }
        if rng.u32(..20_000) == 0 {
            ts += step * rng.i64(1..=10);
        }
        let open = close;
        let scale = (open / 500).max(1); // about 0.2 % of the price
        close = (open + rng.i64(-scale..=scale)).max(100);
        let high = open.max(close) + rng.i64(0..=scale / 2);
        let low = (open.min(close) - rng.i64(0..=scale / 2)).max(1);
        let volume = rng.u32(100..10_000);
        writeln!(
            out,
            "{ts},{},{},{},{},{volume}",
            Ticks(open),
            Ticks(high),
            Ticks(low),
            Ticks(close)
        )?;
        ts += step;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// A price in ticks of 0.0001, written as a decimal.
struct Ticks(i64);

impl std::fmt::Display for Ticks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:04}", self.0 / 10_000, self.0 % 10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parse::Parser;

    #[test]
    fn generated_file_parses_clean() {
        let mut bytes = Vec::new();
        let rows = write_random_walk(&mut bytes, 50_000, Timeframe::MINUTE, 7, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(rows, 50_000);
        let mut parser = Parser::new(Timeframe::MINUTE);
        parser.feed(&bytes).unwrap();
        let stats = parser.finish().unwrap();
        assert_eq!((stats.rows, stats.invalid_rows), (50_000, 0));
        assert_eq!(stats.first_timestamp, Some(START_TIMESTAMP));
        assert_eq!(stats.out_of_order, 0);
        let span = stats.last_timestamp.unwrap() - START_TIMESTAMP;
        assert_eq!(span / 60 + 1, 50_000 + stats.missing_bars as i64);
    }
}
