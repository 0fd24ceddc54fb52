//! `DataService` (examples/services/data): bad rows reported exactly, cancellation
//! mid-file with a partial count, failures that name the path; paths confined to the
//! data directory, bounded lines and rows, synthetic files that never outlive their
//! load; directly and over HTTP.

mod support;

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orchestrator::{OperationContext, OperationStatus, Operations, Outcome, http};
use orchestrator_examples::data::generate::{self, START_TIMESTAMP};
use orchestrator_examples::data::parse::{HEADER, Invalid, InvalidRow, SEGMENT_BYTES};
use orchestrator_examples::data::{
    self, CsvSource, DataService, LoadError, LoadRequest, LoadSummary, Timeframe, load_file,
    load_reader,
};
use serde_json::json;
use support::serve_app;

/// A fresh directory under the temp dir, removed with its content on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "orchestrator-test-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("list test dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A service whose data directory is `dir`.
fn service(ops: &Operations, dir: &TempDir) -> DataService {
    DataService::new(ops.clone()).with_data_dir(&dir.0)
}

/// The operations API and the data-load route of `svc`, under `/api/v1`.
async fn serve_data(ops: &Operations, svc: DataService) -> support::Server {
    let api = http::router(ops.clone()).merge(data::routes(svc));
    serve_app(axum::Router::new().nest("/api/v1", api)).await
}

/// Runs a load of `source` inline and returns the terminal record.
fn run(svc: &DataService, ops: &Operations, source: CsvSource) -> orchestrator::OperationInfo {
    let outcome = svc
        .run_load_csv_sync(source, Timeframe::MINUTE)
        .expect("runtime");
    let list = ops.list(&Default::default());
    let info = list.operations[0].clone();
    assert!(info.status.is_terminal(), "{outcome:?}");
    info
}

