//! A live operations dashboard in the browser (feature `dashboard`): one page, served
//! from the binary, over the operations API of [`http`](crate::http).
//!
//! The page lists operations newest first (kind, status, a progress bar with percent,
//! the current step, elapsed time, ETA and where each runs: this process, another
//! replica sharing the store, or a host service for a proxy), filtered by status and
//! kind, a page at a time. Running operations' bars move live: the page follows all the
//! running operations it shows on **one** event stream
//! (`GET /operations/events?ids=…`), and re-reads the list every 2 s to find new ones.
//! A detail view shows an operation's metadata, error, result, cancel reason and a
//! chart of its numeric metrics by record (loss per epoch, say; inline SVG), and
//! cancels it with a reason, after a confirmation step.
//!
//! It is three small files (HTML, CSS and plain JavaScript; no framework, no CDN, no
//! build step) embedded with `include_str!`. Everything the page shows is set as text,
//! never parsed as HTML, and every response carries a `Content-Security-Policy` that
//! allows only the page's own script and style and requests to its own origin.
//!
//! With bearer authentication ([`BearerAuthLayer`](crate::http::BearerAuthLayer)) on
//! the API, the page asks for the token once, keeps it in the tab's `sessionStorage`
//! and sends it as an `Authorization: Bearer` header (never in a URL); the page's own
//! files hold no data and are served without it, so mount the dashboard *outside* the
//! authentication layer (see the example).
//!
//! # Examples
//!
//! The API under `/api/v1` (behind a token when one is set), the dashboard at
//! `/dashboard` (`/` redirects there):
//!
//! ```
//! use axum::{Router, response::Redirect, routing::get};
//! use orchestrator::{Operations, dashboard, http};
//!
//! let ops = Operations::new();
//! let mut app: Router = Router::new()
//!     .nest("/api/v1", http::router(ops.clone()))
//!     .fallback(http::not_found);
//! if let Ok(token) = std::env::var("ORCHESTRATOR_TOKEN") {
//!     app = app.layer(http::BearerAuthLayer::new(token));
//! }
//! // After the layer: the page itself needs no token (the API it calls does).
//! let app = app
//!     .nest("/dashboard", dashboard::router(ops))
//!     .route("/", get(|| async { Redirect::temporary("/dashboard") }));
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Operations;

/// The page, with `{{API}}`, `{{INSTANCE}}` and `{{BASE}}` to fill in.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's script.
const APP_JS: &str = include_str!("assets/app.js");
/// The page's style sheet.
const APP_CSS: &str = include_str!("assets/app.css");

/// What the page may load and run: its own script and style sheet, requests to its
/// own origin, nothing inline, no frames, no plugins, no `<base>` and no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The dashboard for `ops`, expecting the operations API at `../api/v1` relative to
/// the page (the layout of [`http`](crate::http)'s examples: the API nested at
/// `/api/v1`, this router at `/dashboard`). See [`Dashboard`] to put the API
/// elsewhere.
///
/// The routes are relative: `/` (the page), `/app.js` and `/app.css`; nest the
/// router under any prefix. Nested at `/dashboard`, the page is `/dashboard` (axum
/// routes `/dashboard/` elsewhere: to the fallback).
///
/// # Examples
///
/// ```
/// use orchestrator::{Operations, dashboard, http};
///
/// let ops = Operations::new();
/// let app: axum::Router = axum::Router::new()
///     .nest("/api/v1", http::router(ops.clone()))
///     .nest("/dashboard", dashboard::router(ops));
/// ```
pub fn router(ops: Operations) -> Router {
    Dashboard::new(ops).into_router()
}

/// The dashboard with where its API is: [`router`] with a choice of API path.
///
/// # Examples
///
/// The API and the dashboard side by side under `/ops`:
///
/// ```
/// use orchestrator::{Operations, dashboard::Dashboard, http};
///
/// let ops = Operations::new();
/// let ui = Dashboard::new(ops.clone()).with_api_path("../api").into_router();
/// let app: axum::Router = axum::Router::new()
///     .nest("/ops/api", http::router(ops))
///     .nest("/ops/ui", ui);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Dashboard {
    ops: Operations,
    api_path: String,
}

impl Dashboard {
    /// The API path the page uses unless told otherwise, relative to the page.
    pub const DEFAULT_API_PATH: &str = "../api/v1";

    /// The dashboard of `ops`, with the API at [`DEFAULT_API_PATH`](Self::DEFAULT_API_PATH).
    ///
    /// # Examples
    ///
    /// ```
    /// let ui: axum::Router = orchestrator::dashboard::Dashboard::new(orchestrator::Operations::new()).into_router();
    /// ```
    pub fn new(ops: Operations) -> Self {
        Self {
            ops,
            api_path: Self::DEFAULT_API_PATH.to_owned(),
        }
    }

    /// Where the operations API is mounted, as a path relative to the router's mount
    /// point read as a directory (`../api/v1` from a dashboard at `/dashboard` is
    /// `/api/v1`; from `/ops/ui` it is `/ops/api/v1`) or an absolute path (`/api/v1`).
    /// It must be on the page's origin: the content security policy allows no other.
    ///
    /// # Examples
    ///
    /// ```
    /// let ui = orchestrator::dashboard::Dashboard::new(orchestrator::Operations::new())
    ///     .with_api_path("/internal/ops");
    /// # let _: axum::Router = ui.into_router();
    /// ```
    pub fn with_api_path(mut self, path: impl Into<String>) -> Self {
        self.api_path = path.into();
        self
    }

    /// The router: the page at `/`, its script and style sheet.
    ///
    /// # Examples
    ///
    /// ```
    /// let ui: axum::Router = orchestrator::dashboard::Dashboard::new(orchestrator::Operations::new()).into_router();
    /// let app: axum::Router = axum::Router::new().nest("/dashboard", ui);
    /// ```
    pub fn into_router(self) -> Router {
        let instance = self
            .ops
            .durable()
            .map(|d| d.instance.to_string())
            .unwrap_or_default();
        let page: Arc<str> = INDEX_HTML
            .replace("{{API}}", &escape_attribute(&self.api_path))
            .replace("{{INSTANCE}}", &instance)
            .into();
        Router::new()
            .route(
                "/",
                get(move |uri: OriginalUri| {
                    let page = Arc::clone(&page);
                    async move { index(&uri, &page) }
                }),
            )
            .route(
                "/app.js",
                get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
            )
            .route(
                "/app.css",
                get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
            )
    }
}

/// The page, its files linked from where it is mounted: the request's path (that of
/// the router's `/`), which the page also reads its API's relative path against.
fn index(uri: &OriginalUri, page: &str) -> Response {
    let base = escape_attribute(uri.path().trim_end_matches('/'));
    asset("text/html; charset=utf-8", page.replace("{{BASE}}", &base))
}

/// One embedded file with its type and the page's security headers.
fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `text` safe inside a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_path_cannot_break_out_of_its_attribute() {
        assert_eq!(
            escape_attribute(r#""><script>x</script>&'"#),
            "&quot;&gt;&lt;script&gt;x&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_page_has_its_placeholders() {
        assert!(INDEX_HTML.contains("{{BASE}}/app.js"));
        assert!(INDEX_HTML.contains("{{API}}"));
        assert!(INDEX_HTML.contains("{{INSTANCE}}"));
        assert!(!INDEX_HTML.contains("<script>"), "no inline script");
        assert!(!INDEX_HTML.contains("style="), "no inline style");
    }
}
