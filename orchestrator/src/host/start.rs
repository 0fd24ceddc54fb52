//! A routed start: the host starts the operation, the local registry gets its proxy.

use std::sync::Arc;

use serde::Serialize;

use super::HostService;
use crate::client::ClientError;
use crate::entry::Remote;
use crate::{OperationId, OperationSpec, Operations, OrchestratorError, Result, StartedOperation};

impl HostService {
    /// Starts an operation on the host: POSTs `body` to the host's start endpoint
    /// `path` (relative to its API prefix, e.g. `/training/start`), then registers a
    /// local proxy described by `spec` and returns the proxy's `started` record (its
    /// local id). The proxy follows the host's record from then on (see the
    /// [module docs](super)).
    ///
    /// Nothing is registered locally unless the host accepted the start.
    ///
    /// # Errors
    ///
    /// - [`OrchestratorError::HostUnavailable`] when the host cannot be reached within
    ///   the [request timeout](Self::with_request_timeout), answers 5xx, or answers
    ///   something that is not the operations API's success envelope with an id
    ///   (503 `HOST_UNAVAILABLE` over HTTP);
    /// - [`OrchestratorError::HostRejected`] with the host's status, code and message
    ///   when it answers 4xx (passed through over HTTP: 422 stays 422);
    /// - [`OrchestratorError::Serialize`] when `body` does not serialise;
    /// - the registry's own refusals ([`OrchestratorError::TooManyOperations`], …),
    ///   after which the operation just started on the host is cancelled there.
    pub async fn start<B: Serialize + ?Sized>(
        &self,
        ops: &Operations,
        spec: OperationSpec,
        path: &str,
        body: &B,
    ) -> Result<StartedOperation> {
        let body = serde_json::to_value(body)?;
        let envelope = self
            .starts
            .start(path, &body)
            .await
            .map_err(|e| self.start_error(e))?;
        let host_id = envelope
            .pointer("/data/operation_id")
            .and_then(serde_json::Value::as_str)
            .and_then(|id| id.parse::<OperationId>().ok())
            .ok_or_else(|| OrchestratorError::HostUnavailable {
                host: self.url.to_string(),
                reason: format!("its answer to POST {path} has no valid `data.operation_id`"),
            })?;
        let remote = Remote::new(Arc::clone(&self.url), host_id.clone());
        let entry = match ops.register_entry(spec, Some(Box::new(remote))) {
            Ok(entry) => entry,
            Err(refused) => {
                // Best effort: the work must not run on the host with no proxy.
                let reads = self.reads.clone();
                tokio::spawn(async move {
                    let reason = "the local registry refused the proxy";
                    let _ = reads.cancel(&host_id, Some(reason)).await;
                });
                return Err(refused);
            }
        };
        entry.start()?;
        tracing::info!(
            operation_id = %entry.id,
            host = %self.url,
            host_operation_id = %host_id,
            "started operation on host service"
        );
        tokio::spawn(self.clone().follow(Arc::clone(&entry)));
        Ok(StartedOperation::new(
            entry.id.clone(),
            &entry.description(),
        ))
    }

    /// The error of a failed start, naming the host.
    fn start_error(&self, e: ClientError) -> OrchestratorError {
        match e {
            ClientError::Rejected {
                status,
                code,
                message,
            } => OrchestratorError::HostRejected {
                host: self.url.to_string(),
                status,
                code: code.to_string(),
                message,
            },
            other => OrchestratorError::HostUnavailable {
                host: self.url.to_string(),
                reason: error_chain(&other),
            },
        }
    }
}

/// `e` and its sources, `: `-separated (reqwest's own message alone says little).
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