fn generated(rows: u64) -> Vec<String> {
    let mut bytes = Vec::new();
    generate::write_random_walk(&mut bytes, rows, Timeframe::MINUTE, 1, |_| {
        ControlFlow::Continue(())
    })
    .expect("generate");
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Replaces lines (1-based line numbers, the header is line 1).
fn inject(lines: &mut [String], bad: &[(u64, &str)]) {
    for &(line, text) in bad {
        lines[usize::try_from(line - 1).expect("line")] = text.to_owned();
    }
}

fn write(path: &Path, lines: &[String]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for line in lines {
        writeln!(f, "{line}").expect("write");
    }
    f.flush().expect("flush");
}

/// 25 bad rows of every kind in a 20 000-row file.
fn bad_rows() -> Vec<(u64, &'static str, Invalid)> {
    let kinds = [
        ("1577836800,1,2,1,1.5", Invalid::ColumnCount),
        ("1577836800,1,2,1,1.5,10,99", Invalid::ColumnCount),
        ("", Invalid::ColumnCount), // replaced below by a lone comma (a blank line is skipped)
        ("2020-01-01,1,2,1,1.5,10", Invalid::BadNumber),
        ("1577836800,1,two,1,1.5,10", Invalid::BadNumber),
        ("1577836800,1,2,1,NaN,10", Invalid::BadNumber),
        ("1577836800,1,2,3,1.5,10", Invalid::LowAboveHigh),
        ("1577836800,1,2,1,1.5,-10", Invalid::NegativeVolume),
    ];
    (0..25u64)
        .map(|i| {
            let (text, why) = kinds[(i % kinds.len() as u64) as usize];
            let text = if text.is_empty() { "," } else { text };
            // Spread over the file, out of order; never the header or the first bar.
            (3 + (i * 7919) % 19_990, text, why)
        })
        .collect()
}

#[test]
fn bad_rows_are_counted_with_their_first_line_numbers() {
    let dir = TempDir::new("bad-rows");
    let file = dir.path("bars.csv");
    let mut lines = generated(20_000);
    let bad = bad_rows();
    let mut numbered: Vec<(u64, Invalid)> = bad.iter().map(|&(l, _, w)| (l, w)).collect();
    numbered.sort_unstable_by_key(|&(l, _)| l);
    numbered.dedup_by_key(|&mut (l, _)| l);
    assert_eq!(numbered.len(), 25, "distinct lines");
    inject(
        &mut lines,
        &bad.iter().map(|&(l, t, _)| (l, t)).collect::<Vec<_>>(),
    );
    write(&file, &lines);

    let ops = Operations::new();
    let svc = service(&ops, &dir);
    let outcome = svc
        .run_load_csv_sync(CsvSource::File("bars.csv".into()), Timeframe::MINUTE)
        .expect("runtime");
    let Outcome::Completed(summary) = outcome else {
        panic!("not completed: {outcome:?}");
    };
    assert_eq!(summary.path, "bars.csv", "the path as requested");
    assert_eq!(summary.invalid_rows, 25);
    assert_eq!(summary.rows_loaded, 20_000 - 25);
    let expected: Vec<InvalidRow> = numbered
        .iter()
        .take(10)
        .map(|&(line, reason)| InvalidRow { line, reason })
        .collect();
    assert_eq!(summary.invalid_samples, expected);
    assert!(summary.complete);
    assert_eq!(
        summary.first_timestamp.as_deref(),
        Some("2020-01-01T00:00:00Z")
    );
    assert_eq!(summary.bytes_read, summary.bytes_total);
    assert_eq!(summary.out_of_order, 0);
    // The registry holds the same summary.
    let list = ops.list(&Default::default());
    let info = &list.operations[0];
    assert_eq!(info.status.as_str(), "COMPLETED");
    assert_eq!(info.progress.items_processed, 20_000 - 25);
    assert_eq!(
        info.result_summary
            .as_ref()
            .map(|v| v["invalid_rows"].clone()),
        Some(json!(25))
    );
}

#[test]
fn gaps_are_measured_against_the_timeframe() {
    let dir = TempDir::new("gaps");
    let file = dir.path("gaps.csv");
    let t = |i: i64| START_TIMESTAMP + 300 * i;
    let rows = [0, 1, 2, 5, 6, 10, 9, 11]; // gaps 2→5 and 6→10; 10→9 out of order
    let mut lines = vec!["timestamp,open,high,low,close,volume".to_owned()];
    lines.extend(rows.iter().map(|&i| format!("{},1,2,0.5,1.5,10", t(i))));
    lines.push(String::new()); // a trailing blank line is not a row
    write(&file, &lines);
    let summary = load_file(
        &OperationContext::detached(),
        &file,
        "5m".parse().expect("tf"),
    )
    .expect("load");
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (8, 0));
    assert_eq!(
        (summary.gaps, summary.missing_bars, summary.out_of_order),
        (2, 5, 1)
    );
    assert_eq!(summary.min_low, Some(0.5));
    assert_eq!(summary.max_high, Some(2.0));
    assert_eq!(summary.total_volume, 80.0);
}

