//! The patron's 「Webサービス」 pages: login and logout (back to the page that asked for
//! it), マイページ (whose 「貸出状況」 and 「予約状況」 come from [`super::holds`]),
//! 「メールアドレス登録・変更」, 「パスワード変更」, 「パスワードを忘れた時」 with its reset
//! link, and the landing page of the email verification link. They call the same
//! functions as the JSON API (`account::api`), so a page and the API cannot disagree about
//! a rule.
//!
//! Rule P12: these are the only patron pages that ask for a password (the patron's own,
//! to log in or change it), and no page shows one.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use kitsuki_proto::{CardNumber, ErrorCode};
use minijinja::context;
use serde::Deserialize;

use crate::account::api::{
    MeView, change_password, confirm_password_reset, end_patron_session, patron_login,
    request_email_change, request_password_reset, verify_email,
};
use crate::account::my::PatronPage;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ClientAddr;
use crate::web::route_table::Routes;
use crate::web::session::{self, PATRON_COOKIE, Secret, removal_cookie, session_cookie};
use crate::web::templates;
use crate::web::{Layout, PageError, PageForm, forms, html_page, see_other};

/// Where a login may lead back to: a page of this site that asked for it (the hold flow
/// of a title, マイページ), never a URL a link could point elsewhere.
pub fn safe_next(next: &str) -> Option<&str> {
    let ours = next.starts_with("/titles/") || next == "/my" || next.starts_with("/my/");
    let plain = next
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&".contains(&b));
    (ours && plain && !next.contains("//") && !next.contains("..")).then_some(next)
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// `GET /login`, and `GET /login?next=/titles/…/hold` from a page that needs a login
/// (the hold flow, rule H3), which the patron is taken back to afterwards.
pub async fn login_form(
    layout: Layout,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = query
        .ok()
        .and_then(|Query(q)| q.next)
        .and_then(|n| safe_next(&n).map(str::to_string));
    if layout.patron().is_some() {
        return see_other(next.as_deref().unwrap_or("/my"));
    }
    let for_hold = next.as_deref().is_some_and(|n| n.starts_with("/titles/"));
    forms::form_page(
        "login.html",
        &layout,
        context! { card_number => "", error => (), next => next, for_hold => for_hold },
    )
}

/// The login form. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub card_number: String,
    #[serde(default)]
    pub password: String,
    /// The page to go back to (see [`safe_next`]).
    #[serde(default)]
    pub next: String,
}

/// `POST /login`: on success the session cookie and マイページ (which leads a patron
/// without an address to register one first, rule P6), or the page that asked for the
/// login.
#[tracing::instrument(skip_all)]
pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    layout: Layout,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).map(str::to_string);
    match patron_login(&state, &form.card_number, form.password, client_address).await {
        Ok(granted) => {
            let cookie = session_cookie(PATRON_COOKIE, &granted, state.secure_cookies());
            let to = next.as_deref().unwrap_or("/my");
            (CookieJar::new().add(cookie), see_other(to)).into_response()
        }
        Err(err) if err.status().is_server_error() => PageError::from(err).into_response(),
        Err(err) => {
            // Rule P1: a card number of the wrong shape says so (that reveals nothing about
            // any patron); every other refusal reads the same (rule P13).
            let message = if err.code() == ErrorCode::BadCredentials
                && CardNumber::parse(&form.card_number).is_err()
            {
                ErrorCode::InvalidCardNumber.message_ja()
            } else {
                err.code().message_ja()
            };
            forms::refused(
                &err,
                "login.html",
                &layout,
                context! {
                    card_number => form.card_number,
                    error => message,
                    for_hold => next.as_deref().is_some_and(|n| n.starts_with("/titles/")),
                    next => next,
                },
            )
        }
    }
}

/// `POST /logout`: ends the session at patron-account and clears the cookie.
#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers, PATRON_COOKIE)
        && let Err(err) = end_patron_session(&state, &Secret::new(token)).await
    {
        return PageError::from(err).into_response();
    }
    let jar = CookieJar::new().add(removal_cookie(PATRON_COOKIE, state.secure_cookies()));
    (jar, see_other("/")).into_response()
}

