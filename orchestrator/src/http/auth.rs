//! [`BearerAuthLayer`]: a tower layer that lets through only requests with the right
//! `Authorization: Bearer …` token.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use futures::future::{BoxFuture, FutureExt as _};

use super::{ApiError, code};

/// A [tower layer](tower_layer::Layer) that answers 401 `UNAUTHORIZED` in the envelope,
/// with `WWW-Authenticate: Bearer`, to every request that does not carry
/// `Authorization: Bearer <token>` with the configured token.
///
/// The comparison takes the same time wherever the first wrong byte is (only the
/// length of the token can be learnt from timing), and the token never appears in
/// logs or in `Debug` output. Put it on the outermost router with
/// [`Router::layer`](axum::Router::layer), so that it also covers the fallback (an
/// unauthenticated client learns nothing about which paths exist).
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use orchestrator::{Operations, http};
///
/// let mut app: Router = Router::new()
///     .nest("/api/v1", http::router(Operations::new()))
///     .fallback(http::not_found);
/// if let Ok(token) = std::env::var("ORCHESTRATOR_TOKEN") {
///     app = app.layer(http::BearerAuthLayer::new(token));
/// }
/// ```
#[derive(Clone)]
pub struct BearerAuthLayer {
    token: Arc<[u8]>,
}

impl std::fmt::Debug for BearerAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuthLayer").finish_non_exhaustive()
    }
}

impl BearerAuthLayer {
    /// A layer accepting exactly `token` (surrounding whitespace is trimmed; an empty
    /// token accepts nothing).
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = orchestrator::http::BearerAuthLayer::new("s3cr3t");
    /// # let _: axum::Router = axum::Router::new().layer(layer);
    /// ```
    pub fn new(token: impl AsRef<str>) -> Self {
        Self {
            token: token.as_ref().trim().as_bytes().into(),
        }
    }
}

impl<S> tower_layer::Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: Arc::clone(&self.token),
        }
    }
}

/// The service [`BearerAuthLayer`] wraps around a route or router.
///
/// # Examples
///
/// ```
/// use tower_layer::Layer as _;
/// # let router: axum::Router = axum::Router::new();
/// let service = orchestrator::http::BearerAuthLayer::new("s3cr3t").layer(router);
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    token: Arc<[u8]>,
}

impl<S> std::fmt::Debug for BearerAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth").finish_non_exhaustive()
    }
}

impl<S, B> tower_service::Service<Request<B>> for BearerAuth<S>
where
    S: tower_service::Service<Request<B>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match presented(req.headers().get(header::AUTHORIZATION)) {
            Some(given) if !self.token.is_empty() && constant_time_eq(given, &self.token) => {
                self.inner.call(req).boxed()
            }
            given => {
                let message = if given.is_some() {
                    "the bearer token is not valid"
                } else {
                    "this API needs `Authorization: Bearer <token>`"
                };
                let mut response =
                    ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
                        .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                std::future::ready(Ok(response)).boxed()
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn presented(value: Option<&HeaderValue>) -> Option<&[u8]> {
    let value = value?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// `a == b` in time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_and_compared() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(presented(Some(&h("Bearer abc"))), Some(&b"abc"[..]));
        assert_eq!(presented(Some(&h("bearer  abc "))), Some(&b"abc"[..]));
        assert_eq!(presented(Some(&h("Basic abc"))), None);
        assert_eq!(presented(Some(&h("Bearer"))), None);
        assert_eq!(presented(None), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
