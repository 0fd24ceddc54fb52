//! The services the reference examples share: `DummyService`, `DataService`,
//! `TrainingService`, their start endpoints, their CLI adapters, the composed HTTP apps
//! and the process around them.
//!
//! The examples (`dummy_service`, `data_load`, `axum_server`, `training_host`, `cli`), the
//! integration tests and the data-load bench all use these, so each piece is written once.

pub mod data;
pub mod dummy;
pub mod server;
pub mod store_url;
pub mod training;

/// The README's Rust blocks, compiled and run as doc tests of this crate (which has the
/// services they use), so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
