//! The dashboard's router (feature `dashboard`) over real HTTP: the page and its files,
//! their security headers, mounting under any prefix, and the record field the page
//! uses to say where an operation runs. The page's behaviour in a browser is tested in
//! `examples/tests/dashboard.rs`.

mod support;

use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::Method;
use hyper::body::Bytes;
use orchestrator::dashboard::{self, CONTENT_SECURITY_POLICY, Dashboard};
use orchestrator::store::MemoryStore;
use orchestrator::{OperationSpec, Operations, http};
use support::{serve, serve_app};

async fn text(c: &support::Client, path: &str) -> (u16, hyper::HeaderMap, String) {
    let response = c.request(Method::GET, path, None, Bytes::new()).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

fn meta<'a>(page: &'a str, name: &str) -> &'a str {
    let start = format!(r#"<meta name="{name}" content=""#);
    let from = page.find(&start).expect(name) + start.len();
    &page[from..from + page[from..].find('"').expect("end of attribute")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let server = serve(Operations::new()).await;
    let c = &server.client;
    let (status, headers, page) = text(c, "/dashboard").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ASCII");
    assert_eq!(csp, CONTENT_SECURITY_POLICY);
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .expect("script-src");
    assert_eq!(script_src.trim(), "script-src 'self'");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // The files, linked from where the page is mounted; no inline script or style.
    assert!(page.contains(r#"<script src="/dashboard/app.js" defer></script>"#));
    assert!(page.contains(r#"href="/dashboard/app.css""#));
    assert_eq!(page.matches("<script").count(), 1, "one script, by URL");
    assert!(!page.contains("style="));
    assert_eq!(meta(&page, "orchestrator-api"), Dashboard::DEFAULT_API_PATH);

    for (path, kind) in [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) = text(c, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], kind, "{path}");
        assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert!(body.len() > 1000, "{path}");
    }
    // Nothing the page renders goes through HTML parsing.
    let (_, _, js) = text(c, "/dashboard/app.js").await;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    // The example server sends `/` and `/dashboard/` to the page.
    for path in ["/", "/dashboard/"] {
        let response = c.request(Method::GET, path, None, Bytes::new()).await;
        assert!(response.status().is_redirection(), "{path}");
        assert_eq!(response.headers()["location"], "/dashboard", "{path}");
    }
    // The page is GET only, with the envelope's 405.
    let reply = c.send(Method::POST, "/dashboard", None, Bytes::new()).await;
    assert_eq!(reply.error_code(405), http::code::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_needs_no_token_but_the_api_does() {
    let ops = Operations::new();
    let app = orchestrator_examples::server::app_with(ops, 16, Some("s3cr3t"));
    let server = serve_app(app).await;
    let c = &server.client;
    let (status, _, page) = text(c, "/dashboard").await;
    assert_eq!(status, 200);
    assert!(!page.contains("s3cr3t"));
    let reply = c.get("/api/v1/operations").await;
    assert_eq!(reply.error_code(401), http::code::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_under_a_prefix_the_page_links_its_own_files() {
    let ops = Operations::new();
    let ui = Dashboard::new(ops.clone())
        .with_api_path(r#"../api"><script>alert(1)</script>"#)
        .into_router();
    let app = axum::Router::new()
        .nest("/ops/api", http::router(ops))
        .nest("/ops/ui", ui);
    let server = serve_app(app).await;
    let c = &server.client;
    let (status, _, page) = text(c, "/ops/ui").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"src="/ops/ui/app.js""#));
    assert!(page.contains(r#"href="/ops/ui/app.css""#));
    // The API path is an attribute value, escaped: it cannot add markup.
    assert_eq!(
        meta(&page, "orchestrator-api"),
        "../api&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    assert_eq!(page.matches("<script").count(), 1);
    let (status, _, _) = text(c, "/ops/ui/app.js").await;
    assert_eq!(status, 200);
}

/// `instance_id` says which process runs an operation: none without a store; with
/// one, the owner's, the same whichever replica reads it, and the one the page of
/// that process calls "here".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_name_the_instance_that_runs_them() {
    let plain = Operations::new();
    let h = plain
        .spawn(OperationSpec::new("nap"), |ctx| async move {
            ctx.sleep(Duration::from_secs(60)).await
        })
        .expect("spawn");
    assert_eq!(plain.get(h.id()).expect("get").instance_id, None);
    let server = serve(plain.clone()).await;
    let (_, _, page) = text(&server.client, "/dashboard").await;
    assert_eq!(meta(&page, "orchestrator-instance"), "");
    let json = server
        .client
        .get(&format!("/api/v1/operations/{}", h.id()))
        .await;
    assert!(json.data().get("instance_id").is_none(), "{json:?}");
    plain.cancel_all("done");

    let store = MemoryStore::new();
    let a = Operations::builder()
        .open(std::sync::Arc::new(store.clone()))
        .await
        .expect("open a");
    let b = Operations::builder()
        .open(std::sync::Arc::new(store))
        .await
        .expect("open b");
    let on_a = a
        .spawn(OperationSpec::new("nap"), |ctx| async move {
            ctx.sleep(Duration::from_secs(60)).await
        })
        .expect("spawn on a");
    let on_b = b
        .spawn(OperationSpec::new("nap"), |ctx| async move {
            ctx.sleep(Duration::from_secs(60)).await
        })
        .expect("spawn on b");
    let a_instance = a
        .get(on_a.id())
        .expect("local")
        .instance_id
        .expect("an instance");
    let b_instance = b
        .get(on_b.id())
        .expect("local")
        .instance_id
        .expect("an instance");
    assert_ne!(a_instance, b_instance);
    // B reads A's operation from the store: it names A.
    let seen_from_b = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(info) = b.cluster().get(on_a.id()).await {
                break info;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("A's operation reaches the store");
    assert_eq!(seen_from_b.instance_id, Some(a_instance));
    let listed = b
        .cluster()
        .list(&orchestrator::OperationFilter::new())
        .await
        .expect("list");
    for info in &listed.operations {
        let expected = if info.operation_id == *on_a.id() {
            a_instance
        } else {
            b_instance
        };
        assert_eq!(info.instance_id, Some(expected), "{}", info.operation_id);
    }
    // A's page calls A's instance "here".
    let server = serve_app(dashboard::router(a.clone())).await;
    let (_, _, page) = text(&server.client, "/").await;
    assert_eq!(meta(&page, "orchestrator-instance"), a_instance.to_string());
    a.cancel_all("done");
    b.cancel_all("done");
}
