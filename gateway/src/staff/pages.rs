//! The counter's pages for staff (rules S2, S3, P2–P4): staff login, the menu of the
//! branches the staff member is assigned to, registering a patron, and enabling web
//! service with the printable slip of the temporary password, shown this once (rule P3).
//!
//! Rule P12: no staff page asks for or shows a patron's password; the slip shows the
//! temporary one, which is the one moment it exists in the clear.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use kitsuki_proto::{Branch, CardNumber, ErrorCode};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::staff::counter::{
    CounterStaff, ID_DOCUMENTS, NewPatronBody, enable, path_param, register,
};
use crate::staff::session::{Staff, end_staff_session, staff_login};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ClientAddr;
use crate::web::route_table::Routes;
use crate::web::session::{self, STAFF_COOKIE, Secret, removal_cookie, session_cookie};
use crate::web::templates;
use crate::web::{Layout, PageError, PageForm, forms, html_page, see_other};

/// A staff page's staff member: signed in by the `kitsuki_staff` cookie, or sent to the
/// staff login page.
#[derive(Debug, Clone)]
pub struct StaffPage {
    pub layout: Layout,
    pub staff: Staff,
}

impl FromRequestParts<AppState> for StaffPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(layout) = Layout::from_request_parts(parts, state).await;
        let Some(token) = session::cookie(&parts.headers, STAFF_COOKIE) else {
            return Err(see_other("/staff/login"));
        };
        match Staff::check(state, Secret::new(token)).await {
            Ok(staff) => Ok(StaffPage {
                layout: layout.with_staff(&staff.username),
                staff,
            }),
            Err(err) if err.code() == ErrorCode::NotLoggedIn => Err(see_other("/staff/login")),
            Err(err) => Err(PageError::from(err).into_response()),
        }
    }
}

/// A staff page of one branch (`/staff/{branch}/…`): rule S3, only for staff assigned to
/// it (403 page otherwise); an unknown branch is a page that does not exist.
#[derive(Debug, Clone)]
pub struct BranchPage {
    pub layout: Layout,
    pub counter: CounterStaff,
}

impl FromRequestParts<AppState> for BranchPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let StaffPage { layout, staff } = StaffPage::from_request_parts(parts, state).await?;
        let branch = path_param(parts, state, "branch")
            .await
            .ok()
            .and_then(|b| Branch::parse(&b).ok())
            .ok_or_else(|| PageError::not_found().into_response())?;
        staff
            .require_branch(branch)
            .map_err(|e| PageError::from(e).into_response())?;
        Ok(BranchPage {
            layout,
            counter: CounterStaff { staff, branch },
        })
    }
}

impl BranchPage {
    fn branch(&self) -> Branch {
        self.counter.branch
    }
}

/// `GET /staff/login`.
pub async fn login_form(
    State(state): State<AppState>,
    layout: Layout,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = session::cookie(&headers, STAFF_COOKIE)
        && Staff::check(&state, Secret::new(token)).await.is_ok()
    {
        return see_other("/staff");
    }
    forms::form_page(
        "staff_login.html",
        &layout,
        context! { username => "", error => () },
    )
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct StaffLoginForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

/// `POST /staff/login`.
#[tracing::instrument(skip_all)]
pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    layout: Layout,
    PageForm(form): PageForm<StaffLoginForm>,
) -> Response {
    let username = form.username.trim().to_string();
    match staff_login(&state, username.clone(), form.password, client_address).await {
        Ok(granted) => {
            let cookie = session_cookie(STAFF_COOKIE, &granted, state.secure_cookies());
            (CookieJar::new().add(cookie), see_other("/staff")).into_response()
        }
        Err(err) if err.status().is_server_error() => PageError::from(err).into_response(),
        Err(err) => {
            let message = if err.code() == ErrorCode::TooManyAttempts {
                err.code().message_ja()
            } else {
                "職員IDまたはパスワードが正しくありません。"
            };
            forms::refused(
                &err,
                "staff_login.html",
                &layout,
                context! { username => username, error => message },
            )
        }
    }
}

/// `POST /staff/logout`.
#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers, STAFF_COOKIE)
        && let Err(err) = end_staff_session(&state, &Secret::new(token)).await
    {
        return PageError::from(err).into_response();
    }
    let jar = CookieJar::new().add(removal_cookie(STAFF_COOKIE, state.secure_cookies()));
    (jar, see_other("/staff/login")).into_response()
}

#[derive(Serialize)]
struct BranchLink {
    code: &'static str,
    name: &'static str,
}

