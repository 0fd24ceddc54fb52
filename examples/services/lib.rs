//! The services the reference examples share: `DummyService`, `DataService`, their
//! start endpoints, their CLI adapters and the composed HTTP app.
//!
//! The examples (`dummy_service`, `data_load`, `axum_server`, `cli`), the integration tests and
//! the data-load bench all use these, so each piece is written once.

pub mod data;
pub mod dummy;
pub mod server;
