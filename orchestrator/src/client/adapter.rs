//! `OperationAdapter`: the little a CLI needs to know about one kind of operation.

use serde::Serialize;
use serde_json::Value;

use crate::{OperationId, OperationInfo, OperationStatus};

/// What an [`OperationExecutor`](super::OperationExecutor) needs to know about one kind
/// of operation: where to start it, with what, and how to word its end.
///
/// Adapters are declarations, not code paths: no HTTP, no polling, no signals, no
/// state. [`Request`](Self::Request), [`start_path`](Self::start_path) and
/// [`request`](Self::request) are required; the rest have defaults that suit the
/// operations API's conventions. The request is a typed value the executor serialises
/// (a failure, or a value that serialises to `null`, is an error before anything is
/// sent): never a hand-built JSON value.
///
/// # Examples
///
/// The dummy task's adapter: start it at `POST /dummy/start`, report its own count.
///
/// ```
/// use orchestrator::client::OperationAdapter;
/// use orchestrator::{OperationInfo, OperationStatus};
///
/// /// The start endpoint's body, the same type the server deserialises.
/// #[derive(serde::Serialize)]
/// struct DummyRequest { iterations: u64, interval_ms: u64 }
///
/// struct Dummy(DummyRequest);
///
/// #[derive(serde::Deserialize)]
/// struct Summary { iterations_completed: u64 }
///
/// impl OperationAdapter for Dummy {
///     type Request = DummyRequest;
///
///     fn start_path(&self) -> &str { "/dummy/start" }
///
///     fn request(&self) -> &DummyRequest { &self.0 }
///
///     fn result_message(&self, info: &OperationInfo) -> Option<String> {
///         let n = info.result_as::<Summary>().map(|s| s.iterations_completed)?;
///         match info.status {
///             OperationStatus::Completed => Some(format!("Completed {n} iterations")),
///             OperationStatus::Cancelled => Some(format!("Cancelled after {n} iterations")),
///             _ => None, // the default: `Failed: <the server's message>`
///         }
///     }
/// }
/// ```
pub trait OperationAdapter: Send + Sync {
    /// The body of the start request; [`EmptyRequest`] for an endpoint that takes
    /// none (it is sent as `{}`).
    type Request: Serialize + Sync + ?Sized;

    /// The start endpoint, relative to the API prefix: `/dummy/start`.
    fn start_path(&self) -> &str;

    /// The body of the start request, serialised as JSON by the executor.
    fn request(&self) -> &Self::Request;

    /// The new operation's id, read from the start endpoint's whole answer (default:
    /// `data.operation_id` of the envelope, as a
    /// [`StartedOperation`](crate::StartedOperation) has it).
    fn operation_id(&self, response: &Value) -> Option<OperationId> {
        response
            .pointer("/data/operation_id")?
            .as_str()?
            .parse()
            .ok()
    }

    /// The line to print when the operation has ended (or when the wait for it was cut
    /// short); `None` for the default wording, see [`default_result_message`].
    fn result_message(&self, info: &OperationInfo) -> Option<String> {
        let _ = info;
        None
    }

    /// The text after the bar's counters while it runs; `None` for the operation's own
    /// `current_step`.
    fn progress_message(&self, info: &OperationInfo) -> Option<String> {
        let _ = info;
        None
    }
}

/// The body of a start request that takes no parameters: sent as `{}`.
///
/// # Examples
///
/// ```
/// use orchestrator::client::{EmptyRequest, OperationAdapter};
///
/// struct Nap;
/// impl OperationAdapter for Nap {
///     type Request = EmptyRequest;
///     fn start_path(&self) -> &str { "/nap/start" }
///     fn request(&self) -> &EmptyRequest { &EmptyRequest {} }
/// }
/// assert_eq!(serde_json::to_string(Nap.request())?, "{}");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct EmptyRequest {}

/// The result line an adapter falls back to:
///
/// | status      | line                                                  |
/// | ----------- | ----------------------------------------------------- |
/// | `COMPLETED` | `Completed dummy task in 4.2s`                        |
/// | `FAILED`    | `Failed: <error_message>`                             |
/// | `CANCELLED` | `Cancelled dummy task at 42% (42/100)`                |
/// | active      | `dummy task op_… is still RUNNING at 42% (42/100)`    |
///
/// # Examples
///
/// ```
/// use orchestrator::{OperationSpec, Operations};
/// use orchestrator::client::default_result_message;
///
/// let ops = Operations::new();
/// let id = ops.create(OperationSpec::new("dummy").with_description("dummy task"))?;
/// ops.start(&id)?;
/// ops.fail(&id, "disk full")?;
/// assert_eq!(default_result_message(&ops.get(&id)?), "Failed: disk full");
/// # Ok::<(), orchestrator::OrchestratorError>(())
/// ```
pub fn default_result_message(info: &OperationInfo) -> String {
    let what = if info.description.is_empty() {
        info.operation_type.as_str().to_ascii_lowercase()
    } else {
        info.description.clone()
    };
    let p = &info.progress;
    let mut at = format!("{:.0}%", p.percentage.clamp(0.0, 100.0));
    if p.steps_total > 0 {
        at.push_str(&format!(" ({}/{})", p.steps_completed, p.steps_total));
    }
    match info.status {
        OperationStatus::Completed => match info.elapsed() {
            Some(d) => format!("Completed {what} in {:.1}s", d.as_secs_f64()),
            None => format!("Completed {what}"),
        },
        OperationStatus::Failed => format!(
            "Failed: {}",
            info.error_message.as_deref().unwrap_or("unknown error")
        ),
        OperationStatus::Cancelled => format!("Cancelled {what} at {at}"),
        status => format!("{what} {} is still {status} at {at}", info.operation_id),
    }
}
