//! Security headers on every response of the gateway, pages, API and errors alike.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, header};
use tower_http::set_header::HeaderMetadata;
use tower_http::set_header::response::SetMultipleResponseHeadersLayer;

/// Only our own scripts, styles, images and forms; no framing (clickjacking), no `<base>`
/// rewriting. The pages need nothing else: no inline script or style anywhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The headers the layer sets.
pub fn security_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // A search URL holds what a patron looked for; other sites need not see it.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// A tower layer that sets [`security_headers`] on every response that does not set them
/// itself (so a future page with special needs can, deliberately, send its own).
/// [`crate::router`] applies it; the binary may apply it to its other routes too.
pub fn security_headers_layer() -> SetMultipleResponseHeadersLayer<Response<Body>> {
    SetMultipleResponseHeadersLayer::if_not_present(
        security_headers()
            .into_iter()
            .map(HeaderMetadata::from)
            .collect(),
    )
}
