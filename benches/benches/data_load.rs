//! `data_load`: `DataService` loading a CSV as a managed operation (registered, parsed
//! on the blocking pool, progress and a cancellation check per 512 KiB segment) next to
//! a bare parse loop over the same file with the same parser. Target: the managed load
//! keeps at least 97 % of the bare loop's throughput.
//!
//! After the Criterion groups it runs both interleaved (so drift hits both alike) and
//! prints the medians and the throughput ratio.
//!
//! On a shared VM the two vCPUs can differ in speed by 40 % for seconds at a time, and
//! the bare loop runs on the calling thread while the managed load runs on a
//! blocking-pool thread, so they may land on different vCPUs. For figures that compare
//! the code rather than the vCPUs, pin the run to one CPU:
//!
//! ```text
//! cargo bench -p orchestrator-benches --bench data_load --no-run
//! taskset -c 0 target/release/deps/data_load-<hash> --bench
//! ```

use std::fs::File;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Throughput, criterion_group, criterion_main};
use orchestrator::{Operations, Outcome};
use orchestrator_benches::{criterion, runtime};
use orchestrator_examples::data::parse::{self, Chunk, Parser, SEGMENT_BYTES, Stats};
use orchestrator_examples::data::{CsvSource, DataService, Timeframe, generate};

const ROWS: u64 = 200_000;
/// Interleaved rounds of the summary; many, because this machine is noisy (±30 % run
/// to run on a shared 2-core VM) and the medians should not be.
const ROUNDS: usize = 41;

/// The generated file, removed when the bench ends.
struct Data(PathBuf);

impl Data {
    fn generate() -> Self {
        let path = std::env::temp_dir().join(format!(
            "orchestrator-bench-ohlcv-{}.csv",
            std::process::id()
        ));
        let file = File::create(&path).expect("create bench file");
        generate::write_random_walk(file, ROWS, Timeframe::MINUTE, 42, |_| {
            ControlFlow::Continue(())
        })
        .expect("generate bench file");
        Self(path)
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The baseline: the same reader and parser, no operation around them.
fn bare(path: &Path) -> Stats {
    let file = File::open(path).expect("open");
    let mut parser = Parser::new(Timeframe::MINUTE);
    parse::for_each_segment(file, SEGMENT_BYTES, |chunk, _| {
        match chunk {
            Chunk::Lines(segment) => parser.feed(segment).expect("format"),
            Chunk::LongLine => parser.feed_long_line().expect("format"),
            Chunk::Reading => {}
        }
        ControlFlow::Continue(())
    })
    .expect("read");
    parser.finish().expect("format")
}

/// The managed load, awaited inline (registered, cancellable, reporting progress).
async fn managed(svc: &DataService, path: &Path) -> u64 {
    match svc
        .run_load_csv(CsvSource::File(path.to_owned()), Timeframe::MINUTE)
        .await
    {
        Outcome::Completed(summary) => summary.rows_loaded,
        other => panic!("load did not complete: {other:?}"),
    }
}

fn data_load(c: &mut criterion::Criterion) {
    let data = Data::generate();
    let bytes = std::fs::metadata(&data.0).expect("metadata").len();
    let rt = runtime();
    let ops = Operations::builder().without_sweeper().build();
    // The managed load resolves its path inside the data directory, as a server does.
    let svc = DataService::new(ops.clone()).with_data_dir(std::env::temp_dir());
    assert_eq!(bare(&data.0).rows, ROWS);
    assert_eq!(rt.block_on(managed(&svc, &data.0)), ROWS);

    let mut g = c.benchmark_group("data_load");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(BenchmarkId::new("parse_200k_rows", "bare loop"), |b| {
        b.iter(|| black_box(bare(&data.0)));
    });
    g.bench_function(BenchmarkId::new("parse_200k_rows", "managed"), |b| {
        b.to_async(&rt).iter(|| async {
            let rows = managed(&svc, &data.0).await;
            ops.cleanup(Duration::ZERO);
            black_box(rows)
        });
    });
    g.finish();

    // Interleaved medians for the summary line.
    let (mut bare_times, mut managed_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        black_box(bare(&data.0));
        bare_times.push(t.elapsed());
        let t = Instant::now();
        black_box(rt.block_on(managed(&svc, &data.0)));
        managed_times.push(t.elapsed());
        ops.cleanup(Duration::ZERO);
    }
    let (b, m) = (median(&mut bare_times), median(&mut managed_times));
    let (b_min, m_min) = (bare_times[0], managed_times[0]);
    let rate = |d: Duration| ROWS as f64 / d.as_secs_f64() / 1e6;
    println!(
        "data_load summary ({ROWS} rows, {:.1} MiB, {ROUNDS} interleaved rounds): \
         bare median {:.2} ms ({:.2} M rows/s), managed median {:.2} ms ({:.2} M rows/s); \
         managed/bare throughput {:.1} % by medians, {:.1} % by best runs (target >= 97 %)",
        bytes as f64 / (1024.0 * 1024.0),
        b.as_secs_f64() * 1e3,
        rate(b),
        m.as_secs_f64() * 1e3,
        rate(m),
        b.as_secs_f64() / m.as_secs_f64() * 100.0,
        b_min.as_secs_f64() / m_min.as_secs_f64() * 100.0,
    );
}

/// Sorts `times` and returns the median.
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = data_load
}
criterion_main!(benches);
