//! What a page with a form answers besides its own content, one home for the patron and
//! the staff pages: the form again after a refusal (its status, `Retry-After` when
//! throttled), the error page for a failure, the login page for a session that ended.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kitsuki_proto::ErrorCode;

use crate::web::error::ApiError;
use crate::web::{Layout, PageError, html_page, see_other};

/// A page with a form (its CSRF field), answered 200.
pub(crate) fn form_page(template: &str, layout: &Layout, context: minijinja::Value) -> Response {
    html_page(
        StatusCode::OK,
        template,
        &layout.clone().with_form().view(),
        context,
    )
}

/// A form page shown again after a refusal: its status, and `Retry-After` when throttled.
pub(crate) fn refused(
    err: &ApiError,
    template: &str,
    layout: &Layout,
    context: minijinja::Value,
) -> Response {
    let mut response = html_page(
        err.status(),
        template,
        &layout.clone().with_form().view(),
        context,
    );
    if let Some(secs) = err.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A failure as the error page, a patron session that ended meanwhile as the login page;
/// `None` for a refusal to show on the page.
pub(crate) fn patron_failure(err: &ApiError) -> Option<Response> {
    failure(err, "/login")
}

/// [`patron_failure`] for the staff pages (their own login page).
pub(crate) fn staff_failure(err: &ApiError) -> Option<Response> {
    failure(err, "/staff/login")
}

fn failure(err: &ApiError, login: &str) -> Option<Response> {
    if err.status().is_server_error() {
        Some(PageError::from(err.clone()).into_response())
    } else if err.code() == ErrorCode::NotLoggedIn {
        Some(see_other(login))
    } else {
        None
    }
}
