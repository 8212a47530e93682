//! The patron's own account over JSON (API.md "Patron"): the session, `/me`, password and
//! email changes, the email verification link and the forgotten-password reset. The
//! [`Patron`] extractor identifies the patron by `Authorization: Bearer` or the
//! `kitsuki_session` cookie; there is no path that names a patron, so a token can only
//! ever reach its own account.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use kitsuki_proto::patron::{
    ChangePasswordRequest, ConfirmPasswordResetRequest, PatronLoginRequest, PatronProfile,
    RequestEmailChangeRequest, RequestEmailChangeResponse, RequestPasswordResetRequest,
    SessionGranted, SessionToken, VerifyEmailRequest,
};
use kitsuki_proto::{CardNumber, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::staff::session::SessionView;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ClientAddr};
use crate::web::route_table::Routes;
use crate::web::session::{self, PATRON_COOKIE, Secret, removal_cookie, session_cookie};

/// The signed-in patron of a request, with their profile as patron-account says now.
#[derive(Debug, Clone)]
pub struct Patron {
    pub token: Secret,
    pub profile: PatronProfile,
}

impl Patron {
    /// Asks patron-account whose session `token` is. Every refusal of the token means the
    /// same to the caller (401 `not_logged_in`); a down service stays a 503.
    pub async fn check(state: &AppState, token: Secret) -> Result<Patron, ApiError> {
        match state
            .patron()
            .patron_session(state.rpc(SessionToken {
                token: token.expose().to_string(),
            }))
            .await
        {
            Ok(profile) => Ok(Patron {
                token,
                profile: profile.into_inner(),
            }),
            Err(status) => Err(not_logged_in_unless_down(ApiError::from_status(&status))),
        }
    }
}

fn not_logged_in_unless_down(err: ApiError) -> ApiError {
    if err.status().is_server_error() {
        err
    } else {
        ApiError::new(ErrorCode::NotLoggedIn)
    }
}

impl FromRequestParts<AppState> for Patron {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = session::api_credential(&parts.method, &parts.headers, PATRON_COOKIE)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotLoggedIn))?;
        Patron::check(state, credential.token().clone()).await
    }
}

/// The card number as the patron typed it, normalised when it can be (rule P1); otherwise
/// as typed, for patron-account to refuse like any wrong credential.
pub fn card_for_login(input: &str) -> String {
    CardNumber::parse(input)
        .map(|c| c.to_string())
        .unwrap_or_else(|_| input.trim().to_string())
}

/// Logs a patron in. API.md: 401 `bad_credentials` whatever was wrong (rule P13: no answer
/// may tell whether the card exists, whether web service is enabled, or how old its holder
/// is), so every refusal but throttling and failures becomes `bad_credentials` here too,
/// whatever code patron-account chose.
pub async fn patron_login(
    state: &AppState,
    card_number: &str,
    password: String,
    client_address: String,
) -> Result<SessionGranted, ApiError> {
    state
        .patron()
        .patron_login(state.rpc(PatronLoginRequest {
            card_number: card_for_login(card_number),
            password,
            client_address,
        }))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            let err = ApiError::from_status(&status);
            if err.code() == ErrorCode::TooManyAttempts || err.status().is_server_error() {
                err
            } else {
                ApiError::new(ErrorCode::BadCredentials)
            }
        })
}