fn email_context(me: &MeView, email: &str, error: Option<&str>) -> minijinja::Value {
    context! {
        me => templates::to_value(me),
        email => email,
        error => error,
        // Rule P6: the first thing to do after the first login.
        first => me.email.is_none() && me.pending_email.is_none(),
    }
}

/// `GET /my/email`: 「メールアドレス登録・変更」.
pub async fn email_form(page: PatronPage) -> Response {
    let me = MeView::from(&page.patron.profile);
    forms::form_page("my_email.html", &page.layout, email_context(&me, "", None))
}

#[derive(Debug, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    pub email: String,
}

/// `POST /my/email`: rules P7 (free webmail refused), P8 (the carrier notice with the
/// sender address), P9 (a verification mail; the old address stays until it is opened).
#[tracing::instrument(skip_all)]
pub async fn email_submit(
    State(state): State<AppState>,
    page: PatronPage,
    PageForm(form): PageForm<EmailForm>,
) -> Response {
    match request_email_change(&state, &page.patron, &form.email).await {
        Ok(answer) => html_page(
            StatusCode::OK,
            "my_email_sent.html",
            &page.layout.view(),
            context! {
                email => form.email.trim(),
                carrier_notice => answer.carrier_notice,
                sender_address => answer.sender_address,
            },
        ),
        Err(err) => forms::patron_failure(&err).unwrap_or_else(|| {
            let me = MeView::from(&page.patron.profile);
            forms::refused(
                &err,
                "my_email.html",
                &page.layout,
                email_context(&me, &form.email, Some(err.code().message_ja())),
            )
        }),
    }
}

/// `GET /my/password`: 「パスワード変更」.
pub async fn password_form(page: PatronPage) -> Response {
    forms::form_page("my_password.html", &page.layout, context! { error => () })
}

/// No `Debug`: it holds passwords.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub new_password_confirm: String,
}

const MISMATCH: &str = "新しいパスワードと、確認のために入力したパスワードが一致しません。";

/// `POST /my/password`: rule P10. Other sessions end; this one stays, and the rule P5
/// banner goes with the temporary password.
#[tracing::instrument(skip_all)]
pub async fn password_submit(
    State(state): State<AppState>,
    page: PatronPage,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    if form.new_password != form.new_password_confirm {
        let err = ApiError::invalid_input("new passwords differ");
        return forms::refused(
            &err,
            "my_password.html",
            &page.layout,
            context! { error => MISMATCH },
        );
    }
    match change_password(
        &state,
        &page.patron,
        form.current_password,
        form.new_password,
    )
    .await
    {
        Ok(()) => see_other("/my?done=password"),
        Err(err) => forms::patron_failure(&err).unwrap_or_else(|| {
            let message = if err.code() == ErrorCode::BadCredentials {
                "現在のパスワードが正しくありません。"
            } else {
                err.code().message_ja()
            };
            forms::refused(
                &err,
                "my_password.html",
                &page.layout,
                context! { error => message },
            )
        }),
    }
}

/// `GET /password/forgot`: 「パスワードを忘れた時」.
pub async fn forgot_form(layout: Layout) -> Response {
    forms::form_page(
        "password_forgot.html",
        &layout,
        context! { card_number => "", email => "", error => () },
    )
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    pub card_number: String,
    #[serde(default)]
    pub email: String,
}

/// `POST /password/forgot`: rule P11, the same page whether or not card and address
/// matched a verified address (only a malformed card number, throttling or a failure
/// answer otherwise, and none of them says anything about a patron).
#[tracing::instrument(skip_all)]
pub async fn forgot_submit(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    layout: Layout,
    PageForm(form): PageForm<ForgotForm>,
) -> Response {
    match request_password_reset(&state, &form.card_number, &form.email, client_address).await {
        Ok(()) => html_page(
            StatusCode::OK,
            "password_forgot_sent.html",
            &layout.view(),
            context! {},
        ),
        Err(err) if err.status().is_server_error() => PageError::from(err).into_response(),
        Err(err) => forms::refused(
            &err,
            "password_forgot.html",
            &layout,
            context! {
                card_number => form.card_number,
                email => form.email,
                error => err.code().message_ja(),
            },
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

fn link_token(query: Result<Query<TokenQuery>, QueryRejection>) -> Result<String, PageError> {
    query
        .ok()
        .and_then(|Query(q)| q.token)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid).into())
}

/// `GET /password/reset?token=…`: the new-password form of a reset link.
pub async fn reset_form(
    layout: Layout,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let token = link_token(query)?;
    Ok(forms::form_page(
        "password_reset.html",
        &layout,
        context! { token => token, error => () },
    ))
}

/// No `Debug`: it holds passwords.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub new_password_confirm: String,
}

