//! `ApiClient`: the operations API over HTTP, with the retry policy applied to every
//! request.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{BoxError, ClientError};
use super::retry::{FailureKind, RetryPolicy};
use super::sse::{self, Parser, Record, StreamError};
use crate::source::poll_updates;
use crate::{
    ApiResponse, DeletedOperation, ErrorCode, ErrorResponse, MetricsPage, OperationFilter,
    OperationId, OperationInfo, OperationList, OperationListResponse, OperationSource, SourceError,
};

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

    /// `GET /operations/{id}/events`: opens the operation's event stream, a
    /// [`Stream`] of its records as it changes that ends after the terminal one.
    ///
    /// Opening is one try (no retries: a caller that cannot stream polls instead, as
    /// [`updates`](OperationSource::updates) does). The stream is bounded: an event
    /// over 1 MiB, data that is not a record, 45 s of silence (the server sends a
    /// keep-alive every 15 s) or an end before the terminal record are an error item,
    /// after which the stream ends.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rejected`] (`OPERATION_NOT_FOUND`, or `HTTP_404`/`METHOD_NOT_ALLOWED`
    /// from a server without the route), [`ClientError::Server`] (`TOO_MANY_STREAMS`),
    /// [`ClientError::Unreachable`], or [`ClientError::InvalidResponse`] for an answer
    /// that is not an event stream.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(client: orchestrator::client::ApiClient, id: orchestrator::OperationId) -> Result<(), orchestrator::client::ClientError> {
    /// use futures::StreamExt;
    ///
    /// let mut events = client.events(&id).await?;
    /// while let Some(info) = events.next().await {
    ///     let info = info?;
    ///     println!("{} {:.0}%", info.status, info.progress.percentage);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn events(&self, id: &OperationId) -> Result<OperationEvents, ClientError> {
        let url = self.url_for(&format!("/operations/{id}/events"), &[])?;
        // No whole-request timeout: the stream lasts as long as the operation does.
        // Silence is bounded instead, per chunk.
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        let unreachable = |source: BoxError| ClientError::Unreachable {
            url: self.url.to_string(),
            attempts: 1,
            source,
        };
        let mut response = match tokio::time::timeout(self.timeout, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(unreachable(e.into())),
            Err(_) => return Err(unreachable("no answer in time".into())),
        };
        let status = response.status();
        if !status.is_success() {
            let body = bounded_body(&mut response, self.timeout).await;
            let (code, message) = error_body(status, &body);
            return Err(if status.is_server_error() {
                ClientError::Server {
                    status: status.as_u16(),
                    code,
                    message,
                    attempts: 1,
                }
            } else {
                ClientError::Rejected {
                    status: status.as_u16(),
                    code,
                    message,
                }
            });
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_sse {
            return Err(invalid(&url, "not an event stream"));
        }
        let reading = Reading {
            response,
            parser: Parser::default(),
            ready: VecDeque::new(),
            url,
        };
        Ok(OperationEvents {
            inner: stream::unfold(Some(reading), next_record).boxed(),
        })
    }

    /// A request whose answer is a success envelope around a `T`.
    async fn data<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Option<&Value>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let url = self.url_for(path, query)?;
        let body = self.send(method, url.clone(), payload, timeout).await?;
        parse::<ApiResponse<T>>(&url, &body).map(|e| e.data)
    }

    fn url_for(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url =
            Url::parse(&format!("{}{path}", self.api)).map_err(|e| ClientError::InvalidUrl {
                url: format!("{}{path}", self.api),
                reason: e.to_string(),
            })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends the request as the retry policy says; returns the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        url: Url,
        payload: Option<&Value>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (kind, error) = match self
                .try_once(method.clone(), url.clone(), payload, timeout)
                .await
            {
                Ok(body) => return Ok(body),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Connection(e)) => (
                    FailureKind::Connection,
                    ClientError::Unreachable {
                        url: self.url.to_string(),
                        attempts: tries,
                        source: e.into(),
                    },
                ),
                Err(Failure::Status { status, body }) => {
                    let (code, message) = error_body(status, &body);
                    if status.is_server_error() {
                        (
                            FailureKind::ServerError,
                            ClientError::Server {
                                status: status.as_u16(),
                                code,
                                message,
                                attempts: tries,
                            },
                        )
                    } else {
                        (
                            FailureKind::Rejected,
                            ClientError::Rejected {
                                status: status.as_u16(),
                                code,
                                message,
                            },
                        )
                    }
                }
            };
            let Some(wait) = self.retry.delay(kind, tries) else {
                return Err(error);
            };
            tracing::warn!(%url, tries, ?wait, error = %error, "request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn try_once(
        &self,
        method: Method,
        url: Url,
        payload: Option<&Value>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, Failure> {
        let mut request = self.http.request(method, url).timeout(timeout);
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        if let Some(payload) = payload {
            request = request.json(payload);
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status();
        let url = response.url().to_string();
        let too_large = || {
            Failure::Fatal(ClientError::InvalidResponse {
                url: url.clone(),
                reason: format!("the answer is larger than {} bytes", self.max_response),
                source: None,
            })
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response as u64)
        {
            return Err(too_large());
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_response {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        if status.is_success() {
            Ok(body)
        } else {
            Err(Failure::Status { status, body })
        }
    }
}

/// The records of one operation as the events route sends them; from
/// [`ApiClient::events`]. Ends after the terminal record, or after an error item.
#[must_use = "streams do nothing unless polled"]
pub struct OperationEvents {
    inner: BoxStream<'static, Result<OperationInfo, ClientError>>,
}

impl fmt::Debug for OperationEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationEvents").finish_non_exhaustive()
    }
}

impl Stream for OperationEvents {
    type Item = Result<OperationInfo, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// The state of an open event stream.
struct Reading {
    response: reqwest::Response,
    parser: Parser,
    /// Records parsed but not yet handed out.
    ready: VecDeque<Record>,
    url: Url,
}

async fn next_record(
    state: Option<Reading>,
) -> Option<(Result<OperationInfo, ClientError>, Option<Reading>)> {
    let mut st = state?;
    loop {
        if let Some(record) = st.ready.pop_front() {
            let more = !record.done && !record.info.status.is_terminal();
            return Some((Ok(record.info), more.then_some(st)));
        }
        let failed = |e: StreamError, url: &Url| {
            Some((
                Err(ClientError::EventStream {
                    url: url.to_string(),
                    source: e.into(),
                }),
                None,
            ))
        };
        let chunk = match tokio::time::timeout(sse::IDLE, st.response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => {
                let e = StreamError::Broken("it ended before the terminal record".to_owned());
                return failed(e, &st.url);
            }
            Ok(Err(e)) => return failed(StreamError::Broken(e.to_string()), &st.url),
            Err(_) => {
                let e = StreamError::Broken(format!("silent for {}s", sse::IDLE.as_secs()));
                return failed(e, &st.url);
            }
        };
        let mut out = Vec::new();
        if let Err(e) = st.parser.feed(&chunk, &mut out) {
            return failed(e, &st.url);
        }
        st.ready.extend(out);
    }
}

/// At most 64 KiB of an error answer's body, read within `timeout`; what arrived.
async fn bounded_body(response: &mut reqwest::Response, timeout: Duration) -> Vec<u8> {
    const LIMIT: usize = 64 * 1024;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = LIMIT - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    body
}

/// One try's failure.
enum Failure {
    Connection(reqwest::Error),
    Status {
        status: StatusCode,
        body: bytes::Bytes,
    },
    Fatal(ClientError),
}

fn classify(e: reqwest::Error) -> Failure {
    if e.is_builder() {
        Failure::Fatal(ClientError::Setup(e.into()))
    } else {
        // Refused, reset, timed out, or cut off mid-body: no usable answer came back.
        Failure::Connection(e)
    }
}

/// `(code, message)` of an error envelope, or a stand-in for any other body.
fn error_body(status: StatusCode, body: &[u8]) -> (ErrorCode, String) {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no error message")
                    .to_owned()
            } else {
                text.chars().take(200).collect()
            };
            (
                ErrorCode::Other(format!("HTTP_{}", status.as_u16())),
                message,
            )
        }
    }
}

