//! What every page answers with: a rendered page ([`html_page`]), the error page
//! ([`PageError`]), a form body ([`PageForm`]), a redirect after a form ([`see_other`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kitsuki_proto::ErrorCode;
use minijinja::context;

use crate::web::error::ApiError;
use crate::web::layout::LayoutView;
use crate::web::templates;

/// An error as a page: the status and what a patron should read. As a response it also
/// travels as an extension, so that [`layout::page_context`] can render it again inside
/// the page's layout (with the header and the rule P5 banner of the signed-in patron).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub status: StatusCode,
    pub heading: &'static str,
    pub message: &'static str,
    /// Rule P13: how long a throttled browser should wait, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let message = code.message_ja();
        let (heading, message) = match code {
            ErrorCode::TitleNotFound => (
                "資料が見つかりません",
                "お探しの資料は見つかりませんでした。検索し直してください。",
            ),
            ErrorCode::NotFound => (
                "ページが見つかりません",
                "お探しのページは見つかりませんでした。URLをお確かめください。",
            ),
            ErrorCode::MethodNotAllowed => (
                "この操作はできません",
                "このページではこの操作はできません。",
            ),
            ErrorCode::Unavailable => ("ただいまご利用いただけません", message),
            ErrorCode::Internal => ("システムエラー", message),
            ErrorCode::CsrfFailed => ("画面の有効期限が切れました", message),
            ErrorCode::NotLoggedIn => ("ログインしてください", message),
            ErrorCode::Forbidden => ("この操作は許可されていません", message),
            ErrorCode::TooManyAttempts => ("しばらくお待ちください", message),
            ErrorCode::TokenInvalid | ErrorCode::TokenExpired => ("リンクが無効です", message),
            _ if err.status() == StatusCode::BAD_REQUEST => ("入力内容に誤りがあります", message),
            _ => ("お手続きできません", message),
        };
        PageError {
            status: err.status(),
            heading,
            message,
            retry_after: err.retry_after(),
        }
    }
}

impl PageError {
    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound).into()
    }

    /// The same error under another heading (a page that knows better what went wrong).
    pub fn headed(self, heading: &'static str) -> Self {
        PageError { heading, ..self }
    }

    pub fn render(&self, layout: &LayoutView) -> Result<String, minijinja::Error> {
        templates::render_page(
            "error.html",
            layout,
            context! { status => self.status.as_u16(), heading => self.heading, message => self.message },
        )
    }

    /// The page, or a bare one should the template fail (an error page must not fail).
    pub fn render_body(&self, layout: &LayoutView) -> String {
        self.render(layout).unwrap_or_else(|e| {
            tracing::error!(error = %e, "error page did not render");
            "<!doctype html><html lang=\"ja\"><title>エラー</title><p>エラーが発生しました。</p></html>"
                .to_string()
        })
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Html(self.render_body(&LayoutView::default()))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// A rendered page as a response, or the error page if the template failed.
pub fn html_page(
    status: StatusCode,
    name: &str,
    layout: &LayoutView,
    context: minijinja::Value,
) -> Response {
    match templates::render_page(name, layout, context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(ApiError::internal("page did not render", &e)).into_response(),
    }
}

/// A form body of a page. A body that is not a form (or misses a field) is a 400 page,
/// never a 500 or axum's plain-text rejection. The `csrf` field was checked (and is
/// ignored here) by [`crate::web::csrf::verify`].
#[derive(Debug, Clone)]
pub struct PageForm<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(PageForm(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(ErrorCode::PayloadTooLarge).into())
            }
            Err(rejection) => Err(ApiError::invalid_input(rejection.body_text()).into()),
        }
    }
}

/// A 303 to `location`: after a form, the browser asks for the next page with GET.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

pub(crate) fn rendered(result: Result<String, minijinja::Error>) -> Response {
    match result {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::from(ApiError::internal("page did not render", &e)).into_response(),
    }
}