/// `GET /staff`: what this staff member can do, per branch they are assigned to.
pub async fn menu(page: StaffPage) -> Response {
    let branches: Vec<BranchLink> = Branch::ALL
        .iter()
        .filter(|b| page.staff.require_branch(**b).is_ok())
        .map(|b| BranchLink {
            code: b.code(),
            name: b.name_ja(),
        })
        .collect();
    html_page(
        StatusCode::OK,
        "staff_menu.html",
        &page.layout.view(),
        context! { branches => templates::to_value(&branches), error => () },
    )
}

fn patron_form_context(
    page: &BranchPage,
    form: &NewPatronBody,
    error: Option<&str>,
) -> minijinja::Value {
    context! {
        branch => page.branch().code(),
        branch_name => page.branch().name_ja(),
        form => templates::to_value(form),
        id_documents => templates::to_value(&ID_DOCUMENTS),
        error => error,
    }
}

/// `GET /staff/{branch}/patrons/new`: rule P2's registration form.
pub async fn patron_form(page: BranchPage) -> Response {
    let form = NewPatronBody {
        email: Some(String::new()),
        ..NewPatronBody::default()
    };
    forms::form_page(
        "staff_patron_new.html",
        &page.layout,
        patron_form_context(&page, &form, None),
    )
}

/// `POST /staff/{branch}/patrons/new`.
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn patron_submit(
    State(state): State<AppState>,
    page: BranchPage,
    PageForm(form): PageForm<NewPatronBody>,
) -> Response {
    match register(&state, &page.counter, form.clone()).await {
        Ok(card_number) => html_page(
            StatusCode::OK,
            "staff_patron_created.html",
            &page.layout.view(),
            context! {
                branch => page.branch().code(),
                card_number => card_number,
                name => form.name.trim(),
            },
        ),
        Err(err) => forms::staff_failure(&err).unwrap_or_else(|| {
            forms::refused(
                &err,
                "staff_patron_new.html",
                &page.layout,
                patron_form_context(&page, &form, Some(err.code().message_ja())),
            )
        }),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CardQuery {
    pub card: Option<String>,
}

/// `GET /staff/{branch}/web-service?card=…`: the menu's card-number box, sent on to the
/// card's page (a GET form cannot put the number in the path itself).
pub async fn web_service_lookup(
    page: BranchPage,
    query: Result<Query<CardQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let raw = query.ok().and_then(|Query(q)| q.card).unwrap_or_default();
    let card = CardNumber::parse(&raw).map_err(ApiError::from)?;
    Ok(see_other(&format!(
        "/staff/{}/patrons/{card}/web-service",
        page.branch().code()
    )))
}

fn card_of(path: Result<Path<(String, String)>, PathRejection>) -> Result<CardNumber, PageError> {
    let Path((_, card)) = path.map_err(|_| PageError::not_found())?;
    Ok(CardNumber::parse(&card).map_err(ApiError::from)?)
}

fn web_service_context(
    page: &BranchPage,
    card: &CardNumber,
    error: Option<&str>,
) -> minijinja::Value {
    context! {
        branch => page.branch().code(),
        branch_name => page.branch().name_ja(),
        card_number => card.to_string(),
        error => error,
    }
}

/// `GET /staff/{branch}/patrons/{card}/web-service`: what to check, and the button.
pub async fn web_service_form(
    page: BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, PageError> {
    let card = card_of(path)?;
    Ok(forms::form_page(
        "staff_web_service.html",
        &page.layout,
        web_service_context(&page, &card, None),
    ))
}

/// `POST /staff/{branch}/patrons/{card}/web-service`: rules P3, P4. The answer is the
/// slip with the temporary password, printed from this very response: it is not stored
/// anywhere it could be shown again.
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn web_service_submit(
    State(state): State<AppState>,
    page: BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, PageError> {
    let card = card_of(path)?;
    Ok(match enable(&state, &page.counter, &card).await {
        Ok(answer) => html_page(
            StatusCode::OK,
            "staff_slip.html",
            &page.layout.view(),
            context! {
                branch_name => page.branch().name_ja(),
                card_number => card.to_string(),
                name => answer.name,
                temporary_password => answer.temporary_password,
            },
        ),
        Err(err) => forms::staff_failure(&err).unwrap_or_else(|| {
            forms::refused(
                &err,
                "staff_web_service.html",
                &page.layout,
                web_service_context(&page, &card, Some(err.code().message_ja())),
            )
        }),
    })
}

/// The counter's pages: staff login, the menu, patron registration, Webサービス.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/staff/login", login_form)
        .post("/staff/login", login_submit)
        .post("/staff/logout", logout)
        .get("/staff", menu)
        .get("/staff/{branch}/patrons/new", patron_form)
        .post("/staff/{branch}/patrons/new", patron_submit)
        .get("/staff/{branch}/web-service", web_service_lookup)
        .get(
            "/staff/{branch}/patrons/{card}/web-service",
            web_service_form,
        )
        .post(
            "/staff/{branch}/patrons/{card}/web-service",
            web_service_submit,
        )
}
