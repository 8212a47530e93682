//! What every page shares besides its own content: the CSRF token of its forms, and the
//! signed-in patron the header and the rule P5 banner speak of. A middleware works it out
//! once per page request ([`page_context`]) and hands it to handlers as [`Layout`]; error
//! pages made anywhere are re-rendered with it, so the banner is on every page.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::account::api::Patron;
use crate::state::AppState;
use crate::web::PageError;
use crate::web::csrf::CsrfToken;
use crate::web::error::ApiError;
use crate::web::route_table::is_api;
use crate::web::session::{self, PATRON_COOKIE, Secret};

/// Who the browser is, as far as patrons go.
#[derive(Debug, Clone)]
pub enum PatronState {
    Anonymous,
    SignedIn(Patron),
    /// The session could not be checked (patron-account down): catalogue pages carry on
    /// as for anyone, account pages answer with the error.
    Unavailable(ApiError),
}

/// The shared part of a page request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Layout {
    csrf: CsrfToken,
    patron: PatronState,
    staff: Option<String>,
    form: bool,
}

/// The signed-in patron as the layout shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatronBadge {
    pub name: String,
    /// Rule P5: recommend a password change on every page while this holds.
    pub temporary_password: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaffBadge {
    pub username: String,
}

/// The values `base.html` reads, as `layout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LayoutView {
    /// The hidden field of the page's forms; present only when the page has one (the
    /// logout button of a signed-in header counts).
    pub csrf: Option<String>,
    pub patron: Option<PatronBadge>,
    pub staff: Option<StaffBadge>,
}

impl Layout {
    pub fn new(csrf: CsrfToken, patron: PatronState) -> Self {
        Layout {
            csrf,
            patron,
            staff: None,
            form: false,
        }
    }

    /// A layout for a request that came without one (should not happen behind
    /// [`page_context`]): nobody signed in, and a token no form can pass with.
    fn fallback() -> Self {
        Layout::new(
            CsrfToken::from_headers(&Default::default()),
            PatronState::Anonymous,
        )
    }

    pub fn patron_state(&self) -> &PatronState {
        &self.patron
    }

    pub fn patron(&self) -> Option<&Patron> {
        match &self.patron {
            PatronState::SignedIn(s) => Some(s),
            _ => None,
        }
    }

    /// This page shows a form (POST): it needs the CSRF token.
    pub fn with_form(mut self) -> Self {
        self.form = true;
        self
    }

    /// A staff page: the header speaks of the staff member, not of a patron.
    pub fn with_staff(mut self, username: &str) -> Self {
        self.staff = Some(username.to_string());
        self
    }

    /// The template values. Prints (and so marks used) the CSRF token only when the page
    /// has a form.
    pub fn view(&self) -> LayoutView {
        let patron = if self.staff.is_some() {
            None
        } else {
            self.patron().map(|s| PatronBadge {
                name: s.profile.name.clone(),
                temporary_password: s.profile.temporary_password,
            })
        };
        let staff = self.staff.clone().map(|username| StaffBadge { username });
        let needs_token = self.form || patron.is_some() || staff.is_some();
        LayoutView {
            csrf: needs_token.then(|| self.csrf.for_form()),
            patron,
            staff,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Layout {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Layout>()
            .cloned()
            .unwrap_or_else(|| {
                tracing::error!("page handler without a layout: page context missing");
                Layout::fallback()
            }))
    }
}

/// Asks patron-account who the session cookie belongs to.
async fn lookup(state: &AppState, token: String) -> PatronState {
    match Patron::check(state, Secret::new(token)).await {
        Ok(patron) => PatronState::SignedIn(patron),
        // A down service: catalogue pages carry on, account pages show the error.
        Err(err) if err.status().is_server_error() => PatronState::Unavailable(err),
        // Expired, revoked or unknown: the browser is simply not signed in.
        Err(_) => PatronState::Anonymous,
    }
}

/// Middleware around every page (not the API, not the stylesheet): makes the [`Layout`],
/// re-renders error pages with it, and sets the CSRF cookie when a page printed a new token.
pub async fn page_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if is_api(request.uri()) || path.starts_with("/static/") {
        return next.run(request).await;
    }
    let csrf = CsrfToken::from_headers(request.headers());
    let patron = match session::cookie(request.headers(), PATRON_COOKIE) {
        Some(token) => lookup(&state, token).await,
        None => PatronState::Anonymous,
    };
    let layout = Layout::new(csrf.clone(), patron);
    request.extensions_mut().insert(csrf.clone());
    request.extensions_mut().insert(layout.clone());

    let mut response = next.run(request).await;
    if let Some(error) = response.extensions().get::<PageError>().cloned() {
        response = with_body(response, error.render_body(&layout.view()));
    }
    if let Some(cookie) = csrf.cookie_to_set(state.secure_cookies())
        && let Ok(value) = HeaderValue::from_str(&cookie.to_string())
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The response with a new HTML body, keeping its status and headers (`Allow`,
/// `Retry-After`, cookies).
fn with_body(response: Response, html: String) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(html))
}