/// A link that no longer works: what happened, and what to do instead.
fn dead_link(err: &ApiError, layout: &Layout, again: (&str, &str)) -> Response {
    html_page(
        err.status(),
        "notice.html",
        &layout.view(),
        context! {
            heading => "リンクが無効です",
            paragraphs => vec![err.code().message_ja(), "お手数ですが、もう一度はじめからお手続きください。"],
            links => templates::to_value(&[again]),
        },
    )
}

fn is_link_refusal(err: &ApiError) -> bool {
    matches!(
        err.code(),
        ErrorCode::TokenInvalid | ErrorCode::TokenExpired
    )
}

/// `POST /password/reset`: rules P10, P11.
#[tracing::instrument(skip_all)]
pub async fn reset_submit(
    State(state): State<AppState>,
    layout: Layout,
    PageForm(form): PageForm<ResetForm>,
) -> Response {
    if form.new_password != form.new_password_confirm {
        let err = ApiError::invalid_input("new passwords differ");
        return forms::refused(
            &err,
            "password_reset.html",
            &layout,
            context! { token => form.token, error => MISMATCH },
        );
    }
    match confirm_password_reset(&state, &form.token, form.new_password).await {
        Ok(()) => html_page(
            StatusCode::OK,
            "notice.html",
            &layout.view(),
            context! {
                heading => "パスワードを再設定しました",
                paragraphs => vec!["新しいパスワードでログインしてください。"],
                links => templates::to_value(&[("/login", "ログイン画面へ")]),
            },
        ),
        Err(err) if err.status().is_server_error() => PageError::from(err).into_response(),
        Err(err) if is_link_refusal(&err) => {
            dead_link(&err, &layout, ("/password/forgot", "パスワードを忘れた時"))
        }
        Err(err) => forms::refused(
            &err,
            "password_reset.html",
            &layout,
            context! { token => form.token, error => err.code().message_ja() },
        ),
    }
}

/// `GET /email/verify?token=…`: the landing page of the verification mail. It only shows
/// a button: mail scanners that fetch every link of a mail must not use the token up, so
/// it is spent by the POST of that button, never by a GET.
pub async fn verify_form(
    layout: Layout,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let token = link_token(query)?;
    Ok(forms::form_page(
        "email_verify.html",
        &layout,
        context! { token => token },
    ))
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    pub token: String,
}

/// `POST /email/verify`: rule P9, the address is in force from now on.
#[tracing::instrument(skip_all)]
pub async fn verify_submit(
    State(state): State<AppState>,
    layout: Layout,
    PageForm(form): PageForm<VerifyForm>,
) -> Response {
    match verify_email(&state, &form.token).await {
        Ok(()) => html_page(
            StatusCode::OK,
            "notice.html",
            &layout.view(),
            context! {
                heading => "メールアドレスの登録が完了しました",
                paragraphs => vec![
                    "登録したメールアドレスに「メールアドレス変更完了のお知らせ」をお送りします。",
                    "以後、図書館からの連絡はメールになります。",
                ],
                links => templates::to_value(&[("/my", "マイページへ")]),
            },
        ),
        Err(err) if err.status().is_server_error() => PageError::from(err).into_response(),
        Err(err) => dead_link(&err, &layout, ("/my/email", "メールアドレス登録・変更")),
    }
}

/// The patron's Webサービス pages: login, マイページ, email, password.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/login", login_form)
        .post("/login", login_submit)
        .post("/logout", logout)
        .get("/my/email", email_form)
        .post("/my/email", email_submit)
        .get("/my/password", password_form)
        .post("/my/password", password_submit)
        .get("/password/forgot", forgot_form)
        .post("/password/forgot", forgot_submit)
        .get("/password/reset", reset_form)
        .post("/password/reset", reset_submit)
        .get("/email/verify", verify_form)
        .post("/email/verify", verify_submit)
}
