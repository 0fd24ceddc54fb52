//! `DataService` (examples/services/data): bad rows reported exactly, cancellation
//! mid-file with a partial count, failures that name the path; directly and over HTTP.

mod support;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestrator::{OperationContext, Operations, Outcome};
use orchestrator_examples::data::generate::{self, START_TIMESTAMP};
use orchestrator_examples::data::parse::{Invalid, InvalidRow};
use orchestrator_examples::data::{CsvSource, DataService, LoadSummary, Timeframe, load_file};
use serde_json::json;
use support::serve;

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "orchestrator-test-{}-{name}.csv",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    let file = TempFile::new("bad-rows");
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
    write(&file.0, &lines);

    let ops = Operations::new();
    let svc = DataService::new(ops.clone());
    let outcome = svc
        .run_load_csv_sync(CsvSource::File(file.0.clone()), Timeframe::MINUTE)
        .expect("runtime");
    let Outcome::Completed(summary) = outcome else {
        panic!("not completed: {outcome:?}");
    };
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
    let file = TempFile::new("gaps");
    let t = |i: i64| START_TIMESTAMP + 300 * i;
    let rows = [0, 1, 2, 5, 6, 10, 9, 11]; // gaps 2→5 and 6→10; 10→9 out of order
    let mut lines = vec!["timestamp,open,high,low,close,volume".to_owned()];
    lines.extend(rows.iter().map(|&i| format!("{},1,2,0.5,1.5,10", t(i))));
    lines.push(String::new()); // a trailing blank line is not a row
    write(&file.0, &lines);
    let summary = load_file(
        &OperationContext::detached(),
        &file.0,
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

#[test]
fn an_unreadable_file_fails_the_operation_naming_the_path() {
    let ops = Operations::new();
    let svc = DataService::new(ops.clone());
    let missing = std::env::temp_dir().join("orchestrator-test-does-not-exist.csv");
    let outcome = svc
        .run_load_csv_sync(CsvSource::File(missing.clone()), Timeframe::MINUTE)
        .expect("runtime");
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    let info = &ops.list(&Default::default()).operations[0];
    assert_eq!(info.status.as_str(), "FAILED");
    let message = info.error_message.as_deref().unwrap_or("");
    assert!(message.starts_with("cannot read "), "{message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );

    let file = TempFile::new("no-header");
    write(&file.0, &["1577836800,1,2,1,1.5,10".to_owned()]);
    let outcome = svc
        .run_load_csv_sync(CsvSource::File(file.0.clone()), Timeframe::MINUTE)
        .expect("runtime");
    let Outcome::Failed(failure) = outcome else {
        panic!("not failed: {outcome:?}");
    };
    let message = failure.to_string();
    assert!(message.contains("expected the header"), "{message}");
    assert!(message.contains(&file.0.display().to_string()), "{message}");

    let empty = TempFile::new("empty");
    write(&empty.0, &[]);
    let outcome = svc
        .run_load_csv_sync(CsvSource::File(empty.0.clone()), Timeframe::MINUTE)
        .expect("runtime");
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_load_generates_then_removes_its_file() {
    let ops = Operations::new();
    let svc = DataService::new(ops.clone());
    let source = CsvSource::synthetic(30_000, 9);
    let path = source.path().to_owned();
    let outcome = svc.run_load_csv(source, Timeframe::MINUTE).await;
    let Outcome::Completed(summary) = outcome else {
        panic!("not completed: {outcome:?}");
    };
    assert!(summary.generated && summary.complete);
    assert_eq!((summary.rows_loaded, summary.invalid_rows), (30_000, 0));
    assert!(!path.exists(), "{} left behind", path.display());
}

/// Over HTTP: the same bad-row report, and a cancel mid-file ends CANCELLED with a
/// partial row count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_bad_rows_are_reported_and_a_cancel_mid_file_keeps_the_partial_count() {
    let server = serve(Operations::new()).await;
    let c = &server.client;

    let small = TempFile::new("http-bad-rows");
    let mut lines = generated(2_000);
    inject(&mut lines, &[(7, "1577836800,1,2,3,1.5,10"), (1500, "x")]);
    write(&small.0, &lines);
    let reply = c
        .post_json(
            "/api/v1/data/load",
            &json!({"path": small.0, "timeframe": "1m"}),
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
    let big = TempFile::new("http-cancel");
    let out = std::fs::File::create(&big.0).expect("create");
    generate::write_random_walk(out, 1_000_000, Timeframe::MINUTE, 3, |_| {
        ControlFlow::Continue(())
    })
    .expect("generate");
    let reply = c
        .post_json("/api/v1/data/load", &json!({"path": big.0}))
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
