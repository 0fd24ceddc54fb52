//! Real HTTP over loopback: the example app served on an ephemeral port, and a small
//! HTTP/1 client (hyper-util's) that returns status and JSON body.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orchestrator::{OperationId, Operations};
use serde_json::Value;

/// A served app and a client pointed at it.
pub struct Server {
    pub addr: SocketAddr,
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `orchestrator_examples::server::app(ops)` on 127.0.0.1, port 0.
pub async fn serve(ops: Operations) -> Server {
    serve_app(orchestrator_examples::server::app(ops)).await
}

/// Serves any router on 127.0.0.1, port 0.
pub async fn serve_app(app: axum::Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server {
        addr,
        client: Client::new(addr),
        task,
    }
}

/// Status and parsed JSON body of a response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `data` of a success envelope (panics with the body otherwise).
    pub fn data(&self) -> &Value {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        assert_eq!(self.body["success"], true, "{self:?}");
        &self.body["data"]
    }

    /// `error.code` of an error envelope, checking its shape and status.
    pub fn error_code(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["success"], false, "{self:?}");
        assert!(self.body["error"]["message"].is_string(), "{self:?}");
        self.body["error"]["code"].as_str().expect("error.code")
    }
}

/// A pooled HTTP/1 client for one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, Bytes::new()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("json");
        self.send(Method::POST, path, Some("application/json"), bytes.into())
            .await
    }

    /// Any request; the body of the answer must be JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Reply {
        let response = self.request(method.clone(), path, content_type, body).await;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {status} with a non-JSON body ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply { status, body }
    }

    /// The raw response (for streams).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Response<Incoming> {
        let header = content_type.map(|ct| ("content-type", ct.to_owned()));
        self.dispatch(method, path, header, body).await
    }

    /// Sends one request with at most one extra header; panics if it cannot be sent.
    async fn dispatch(
        &self,
        method: Method,
        path: &str,
        header: Option<(&str, String)>,
        body: Bytes,
    ) -> Response<Incoming> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(body)).expect("request");
        self.inner
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    /// Opens the event stream of operation `id`.
    pub async fn events(&self, id: &OperationId) -> Sse {
        Sse::new(
            self.request(
                Method::GET,
                &format!("/api/v1/operations/{id}/events"),
                None,
                Bytes::new(),
            )
            .await,
        )
    }

    /// A bodiless request with one extra header; the raw response.
    pub async fn raw_with_header(
        &self,
        method: Method,
        path: &str,
        header: (&str, String),
    ) -> Response<Incoming> {
        self.dispatch(method, path, Some(header), Bytes::new())
            .await
    }

    /// A bodiless request with one extra header; the answer must be JSON.
    pub async fn request_with_header(
        &self,
        method: Method,
        path: &str,
        header: (&str, String),
    ) -> Reply {
        let response = self.raw_with_header(method, path, header).await;
        let status = response.status().as_u16();
        Reply {
            status,
            body: body_json(response).await,
        }
    }

    /// Starts a dummy task through the example endpoint; returns its id.
    pub async fn start_dummy(&self, iterations: u64, interval_ms: u64) -> OperationId {
        let reply = self
            .post_json(
                "/api/v1/dummy/start",
                &serde_json::json!({"iterations": iterations, "interval_ms": interval_ms}),
            )
            .await;
        let data = reply.data();
        assert_eq!(data["status"], "started", "{reply:?}");
        data["operation_id"]
            .as_str()
            .expect("operation_id")
            .parse()
            .expect("valid id")
    }

    /// GET the operation until `done(data)` holds, for at most `limit`.
    pub async fn poll_until(
        &self,
        id: &OperationId,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let reply = self.get(&format!("/api/v1/operations/{id}")).await;
            let data = reply.data().clone();
            if done(&data) {
                return data;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached within {limit:?}; last: {data}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The JSON body of a response (panics on anything else).
pub async fn body_json(response: Response<Incoming>) -> Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "a non-JSON body ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Server-Sent Events read from a response body: `(event, data)` pairs.
pub struct Sse {
    body: Incoming,
    buf: Vec<u8>,
}

impl Sse {
    pub fn new(response: Response<Incoming>) -> Self {
        assert_eq!(response.status(), 200);
        let ct = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        Self {
            body: response.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next event, `None` when the stream ended. Comments (keep-alives) are skipped.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(raw).expect("utf-8 event");
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((
                    event,
                    serde_json::from_str(&data).expect("event data is JSON"),
                ));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(bytes) = frame.into_data() {
                        self.buf.extend_from_slice(&bytes);
                    }
                }
                Some(Err(e)) => panic!("event stream broke: {e}"),
                None => return None,
            }
        }
    }
}

/// Polls the registry until `pred` holds for the operation; panics after 5 s.
pub async fn until(
    ops: &Operations,
    id: &OperationId,
    pred: impl Fn(&orchestrator::OperationInfo) -> bool,
) -> orchestrator::OperationInfo {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = ops.get(id).expect("operation is registered");
        if pred(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "condition not reached: {info:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
