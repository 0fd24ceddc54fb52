//! The typed forms of a routed start: a handle whose outcome is read back from the
//! host's terminal record, and the inline and blocking runs built on it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HostService;
use crate::info::JsonMap;
use crate::own_runtime::{Drivers, block_on_own_runtime};
use crate::{
    Failure, OperationHandle, OperationInfo, OperationSpec, OperationStatus, Operations, Outcome,
    Result,
};

impl HostService {
    /// [`start`](Self::start), returning a typed [`OperationHandle`] of the proxy: its
    /// [`outcome`](OperationHandle::outcome) is the host's terminal record read back —
    /// `result_summary` as a `T` (for a completed or cancelled run), a failure as
    /// [`Failure::Host`] with the host's message.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn spawn<T, E>(
        &self,
        ops: &Operations,
        spec: OperationSpec,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<OperationHandle<T, E>>
    where
        T: DeserializeOwned + Send + 'static,
        E: Send + 'static,
    {
        let started = self.start(ops, spec, path, body).await?;
        let entry = ops.entry(&started.operation_id)?;
        let watched = entry.clone();
        let join = tokio::spawn(async move {
            watched.finished().await;
            outcome_of(watched.info())
        });
        Ok(OperationHandle::new(entry, ops.clone(), join))
    }
}

/// How a proxy's end reads to the caller of a typed form.
fn outcome_of<T: DeserializeOwned, E>(info: OperationInfo) -> Outcome<T, E> {
    let summary = info.result_summary.unwrap_or(serde_json::Value::Null);
    let value = serde_json::from_value::<T>(summary.clone());
    match info.status {
        OperationStatus::Completed => match value {
            Ok(value) => Outcome::Completed(value),
            Err(e) => Outcome::Failed(Failure::Host(format!(
                "the host's result {summary} is not the operation's result type: {e}"
            ))),
        },
        OperationStatus::Cancelled => Outcome::Cancelled(value.ok()),
        _ => Outcome::Failed(Failure::Host(
            info.error_message
                .unwrap_or_else(|| "failed on the host service".to_owned()),
        )),
    }
}

/// A routed `run_<name>`: start on the host, await the proxy's end.
#[doc(hidden)]
pub async fn host_run<T, E>(
    host: &HostService,
    ops: &Operations,
    spec: OperationSpec,
    path: &str,
    body: Result<JsonMap>,
) -> Outcome<T, E>
where
    T: DeserializeOwned + Send + 'static,
    E: Send + 'static,
{
    let body = match body {
        Ok(body) => body,
        Err(e) => return Outcome::Failed(Failure::Refused(e)),
    };
    match host.spawn(ops, spec, path, &body).await {
        Ok(handle) => handle.outcome().await,
        Err(e) => Outcome::Failed(Failure::Refused(e)),
    }
}

/// A routed `run_<name>_sync`: [`host_run`] on a runtime of its own (on a helper
/// thread when called from within a runtime), as `Operations::run_sync` does.
#[doc(hidden)]
pub fn host_run_sync<T, E>(
    host: &HostService,
    ops: &Operations,
    spec: OperationSpec,
    path: &str,
    body: Result<JsonMap>,
) -> Result<Outcome<T, E>>
where
    T: DeserializeOwned + Send + 'static,
    E: Send + 'static,
{
    block_on_own_runtime(Drivers::All, || host_run(host, ops, spec, path, body))
}
