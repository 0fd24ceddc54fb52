//! The services the reference examples share: `DummyService`, `DataService`, their
//! start endpoints, their CLI adapters and the composed HTTP app.
//!
//! The examples (`dummy_service`, `data_load`, `axum_server`, `cli`), the integration tests and
//! the data-load bench all use these, so each piece is written once.

pub mod data;
pub mod dummy;
pub mod server;

/// The README's Rust blocks, compiled and run as doc tests of this crate (which has the
/// services they use), so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
