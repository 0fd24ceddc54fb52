//! The client side (feature `client`): one domain-agnostic [`OperationExecutor`] that
//! starts an operation, draws its progress bar, cancels it on Ctrl+C and reports how
//! it ended, with a few declarative lines of [`OperationAdapter`] per kind of
//! operation.
//!
//! | piece               | does                                                                 |
//! | ------------------- | -------------------------------------------------------------------- |
//! | [`ApiClient`]       | the operations API over HTTP (reqwest; HTTPS with the `client-tls` feature), every request under a [`RetryPolicy`]; follows by the event stream |
//! | [`OperationAdapter`]| where to start one kind of operation, with what, how to word its end |
//! | [`OperationExecutor`] | start → poll → bar → cancel on request → report; over an [`ApiClient`] or the in-process [`Operations`](crate::Operations) |
//! | [`CancelTrigger`]   | what asks to cancel: Ctrl+C in a CLI, a token or a future in tests   |
//!
//! Retries ([`RetryPolicy`]): connection errors are tried 5 times, 1, 2, 4 and 8 s
//! apart; 5xx answers 3 times; 4xx answers never. A poll is a request like any other,
//! so a blip does not end the run; a server that stays away does, with
//! `cannot reach http://…: is the server running?`.
//!
//! # Examples
//!
//! A whole CLI command: the adapter, then the executor.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use orchestrator::client::{ApiClient, CancelTrigger, OperationAdapter, OperationExecutor};
//!
//! #[derive(serde::Serialize)]
//! struct Dummy { iterations: u64 }
//!
//! impl OperationAdapter for Dummy {
//!     type Request = Self;
//!     fn start_path(&self) -> &str { "/dummy/start" }
//!     fn request(&self) -> &Self { self }
//! }
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     let run = async {
//!         let executor = OperationExecutor::new(ApiClient::new("http://127.0.0.1:8000")?)
//!             .with_cancel_trigger(CancelTrigger::ctrl_c().map_err(|e| {
//!                 orchestrator::client::ClientError::Setup(e.into())
//!             })?);
//!         executor.execute(&Dummy { iterations: 20 }).await
//!     };
//!     match run.await {
//!         Ok(run) => run.outcome.into(),
//!         Err(e) => {
//!             eprintln!("{e}");
//!             ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```

mod adapter;
mod api;
mod error;
mod executor;
mod retry;
mod sse;
mod trigger;

pub use adapter::{EmptyRequest, OperationAdapter, default_result_message};
pub use api::{ApiClient, OperationEvents};
pub use error::{BoxError, ClientError};
pub use executor::{Execution, ExecutorOutcome, OperationExecutor, Output};
pub use retry::{FailureKind, RetryPolicy};
pub use trigger::CancelTrigger;