/// Revokes a patron session; a token already refused is as logged out as can be.
pub async fn end_patron_session(state: &AppState, token: &Secret) -> Result<(), ApiError> {
    match state
        .patron()
        .patron_logout(state.rpc(SessionToken {
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

/// `POST /api/v1/session`. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct LoginBody {
    pub card_number: String,
    pub password: String,
}

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let granted = patron_login(&state, &body.card_number, body.password, client_address).await?;
    let cookie = session_cookie(PATRON_COOKIE, &granted, state.secure_cookies());
    Ok((
        jar.add(cookie),
        Json(SessionView {
            token: granted.token,
            expires_at: granted.expires_at,
            temporary_password: granted.temporary_password,
        }),
    ))
}

/// `DELETE /api/v1/session`: ends the session of the credential and clears the cookie. Like every
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
    let credential = session::api_credential(&method, &headers, PATRON_COOKIE)?;
    let jar = jar.add(removal_cookie(PATRON_COOKIE, state.secure_cookies()));
    let ended = match credential {
        None => Err(ApiError::new(ErrorCode::NotLoggedIn)),
        Some(credential) => match Patron::check(&state, credential.token().clone()).await {
            Ok(_) => end_patron_session(&state, credential.token()).await,
            Err(err) => Err(err),
        },
    };
    Ok(match ended {
        Ok(()) => (StatusCode::NO_CONTENT, jar).into_response(),
        Err(err) if err.status().is_server_error() => err.into_response(),
        Err(err) => (jar, err).into_response(),
    })
}

/// `GET /api/v1/me` (API.md), made from patron-account's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeView {
    pub card_number: String,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Rule P9: an address waiting for its verification link.
    pub pending_email: Option<String>,
    /// Rule P5.
    pub temporary_password: bool,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl From<&PatronProfile> for MeView {
    fn from(p: &PatronProfile) -> Self {
        MeView {
            card_number: p.card_number.clone(),
            name: p.name.clone(),
            email: non_empty(&p.email),
            email_verified: p.email_verified,
            pending_email: non_empty(&p.pending_email),
            temporary_password: p.temporary_password,
        }
    }
}

pub async fn me(patron: Patron) -> Json<MeView> {
    Json(MeView::from(&patron.profile))
}

/// `PUT /api/v1/me/password`. No `Debug`: it holds passwords.
#[derive(Deserialize)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// Rule P10: patron-account checks the current password and the new one's strength, and
/// revokes every other session of the patron.
pub async fn change_password(
    state: &AppState,
    patron: &Patron,
    current_password: String,
    new_password: String,
) -> Result<(), ApiError> {
    state
        .patron()
        .change_password(state.rpc(ChangePasswordRequest {
            token: patron.token.expose().to_string(),
            current_password,
            new_password,
        }))
        .await?;
    tracing::info!(card = %patron.profile.card_number, "password changed");
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn put_password(
    State(state): State<AppState>,
    patron: Patron,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    change_password(&state, &patron, body.current_password, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/email`.
#[derive(Debug, Deserialize)]
pub struct EmailBody {
    pub email: String,
}

/// `202` of an email change (rule P8: `carrier_notice` for a mobile-carrier address, to
/// allow mail from `sender_address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailChangeView {
    pub carrier_notice: bool,
    pub sender_address: String,
}

/// Rules P7–P9: patron-account refuses free webmail, and mails a verification link to the
/// new address; the old one stays in force until it is opened.
pub async fn request_email_change(
    state: &AppState,
    patron: &Patron,
    email: &str,
) -> Result<RequestEmailChangeResponse, ApiError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(ApiError::with_detail(
            ErrorCode::InvalidEmail,
            "email must not be empty",
        ));
    }
    Ok(state
        .patron()
        .request_email_change(state.rpc(RequestEmailChangeRequest {
            token: patron.token.expose().to_string(),
            email: email.to_string(),
        }))
        .await?
        .into_inner())
}

#[tracing::instrument(skip_all)]
pub async fn post_email(
    State(state): State<AppState>,
    patron: Patron,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, ApiError> {
    let answer = request_email_change(&state, &patron, &body.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EmailChangeView {
            carrier_notice: answer.carrier_notice,
            sender_address: answer.sender_address,
        }),
    ))
}

/// `POST /api/v1/email-verifications` and `POST /api/v1/password-resets/confirm`'s token.
#[derive(Debug, Deserialize)]
pub struct TokenBody {
    pub token: String,
}

/// Rule P9: opening the link puts the address in force.
pub async fn verify_email(state: &AppState, token: &str) -> Result<(), ApiError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::new(ErrorCode::TokenInvalid));
    }
    state
        .patron()
        .verify_email(state.rpc(VerifyEmailRequest {
            verification_token: token.to_string(),
        }))
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn post_email_verification(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<StatusCode, ApiError> {
    verify_email(&state, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/password-resets`.
#[derive(Debug, Deserialize)]
pub struct ResetRequestBody {
    pub card_number: String,
    pub email: String,
}

/// Rule P11: asks for a reset link. The answer is the same whether or not card and address
/// matched: every refusal of patron-account but throttling is swallowed here, so that no
/// code it might choose can tell the two apart. Only the shape of the card number (rule
/// P1, which says nothing about any patron) is refused.
pub async fn request_password_reset(
    state: &AppState,
    card_number: &str,
    email: &str,
    client_address: String,
) -> Result<(), ApiError> {
    let card = CardNumber::parse(card_number)?;
    let result = state
        .patron()
        .request_password_reset(state.rpc(RequestPasswordResetRequest {
            card_number: card.to_string(),
            email: email.trim().to_string(),
            client_address,
        }))
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(status) => {
            let err = ApiError::from_status(&status);
            // A refusal of the input itself (a NUL in the address) says nothing about the
            // card, so it is not hidden behind P11's one answer.
            let input = matches!(err.code(), ErrorCode::InvalidText | ErrorCode::TextTooLong);
            if err.code() == ErrorCode::TooManyAttempts || err.status().is_server_error() || input {
                Err(err)
            } else {
                tracing::debug!(code = err.code().as_str(), "password reset not sent");
                Ok(())
            }
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn post_password_reset(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<StatusCode, ApiError> {
    request_password_reset(&state, &body.card_number, &body.email, client_address).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/password-resets/confirm`. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct ResetConfirmBody {
    pub token: String,
    pub new_password: String,
}

/// Rule P11: a single-use link sets a new password (rule P10 for its strength).
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    new_password: String,
) -> Result<(), ApiError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::new(ErrorCode::TokenInvalid));
    }
    state
        .patron()
        .confirm_password_reset(state.rpc(ConfirmPasswordResetRequest {
            reset_token: token.to_string(),
            new_password,
        }))
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn post_password_reset_confirm(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> Result<StatusCode, ApiError> {
    confirm_password_reset(&state, &body.token, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The patron's session, profile, email and password in the JSON API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/session", login)
        .delete("/api/v1/session", logout)
        .get("/api/v1/me", me)
        .put("/api/v1/me/password", put_password)
        .post("/api/v1/me/email", post_email)
        .post("/api/v1/email-verifications", post_email_verification)
        .post("/api/v1/password-resets", post_password_reset)
        .post(
            "/api/v1/password-resets/confirm",
            post_password_reset_confirm,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_card_numbers_are_normalised_before_login() {
        assert_eq!(card_for_login("１２３-４５６７"), "1234567");
        assert_eq!(card_for_login(" 123 4567 "), "1234567");
        assert_eq!(card_for_login(" abc "), "abc");
    }

    #[test]
    fn me_shows_absent_addresses_as_null() {
        let profile = PatronProfile {
            card_number: "1234567".into(),
            name: "杵築 花子".into(),
            email: String::new(),
            email_verified: false,
            pending_email: "hanako@example.jp".into(),
            temporary_password: true,
        };
        let json = serde_json::to_value(MeView::from(&profile)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "card_number": "1234567", "name": "杵築 花子", "email": null,
                "email_verified": false, "pending_email": "hanako@example.jp",
                "temporary_password": true
            })
        );
    }
}
