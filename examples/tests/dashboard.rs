//! The `axum_server` example's browser dashboard (`/dashboard`) in a real headless
//! Chromium over WebDriver: what it lists, live progress without a reload, cancel with
//! a confirm step, text that is never markup, the metric charts, and the token form.
//!
//! Each test has its own server, chromedriver and browser profile. Without a
//! chromedriver a test is skipped with a line on stderr, except under `CI=true`
//! (see `common/browser.rs`).

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use browser::{Browser, eventually, http_with_token, raw_http};
use common::{http, metric_count, operation, serve};
use serde_json::{Value, json};

/// How long the page may take to show something the server already has.
const PAGE: Duration = Duration::from_secs(20);

/// The example server without a token (a blank one means none, whatever the shell has).
fn open_server() -> (common::Guard, common::Lines, SocketAddr) {
    serve("axum_server", &[("ORCHESTRATOR_TOKEN", "")])
}

fn dashboard(addr: SocketAddr) -> String {
    format!("http://{addr}/dashboard")
}

fn start(addr: SocketAddr, path: &str, body: &Value) -> String {
    let (status, reply) = http(addr, "POST", path, &body.to_string());
    assert_eq!(status, 200, "{path} {body}: {reply}");
    reply["data"]["operation_id"]
        .as_str()
        .expect("operation_id")
        .to_owned()
}

fn start_dummy(addr: SocketAddr, body: &Value) -> String {
    start(addr, "/api/v1/dummy/start", body)
}

/// Opens the dashboard and waits until its list is on the page.
async fn open_dashboard(b: &Browser, addr: SocketAddr) {
    b.goto(&dashboard(addr)).await;
    page_eventually(b, "the dashboard's table#ops", PAGE, || async {
        let ready = b
            .try_js(
                "return document.readyState === 'complete' &&
                     document.querySelector('table#ops') !== null;",
                vec![],
            )
            .await?;
        if ready == json!(true) {
            Ok(())
        } else {
            Err("no table#ops yet".to_owned())
        }
    })
    .await;
}

/// The `data-id`s of the `tr.op` rows, top to bottom.
async fn row_ids(b: &Browser) -> Result<Vec<String>, String> {
    let ids = b
        .try_js(
            "return Array.from(document.querySelectorAll('table#ops tr.op'))
                 .map(r => r.getAttribute('data-id'));",
            vec![],
        )
        .await?;
    serde_json::from_value(ids).map_err(|e| e.to_string())
}

/// What the row of operation `id` shows (`null` when there is no such row).
async fn row(b: &Browser, id: &str) -> Result<Value, String> {
    b.try_js(
        "const r = document.querySelector(
             'table#ops tr.op[data-id=\"' + CSS.escape(arguments[0]) + '\"]');
         if (!r) return null;
         const text = s => { const e = r.querySelector(s); return e ? e.textContent : null; };
         const bar = r.querySelector('.progress .bar');
         return {
             status: r.getAttribute('data-status'),
             status_text: text('.status'),
             kind: text('.kind'),
             description: text('.description'),
             percent: bar ? bar.getAttribute('data-percent') : null,
             width: bar ? bar.style.width : null,
             pct: text('.progress .pct'),
             step: text('.step'),
             where: text('.where'),
             markup: r.querySelectorAll('script, img').length,
             missing: ['.kind', '.description', '.status', '.progress .bar', '.progress .pct',
                       '.step', '.elapsed', '.eta', '.where', 'a.open']
                 .filter(s => !r.querySelector(s)),
         };",
        vec![json!(id)],
    )
    .await
}

/// The row of `id` once it is there.
async fn wait_row(b: &Browser, id: &str) -> Value {
    page_eventually(b, &format!("a tr.op row for {id}"), PAGE, || async {
        match row(b, id).await? {
            Value::Null => Err(format!("rows {:?}", row_ids(b).await?)),
            r => Ok(r),
        }
    })
    .await
}

