//! The request-size limits checked before the router: the 414 `URI_TOO_LONG` and
//! 431 `HEADERS_TOO_LARGE` envelopes.

use axum::http::{Request, StatusCode};

use super::Config;
use crate::http::{ApiError, code};

/// The 414/431 envelope for a request over the configured limits.
pub(super) fn oversize<B>(req: &Request<B>, config: &Config) -> Option<ApiError> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > config.max_uri_bytes {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            code::URI_TOO_LONG,
            format!(
                "the request target is {uri_len} bytes, more than the {} allowed",
                config.max_uri_bytes
            ),
        ));
    }
    let header_len: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_len > config.max_header_bytes {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::HEADERS_TOO_LARGE,
            format!(
                "the request headers are {header_len} bytes, more than the {} allowed",
                config.max_header_bytes
            ),
        ));
    }
    None
}
