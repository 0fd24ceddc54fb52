//! The services the reference examples share: `DummyService`, `DataService`, their
//! start endpoints, the composed HTTP app, and the Ctrl+C handling of the CLIs.
//!
//! The examples (`dummy_service`, `data_load`, `axum_server`), the integration tests and
//! the data-load bench all use these, so each piece is written once.

pub mod cli;
pub mod data;
pub mod dummy;
pub mod server;
