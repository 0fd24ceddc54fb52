//! `ApiClient`: the operations API over HTTP, with the retry policy applied to every
//! request.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ClientError;
use super::retry::{FailureKind, RetryPolicy};
use crate::{
    OperationFilter, OperationId, OperationInfo, OperationList, OperationSource, SourceError,
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
/// HTTPS uses rustls with its `ring` provider, installed as the process default when
/// the first client is built (unless another provider already is).
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
    /// query or fragment); [`ClientError::Setup`] when the HTTP client cannot be built.
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
        // Whoever built a client first picks the process-wide provider; an error here
        // only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let root: Arc<str> = url.trim_end_matches('/').into();
        Ok(Self {
            http,
            api: format!("{root}{}", Self::DEFAULT_PREFIX).into(),
            url: root,
            retry: RetryPolicy::new(),
            timeout: DEFAULT_TIMEOUT,
            auth: None,
        })
    }

    /// Mounts the API at `prefix` instead (`""` for the root, `/ops`, …).
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
                ClientError::Setup("the bearer token is not a valid header value".to_owned())
            })?;
        value.set_sensitive(true);
        self.auth = Some(value);
        Ok(self)
    }

    /// The server's URL as given (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The retry policy in use.
    pub const fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// `POST {path}` with a JSON `payload`, for a service's start endpoint (`path`
    /// relative to the API prefix, e.g. `/dummy/start`); returns the whole success
    /// envelope.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]: unreachable after the retries, 4xx at once, 5xx after its
    /// retries, or an answer that is not a success envelope.
    pub async fn start(&self, path: &str, payload: &Value) -> Result<Value, ClientError> {
        let url = self.url_for(path, &[])?;
        let body = self.send(Method::POST, url.clone(), Some(payload)).await?;
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
    pub async fn operation(&self, id: &OperationId) -> Result<OperationInfo, ClientError> {
        self.data(Method::GET, &format!("/operations/{id}"), &[], None)
            .await
    }

    /// `GET /operations?…`: one page of operations, newest first, with the counts.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn list(&self, filter: &OperationFilter) -> Result<OperationList, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            data: Vec<OperationInfo>,
            total_count: usize,
            active_count: usize,
        }
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
        let body = self.send(Method::GET, url.clone(), None).await?;
        let page: Page = parse(&url, &body)?;
        Ok(OperationList {
            operations: page.data,
            total_count: page.total_count,
            active_count: page.active_count,
        })
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
        )
        .await
    }

    /// A request whose answer is a success envelope around a `T`.
    async fn data<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Option<&Value>,
    ) -> Result<T, ClientError> {
        #[derive(Deserialize)]
        struct Envelope<T> {
            data: T,
        }
        let url = self.url_for(path, query)?;
        let body = self.send(method, url.clone(), payload).await?;
        parse::<Envelope<T>>(&url, &body).map(|e| e.data)
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
    ) -> Result<bytes::Bytes, ClientError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (kind, error) = match self.try_once(method.clone(), url.clone(), payload).await {
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
    ) -> Result<bytes::Bytes, Failure> {
        let mut request = self.http.request(method, url).timeout(self.timeout);
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth.clone());
        }
        if let Some(payload) = payload {
            request = request.json(payload);
        }
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        let body = response.bytes().await.map_err(classify)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Failure::Status { status, body })
        }
    }
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
        Failure::Fatal(ClientError::Setup(e.to_string()))
    } else {
        // Refused, reset, timed out, or cut off mid-body: no usable answer came back.
        Failure::Connection(e)
    }
}

/// `(code, message)` of an error envelope, or a stand-in for any other body.
fn error_body(status: StatusCode, body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(Deserialize)]
    struct Body {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
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
            (format!("HTTP_{}", status.as_u16()), message)
        }
    }
}

fn parse<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| invalid(url, &format!("not the operations API ({e})")))
}

fn invalid(url: &Url, reason: &str) -> ClientError {
    ClientError::InvalidResponse {
        url: url.to_string(),
        reason: reason.to_owned(),
    }
}

impl OperationSource for ApiClient {
    /// `GET /operations/{id}` with the retry policy: `NotFound` when the server
    /// answers `OPERATION_NOT_FOUND`, `Unavailable` once the retries are used up.
    async fn fetch(&self, id: &OperationId) -> Result<OperationInfo, SourceError> {
        self.operation(id).await.map_err(|e| to_source_error(id, e))
    }

    /// `POST /operations/{id}/cancel`; an operation that already finished is fine.
    async fn cancel(&self, id: &OperationId, reason: &str) -> Result<(), SourceError> {
        match ApiClient::cancel(self, id, Some(reason)).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(OPERATION_FINISHED) => Ok(()),
            Err(e) => Err(to_source_error(id, e)),
        }
    }
}

const OPERATION_NOT_FOUND: &str = "OPERATION_NOT_FOUND";
const OPERATION_FINISHED: &str = "OPERATION_FINISHED";

fn to_source_error(id: &OperationId, e: ClientError) -> SourceError {
    match e {
        ClientError::Rejected { ref code, .. } if code == OPERATION_NOT_FOUND => {
            SourceError::NotFound(id.clone())
        }
        e @ (ClientError::Unreachable { .. } | ClientError::Server { .. }) => {
            SourceError::Unavailable(e.to_string())
        }
        e => SourceError::Other(e.to_string()),
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
    fn error_bodies_give_code_and_message() {
        let body = br#"{"success":false,"error":{"code":"OPERATION_FINISHED","message":"done"}}"#;
        assert_eq!(
            error_body(StatusCode::CONFLICT, body),
            ("OPERATION_FINISHED".into(), "done".into())
        );
        assert_eq!(
            error_body(StatusCode::BAD_GATEWAY, b""),
            ("HTTP_502".into(), "Bad Gateway".into())
        );
        assert_eq!(
            error_body(StatusCode::BAD_GATEWAY, b" upstream down \n"),
            ("HTTP_502".into(), "upstream down".into())
        );
    }
}
