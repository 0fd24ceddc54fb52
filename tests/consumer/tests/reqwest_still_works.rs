//! The consumer's own `reqwest::Client::new()` must work in a build where
//! orchestrator's `client` feature is on: before 0.2 it panicked ("No rustls crypto
//! provider is configured"), because `client` turned on reqwest's
//! `rustls-no-provider` for the whole build. Loopback only.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Answers one connection with a fixed HTTP response; returns the URL and the
/// thread, which hands back the first bytes it read.
fn one_shot_server(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).unwrap_or(0);
        buf.truncate(n);
        let _ = socket.write_all(answer);
        buf
    });
    (format!("{addr}"), thread)
}

#[tokio::test]
async fn the_consumers_own_reqwest_client_builds_and_speaks_plain_http() {
    let (addr, server) =
        one_shot_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    // The line that panicked.
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .expect("plain HTTP works");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "ok");
    let request = server.join().expect("server");
    assert!(request.starts_with(b"GET / HTTP/1.1\r\n"));
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn without_tls_https_is_an_error_never_a_panic() {
    let err = reqwest::Client::new()
        .get("https://127.0.0.1:9/")
        .send()
        .await
        .expect_err("no TLS in this build");
    // reqwest refuses the scheme; nothing was sent.
    assert!(!err.is_status(), "{err}");
    let err = orchestrator::client::ApiClient::new("https://127.0.0.1:9").expect_err("no TLS");
    assert!(
        err.to_string().contains("`client-tls`"),
        "the error names the feature to enable: {err}"
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn with_the_consumers_tls_https_sends_a_client_hello() {
    // Not TLS on the other side: the handshake fails, as an error.
    let (addr, server) = one_shot_server(b"HTTP/1.1 200 OK\r\n\r\n");
    let err = reqwest::Client::new()
        .get(format!("https://{addr}/"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect_err("not a TLS server");
    assert!(err.is_connect() || err.is_request(), "{err}");
    let hello = server.join().expect("server");
    // A TLS record of type handshake (0x16), version 3.x.
    assert!(hello.starts_with(&[0x16, 0x03]), "{hello:02x?}");
}

#[tokio::test]
async fn orchestrators_client_and_a_managed_operation_work_next_to_it() {
    let ops = orchestrator::Operations::new();
    let handle = orchestrator_consumer::spawn_count(&ops, 3).expect("spawned");
    let done = tokio::time::timeout(Duration::from_secs(30), ops.wait(handle.id()))
        .await
        .expect("ends")
        .expect("known");
    assert_eq!(done.status, orchestrator::OperationStatus::Completed);
    // orchestrator's client against a loopback answer that is not the API: an error.
    let (addr, _server) =
        one_shot_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
    let api = orchestrator::client::ApiClient::new(&format!("http://{addr}")).expect("client");
    let err = api
        .list(&orchestrator::OperationFilter::new())
        .await
        .expect_err("not the operations API");
    assert!(
        matches!(
            err,
            orchestrator::client::ClientError::InvalidResponse { .. }
        ),
        "{err:?}"
    );
}
