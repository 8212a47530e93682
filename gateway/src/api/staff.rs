//! Staff sessions: log in and out, and the [`Staff`] extractor that identifies the staff
//! member behind a request by `Authorization: Bearer <token>` or the `kitsuki_staff`
//! cookie, as patron-account's session says (rule S3: staff are scoped to branches).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use kitsuki_proto::ErrorCode;
use kitsuki_proto::patron::{SessionGranted, SessionToken, StaffIdentity, StaffLoginRequest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::extract::{ApiJson, ClientAddr};
use crate::state::AppState;

/// Name of the staff session cookie.
pub const STAFF_COOKIE: &str = "kitsuki_staff";

/// The role that may administer the catalogue and staff accounts.
pub const ADMIN_ROLE: &str = "admin";

/// The logged-in staff member of a request. Extracting it refuses with 401
/// `not_logged_in` when there is no session or the session is not (or no longer) valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub username: String,
    pub branches: Vec<String>,
    pub role: String,
}

impl Staff {
    /// 403 `forbidden` unless this staff member has the admin role.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == ADMIN_ROLE {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Forbidden))
        }
    }
}

impl From<StaffIdentity> for Staff {
    fn from(identity: StaffIdentity) -> Self {
        Staff {
            username: identity.username,
            branches: identity.branches,
            role: identity.role,
        }
    }
}

/// The session token of a request: the bearer token if there is one (API callers), else
/// the cookie (the browser).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    bearer.or_else(|| {
        CookieJar::from_headers(headers)
            .get(STAFF_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|t| !t.is_empty())
    })
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            session_token(&parts.headers).ok_or_else(|| ApiError::new(ErrorCode::NotLoggedIn))?;
        match state
            .patron()
            .staff_session(state.rpc(SessionToken { token }))
            .await
        {
            Ok(identity) => Ok(Staff::from(identity.into_inner())),
            Err(status) => {
                let err = ApiError::from_status(&status);
                // A down service is a 503, but every refusal of the token (unknown,
                // expired, revoked) means the same to the caller: log in again.
                if err.status().is_server_error() {
                    Err(err)
                } else {
                    Err(ApiError::new(ErrorCode::NotLoggedIn))
                }
            }
        }
    }
}

/// A staff member with the admin role: 401 `not_logged_in` without a session, 403
/// `forbidden` for any other role. An extractor, so the refusal comes before the request
/// body is even read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Staff);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let staff = Staff::from_request_parts(parts, state).await?;
        staff.require_admin()?;
        Ok(Admin(staff))
    }
}

/// `POST /api/v1/staff/session`. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// The answer to a login (API.md: same shape for patrons and staff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub token: String,
    pub expires_at: String,
    pub temporary_password: bool,
}

/// The session cookie for a granted session: HttpOnly so scripts cannot read it,
/// SameSite=Strict so no other site can make the browser use it, `Secure` on https.
pub fn session_cookie(granted: &SessionGranted, secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build((STAFF_COOKIE, granted.token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure);
    // Without a readable expiry the cookie lives as long as the browser; the server-side
    // session still decides.
    if let Ok(at) = OffsetDateTime::parse(&granted.expires_at, &Rfc3339) {
        cookie = cookie.expires(at);
    }
    cookie.build()
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let granted = state
        .patron()
        .staff_login(state.rpc(StaffLoginRequest {
            username: body.username,
            password: body.password,
            client_address,
        }))
        .await?
        .into_inner();
    let cookie = session_cookie(&granted, state.secure_cookies());
    let view = SessionView {
        token: granted.token,
        expires_at: granted.expires_at,
        temporary_password: granted.temporary_password,
    };
    Ok((
        jar.add(cookie),
        // A token must not sit in a shared cache.
        [(header::CACHE_CONTROL, "no-store")],
        Json(view),
    ))
}

/// `DELETE /api/v1/staff/session`: 204 whether or not the session was still valid, since
/// either way it is gone afterwards; the cookie is cleared.
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = session_token(&headers)
        && let Err(status) = state
            .patron()
            .staff_logout(state.rpc(SessionToken { token }))
            .await
    {
        let err = ApiError::from_status(&status);
        if err.status().is_server_error() {
            return Err(err);
        }
    }
    let removal = Cookie::build((STAFF_COOKIE, "")).path("/").build();
    Ok((StatusCode::NO_CONTENT, jar.remove(removal)))
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

    #[test]
    fn the_token_comes_from_bearer_first_then_the_cookie() {
        assert_eq!(session_token(&HeaderMap::new()), None);
        assert_eq!(
            session_token(&headers(&[(header::AUTHORIZATION, "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_token(&headers(&[(header::AUTHORIZATION, "bearer  abc ")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_token(&headers(&[(header::COOKIE, "a=1; kitsuki_staff=xyz")])).as_deref(),
            Some("xyz")
        );
        assert_eq!(
            session_token(&headers(&[
                (header::AUTHORIZATION, "Bearer abc"),
                (header::COOKIE, "kitsuki_staff=xyz")
            ]))
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_token(&headers(&[(header::AUTHORIZATION, "Basic dXNlcjpwdw==")])),
            None
        );
        assert_eq!(
            session_token(&headers(&[(header::AUTHORIZATION, "Bearer ")])),
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
        let plain = session_cookie(&granted, false).to_string();
        assert!(plain.starts_with("kitsuki_staff=t0k3n"), "{plain}");
        assert!(plain.contains("HttpOnly"));
        assert!(plain.contains("SameSite=Strict"));
        assert!(plain.contains("Path=/"));
        assert!(
            plain.contains("Expires=Wed, 02 Jan 2030 03:04:05 GMT"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"));
        assert!(
            session_cookie(&granted, true)
                .to_string()
                .contains("Secure")
        );
    }

    #[test]
    fn only_the_admin_role_administers() {
        let mut staff = Staff {
            username: "yamada".into(),
            branches: vec!["yamaga".into()],
            role: "staff".into(),
        };
        assert_eq!(
            staff.require_admin().unwrap_err().code(),
            ErrorCode::Forbidden
        );
        staff.role = "admin".into();
        assert!(staff.require_admin().is_ok());
    }
}