/// Outside the data directory (through `..`, an absolute path, a symlink), missing,
/// a directory or a device: one error, naming the path as given and nothing else, so a
/// client cannot read a file outside nor tell whether it exists.
#[test]
fn paths_outside_the_data_dir_missing_or_not_regular_are_refused_alike() {
    let root = TempDir::new("confined");
    let data = root.path("data");
    let outside = root.path("outside");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let secret = "SECRET-LINE-must-not-be-echoed";
    std::fs::write(outside.join("secret.csv"), format!("{secret}\n")).expect("write");
    write(&data.join("ok.csv"), &generated(100));
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(outside.join("secret.csv"), data.join("link.csv")).expect("symlink");
        symlink(&outside, data.join("out")).expect("symlink");
        symlink("/dev/zero", data.join("zero.csv")).expect("symlink");
        symlink("ok.csv", data.join("inside-link.csv")).expect("symlink");
        // A FIFO would block `open` until a writer comes: it must not be opened.
        let made = std::process::Command::new("mkfifo")
            .arg(data.join("fifo.csv"))
            .status()
            .expect("run mkfifo");
        assert!(made.success(), "mkfifo failed");
    }

    let ops = Operations::new();
    let svc = DataService::new(ops.clone()).with_data_dir(&data);
    let mut refused = vec![
        "../outside/secret.csv".to_owned(),  // exists outside
        "../outside/missing.csv".to_owned(), // missing outside
        "sub/../../outside/secret.csv".to_owned(),
        outside.join("secret.csv").display().to_string(), // absolute, outside
        "/etc/passwd".to_owned(),
        "/proc/self/environ".to_owned(),
        "missing.csv".to_owned(), // missing inside
        "sub".to_owned(),         // a directory
        String::new(),            // the data directory itself
    ];
    if cfg!(unix) {
        refused.extend(["link.csv", "out/secret.csv", "zero.csv", "fifo.csv"].map(str::to_owned));
    }
    for path in &refused {
        let started = Instant::now();
        let info = run(&svc, &ops, CsvSource::File(path.into()));
        assert_eq!(info.status, OperationStatus::Failed, "{path}: {info:?}");
        let message = info.error_message.clone().unwrap_or_default();
        assert_eq!(
            message,
            format!("cannot load {path}: no such regular file in the data directory"),
            "{path}"
        );
        assert!(!message.contains("SECRET"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took long"
        );
        ops.cleanup(Duration::ZERO);
    }

    // Inside, by any spelling (and through a link that stays inside), it loads.
    let inside = [
        "ok.csv".to_owned(),
        "sub/../ok.csv".to_owned(),
        data.join("ok.csv").display().to_string(),
    ];
    let links = if cfg!(unix) {
        &["inside-link.csv"][..]
    } else {
        &[]
    };
    for path in inside
        .iter()
        .map(String::as_str)
        .chain(links.iter().copied())
    {
        let info = run(&svc, &ops, CsvSource::File(path.into()));
        assert_eq!(info.status, OperationStatus::Completed, "{path}: {info:?}");
        ops.cleanup(Duration::ZERO);
    }
}

/// A file inside the data directory that is not a CSV fails without its first line
/// being quoted back; an empty one fails too; a read error names the path as given.
#[test]
fn a_file_that_is_not_a_csv_fails_without_quoting_it() {
    let dir = TempDir::new("not-csv");
    std::fs::write(dir.path("creds.csv"), "root:SECRET-hash:0:0\nmore\n").expect("write");
    write(&dir.path("empty.csv"), &[]);
    let ops = Operations::new();
    let svc = service(&ops, &dir);

    let info = run(&svc, &ops, CsvSource::File("creds.csv".into()));
    assert_eq!(info.status, OperationStatus::Failed);
    let message = info.error_message.unwrap_or_default();
    assert_eq!(
        message,
        format!("creds.csv: the first line is not the header `{HEADER}`")
    );
    ops.cleanup(Duration::ZERO);

    let info = run(&svc, &ops, CsvSource::File("empty.csv".into()));
    assert_eq!(info.status, OperationStatus::Failed);
    let message = info.error_message.unwrap_or_default();
    assert!(
        message.starts_with("empty.csv: the file is empty"),
        "{message}"
    );

    // `load_file` (no data directory) refuses a device without opening it.
    #[cfg(unix)]
    {
        let err = load_file(
            &OperationContext::detached(),
            Path::new("/dev/zero"),
            Timeframe::MINUTE,
        );
        assert!(
            matches!(err, Err(LoadError::NotRegularFile { .. })),
            "{err:?}"
        );
    }
    let missing = dir.path("missing.csv");
    let err =
        load_file(&OperationContext::detached(), &missing, Timeframe::MINUTE).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}", missing.display())),
        "{err}"
    );
}

/// A 10 MiB line is one invalid row: the load completes quickly and the rows around
/// it are loaded.
#[test]
fn a_line_longer_than_a_segment_is_an_invalid_row() {
    let dir = TempDir::new("long-line");
    let mut lines = generated(1_000);
    lines[500] = "7".repeat(10 << 20); // line 501
    lines[700] = format!("1577836800,{}", "1".repeat(SEGMENT_BYTES)); // line 701
    write(&dir.path("long.csv"), &lines);
    let ops = Operations::new();
    let svc = service(&ops, &dir);
    let started = Instant::now();
    let info = run(&svc, &ops, CsvSource::File("long.csv".into()));
    assert_eq!(info.status, OperationStatus::Completed, "{info:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let summary: LoadSummary =
        serde_json::from_value(info.result_summary.expect("summary")).expect("summary");
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (998, 2));
    assert_eq!(
        summary.invalid_samples,
        [
            InvalidRow {
                line: 501,
                reason: Invalid::LineTooLong
            },
            InvalidRow {
                line: 701,
                reason: Invalid::LineTooLong
            }
        ]
    );
    assert!(summary.complete);
}