/// Panics with what the page shows when `f` fails within `limit`.
async fn page_eventually<T, F, Fut>(b: &Browser, what: &str, limit: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    let mut f = f;
    let mut last;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {limit:?}; last seen: {last}\n{}",
                b.describe().await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `data-percent` as a number, checked against `.pct` and `style.width`.
fn percent(r: &Value) -> Result<f64, String> {
    let raw = r["percent"]
        .as_str()
        .ok_or(format!("no .bar data-percent: {r}"))?;
    let p: f64 = raw
        .parse()
        .map_err(|e| format!("data-percent {raw:?}: {e}"))?;
    let pct = r["pct"].as_str().unwrap_or_default();
    assert_eq!(pct, format!("{p:.1}%"), ".pct text vs data-percent: {r}");
    let width = r["width"].as_str().unwrap_or_default();
    let w: f64 = width
        .strip_suffix('%')
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!(".bar style.width {width:?} is not a percentage: {r}"));
    assert!(
        (w - p).abs() < 0.051,
        ".bar style.width vs data-percent: {r}"
    );
    Ok(p)
}

/// Opens the detail of `id` by its row's `a.open` link.
async fn open_detail(b: &Browser, id: &str) {
    let link = format!("table#ops tr.op[data-id=\"{id}\"] a.open");
    b.click(&link, PAGE).await;
    page_eventually(b, "section#detail for the clicked row", PAGE, || async {
        let d = b
            .try_js(
                "const d = document.querySelector('section#detail');
                 return d ? [d.getAttribute('data-id'), !d.hidden &&
                     d.getClientRects().length > 0] : null;",
                vec![],
            )
            .await?;
        if d == json!([id, true]) {
            Ok(())
        } else {
            Err(format!("section#detail [data-id, shown]: {d}"))
        }
    })
    .await;
}

async fn text_of(b: &Browser, css: &str) -> Result<String, String> {
    let v = b
        .try_js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        )
        .await?;
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {css}"))
}

