//! Session credentials of both kinds of account: where a request's token comes from
//! (`Authorization: Bearer` for programs, an HttpOnly cookie for browsers), the cookies
//! themselves, and the one extra demand on cookie-authenticated JSON calls.
//!
//! Patron sessions travel in `kitsuki_session`, staff sessions in `kitsuki_staff`; the
//! services behind the gateway own the sessions (creation, expiry, revocation), the gateway
//! only carries the token.

use std::fmt;

use axum::http::{HeaderMap, Method, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use kitsuki_proto::ErrorCode;
use kitsuki_proto::patron::SessionGranted;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::web::error::ApiError;

/// Name of the patron session cookie.
pub const PATRON_COOKIE: &str = "kitsuki_session";

/// Name of the staff session cookie.
pub const STAFF_COOKIE: &str = "kitsuki_staff";

/// A session token. Its `Debug` never shows the value, so a token cannot reach a log line
/// through a `?field` or a derived `Debug` of the struct that holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(Secret),
    Cookie(Secret),
}

impl Credential {
    pub fn token(&self) -> &Secret {
        match self {
            Credential::Bearer(t) | Credential::Cookie(t) => t,
        }
    }
}

/// The bearer token of `Authorization`, if there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The value of cookie `name`, if present and non-empty.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty())
}

/// The credential of a request: the bearer token if there is one (API callers), else the
/// session cookie `cookie_name` (the browser).
pub fn credential(headers: &HeaderMap, cookie_name: &str) -> Option<Credential> {
    bearer(headers)
        .map(|t| Credential::Bearer(Secret(t)))
        .or_else(|| cookie(headers, cookie_name).map(|t| Credential::Cookie(Secret(t))))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The credential of a JSON API request, refusing cookie-authenticated state changes that
/// do not declare `Content-Type: application/json` (403 `csrf_failed`).
///
/// Why: the session cookies are SameSite=Strict, so another *site* never gets them sent;
/// but a sibling origin of the same site (another host under the city's domain) still
/// would, and an HTML form or a "simple" `fetch` can POST cross-origin without asking. A
/// JSON content type is not "simple": the browser must first ask with a CORS preflight,
/// which this gateway never grants, so the forged request is never sent. Pages use a CSRF
/// token instead (see `csrf`). A bearer token is never sent by a browser on its own, so
/// bearer calls need neither.
pub fn api_credential(
    method: &Method,
    headers: &HeaderMap,
    cookie_name: &str,
) -> Result<Option<Credential>, ApiError> {
    let found = credential(headers, cookie_name);
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if matches!(found, Some(Credential::Cookie(_))) && !safe && !is_json(headers) {
        return Err(ApiError::with_detail(
            ErrorCode::CsrfFailed,
            "a call authenticated by cookie must send Content-Type: application/json",
        ));
    }
    Ok(found)
}

/// The cookie that carries a granted session: HttpOnly so scripts cannot read it,
/// SameSite=Strict so no other site can make the browser send it, `Secure` on https, and
/// expiring with the session (the server-side session still decides).
pub fn session_cookie(
    name: &'static str,
    granted: &SessionGranted,
    secure: bool,
) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, granted.token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure);
    // Without a readable expiry the cookie lives as long as the browser.
    if let Ok(at) = OffsetDateTime::parse(&granted.expires_at, &Rfc3339) {
        cookie = cookie.expires(at);
    }
    cookie.build()
}

/// A `Set-Cookie` that deletes cookie `name` (same path and flags as when it was set).
pub fn removal_cookie(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure)
        .build();
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    fn token(h: &HeaderMap, cookie: &str) -> Option<String> {
        credential(h, cookie).map(|c| c.token().expose().to_string())
    }

    #[test]
    fn the_token_comes_from_bearer_first_then_the_named_cookie() {
        assert_eq!(token(&HeaderMap::new(), STAFF_COOKIE), None);
        let h = headers(&[(header::AUTHORIZATION, "Bearer abc")]);
        assert_eq!(token(&h, STAFF_COOKIE).as_deref(), Some("abc"));
        let h = headers(&[(header::AUTHORIZATION, "bearer  abc ")]);
        assert_eq!(token(&h, STAFF_COOKIE).as_deref(), Some("abc"));
        let h = headers(&[(header::COOKIE, "a=1; kitsuki_staff=xyz; kitsuki_session=p")]);
        assert_eq!(token(&h, STAFF_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(token(&h, PATRON_COOKIE).as_deref(), Some("p"));
        let h = headers(&[
            (header::AUTHORIZATION, "Bearer abc"),
            (header::COOKIE, "kitsuki_staff=xyz"),
        ]);
        assert_eq!(
            credential(&h, STAFF_COOKIE),
            Some(Credential::Bearer(Secret::new("abc")))
        );
        let h = headers(&[(header::AUTHORIZATION, "Basic dXNlcjpwdw==")]);
        assert_eq!(token(&h, STAFF_COOKIE), None);
        let h = headers(&[(header::AUTHORIZATION, "Bearer ")]);
        assert_eq!(token(&h, STAFF_COOKIE), None);
    }

    #[test]
    fn a_secret_never_prints() {
        let c = Credential::Cookie(Secret::new("t0k3n"));
        assert!(!format!("{c:?}").contains("t0k3n"));
    }

    #[test]
    fn cookie_authenticated_changes_must_be_json() {
        let cookie = headers(&[(header::COOKIE, "kitsuki_session=t")]);
        let refused = api_credential(&Method::POST, &cookie, PATRON_COOKIE).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::CsrfFailed);
        assert!(api_credential(&Method::GET, &cookie, PATRON_COOKIE).is_ok());
        let json_cookie = headers(&[
            (header::COOKIE, "kitsuki_session=t"),
            (header::CONTENT_TYPE, "Application/JSON; charset=utf-8"),
        ]);
        assert!(api_credential(&Method::DELETE, &json_cookie, PATRON_COOKIE).is_ok());
        let form_cookie = headers(&[
            (header::COOKIE, "kitsuki_session=t"),
            (header::CONTENT_TYPE, "text/plain"),
        ]);
        assert!(api_credential(&Method::PUT, &form_cookie, PATRON_COOKIE).is_err());
        // A bearer call is never sent by a browser on its own.
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer t")]);
        assert!(api_credential(&Method::POST, &bearer, PATRON_COOKIE).is_ok());
        // No credential at all: nothing to forge; the handler decides.
        assert_eq!(
            api_credential(&Method::POST, &HeaderMap::new(), PATRON_COOKIE).unwrap(),
            None
        );
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_when_asked() {
        let granted = SessionGranted {
            token: "t0k3n".into(),
            expires_at: "2030-01-02T03:04:05Z".into(),
            temporary_password: false,
        };
        let plain = session_cookie(PATRON_COOKIE, &granted, false).to_string();
        assert!(plain.starts_with("kitsuki_session=t0k3n"), "{plain}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(plain.contains(part), "{part} in {plain}");
        }
        assert!(
            plain.contains("Expires=Wed, 02 Jan 2030 03:04:05 GMT"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"));
        let secure = session_cookie(STAFF_COOKIE, &granted, true).to_string();
        assert!(secure.starts_with("kitsuki_staff=") && secure.contains("Secure"));
        let removal = removal_cookie(PATRON_COOKIE, true).to_string();
        assert!(removal.starts_with("kitsuki_session=;"), "{removal}");
        assert!(removal.contains("Max-Age=0") && removal.contains("Secure"));
    }
}