/// Stands for `/dev/zero` and friends: a header, then one line that never ends.
/// Records the largest read it was asked for (the reader's buffer), cancels `token`
/// after `cancel_after` bytes, and ends at `limit` bytes so a regression cannot eat
/// the machine's memory.
struct EndlessLine {
    header: std::io::Cursor<Vec<u8>>,
    served: u64,
    cancel_after: u64,
    limit: u64,
    largest_read: Arc<AtomicUsize>,
    token: orchestrator::CancellationToken,
}

impl Read for EndlessLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest_read.fetch_max(buf.len(), Ordering::Relaxed);
        let n = self.header.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.served >= self.cancel_after {
            self.token.cancel();
        }
        let n = buf
            .len()
            .min(usize::try_from(self.limit - self.served).unwrap_or(0));
        buf[..n].fill(b'0');
        self.served += n as u64;
        Ok(n)
    }
}

#[test]
fn an_endless_line_is_read_in_one_segment_of_memory_and_stops_on_cancel() {
    let ctx = OperationContext::detached();
    let largest_read = Arc::new(AtomicUsize::new(0));
    let reader = EndlessLine {
        header: std::io::Cursor::new(format!("{HEADER}\n").into_bytes()),
        served: 0,
        cancel_after: 16 << 20,
        limit: 256 << 20,
        largest_read: largest_read.clone(),
        token: ctx.token().clone(),
    };
    let summary = load_reader(&ctx, reader, 0, Path::new("endless"), Timeframe::MINUTE)
        .expect("partial summary");
    assert!(!summary.complete);
    assert!(
        summary.bytes_read < (17 << 20) + SEGMENT_BYTES as u64,
        "read {} bytes after the cancel",
        summary.bytes_read
    );
    let largest = largest_read.load(Ordering::Relaxed);
    assert!(largest <= SEGMENT_BYTES, "buffer grew to {largest} bytes");
}

/// A reader that trickles valid rows in (100 bytes every 5 ms, endlessly): no segment
/// ever fills, yet a cancel is seen at the next read.
struct Trickle {
    pending: Vec<u8>,
    ts: i64,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(5));
        while self.pending.len() < 100 {
            self.pending
                .extend_from_slice(format!("{},1,2,0.5,1.5,10\n", self.ts).as_bytes());
            self.ts += 60;
        }
        let n = buf.len().min(100);
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.served.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_cancel_is_seen_between_two_reads_of_a_slow_input() {
    let ctx = OperationContext::detached();
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = Trickle {
        pending: format!("{HEADER}\n").into_bytes(),
        ts: START_TIMESTAMP,
        served: served.clone(),
        stop: stop.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let load_ctx = ctx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(load_reader(
            &load_ctx,
            reader,
            1 << 30,
            Path::new("slow"),
            Timeframe::MINUTE,
        ));
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.load(Ordering::Relaxed) < 2_000 {
        assert!(Instant::now() < deadline, "the slow reader was never read");
        std::thread::sleep(Duration::from_millis(5));
    }
    let cancelled = Instant::now();
    ctx.token().cancel();
    let result = rx.recv_timeout(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed); // ends a reader that missed the cancel
    let summary = result
        .expect("the load did not stop within 5 s of cancel")
        .expect("partial summary");
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "stopped {:?} after cancel",
        cancelled.elapsed()
    );
    assert!(!summary.complete);
}

