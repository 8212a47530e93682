//! Cross-site request forgery defence of the HTML forms: a double-submit token.
//!
//! Each browser gets a random token in the cookie `kitsuki_csrf` (HttpOnly, SameSite=Strict,
//! Path=/), set with the first page that shows a form. Every form carries the same value in
//! a hidden field `csrf`, and every POST to a page must bring both, equal; otherwise it is
//! answered 403 `csrf_failed` before its handler runs. A page of another site cannot read
//! the cookie (HttpOnly, and not its origin), so it cannot fill in the field; and being
//! SameSite=Strict the cookie is not even sent with a request another site starts.
//!
//! The JSON API does not use this token: see [`crate::web::session::api_credential`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use kitsuki_proto::ErrorCode;
use rand::RngCore;

use crate::web::PageError;
use crate::web::error::ApiError;
use crate::web::session;

/// Name of the cookie, and of the hidden form field, is `csrf`-ish on purpose: short and
/// obvious in a page's source.
pub const CSRF_COOKIE: &str = "kitsuki_csrf";
pub const CSRF_FIELD: &str = "csrf";

/// 32 random bytes, hex: guessing is out of the question.
const TOKEN_BYTES: usize = 32;

/// The largest form body read to find the token; the forms of this site are a few fields.
const FORM_LIMIT: usize = 16 * 1024;

/// The CSRF token of one request: the browser's, or a new one to give it. Cloned into the
/// request's extensions; the page that prints it in a form marks it used, and only then is
/// a new token sent as a cookie (a page without a form sets nothing).
#[derive(Debug, Clone)]
pub struct CsrfToken(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    value: String,
    from_cookie: bool,
    used: AtomicBool,
}

fn well_formed(value: &str) -> bool {
    value.len() == TOKEN_BYTES * 2 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CsrfToken {
    /// The token of the browser's cookie, or a fresh one when it has none (or a malformed
    /// one, which is replaced).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let (value, from_cookie) = match session::cookie(headers, CSRF_COOKIE) {
            Some(v) if well_formed(&v) => (v, true),
            _ => (random_token(), false),
        };
        CsrfToken(Arc::new(Inner {
            value,
            from_cookie,
            used: AtomicBool::new(false),
        }))
    }

    /// The value to print in a form's hidden field. Marks the token used, so that a fresh
    /// one is sent to the browser with this response.
    pub fn for_form(&self) -> String {
        self.0.used.store(true, Ordering::Relaxed);
        self.0.value.clone()
    }

    /// The cookie to set with the response: only for a new token that a page printed.
    pub fn cookie_to_set(&self, secure: bool) -> Option<Cookie<'static>> {
        (!self.0.from_cookie && self.0.used.load(Ordering::Relaxed)).then(|| {
            Cookie::build((CSRF_COOKIE, self.0.value.clone()))
                .http_only(true)
                .same_site(SameSite::Strict)
                .path("/")
                .secure(secure)
                .build()
        })
    }

    /// Whether `submitted` is this browser's token. A token made for this very request (no
    /// cookie came) matches nothing: the form cannot have been ours.
    pub fn accepts(&self, submitted: &str) -> bool {
        self.0.from_cookie && constant_time_eq(self.0.value.as_bytes(), submitted.as_bytes())
    }
}

/// Compares without an early exit, so the time taken says nothing about how much of a
/// guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of field `name` of an `application/x-www-form-urlencoded` body, undecoded:
/// the token is hex, so a percent-encoded value cannot be a right one anyway.
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let key = kv.next()?;
        (key == name.as_bytes()).then(|| kv.next().unwrap_or_default())
    })
}

/// The answer to a form without the right token.
pub fn refusal() -> Response {
    PageError::from(ApiError::new(ErrorCode::CsrfFailed)).into_response()
}

/// Route layer of every page POST: reads the form, checks its `csrf` field against the
/// cookie, and hands the same body on to the handler. Applied per route (not around the
/// router) so that a POST to a page that takes none is still a 405.
pub async fn verify(request: Request, next: Next) -> Response {
    let Some(token) = request.extensions().get::<CsrfToken>().cloned() else {
        tracing::error!("csrf check without a token in the request: page context missing");
        return refusal();
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, FORM_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return PageError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..PageError::from(ApiError::invalid_input("form too large"))
            }
            .into_response();
        }
    };
    let submitted = form_field(&bytes, CSRF_FIELD)
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or_default();
    if !token.accepts(submitted) {
        tracing::info!(path = %parts.uri.path(), "form refused: csrf token missing or wrong");
        return refusal();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_browser_without_a_token_gets_a_fresh_one_only_when_a_form_uses_it() {
        let token = CsrfToken::from_headers(&HeaderMap::new());
        assert!(token.cookie_to_set(false).is_none(), "no form, no cookie");
        let value = token.for_form();
        assert!(well_formed(&value));
        let cookie = token.cookie_to_set(true).unwrap().to_string();
        assert!(cookie.starts_with(&format!("kitsuki_csrf={value}")));
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(cookie.contains(part), "{part} in {cookie}");
        }
        assert!(
            !token.accepts(&value),
            "a token born in this request proves nothing"
        );
        assert_ne!(value, CsrfToken::from_headers(&HeaderMap::new()).for_form());
    }

    #[test]
    fn the_cookie_token_is_kept_and_accepted_only_when_equal() {
        let value = "ab".repeat(TOKEN_BYTES);
        let token = CsrfToken::from_headers(&with_cookie(&value));
        assert_eq!(token.for_form(), value);
        assert!(token.cookie_to_set(false).is_none(), "already set");
        assert!(token.accepts(&value));
        assert!(!token.accepts(&"ac".repeat(TOKEN_BYTES)));
        assert!(!token.accepts(""));
        assert!(!token.accepts(&value[1..]));
    }

    #[test]
    fn a_malformed_cookie_is_replaced() {
        let token = CsrfToken::from_headers(&with_cookie("short"));
        assert_ne!(token.for_form(), "short");
        assert!(token.cookie_to_set(false).is_some());
    }

    #[test]
    fn the_field_is_found_in_a_form_body() {
        let body = b"card_number=1234567&csrf=abc&password=x%26y";
        assert_eq!(form_field(body, "csrf"), Some(&b"abc"[..]));
        assert_eq!(form_field(body, "missing"), None);
        assert_eq!(form_field(b"csrf", "csrf"), Some(&b""[..]));
        assert_eq!(form_field(b"xcsrf=1", "csrf"), None);
    }
}
