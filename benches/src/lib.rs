//! Shared helpers of the orchestration-overhead benchmarks in `benches/benches/`.
//!
//! Every benchmark group measures an orchestrated operation next to its bare baseline
//! in the same run, so the ratio holds on a noisy machine. Run them all with
//! `cargo bench -p orchestrator-benches` (or `cargo bench` from the root).

use std::time::Duration;

use criterion::Criterion;

/// A Criterion configured for a 2-core machine: short warm-up and measurement so the
/// whole suite stays within a few minutes.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// The multi-thread runtime the benchmarks run on (2 workers, as on the CI machine).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