/// Year 10000 used to end the load `panicked: a Display implementation returned an
/// error`; out-of-range timestamps are invalid rows now.
#[test]
fn a_timestamp_past_year_9999_or_before_1970_is_an_invalid_row() {
    let dir = TempDir::new("year-10000");
    let lines = [
        HEADER.to_owned(),
        "1577836800,1,2,0.5,1.5,10".to_owned(),
        "-60,1,2,0.5,1.5,10".to_owned(),
        "9223372036854775807,1,2,0.5,1.5,10".to_owned(),
        "253402300799,1,2,0.5,1.5,10".to_owned(), // 9999-12-31T23:59:59Z: the last valid
        "253402300800,1,2,0.5,1.5,10".to_owned(), // 10000-01-01
    ];
    write(&dir.path("far.csv"), &lines);
    let ops = Operations::new();
    let svc = service(&ops, &dir);
    let info = run(&svc, &ops, CsvSource::File("far.csv".into()));
    assert_eq!(info.status, OperationStatus::Completed, "{info:?}");
    let summary: LoadSummary =
        serde_json::from_value(info.result_summary.expect("summary")).expect("summary");
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (2, 3));
    let reasons: Vec<(u64, Invalid)> = summary
        .invalid_samples
        .iter()
        .map(|r| (r.line, r.reason))
        .collect();
    assert_eq!(
        reasons,
        [3, 4, 6].map(|line| (line, Invalid::TimestampOutOfRange))
    );
    assert_eq!(
        summary.last_timestamp.as_deref(),
        Some("9999-12-31T23:59:59Z")
    );
}

/// Unknown fields are refused at the serde level (and so with 422 over HTTP): a typo
/// must not start a default run.
#[test]
fn a_load_request_with_an_unknown_field_is_refused() {
    for body in [
        json!({"row": 10}),
        json!({"path": "bars.csv", "timefrane": "5m"}),
        json!({"rows": 10, "seed": 1, "keep": true}),
    ] {
        let err = serde_json::from_value::<LoadRequest>(body.clone()).expect_err("refused");
        assert!(err.to_string().contains("unknown field"), "{body}: {err}");
    }
    let ok: LoadRequest =
        serde_json::from_value(json!({"rows": 10, "seed": 1, "timeframe": "5m"})).expect("ok");
    assert_eq!((ok.rows, ok.seed), (Some(10), Some(1)));
    assert_eq!(
        serde_json::from_value::<LoadRequest>(json!({})).expect("empty"),
        LoadRequest::default()
    );
}

