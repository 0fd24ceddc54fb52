//! `OperationEvents`: the event stream of one operation (`GET /operations/{id}/events`),
//! opened by [`ApiClient::events`] and read record by record, each chunk within the
//! idle bound.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::Url;

use super::ApiClient;
use super::transport::{bounded_body, error_body, invalid};
#[cfg(doc)]
use crate::OperationSource;
use crate::client::error::{BoxError, ClientError};
use crate::client::sse::{self, Parser, Record, StreamError};
use crate::{OperationId, OperationInfo};

impl ApiClient {
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
