//! The size limits of a request, checked before any handler, so that a refusal the server
//! makes by itself answers as every other refusal does: the error JSON of API.md on `/api`
//! paths (`uri_too_long` 414, `headers_too_large` 431, `payload_too_large` 413), a
//! Japanese page elsewhere, in English on request (`error::localize`).
//!
//! Each limit is below hyper's own, which answers with an empty body and closes the
//! connection: hyper refuses a URI of 64 KiB or more (a constant of hyper), more than 100
//! header lines, and a request head over about 400 KiB. Ours are far below those, so in
//! practice hyper's answers are never reached except by a URI past hyper's constant
//! (docs/API.md "Limits").

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kitsuki_proto::ErrorCode;

use crate::web::PageError;
use crate::web::error::ApiError;
use crate::web::route_table::is_api;

/// The longest request target (path and query) served, in bytes. A search URL with the
/// longest query the search form makes is under 2 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header lines a request may have (hyper's hard limit is 100).
pub const MAX_HEADER_COUNT: usize = 64;

/// The largest total of the header names and values of a request, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The largest request body, in bytes: JSON bodies and page forms are a few KiB at most
/// (the text fields' limits, API.md "Text fields"). axum's body limit, set to the same
/// value by the router, refuses a chunked body that grows past it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the limits find wrong with a request head, if anything.
pub fn refusal(request: &Request) -> Option<ErrorCode> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ErrorCode::UriTooLong);
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return Some(ErrorCode::HeadersTooLarge);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Some(ErrorCode::PayloadTooLarge);
    }
    None
}

/// Middleware: refuses a request over a limit before it is routed.
pub async fn check(request: Request, next: Next) -> Response {
    match refusal(&request) {
        None => next.run(request).await,
        Some(code) => refuse(&request, code),
    }
}

/// The refusal `code` in the shape the path calls for.
pub fn refuse(request: &Request, code: ErrorCode) -> Response {
    let error = ApiError::new(code);
    let mut response = if is_api(request.uri()) {
        error.into_response()
    } else {
        PageError::from(error).into_response()
    };
    if code == ErrorCode::PayloadTooLarge {
        // The body was not read: the connection cannot carry another request.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(uri: &str, headers: &[(&str, String)]) -> Request {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn an_ordinary_request_passes() {
        let r = request(
            "/api/v1/titles?q=坊っちゃん",
            &[("accept", "application/json".into())],
        );
        assert_eq!(refusal(&r), None);
    }

    #[test]
    fn a_long_target_is_uri_too_long_at_the_limit_and_not_before() {
        let path = |n: usize| format!("/api/v1/titles?q={}", "a".repeat(n - 17));
        assert_eq!(refusal(&request(&path(MAX_URI_BYTES), &[])), None);
        assert_eq!(
            refusal(&request(&path(MAX_URI_BYTES + 1), &[])),
            Some(ErrorCode::UriTooLong)
        );
    }

    #[test]
    fn many_or_large_headers_are_headers_too_large() {
        let many: Vec<(&str, String)> = (0..=MAX_HEADER_COUNT)
            .map(|i| ("x-filler", i.to_string()))
            .collect();
        assert_eq!(
            refusal(&request("/", &many)),
            Some(ErrorCode::HeadersTooLarge)
        );
        let at_count: Vec<(&str, String)> = many[1..].to_vec();
        assert_eq!(refusal(&request("/", &at_count)), None);
        let big = [("cookie", "a".repeat(MAX_HEADER_BYTES))];
        assert_eq!(
            refusal(&request("/", &big)),
            Some(ErrorCode::HeadersTooLarge)
        );
    }

    #[test]
    fn a_declared_body_over_the_limit_is_payload_too_large() {
        let at = [("content-length", MAX_BODY_BYTES.to_string())];
        assert_eq!(refusal(&request("/api/v1/session", &at)), None);
        let over = [("content-length", (MAX_BODY_BYTES + 1).to_string())];
        assert_eq!(
            refusal(&request("/api/v1/session", &over)),
            Some(ErrorCode::PayloadTooLarge)
        );
    }
}