/// `[data-key, circle.point count]` of every chart in `#chart`.
async fn charts(b: &Browser) -> Result<Vec<(String, usize)>, String> {
    let v = b
        .try_js(
            "return Array.from(document.querySelectorAll('#chart svg.metric-chart'))
                 .map(s => [s.getAttribute('data-key'),
                            s.querySelectorAll('circle.point').length]);",
            vec![],
        )
        .await?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn points(charts: &[(String, usize)], key: &str) -> Option<usize> {
    charts.iter().find(|(k, _)| k == key).map(|(_, n)| *n)
}

/// No alert, confirm or prompt is open.
async fn assert_no_dialog(b: &Browser) {
    if let Ok(text) = b.client.get_alert_text().await {
        panic!("a dialog is open: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_reads_the_health_endpoint_in_the_browser() {
    let Some(b) = Browser::start("harness").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    b.goto(&format!("http://{addr}/api/v1/health")).await;
    let text = b.js("return document.body.innerText;", vec![]).await;
    let body: Value = serde_json::from_str(text.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["success"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_operations_started_over_the_api_newest_first() {
    let Some(b) = Browser::start("lists").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(start_dummy(
            addr,
            &json!({"iterations": 2, "interval_ms": 10}),
        ));
        // Distinct creation times, so "newest first" has one answer.
        std::thread::sleep(Duration::from_millis(20));
    }
    ids.reverse();
    open_dashboard(&b, addr).await;
    page_eventually(&b, "three rows, newest first", PAGE, || async {
        let rows = row_ids(&b).await?;
        if rows == ids {
            Ok(())
        } else {
            Err(format!("rows {rows:?}, want {ids:?}"))
        }
    })
    .await;
    for id in &ids {
        let op = operation(addr, id);
        let r = wait_row(&b, id).await;
        assert_eq!(r["kind"], op["operation_type"], "{r} vs {op}");
        assert_eq!(r["description"], op["description"], "{r} vs {op}");
        assert_eq!(r["missing"], json!([]), "cells missing from the row: {r}");
        assert_eq!(r["where"], "here", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_operations_bar_advances_without_a_reload() {
    let Some(b) = Browser::start("advances").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    // Started once the page is up, so it is seen while it runs.
    open_dashboard(&b, addr).await;
    let id = start_dummy(addr, &json!({"iterations": 40, "interval_ms": 150}));
    wait_row(&b, &id).await;
    b.js("window.__marker = 1;", vec![]).await;

    let first = page_eventually(&b, "the row RUNNING below 100%", PAGE, || async {
        let r = row(&b, &id).await?;
        let p = percent(&r)?;
        if r["status"] == "RUNNING" && p < 100.0 {
            Ok(p)
        } else {
            Err(format!("{r}"))
        }
    })
    .await;
    let at = Instant::now();
    let second = page_eventually(&b, "the bar past its first reading", PAGE, || async {
        let r = row(&b, &id).await?;
        let p = percent(&r)?;
        if p > first && at.elapsed() >= Duration::from_secs(1) {
            Ok(p)
        } else {
            Err(format!("first {first}, now {r}"))
        }
    })
    .await;
    assert!(second > first, "{first} then {second}");
    assert_eq!(
        b.js("return window.__marker;", vec![]).await,
        json!(1),
        "the page was reloaded"
    );

    // To the end, still without a reload.
    page_eventually(&b, "the row COMPLETED at 100%", PAGE, || async {
        let r = row(&b, &id).await?;
        let p = percent(&r)?;
        if r["status"] == "COMPLETED" && (p - 100.0).abs() < f64::EPSILON {
            Ok(())
        } else {
            Err(format!("{r}"))
        }
    })
    .await;
    assert_eq!(b.js("return window.__marker;", vec![]).await, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_asks_first_then_cancels_with_the_reason() {
    let Some(b) = Browser::start("cancel").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    let id = start_dummy(addr, &json!({"iterations": 1000, "interval_ms": 100}));
    open_dashboard(&b, addr).await;
    wait_row(&b, &id).await;
    open_detail(&b, &id).await;

    b.click("section#detail button#cancel", PAGE).await;
    page_eventually(&b, "form#cancel-form shown", PAGE, || async {
        if b.displayed("form#cancel-form").await? {
            Ok(())
        } else {
            Err("form#cancel-form not displayed".to_owned())
        }
    })
    .await;
    // Asked, not yet confirmed: nothing is cancelled.
    let op = operation(addr, &id);
    assert_eq!(
        op["status"], "RUNNING",
        "cancelled before the confirm: {op}"
    );

    let reason = "stopped from the dashboard <b>test</b>";
    b.type_into("form#cancel-form input#cancel-reason", reason, PAGE)
        .await;
    b.click("form#cancel-form button#cancel-confirm", PAGE)
        .await;

    eventually(
        "the server says CANCELLED with the reason",
        PAGE,
        || async {
            let op = operation(addr, &id);
            if op["status"] == "CANCELLED" && op["cancel_reason"] == reason {
                Ok(())
            } else {
                Err(format!("{op}"))
            }
        },
    )
    .await;
    page_eventually(&b, "the row CANCELLED", PAGE, || async {
        let r = row(&b, &id).await?;
        if r["status"] == "CANCELLED" {
            Ok(())
        } else {
            Err(format!("{r}"))
        }
    })
    .await;
    page_eventually(
        &b,
        "#detail-cancel-reason shows the reason",
        PAGE,
        || async {
            let shown = text_of(&b, "#detail-cancel-reason").await?;
            if shown.contains(reason) {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        },
    )
    .await;
    page_eventually(&b, "no button#cancel once it ended", PAGE, || async {
        if b.displayed("section#detail button#cancel").await? {
            Err("button#cancel still displayed".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptions_are_text_never_markup() {
    let Some(b) = Browser::start("xss").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    // A file name is the user's text in a real route: a batch load's child is
    // described by its path, and fails with it in its error (no such file).
    let evil = r#"<script>window.__xss=1</script><img src=x onerror="window.__xss=2">.csv"#;
    let batch = start(addr, "/api/v1/data/load_files", &json!({"paths": [evil]}));
    let id = eventually("the batch's child", PAGE, || async {
        let (status, body) = http(
            addr,
            "GET",
            &format!("/api/v1/operations/{batch}/children"),
            "",
        );
        match body["data"][0]["operation_id"].as_str() {
            Some(id) if status == 200 => Ok(id.to_owned()),
            _ => Err(format!("{status} {body}")),
        }
    })
    .await;
    let child = eventually("the child's end", PAGE, || async {
        let info = operation(addr, &id);
        if info["status"] == "FAILED" {
            Ok(info)
        } else {
            Err(info.to_string())
        }
    })
    .await;
    let error = child["error_message"]
        .as_str()
        .expect("an error")
        .to_owned();
    assert!(error.contains(evil), "{error}");
    let evil = format!("data load {evil}");
    open_dashboard(&b, addr).await;
    let r = wait_row(&b, &id).await;
    assert_eq!(r["description"], evil, "{r}");
    assert_eq!(r["markup"], 0, "a script or img element in the row: {r}");

    open_detail(&b, &id).await;
    page_eventually(
        &b,
        "#detail-description and #detail-error as text",
        PAGE,
        || async {
            let shown = text_of(&b, "#detail-description").await?;
            let shown_error = text_of(&b, "#detail-error").await?;
            if shown == evil && shown_error == error {
                Ok(())
            } else {
                Err(format!("{shown:?} / {shown_error:?}"))
            }
        },
    )
    .await;
    // Through a list refresh (every 2 s) re-rendering the row, still nothing ran.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_no_dialog(&b).await;
    let state = b
        .js(
            "return [typeof window.__xss,
                     document.querySelectorAll('img[src=\"x\"]').length,
                     document.querySelectorAll('#ops script, #detail script, #ops img, #detail img')
                         .length];",
            vec![],
        )
        .await;
    assert_eq!(
        state,
        json!(["undefined", 0, 0]),
        "[__xss, img[src=x], markup]"
    );
}

/// Needs no browser: the header the browser enforces.
#[test]
fn the_document_forbids_inline_scripts() {
    let (_server, _stdout, addr) = open_server();
    // The document the browser gets for /dashboard/ (following redirects).
    let mut path = "/dashboard/".to_owned();
    let mut page = raw_http(addr, "GET", &path, &[], "").expect("GET /dashboard/");
    for _ in 0..3 {
        if !(300..400).contains(&page.status) {
            break;
        }
        path = page
            .header("location")
            .expect("a redirect's location")
            .to_owned();
        page = raw_http(addr, "GET", &path, &[], "").expect("GET the redirect");
    }
    assert_eq!(page.status, 200, "{path}: {page:?}");
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{path}: {:?}",
        page.headers
    );
    let csp = page.header("content-security-policy").unwrap_or_else(|| {
        panic!(
            "{path}: no content-security-policy header: {:?}",
            page.headers
        )
    });
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    let scripts = directive("script-src")
        .or_else(|| directive("default-src"))
        .unwrap_or_else(|| panic!("no script-src or default-src: {csp}"));
    assert!(
        !scripts.contains("'unsafe-inline'"),
        "inline scripts allowed: {csp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_charts_each_metric_of_a_training_run() {
    let Some(b) = Browser::start("chart").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    let id = start(
        addr,
        "/api/v1/training/start",
        &json!({"epochs": 5, "epoch_delay_ms": 20}),
    );
    eventually(
        "the training COMPLETED",
        Duration::from_secs(60),
        || async {
            let op = operation(addr, &id);
            if op["status"] == "COMPLETED" {
                Ok(())
            } else {
                Err(format!("{op}"))
            }
        },
    )
    .await;
    assert_eq!(metric_count(addr, &id), 5);

    open_dashboard(&b, addr).await;
    wait_row(&b, &id).await;
    open_detail(&b, &id).await;
    let shown = page_eventually(
        &b,
        "loss and accuracy charts, 5 points each",
        PAGE,
        || async {
            let c = charts(&b).await?;
            if points(&c, "loss") == Some(5) && points(&c, "accuracy") == Some(5) {
                Ok(c)
            } else {
                Err(format!("{c:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        points(&shown, "epoch"),
        None,
        "the x axis is charted: {shown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_grows_while_training_runs() {
    let Some(b) = Browser::start("chart-live").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    let epochs = 10;
    // Started once the page is up, so it is seen while it runs.
    open_dashboard(&b, addr).await;
    let id = start(
        addr,
        "/api/v1/training/start",
        &json!({"epochs": epochs, "epoch_delay_ms": 1000}),
    );
    wait_row(&b, &id).await;
    open_detail(&b, &id).await;
    b.js("window.__marker = 1;", vec![]).await;
    let first = page_eventually(&b, "a loss chart while it runs", PAGE, || async {
        let c = charts(&b).await?;
        match points(&c, "loss") {
            Some(n) if n >= 1 && n < epochs => Ok(n),
            _ => Err(format!("{c:?}; server {}", operation(addr, &id)["status"])),
        }
    })
    .await;
    page_eventually(&b, "the loss chart to the last epoch", PAGE, || async {
        let c = charts(&b).await?;
        if points(&c, "loss") == Some(epochs) {
            Ok(())
        } else {
            Err(format!("first {first}; now {c:?}"))
        }
    })
    .await;
    assert_eq!(b.js("return window.__marker;", vec![]).await, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_form_unlocks_the_list_and_keeps_the_token_out_of_urls() {
    let Some(b) = Browser::start("auth").await else {
        return;
    };
    let token = "dashboard-test-token-3f9c1a";
    let (_server, _stdout, addr) = serve("axum_server", &[("ORCHESTRATOR_TOKEN", token)]);
    let (status, _) = http(addr, "GET", "/api/v1/operations", "");
    assert_eq!(status, 401, "the server wants the token");
    let (status, reply) = http_with_token(
        addr,
        token,
        "POST",
        "/api/v1/dummy/start",
        &json!({"iterations": 1000, "interval_ms": 100}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    let id = reply["data"]["operation_id"]
        .as_str()
        .expect("operation_id")
        .to_owned();

    open_dashboard(&b, addr).await;
    page_eventually(&b, "form#token-form shown", PAGE, || async {
        if b.displayed("form#token-form").await? {
            Ok(())
        } else {
            Err("form#token-form not displayed".to_owned())
        }
    })
    .await;
    assert_eq!(row_ids(&b).await.expect("rows"), Vec::<String>::new());

    b.type_into("form#token-form input#token", token, PAGE)
        .await;
    b.click("form#token-form button#token-save", PAGE).await;
    wait_row(&b, &id).await;

    let url = b.client.current_url().await.expect("current_url");
    assert!(!url.as_str().contains(token), "token in the URL: {url}");
    let kept = b
        .js(
            "return sessionStorage.getItem('orchestrator.token');",
            vec![],
        )
        .await;
    assert_eq!(kept, json!(token));
    // Nor in any URL the page requested (the list, the event stream, ...).
    let urls = b
        .js(
            "return performance.getEntriesByType('resource').map(e => e.name)
                 .concat(performance.getEntriesByType('navigation').map(e => e.name));",
            vec![],
        )
        .await;
    assert!(!urls.to_string().contains(token), "token in a URL: {urls}");

    // A reload keeps the session's token: the rows come back without the form.
    b.client.refresh().await.expect("refresh");
    wait_row(&b, &id).await;
    assert!(
        !b.displayed("form#token-form").await.expect("find"),
        "form#token-form shown again with a kept token"
    );
}

/// A batch's detail links each of its children, and a child's links back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_links_children_and_parent() {
    let Some(b) = Browser::start("children").await else {
        return;
    };
    let (_server, _stdout, addr) = open_server();
    let batch = start(
        addr,
        "/api/v1/data/load_files",
        &json!({"paths": ["one.csv", "two.csv"]}),
    );
    let children = eventually("the batch's end", PAGE, || async {
        let (status, body) = http(
            addr,
            "GET",
            &format!("/api/v1/operations/{batch}/children"),
            "",
        );
        let ids: Vec<String> = body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["operation_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if status == 200 && ids.len() == 2 && operation(addr, &batch)["status"] == "COMPLETED" {
            Ok(ids)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    open_dashboard(&b, addr).await;
    wait_row(&b, &batch).await;
    open_detail(&b, &batch).await;
    let linked = page_eventually(&b, "#detail-children links", PAGE, || async {
        let v = b
            .try_js(
                "return Array.from(document.querySelectorAll('#detail-children a.op-link'))
                     .map(a => [a.textContent, a.getAttribute('href')]);",
                vec![],
            )
            .await?;
        let pairs: Vec<(String, String)> =
            serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        if pairs.len() == 2 {
            Ok(pairs)
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    let mut shown: Vec<String> = linked.iter().map(|(id, _)| id.clone()).collect();
    shown.sort();
    let mut expected = children.clone();
    expected.sort();
    assert_eq!(shown, expected);
    for (id, href) in &linked {
        assert_eq!(href, &format!("#{id}"));
    }
    // Following a child's link opens its detail, whose parent links back.
    let child = &linked[0].0;
    b.click(&format!("#detail-children a[href=\"#{child}\"]"), PAGE)
        .await;
    page_eventually(&b, "the child's detail with its parent", PAGE, || async {
        let v = b
            .try_js(
                "const a = document.querySelector('#detail-parent a.op-link');
                 return [document.querySelector('section#detail').getAttribute('data-id'),
                         a ? a.textContent : null];",
                vec![],
            )
            .await?;
        if v == json!([child, batch]) {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
}
