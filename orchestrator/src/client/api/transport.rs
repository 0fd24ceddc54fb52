//! Sending requests: the URL of a path, the retry loop over single tries, answer bodies
//! read within their bounds, and the reading of success and error envelopes.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiClient;
use crate::client::error::ClientError;
use crate::client::retry::FailureKind;
use crate::{ApiResponse, ErrorCode, ErrorResponse};

impl ApiClient {
    /// A request whose answer is a success envelope around a `T`.
    pub(super) async fn data<T: DeserializeOwned>(
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

    pub(super) fn url_for(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
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
    pub(super) async fn send(
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

/// At most 64 KiB of an error answer's body, read within `timeout`; what arrived.
pub(super) async fn bounded_body(response: &mut reqwest::Response, timeout: Duration) -> Vec<u8> {
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
pub(super) fn error_body(status: StatusCode, body: &[u8]) -> (ErrorCode, String) {
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

pub(super) fn parse<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::InvalidResponse {
        url: url.to_string(),
        reason: "not the operations API".to_owned(),
        source: Some(e.into()),
    })
}

pub(super) fn invalid(url: &Url, reason: &str) -> ClientError {
    ClientError::InvalidResponse {
        url: url.to_string(),
        reason: reason.to_owned(),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