fn parse<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::InvalidResponse {
        url: url.to_string(),
        reason: "not the operations API".to_owned(),
        source: Some(e.into()),
    })
}

fn invalid(url: &Url, reason: &str) -> ClientError {
    ClientError::InvalidResponse {
        url: url.to_string(),
        reason: reason.to_owned(),
        source: None,
    }
}

/// Whether opening the event stream failed in a way that polling can work around: a
/// server without the route (404 that is not about the operation, 405), one that
/// cannot stream now (503, 5xx), no answer, or an answer that is not a stream.
fn polling_helps(e: &ClientError) -> bool {
    match e {
        ClientError::Rejected { status, code, .. } => {
            (*status == 404 && *code != ErrorCode::OperationNotFound) || *status == 405
        }
        ClientError::Server { .. }
        | ClientError::Unreachable { .. }
        | ClientError::InvalidResponse { .. } => true,
        _ => false,
    }
}

impl OperationSource for ApiClient {
    /// Follows the operation by its event stream (`GET /operations/{id}/events`), so
    /// the bar moves as soon as the operation does; polls [`get`](Self::get)
    /// every `poll` instead when the server has no such route or cannot stream
    /// (404 for the route, 405, 503), and for the rest of the run when the stream
    /// breaks.
    fn updates<'a>(
        &'a self,
        id: &'a OperationId,
        poll: Duration,
    ) -> impl Stream<Item = Result<OperationInfo, SourceError>> + Send + 'a {
        enum Step<'a> {
            Open,
            Events(OperationEvents),
            Polling(BoxStream<'a, Result<OperationInfo, SourceError>>),
            Done,
        }
        stream::unfold(Step::Open, move |mut step| async move {
            loop {
                step = match step {
                    Step::Done => return None,
                    Step::Open => match self.events(id).await {
                        Ok(events) => Step::Events(events),
                        Err(e) if polling_helps(&e) => {
                            tracing::debug!(%id, error = %e, "no event stream; polling");
                            Step::Polling(poll_updates(self, id, poll).boxed())
                        }
                        Err(e) => return Some((Err(to_source_error(id, e)), Step::Done)),
                    },
                    Step::Events(mut events) => match events.next().await {
                        Some(Ok(info)) => {
                            let next = if info.status.is_terminal() {
                                Step::Done
                            } else {
                                Step::Events(events)
                            };
                            return Some((Ok(info), next));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(%id, error = %e, "event stream broke; polling");
                            Step::Polling(poll_updates(self, id, poll).boxed())
                        }
                        None => Step::Polling(poll_updates(self, id, poll).boxed()),
                    },
                    Step::Polling(mut polls) => {
                        let item = polls.next().await?;
                        return Some((item, Step::Polling(polls)));
                    }
                };
            }
        })
    }

    /// `GET /operations/{id}` with the retry policy: `NotFound` when the server
    /// answers `OPERATION_NOT_FOUND`, `Unavailable` once the retries are used up.
    async fn get(&self, id: &OperationId) -> Result<OperationInfo, SourceError> {
        ApiClient::get(self, id)
            .await
            .map_err(|e| to_source_error(id, e))
    }

    /// `POST /operations/{id}/cancel`; an operation that already finished is fine.
    async fn cancel(&self, id: &OperationId, reason: &str) -> Result<(), SourceError> {
        match ApiClient::cancel(self, id, Some(reason)).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&ErrorCode::OperationFinished) => Ok(()),
            Err(e) => Err(to_source_error(id, e)),
        }
    }
}

fn to_source_error(id: &OperationId, e: ClientError) -> SourceError {
    match e {
        ClientError::Rejected {
            code: ErrorCode::OperationNotFound,
            ..
        } => SourceError::NotFound(id.clone()),
        e @ (ClientError::Unreachable { .. } | ClientError::Server { .. }) => {
            SourceError::Unavailable(e.into())
        }
        e => SourceError::Other(e.into()),
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

    #[test]
    fn error_bodies_give_code_and_message() {
        let body = br#"{"success":false,"error":{"code":"OPERATION_FINISHED","message":"done"}}"#;
        assert_eq!(
            error_body(StatusCode::CONFLICT, body),
            (ErrorCode::OperationFinished, "done".into())
        );
        assert_eq!(
            error_body(StatusCode::BAD_GATEWAY, b""),
            (ErrorCode::Other("HTTP_502".into()), "Bad Gateway".into())
        );
        assert_eq!(
            error_body(StatusCode::BAD_GATEWAY, b" upstream down \n"),
            (ErrorCode::Other("HTTP_502".into()), "upstream down".into())
        );
    }
}
