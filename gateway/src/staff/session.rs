//! Staff sessions: log in and out, and the [`Staff`] extractor that identifies the staff
//! member behind a request by `Authorization: Bearer <token>` or the `kitsuki_staff`
//! cookie, as patron-account's session says (rule S3: staff are scoped to branches).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use kitsuki_proto::patron::{SessionGranted, SessionToken, StaffIdentity, StaffLoginRequest};
use kitsuki_proto::{Branch, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ClientAddr};
use crate::web::route_table::Routes;
use crate::web::session::{self, STAFF_COOKIE, Secret, removal_cookie, session_cookie};

/// The role that may administer the catalogue and staff accounts.
pub const ADMIN_ROLE: &str = "admin";

/// The logged-in staff member of a request. Extracting it refuses with 401
/// `not_logged_in` when there is no session or the session is not (or no longer) valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub username: String,
    pub branches: Vec<String>,
    pub role: String,
    /// The session, passed on as `staff_token` so that patron-account checks the branch
    /// itself and records who acted (rule S3).
    pub token: Secret,
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

    /// Rule S3: 403 `forbidden` unless this staff member is assigned to `branch`.
    pub fn require_branch(&self, branch: Branch) -> Result<(), ApiError> {
        if self.branches.iter().any(|b| b == branch.code()) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Forbidden))
        }
    }

    pub fn new(identity: StaffIdentity, token: Secret) -> Self {
        Staff {
            username: identity.username,
            branches: identity.branches,
            role: identity.role,
            token,
        }
    }

    /// Asks patron-account whose staff session `token` is. Every refusal of the token
    /// (unknown, expired, revoked) means the same to the caller: 401 `not_logged_in`; a
    /// service that is down stays a 503.
    pub async fn check(state: &AppState, token: Secret) -> Result<Staff, ApiError> {
        match state
            .patron()
            .staff_session(state.rpc(SessionToken {
                token: token.expose().to_string(),
            }))
            .await
        {
            Ok(identity) => Ok(Staff::new(identity.into_inner(), token)),
            Err(status) => {
                let err = ApiError::from_status(&status);
                if err.status().is_server_error() {
                    Err(err)
                } else {
                    Err(ApiError::new(ErrorCode::NotLoggedIn))
                }
            }
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = session::api_credential(&parts.method, &parts.headers, STAFF_COOKIE)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotLoggedIn))?;
        Staff::check(state, credential.token().clone()).await
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

/// Logs a staff member in (rule P13's throttling applies to staff too).
pub async fn staff_login(
    state: &AppState,
    username: String,
    password: String,
    client_address: String,
) -> Result<SessionGranted, ApiError> {
    Ok(state
        .patron()
        .staff_login(state.rpc(StaffLoginRequest {
            username,
            password,
            client_address,
        }))
        .await?
        .into_inner())
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let granted = staff_login(&state, body.username, body.password, client_address).await?;
    let cookie = session_cookie(STAFF_COOKIE, &granted, state.secure_cookies());
    let view = SessionView {
        token: granted.token,
        expires_at: granted.expires_at,
        temporary_password: granted.temporary_password,
    };
    Ok((jar.add(cookie), Json(view)))
}

/// `DELETE /api/v1/staff/session`: ends the session of the credential and clears the cookie. Like every
/// call that needs a session, it is 401 `not_logged_in` without a credential or with one
/// whose session has already ended (issue 8: the OpenAPI document's contract); the cookie
/// is cleared then too, so a browser holding a dead one is logged out all the same. A
/// cookie call without a JSON content type stays 403 `csrf_failed` and clears nothing, so
/// another origin cannot log anyone out.
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    let credential = session::api_credential(&method, &headers, STAFF_COOKIE)?;
    let jar = jar.add(removal_cookie(STAFF_COOKIE, state.secure_cookies()));
    let ended = match credential {
        None => Err(ApiError::new(ErrorCode::NotLoggedIn)),
        Some(credential) => match Staff::check(&state, credential.token().clone()).await {
            Ok(_) => end_staff_session(&state, credential.token()).await,
            Err(err) => Err(err),
        },
    };
    Ok(match ended {
        Ok(()) => (StatusCode::NO_CONTENT, jar).into_response(),
        Err(err) if err.status().is_server_error() => err.into_response(),
        Err(err) => (jar, err).into_response(),
    })
}

/// Revokes a staff session. Only a down service is an error: a token already refused is
/// as logged out as can be.
pub async fn end_staff_session(state: &AppState, token: &Secret) -> Result<(), ApiError> {
    match state
        .patron()
        .staff_logout(state.rpc(SessionToken {
            token: token.expose().to_string(),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(status) => {
            let err = ApiError::from_status(&status);
            if err.status().is_server_error() {
                Err(err)
            } else {
                Ok(())
            }
        }
    }
}

/// The staff session in the JSON API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/staff/session", login)
        .delete("/api/v1/staff/session", logout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(role: &str, branches: &[&str]) -> Staff {
        Staff {
            username: "yamada".into(),
            branches: branches.iter().map(|b| b.to_string()).collect(),
            role: role.into(),
            token: Secret::new("t"),
        }
    }

    #[test]
    fn only_the_admin_role_administers() {
        assert_eq!(
            staff("staff", &["yamaga"])
                .require_admin()
                .unwrap_err()
                .code(),
            ErrorCode::Forbidden
        );
        assert!(staff("admin", &["yamaga"]).require_admin().is_ok());
    }

    #[test]
    fn s3_staff_act_only_at_their_branches() {
        let clerk = staff("staff", &["yamaga"]);
        assert!(clerk.require_branch(Branch::Yamaga).is_ok());
        assert_eq!(
            clerk.require_branch(Branch::Ota).unwrap_err().code(),
            ErrorCode::Forbidden
        );
    }
}
