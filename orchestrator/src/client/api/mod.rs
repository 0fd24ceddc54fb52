//! `ApiClient`: the operations API over HTTP, with the retry policy applied to every
//! request.
//!
//! This file holds the client, its builder and the API's requests; sending and
//! retrying is in `transport`, the event stream in `events`, the `OperationSource`
//! impl in `source`.

mod events;
mod source;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Url};
use serde::Serialize;
use serde_json::Value;

use super::error::{BoxError, ClientError};
use super::retry::RetryPolicy;
#[cfg(doc)]
use crate::OperationSource;
use crate::{
    DeletedOperation, MetricsPage, OperationFilter, OperationId, OperationInfo, OperationList,
    OperationListResponse,
};

pub use events::OperationEvents;
use transport::{invalid, parse};

/// A client of the operations API (section 6 of the design: the envelope, `GET
/// /operations/{id}`, `POST /operations/{id}/cancel`, …) over one reused HTTP
/// connection pool.
///
/// Every request goes through the [`RetryPolicy`]; a cheap `Clone` shares the pool.
/// It is an [`OperationSource`], so a [`ProgressRenderer`](crate::ProgressRenderer) or
/// an [`OperationExecutor`](super::OperationExecutor) follows a remote operation
/// exactly as it follows one in the local registry.
///
/// The API is expected under `/api/v1` ([`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX));
/// [`with_api_prefix`](Self::with_api_prefix) mounts it elsewhere.
///
/// Plain HTTP needs only the `client` feature; HTTPS needs `client-tls` (reqwest's
/// `rustls` feature with its default crypto provider). Without it an `https://` URL is
/// refused by [`new`](Self::new) with [`ClientError::TlsUnavailable`]. The client sets
/// no process-wide state (no crypto provider is installed).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), orchestrator::client::ClientError> {
/// use orchestrator::OperationFilter;
/// use orchestrator::client::ApiClient;
///
/// let client = ApiClient::new("http://127.0.0.1:8000")?;
/// let page = client.list(&OperationFilter::new().active_only()).await?;
/// for info in &page.operations {
///     println!("{} {} {:.0}%", info.operation_id, info.status, info.progress.percentage);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The server's URL as given, without a trailing `/` (for messages).
    url: Arc<str>,
    /// `url` + the API prefix: what request paths are appended to.
    api: Arc<str>,
    retry: RetryPolicy,
    timeout: Duration,
    /// `Bearer …`, sent on every request when set; marked sensitive (never logged).
    auth: Option<reqwest::header::HeaderValue>,
    /// The largest answer body read; a larger one is an invalid response.
    max_response: usize,
}

