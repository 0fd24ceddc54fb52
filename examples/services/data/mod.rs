//! `DataService`: loads OHLCV bars from CSV as a managed operation.
//!
//! The file is parsed on Tokio's blocking pool through
//! [`OperationContext::spawn_blocking`], in segments of [`parse::SEGMENT_BYTES`]:
//! after each segment it reports progress (segments as steps, rows as items, bytes in
//! the context) and checks for cancellation, and between two reads of a slow input.
//! Bad rows are counted, never fatal (a line longer than a segment or a timestamp
//! past year 9999 included); memory stays at one segment whatever the file holds.
//!
//! What a client may ask for is bounded: a `path` is resolved inside the service's data
//! directory ([`DataService::with_data_dir`]; canonicalised, no `..` or symlink out of
//! it, regular files only) and every refusal is the same [`LoadError::Unavailable`],
//! which tells no file's content nor whether a path outside exists. A synthetic load
//! is at most [`DataService::with_max_rows`] rows, and its file never outlives the
//! load (see [`sweep_stale_files`]).
//!
//! The parts: [`Timeframe`], [`CsvSource`], [`LoadSummary`] and [`LoadError`] in
//! `timeframe`, `source`, `summary` and `error`; the service and its domain fn in
//! `service`; the `POST /data/load` request, route and CLI adapter in `request`;
//! loading several files as child operations of one batch in `batch`.

mod batch;
mod error;
pub mod generate;
mod load;
pub mod parse;
mod request;
mod service;
mod source;
mod summary;
mod temp;
mod timeframe;

#[cfg(doc)]
use orchestrator::OperationContext;

pub use batch::{BatchRequest, BatchSummary, FileLoad, MAX_BATCH_FILES, start_load_files};
pub use error::LoadError;
pub use load::{load_file, load_reader};
pub use request::{LoadAdapter, LoadRequest, routes, start_load};
pub use service::DataService;
pub use source::CsvSource;
pub use summary::LoadSummary;
pub use temp::{STALE_AFTER, sweep_stale_files};
pub use timeframe::Timeframe;

/// Rows generated when no file is given.
pub const DEFAULT_ROWS: u64 = 2_000_000;
/// The default of [`DataService::with_max_rows`]: the most rows a synthetic load may
/// generate (about 250 MB of CSV).
pub const DEFAULT_MAX_ROWS: u64 = 5_000_000;
/// The default of [`DataService::with_data_dir`]: `data`, relative to the working
/// directory of the process.
pub const DEFAULT_DATA_DIR: &str = "data";
