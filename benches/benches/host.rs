//! `host`: what a proxy of a host-service operation costs.
//!
//! - `proxy_read/{local_get,proxy_get}`: a read of a running proxy (served from its
//!   copy of the host's record) next to a read of a running local operation;
//! - `refresh/{api_client,bare_reqwest}`: one refresh round trip to the host (what a
//!   proxy's follower sends once per TTL) next to a bare reqwest GET of the same URL;
//! - printed first: requests reaching the host per second while 64 tasks poll one
//!   proxy as fast as they can (the TTL, 1 s, bounds it, whatever the readers do).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use criterion::{criterion_group, criterion_main};
use orchestrator::client::ApiClient;
use orchestrator::host::HostService;
use orchestrator::{OperationSpec, OperationType, Operations};
use orchestrator_benches::criterion;

/// A host on its own runtime thread, serving the example app; counts its requests.
struct Host {
    url: String,
    requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn host() -> Host {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("host runtime");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let app = orchestrator_examples::server::app(Operations::new()).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            counter.fetch_add(1, Ordering::Relaxed);
            next.run(req)
        },
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let _ = axum::serve(listener, app).await;
    });
    Host {
        url,
        requests,
        _runtime: runtime,
    }
}

fn bench(c: &mut criterion::Criterion) {
    let host = host();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ops = Operations::new();
    let svc = HostService::new(&host.url).expect("url");
    let body = serde_json::json!({"iterations": 1_000_000, "interval_ms": 1000});
    let proxy = rt
        .block_on(svc.start(
            &ops,
            OperationSpec::new(OperationType::DUMMY),
            "/dummy/start",
            &body,
        ))
        .expect("routed start")
        .operation_id;
    let local = ops
        .create(OperationSpec::new(OperationType::DUMMY))
        .expect("create");
    ops.start(&local).expect("start");
    let host_id = ops
        .get(&proxy)
        .expect("proxy")
        .host_operation_id
        .expect("host id");

    // Requests reaching the host while 64 tasks read the proxy for 5 s.
    let window = Duration::from_secs(5);
    let before = host.requests.load(Ordering::Relaxed);
    let reads = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let started = Instant::now();
        let pollers: Vec<_> = (0..64)
            .map(|_| {
                let (ops, id, reads) = (ops.clone(), proxy.clone(), reads.clone());
                tokio::spawn(async move {
                    while started.elapsed() < window {
                        black_box(ops.get(&id).expect("get"));
                        reads.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for p in pollers {
            p.await.expect("poller");
        }
    });
    let secs = window.as_secs_f64();
    println!(
        "host/64_pollers: {:.0} local reads/s, {:.1} requests/s reaching the host (TTL {:?})",
        reads.load(Ordering::Relaxed) as f64 / secs,
        (host.requests.load(Ordering::Relaxed) - before) as f64 / secs,
        svc.cache_ttl(),
    );

    let mut g = c.benchmark_group("proxy_read");
    g.bench_function("local_get", |b| {
        b.iter(|| black_box(ops.get(&local).expect("get")));
    });
    g.bench_function("proxy_get", |b| {
        b.iter(|| black_box(ops.get(&proxy).expect("get")));
    });
    g.finish();

    let client = ApiClient::new(&host.url).expect("client");
    let bare = reqwest::Client::new();
    let url = format!("{}/api/v1/operations/{host_id}", host.url);
    let mut g = c.benchmark_group("refresh");
    g.bench_function("api_client", |b| {
        b.iter(|| rt.block_on(async { black_box(client.get(&host_id).await.expect("read")) }));
    });
    g.bench_function("bare_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let body = bare
                    .get(&url)
                    .send()
                    .await
                    .expect("send")
                    .bytes()
                    .await
                    .expect("body");
                black_box(body)
            })
        });
    });
    g.finish();
    ops.cancel(&proxy, "bench done").expect("cancel");
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench
}
criterion_main!(benches);