/// How long one request may take unless [`ApiClient::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take, per try.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl ApiClient {
    /// Where the operations API is mounted on the server unless
    /// [`with_api_prefix`](Self::with_api_prefix) says otherwise.
    pub const DEFAULT_PREFIX: &'static str = "/api/v1";

    /// A client of the server at `url` (`http://host:port`, or `https://…`); the API is
    /// expected under [`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX).
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidUrl`] for a URL that is not `http(s)://host…` (or has a
    /// query or fragment); [`ClientError::TlsUnavailable`] for `https://…` without the
    /// `client-tls` feature; [`ClientError::Setup`] when the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("a server URL has no query or fragment"));
        }
        if parsed.scheme() == "https" && !cfg!(feature = "client-tls") {
            return Err(ClientError::TlsUnavailable {
                url: url.to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(e.into()))?;
        let root: Arc<str> = url.trim_end_matches('/').into();
        Ok(Self {
            http,
            api: format!("{root}{}", Self::DEFAULT_PREFIX).into(),
            url: root,
            retry: RetryPolicy::new(),
            timeout: DEFAULT_TIMEOUT,
            auth: None,
            max_response: Self::DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Mounts the API at `prefix` instead of [`DEFAULT_PREFIX`](Self::DEFAULT_PREFIX)
    /// (`""` for the root, `/ops`, …): every request path, start endpoints included, is
    /// appended to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::client::ApiClient;
    ///
    /// // A server that nests the operations router under `/ops`.
    /// let client = ApiClient::new("http://127.0.0.1:8000")?.with_api_prefix("/ops");
    /// assert_eq!(client.api_url(), "http://127.0.0.1:8000/ops");
    /// # Ok::<(), orchestrator::client::ClientError>(())
    /// ```
    #[must_use]
    pub fn with_api_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let sep = if prefix.is_empty() || prefix.starts_with('/') {
            ""
        } else {
            "/"
        };
        self.api = format!("{}{sep}{prefix}", self.url).into();
        self
    }

    /// Retries requests as `policy` says (default [`RetryPolicy::new`]).
    #[must_use]
    pub const fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The largest answer body [`with_max_response_bytes`](Self::with_max_response_bytes)
    /// allows by default: 16 MiB (a full page of 1 000 operations is well under 2 MiB).
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

    /// Reads at most `limit` bytes of an answer; a larger one is refused with
    /// [`ClientError::InvalidResponse`] without reading the rest, so a misbehaving
    /// server cannot make the client buffer without bound.
    #[must_use]
    pub const fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit;
        self
    }

    /// How long one try of a request may take in all (default 30 s); a try that takes
    /// longer counts as a connection error.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request, for a server behind
    /// [`BearerAuthLayer`](crate::http::BearerAuthLayer) (or any bearer check).
    ///
    /// # Errors
    ///
    /// [`ClientError::Setup`] when the token cannot be sent in a header (a control
    /// character, a line break).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::client::ApiClient;
    ///
    /// let client = ApiClient::new("http://127.0.0.1:8000")?.with_bearer_token("s3cr3t")?;
    /// # let _ = client;
    /// # Ok::<(), orchestrator::client::ClientError>(())
    /// ```
    pub fn with_bearer_token(mut self, token: &str) -> Result<Self, ClientError> {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {}", token.trim()))
            .map_err(|_| {
                ClientError::Setup("the bearer token is not a valid header value".into())
            })?;
        value.set_sensitive(true);
        self.auth = Some(value);
        Ok(self)
    }

    /// The server's URL as given (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where request paths are appended: the URL plus the API prefix
    /// (`http://127.0.0.1:8000/api/v1` by default).
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The retry policy in use.
    pub const fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// `POST {path}` with `body` as JSON, for a service's start endpoint (`path`
    /// relative to the API prefix, e.g. `/dummy/start`); returns the whole success
    /// envelope.
    ///
    /// # Errors
    ///
    /// [`ClientError::RequestBody`] when `body` does not serialise, or serialises to
    /// `null` (nothing is sent then); otherwise see [`ClientError`]: unreachable after
    /// the retries, 4xx at once, 5xx after its retries, or an answer that is not a
    /// success envelope.
    pub async fn start<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Value, ClientError> {
        let unsendable = |source: BoxError| ClientError::RequestBody {
            path: path.to_owned(),
            source,
        };
        let payload = serde_json::to_value(body).map_err(|e| unsendable(e.into()))?;
        if payload.is_null() {
            return Err(unsendable("it serialises to null".into()));
        }
        let payload = &payload;
        let url = self.url_for(path, &[])?;
        let body = self
            .send(Method::POST, url.clone(), Some(payload), self.timeout)
            .await?;
        let envelope: Value = parse(&url, &body)?;
        if envelope.get("success") != Some(&Value::Bool(true)) {
            return Err(invalid(&url, "not a success envelope"));
        }
        Ok(envelope)
    }

    /// `GET /operations/{id}`: the operation's current record.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rejected`] with code `OPERATION_NOT_FOUND` for an unknown id;
    /// otherwise as [`start`](Self::start).
    pub async fn get(&self, id: &OperationId) -> Result<OperationInfo, ClientError> {
        self.data(
            Method::GET,
            &format!("/operations/{id}"),
            &[],
            None,
            self.timeout,
        )
        .await
    }

    /// `GET /operations?…`: one page of operations, newest first, with the counts.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn list(&self, filter: &OperationFilter) -> Result<OperationList, ClientError> {
        let mut query = vec![
            ("limit", filter.limit.to_string()),
            ("offset", filter.offset.to_string()),
        ];
        if let Some(status) = filter.status {
            query.push(("status", status.as_str().to_owned()));
        }
        if let Some(kind) = &filter.operation_type {
            query.push(("operation_type", kind.as_str().to_owned()));
        }
        if filter.active_only {
            query.push(("active_only", "true".to_owned()));
        }
        let url = self.url_for("/operations", &query)?;
        let body = self
            .send(Method::GET, url.clone(), None, self.timeout)
            .await?;
        let page: OperationListResponse = parse(&url, &body)?;
        Ok(page.into())
    }

    /// `POST /operations/{id}/cancel`: requests cancellation (with `reason`, when
    /// given) and returns the record right after the request, usually still
    /// `RUNNING` with `cancel_reason` set.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rejected`] with code `OPERATION_FINISHED` (409) when it already
    /// ended, `OPERATION_NOT_FOUND` (404) for an unknown id; otherwise as
    /// [`start`](Self::start).
    pub async fn cancel(
        &self,
        id: &OperationId,
        reason: Option<&str>,
    ) -> Result<OperationInfo, ClientError> {
        let body = serde_json::json!({ "reason": reason });
        self.data(
            Method::POST,
            &format!("/operations/{id}/cancel"),
            &[],
            Some(&body),
            self.timeout,
        )
        .await
    }

    /// `POST /operations/{id}/resume`: starts the next attempt of a `FAILED` or
    /// `CANCELLED` operation from its last checkpoint and returns its record (same
    /// id, `attempt` one more); follow it as any operation.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rejected`] with code `OPERATION_NOT_RESUMABLE`, `NO_CHECKPOINT` or
    /// `ALREADY_RESUMED` (409), `OPERATION_NOT_FOUND` (404); otherwise as
    /// [`start`](Self::start).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(id: orchestrator::OperationId) -> Result<(), orchestrator::client::ClientError> {
    /// use orchestrator::client::ApiClient;
    ///
    /// let client = ApiClient::new("http://127.0.0.1:8000")?;
    /// let resumed = client.resume(&id).await?;
    /// println!("{id} runs attempt {}", resumed.attempt);
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, id: &OperationId) -> Result<OperationInfo, ClientError> {
        self.data(
            Method::POST,
            &format!("/operations/{id}/resume"),
            &[],
            Some(&serde_json::json!({})),
            self.timeout,
        )
        .await
    }

    /// `GET /operations/{id}/metrics?cursor=N`: the metric records after `cursor`
    /// (0 for every retained one) and the cursor to pass next time.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(client: orchestrator::client::ApiClient, id: orchestrator::OperationId) -> Result<(), orchestrator::client::ClientError> {
    /// let mut cursor = 0;
    /// let page = client.metrics(&id, cursor).await?;
    /// for record in &page.metrics {
    ///     println!("{record}");
    /// }
    /// cursor = page.cursor;
    /// # let _ = cursor; Ok(()) }
    /// ```
    pub async fn metrics(&self, id: &OperationId, cursor: u64) -> Result<MetricsPage, ClientError> {
        self.data(
            Method::GET,
            &format!("/operations/{id}/metrics"),
            &[("cursor", cursor.to_string())],
            None,
            self.timeout,
        )
        .await
    }

    /// `GET /operations/{id}/wait?timeout_ms=`: waits on the server until the operation
    /// ends or `timeout` passes (the server caps it at 60 s), and returns the record:
    /// terminal when it ended, still active when the timeout came first.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); a request takes at most `timeout` plus the
    /// client's own timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(client: orchestrator::client::ApiClient, id: orchestrator::OperationId) -> Result<(), orchestrator::client::ClientError> {
    /// use std::time::Duration;
    ///
    /// let info = client.wait(&id, Duration::from_secs(30)).await?;
    /// if info.status.is_terminal() {
    ///     println!("{} ended {}", info.operation_id, info.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait(
        &self,
        id: &OperationId,
        timeout: Duration,
    ) -> Result<OperationInfo, ClientError> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.data(
            Method::GET,
            &format!("/operations/{id}/wait"),
            &[("timeout_ms", millis.to_string())],
            None,
            self.timeout.saturating_add(timeout),
        )
        .await
    }

    /// `DELETE /operations/{id}`: removes a finished operation, or asks an active one
    /// to cancel (then [`DeletedOperation::deleted`] is `false`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(client: orchestrator::client::ApiClient, id: orchestrator::OperationId) -> Result<(), orchestrator::client::ClientError> {
    /// let answer = client.delete(&id).await?;
    /// if !answer.deleted {
    ///     println!("{id} was still {}: cancellation requested", answer.operation.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, id: &OperationId) -> Result<DeletedOperation, ClientError> {
        self.data(
            Method::DELETE,
            &format!("/operations/{id}"),
            &[],
            None,
            self.timeout,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_the_prefix_is_appended() {
        let c = ApiClient::new("http://127.0.0.1:8000/").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8000");
        let u = c.url_for("/operations", &[("limit", "5".into())]).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8000/api/v1/operations?limit=5"
        );
        let c = c.with_api_prefix("");
        assert_eq!(
            c.url_for("/dummy/start", &[]).unwrap().as_str(),
            "http://127.0.0.1:8000/dummy/start"
        );
        let c = c.with_api_prefix("ops/");
        assert_eq!(
            c.url_for("/operations", &[]).unwrap().as_str(),
            "http://127.0.0.1:8000/ops/operations"
        );
        for bad in ["127.0.0.1:8000", "ftp://host", "http://h?x=1", "not a url"] {
            assert!(
                matches!(ApiClient::new(bad), Err(ClientError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn https_needs_the_tls_feature() {
        let https = ApiClient::new("https://127.0.0.1:8443");
        if cfg!(feature = "client-tls") {
            assert!(https.is_ok(), "{https:?}");
        } else {
            let err = https.expect_err("no TLS in this build");
            assert!(matches!(err, ClientError::TlsUnavailable { .. }), "{err:?}");
            assert!(err.to_string().contains("`client-tls`"), "{err}");
        }
    }
}