#[test]
fn a_synthetic_load_above_max_rows_is_refused() {
    let temp = TempDir::new("max-rows");
    let ops = Operations::new();
    let svc = DataService::new(ops.clone())
        .with_max_rows(1_000)
        .with_temp_dir(&temp.0);
    assert_eq!(DataService::new(ops.clone()).max_rows(), 5_000_000);

    let too_many = LoadRequest {
        rows: Some(1_001),
        ..Default::default()
    };
    let err = svc.source(&too_many).expect_err("refused");
    assert_eq!(err.status().as_u16(), 422);
    assert!(
        err.to_string().contains("between 1 and 1000, got 1001"),
        "{err}"
    );
    let source = svc
        .source(&LoadRequest {
            rows: Some(1_000),
            ..Default::default()
        })
        .expect("at the limit");
    assert!(source.path().starts_with(&temp.0));

    // The operation itself refuses too (a caller that builds the source by hand).
    let info = run(&svc, &ops, CsvSource::synthetic_in(&temp.0, 1_001, 1));
    assert_eq!(info.status, OperationStatus::Failed);
    assert_eq!(
        info.error_message.as_deref(),
        Some("cannot generate 1001 rows: the limit is 1000")
    );
    assert_eq!(temp.names(), Vec::<String>::new(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_load_generates_then_removes_its_file() {
    let temp = TempDir::new("synthetic");
    let ops = Operations::new();
    let svc = DataService::new(ops.clone()).with_temp_dir(&temp.0);
    let source = svc
        .source(&LoadRequest {
            rows: Some(30_000),
            seed: Some(9),
            ..Default::default()
        })
        .expect("source");
    let path = source.path().to_owned();
    let outcome = svc.run_load_csv(source, Timeframe::MINUTE).await;
    let Outcome::Completed(summary) = outcome else {
        panic!("not completed: {outcome:?}");
    };
    assert!(summary.generated && summary.complete);
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (30_000, 0));
    assert!(!path.exists(), "{} left behind", path.display());
    assert_eq!(temp.names(), Vec::<String>::new());
}

/// Generation cancelled part-way, and a load that fails after generation: no file is
/// left, and on Unix none is even visible while the load runs (it was unlinked as soon
/// as it was created, so a SIGKILL cannot leave it behind either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_synthetic_load_leaves_no_temp_file() {
    let temp = TempDir::new("synthetic-cancel");
    let ops = Operations::new();
    let svc = DataService::new(ops.clone()).with_temp_dir(&temp.0);
    let source = CsvSource::synthetic_in(&temp.0, 5_000_000, 3);
    let path = source.path().to_owned();
    let started = svc
        .start_load_csv(source, Timeframe::MINUTE)
        .expect("start");
    let id = started.operation_id;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = ops.get(&id).expect("known");
        assert!(info.status.is_active(), "{info:?}");
        if info.progress.percentage > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no generation progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if cfg!(unix) {
        assert_eq!(
            temp.names(),
            Vec::<String>::new(),
            "visible while generating"
        );
    }
    let cancelled = Instant::now();
    ops.cancel(&id, "enough").expect("cancel");
    let info = tokio::time::timeout(Duration::from_secs(5), ops.wait(&id))
        .await
        .expect("ends within 5 s of cancel")
        .expect("known");
    assert!(cancelled.elapsed() < Duration::from_secs(5));
    assert_eq!(info.status, OperationStatus::Cancelled, "{info:?}");
    assert!(!path.exists(), "{} left behind", path.display());
    assert_eq!(temp.names(), Vec::<String>::new());
}

/// Files of dead runs are removed (the first synthetic load of a process sweeps its
/// temp dir; `sweep_stale_files` does it at start-up); files of live processes, other
/// names, kept files and symlinks are left alone.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_synthetic_files_of_dead_runs_are_swept() {
    let temp = TempDir::new("sweep");
    let elsewhere = TempDir::new("sweep-target");
    let own = std::process::id();
    // Pids stay below 2^22: 4 000 000 000 never runs. Pid 1 always does.
    let stale = [
        "orchestrator-ohlcv-4000000000-00000000000000ff-0.csv".to_owned(),
        format!("orchestrator-ohlcv-{own}-0000000000000000-7.csv"), // an earlier run of our pid
    ];
    let kept = [
        "orchestrator-ohlcv-1-00000000000000ff-0.csv".to_owned(),
        "orchestrator-ohlcv-kept-4000000000-00000000000000ff-0.csv".to_owned(),
        "orchestrator-ohlcv-4000000000-0.csv".to_owned(),
        "bars.csv".to_owned(),
    ];
    for name in stale.iter().chain(&kept) {
        std::fs::write(temp.path(name), "x\n").expect("plant");
    }
    let target = elsewhere.path("target.csv");
    std::fs::write(&target, "x\n").expect("plant");
    let link = "orchestrator-ohlcv-4000000001-00000000000000ff-0.csv";
    std::os::unix::fs::symlink(&target, temp.path(link)).expect("symlink");

    let ops = Operations::new();
    let svc = DataService::new(ops.clone()).with_temp_dir(&temp.0);
    assert_eq!(svc.sweep_stale_files().expect("sweep"), 2);
    let mut left: Vec<String> = kept.iter().cloned().chain([link.to_owned()]).collect();
    left.sort();
    assert_eq!(temp.names(), left);
    assert!(target.exists());

    // No explicit sweep: the first synthetic load in a directory sweeps it.
    let lazy = TempDir::new("sweep-lazy");
    std::fs::write(lazy.path(&stale[0]), "x\n").expect("plant");
    let svc = DataService::new(ops.clone()).with_temp_dir(&lazy.0);
    let source = svc
        .source(&LoadRequest {
            rows: Some(100),
            ..Default::default()
        })
        .expect("source");
    let outcome = svc.run_load_csv(source, Timeframe::MINUTE).await;
    assert!(matches!(outcome, Outcome::Completed(_)), "{outcome:?}");
    assert_eq!(lazy.names(), Vec::<String>::new());
}

