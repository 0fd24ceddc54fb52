//! Host services (feature `host`): run an operation on another process that serves
//! the same operations API, behind a local *proxy* operation.
//!
//! A team moves training to a GPU box without touching domain code: the service
//! keeps calling `start_train(..)`, and the environment decides where it runs.
//!
//! ```text
//! USE_TRAINING_HOST_SERVICE=true TRAINING_HOST_SERVICE_URL=http://gpu-box:5002
//! ```
//!
//! - [`HostService::from_env`] reads that configuration when the service starts (a
//!   set flag without a URL, or a bad URL, is an error there, not at the first
//!   operation).
//! - A routed start ([`HostService::start`], or the `start_<name>` that
//!   `#[managed_operation(host_path = "/training/start")]` generates) POSTs the
//!   arguments to the host's start endpoint and registers a local proxy: the caller
//!   gets a local id, and the record says where the work runs (`host_url`,
//!   `host_operation_id`).
//! - One follower per proxy reads the host's record at most once per
//!   [cache TTL](HostService::with_cache_ttl) (1 s) and copies progress, partial
//!   results and new metric records (by cursor) into the local record. Readers —
//!   `get`, `list`, `wait`, the event stream, the terminal bar — are served from
//!   that copy and never reach the host, however many there are.
//! - A cancel is forwarded at once and retried each TTL until the host takes it; the
//!   proxy stays `RUNNING` with its `cancel_reason` until the host's record says it
//!   ended, so it never shows a `CANCELLED` the host did not reach. `cancel_all` and
//!   [`Operations::shutdown`](crate::Operations::shutdown) forward theirs the same way.
//! - The host's terminal record (status, result summary, error) is copied once;
//!   the follower then stops.
//! - A host that stays unreachable for the [grace](HostService::with_unreachable_grace)
//!   (30 s) turns the proxy `FAILED`, naming the host and the last error; a host that
//!   answers 404 for the operation turns it `FAILED` at once.
//! - A host record that goes backwards (`RUNNING` after `COMPLETED`, a percentage
//!   above 100, another operation's id) is ignored and logged.
//!
//! # Examples
//!
//! ```no_run
//! use orchestrator::host::HostService;
//! use orchestrator::{OperationSpec, OperationType, Operations};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ops = Operations::new();
//! let host = HostService::new("http://127.0.0.1:5002")?;
//! let spec = OperationSpec::new(OperationType::TRAINING).with_description("train");
//! let body = serde_json::json!({"epochs": 10});
//! let started = host.start(&ops, spec, "/training/start", &body).await?;
//! let info = ops.get(&started.operation_id)?;
//! assert_eq!(info.host_url.as_deref(), Some("http://127.0.0.1:5002"));
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::client::{ApiClient, ClientError, RetryPolicy};

mod check;
mod config;
mod follow;
mod spawn;
mod start;

pub use config::HostConfigError;
#[doc(hidden)]
pub use spawn::{host_run, host_run_sync};

/// A host service: where routed operations run, and how their proxies follow them.
///
/// Cheap to clone (one shared HTTP connection pool).
#[derive(Debug, Clone)]
pub struct HostService {
    url: Arc<str>,
    /// Starts: one try (a start is not idempotent), bounded by `start_timeout`.
    starts: ApiClient,
    /// Reads and cancels of the followers: one try each, the follower retries.
    reads: ApiClient,
    ttl: Duration,
    grace: Duration,
}

impl HostService {
    /// How often a proxy reads its host's record unless
    /// [`with_cache_ttl`](Self::with_cache_ttl) says otherwise.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);
    /// How long a host may stay unreachable before its proxies fail, unless
    /// [`with_unreachable_grace`](Self::with_unreachable_grace) says otherwise.
    pub const DEFAULT_UNREACHABLE_GRACE: Duration = Duration::from_secs(30);
    /// How long a start or a read may take unless
    /// [`with_request_timeout`](Self::with_request_timeout) says otherwise.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// The largest answer read from a host: 4 MiB.
    pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

    /// The host service at `url` (`http://host:port`; `https://` with the `client-tls`
    /// feature), with its operations API under `/api/v1`.
    ///
    /// # Errors
    ///
    /// [`HostConfigError::InvalidUrl`] for a URL that cannot be used.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use orchestrator::host::HostService;
    ///
    /// let host = HostService::new("http://127.0.0.1:5002")?
    ///     .with_cache_ttl(Duration::from_millis(500))
    ///     .with_unreachable_grace(Duration::from_secs(60));
    /// assert_eq!(host.cache_ttl(), Duration::from_millis(500));
    /// assert!(HostService::new("ftp://example.com").is_err());
    /// # Ok::<(), orchestrator::host::HostConfigError>(())
    /// ```
    pub fn new(url: &str) -> Result<Self, HostConfigError> {
        Self::connect(url).map_err(|source| HostConfigError::InvalidUrl {
            var: "the host service URL".to_owned(),
            source,
        })
    }

    fn connect(url: &str) -> Result<Self, ClientError> {
        let client = ApiClient::new(url)?
            .with_retry(RetryPolicy::never())
            .with_max_response_bytes(Self::MAX_RESPONSE_BYTES);
        Ok(Self {
            url: client.url().into(),
            starts: client.clone().with_timeout(Self::DEFAULT_REQUEST_TIMEOUT),
            reads: client.with_timeout(Self::DEFAULT_REQUEST_TIMEOUT),
            ttl: Self::DEFAULT_CACHE_TTL,
            grace: Self::DEFAULT_UNREACHABLE_GRACE,
        })
    }

    /// Reads a proxy's host record at most once per `ttl` (default 1 s; at least
    /// 10 ms).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(10));
        self
    }

    /// Fails a proxy whose host stays unreachable this long (default 30 s).
    #[must_use]
    pub const fn with_unreachable_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Bounds each request to the host (default 10 s): a routed start that gets no
    /// answer in time is an error, a read that gets none counts towards the grace.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.starts = self.starts.with_timeout(timeout);
        self.reads = self.reads.with_timeout(timeout);
        self
    }

    /// Mounts the host's API at `prefix` instead of `/api/v1`.
    #[must_use]
    pub fn with_api_prefix(mut self, prefix: &str) -> Self {
        self.starts = self.starts.with_api_prefix(prefix);
        self.reads = self.reads.with_api_prefix(prefix);
        self
    }

    /// Sends `Authorization: Bearer <token>` to the host.
    ///
    /// # Errors
    ///
    /// [`ClientError::Setup`] for a token that cannot be sent in a header.
    pub fn with_bearer_token(mut self, token: &str) -> Result<Self, ClientError> {
        self.starts = self.starts.with_bearer_token(token)?;
        self.reads = self.reads.with_bearer_token(token)?;
        Ok(self)
    }

    /// The host's URL, as configured (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How often a proxy reads its host's record.
    pub const fn cache_ttl(&self) -> Duration {
        self.ttl
    }

    /// How long the host may stay unreachable before its proxies fail.
    pub const fn unreachable_grace(&self) -> Duration {
        self.grace
    }
}