/// Over HTTP: the same bad-row report, and a cancel mid-file ends CANCELLED with a
/// partial row count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_bad_rows_are_reported_and_a_cancel_mid_file_keeps_the_partial_count() {
    let dir = TempDir::new("http");
    let ops = Operations::new();
    let server = serve_data(&ops, service(&ops, &dir)).await;
    let c = &server.client;

    let mut lines = generated(2_000);
    inject(&mut lines, &[(7, "1577836800,1,2,3,1.5,10"), (1500, "x")]);
    write(&dir.path("small.csv"), &lines);
    let reply = c
        .post_json(
            "/api/v1/data/load",
            &json!({"path": "small.csv", "timeframe": "1m"}),
        )
        .await;
    let id = reply.data()["operation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let done = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=30000"))
        .await;
    let data = done.data();
    assert_eq!(data["status"], "COMPLETED", "{data}");
    assert_eq!(data["operation_type"], "DATA_LOAD");
    let summary: LoadSummary =
        serde_json::from_value(data["result_summary"].clone()).expect("summary");
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (1_998, 2));
    assert_eq!(
        summary.invalid_samples,
        [
            InvalidRow {
                line: 7,
                reason: Invalid::LowAboveHigh
            },
            InvalidRow {
                line: 1500,
                reason: Invalid::ColumnCount
            },
        ]
    );

    // A large file: cancel as soon as the first segments are in.
    let out = std::fs::File::create(dir.path("big.csv")).expect("create");
    generate::write_random_walk(out, 1_000_000, Timeframe::MINUTE, 3, |_| {
        ControlFlow::Continue(())
    })
    .expect("generate");
    let reply = c
        .post_json("/api/v1/data/load", &json!({"path": "big.csv"}))
        .await;
    let id: orchestrator::OperationId = reply.data()["operation_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("valid");
    c.poll_until(&id, Duration::from_secs(30), |d| {
        d["progress"]["items_processed"].as_u64().unwrap_or(0) > 0 || d["status"] != "RUNNING"
    })
    .await;
    let cancelled_at = Instant::now();
    let cancel = c
        .post_json(
            &format!("/api/v1/operations/{id}/cancel"),
            &json!({"reason": "enough"}),
        )
        .await;
    assert_eq!(
        cancel.status, 200,
        "cancelled before it finished: {cancel:?}"
    );
    let end = c
        .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=10000"))
        .await;
    let data = end.data();
    assert_eq!(data["status"], "CANCELLED", "{data}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    let summary: LoadSummary =
        serde_json::from_value(data["result_summary"].clone()).expect("partial summary");
    assert!(!summary.complete);
    assert!(
        summary.rows_loaded > 0 && summary.rows_loaded < 1_000_000,
        "partial count {}",
        summary.rows_loaded
    );
    assert!(summary.bytes_read < summary.bytes_total);
    assert_eq!(data["progress"]["items_processed"], summary.rows_loaded);
}

/// Over HTTP: a typo in a field is 422 (not a default run), rows above the limit are
/// 422, and a path outside the data directory fails like a missing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_unknown_fields_and_too_many_rows_are_422_and_paths_are_confined() {
    let dir = TempDir::new("http-refused");
    let ops = Operations::new();
    let server = serve_data(&ops, service(&ops, &dir)).await;
    let c = &server.client;
    for body in [
        json!({"row": 10}),
        json!({"path": "bars.csv", "timefrane": "5m"}),
        json!({"rows": 5_000_001}),
        json!({"rows": 0}),
    ] {
        let reply = c.post_json("/api/v1/data/load", &body).await;
        assert_eq!(reply.error_code(422), "INVALID_REQUEST", "{body}");
    }
    assert_eq!(
        ops.list(&Default::default()).total_count,
        0,
        "nothing started"
    );

    let mut messages = Vec::new();
    for path in ["../../../../etc/passwd", "../../../../etc/no-such-file"] {
        let reply = c
            .post_json("/api/v1/data/load", &json!({"path": path}))
            .await;
        let id = reply.data()["operation_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let done = c
            .get(&format!("/api/v1/operations/{id}/wait?timeout_ms=10000"))
            .await;
        let data = done.data();
        assert_eq!(data["status"], "FAILED", "{data}");
        let message = data["error_message"].as_str().unwrap_or("");
        messages.push(message.replace(path, "PATH"));
    }
    assert_eq!(
        messages,
        ["cannot load PATH: no such regular file in the data directory"; 2]
    );
}
