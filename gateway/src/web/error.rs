//! The one error shape of the JSON API (API.md "Errors"):
//! `{"error": {"code", "message", "rule"}}` with the HTTP status of the shared
//! [`ErrorCode`] table, the message in Japanese, or English when the request's
//! `Accept-Language` starts with `en`.
//!
//! Errors are made in places that cannot see the request (extractor rejections, gRPC
//! conversions), so a response first carries the Japanese body plus an [`ErrorBody`]
//! extension, and the [`localize`] middleware re-renders it in English when asked. 5xx
//! bodies never say more than the table's message; the cause is logged once, where the
//! error is made.

use std::convert::Infallible;
use std::fmt;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kitsuki_proto::{ErrorCode, IdError, ServiceError};
use serde_json::json;

/// The language of the messages of an answer. Pages are Japanese only; the JSON API
/// answers in English to callers that ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    /// English when `Accept-Language` starts with `en` (`en`, `en-US,en;q=0.9`); Japanese
    /// otherwise, since the library's patrons read Japanese first.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let english = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("en"));
        if english { Lang::En } else { Lang::Ja }
    }

    pub fn message(self, code: ErrorCode) -> &'static str {
        match self {
            Lang::Ja => code.message_ja(),
            Lang::En => code.message_en(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_headers(&parts.headers))
    }
}

/// How long a throttled caller is told to wait when the service does not say (rule P13).
const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// Metadata key a service may set on a `too_many_attempts` status to say how many seconds
/// the caller should wait.
const RETRY_AFTER_METADATA_KEY: &str = "retry-after";

/// A refusal or failure of the JSON API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    /// Which input was wrong, written by the gateway for 4xx answers. Never the text of a
    /// service's status (it might say more than a patron may know, rule P13).
    detail: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_detail(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            detail: Some(detail.into()),
            ..ApiError::new(code)
        }
    }

    /// 400 `invalid_input`, saying which input was wrong.
    pub fn invalid_input(detail: impl Into<String>) -> Self {
        ApiError::with_detail(ErrorCode::InvalidInput, detail)
    }

    /// A failure inside the gateway: logged here, answered as a bare `internal`.
    pub fn internal(context: &str, err: &dyn fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        ApiError::new(ErrorCode::Internal)
    }

    /// Maps the status of a failed gRPC call through the shared table. A 5xx is logged here
    /// with the status text, which then goes no further.
    pub fn from_status(status: &tonic::Status) -> Self {
        let service = ServiceError::from_status(status);
        let code = service.code;
        if code.http_status() >= 500 {
            if code == ErrorCode::Unavailable {
                tracing::warn!(grpc_code = ?status.code(), grpc_message = status.message(), "service unavailable");
            } else {
                tracing::error!(grpc_code = ?status.code(), grpc_message = status.message(), "service call failed");
            }
        }
        let retry_after = (code == ErrorCode::TooManyAttempts).then(|| {
            status
                .metadata()
                .get(RETRY_AFTER_METADATA_KEY)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
        });
        ApiError {
            code,
            detail: None,
            retry_after,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Rule P13: seconds a throttled caller should wait (only for `too_many_attempts`).
    pub fn retry_after(&self) -> Option<u64> {
        (self.code == ErrorCode::TooManyAttempts)
            .then(|| self.retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS))
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body of this error in `lang`.
    pub fn body(&self, lang: Lang) -> serde_json::Value {
        self.error_body().json(lang)
    }

    fn error_body(&self) -> ErrorBody {
        let server_side = self.code.http_status() >= 500;
        ErrorBody {
            status: self.status(),
            code: self.code.as_str(),
            message_ja: self.code.message_ja(),
            message_en: self.code.message_en(),
            rule: self.code.rule(),
            detail: if server_side {
                None
            } else {
                self.detail.clone()
            },
            retry_after: self.retry_after(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        ApiError::from_status(&status)
    }
}

impl From<IdError> for ApiError {
    fn from(err: IdError) -> Self {
        let detail = err.to_string();
        let code = ServiceError::from(err).code;
        ApiError::with_detail(code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.error_body().into_response()
    }
}

/// An error answer ready to render in either language. Also the response extension that
/// [`localize`] looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    status: StatusCode,
    code: &'static str,
    message_ja: &'static str,
    message_en: &'static str,
    rule: Option<&'static str>,
    detail: Option<String>,
    retry_after: Option<u64>,
}

impl ErrorBody {
    /// 405 for a known path asked with a method it does not serve.
    pub fn method_not_allowed() -> Self {
        ApiError::new(ErrorCode::MethodNotAllowed).error_body()
    }

    pub fn json(&self, lang: Lang) -> serde_json::Value {
        let message = match lang {
            Lang::Ja => self.message_ja,
            Lang::En => self.message_en,
        };
        let mut error = json!({ "code": self.code, "message": message, "rule": self.rule });
        if let Some(detail) = &self.detail {
            error["detail"] = json!(detail);
        }
        json!({ "error": error })
    }

    fn render(&self, lang: Lang) -> Response {
        let mut response = (self.status, Json(self.json(lang))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self.clone());
        response
    }
}

impl IntoResponse for ErrorBody {
    fn into_response(self) -> Response {
        self.render(Lang::Ja)
    }
}

/// Middleware: re-renders JSON error bodies in English for callers whose
/// `Accept-Language` starts with `en`. Other responses pass untouched.
pub async fn localize(request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let response = next.run(request).await;
    if lang == Lang::Ja {
        return response;
    }
    match response.extensions().get::<ErrorBody>().cloned() {
        Some(body) => {
            let (mut parts, _) = response.into_parts();
            let fresh = body.render(lang);
            // The inner route already set a Content-Length for the Japanese body.
            parts.headers.remove(header::CONTENT_LENGTH);
            let (_, new_body) = fresh.into_parts();
            Response::from_parts(parts, Body::new(new_body))
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_error_code_answers_its_table_status_and_the_api_md_shape() {
        for code in ErrorCode::ALL {
            let response = ApiError::new(*code).into_response();
            assert_eq!(
                response.status().as_u16(),
                code.http_status(),
                "{}",
                code.as_str()
            );
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{}",
                code.as_str()
            );
            let body = json_of(response).await;
            let error = body["error"].as_object().unwrap();
            assert_eq!(error["code"], code.as_str());
            assert_eq!(error["message"], code.message_ja());
            assert_eq!(error["rule"], json!(code.rule()));
            assert!(
                error
                    .keys()
                    .all(|k| ["code", "message", "rule"].contains(&k.as_str()))
            );
        }
    }

    #[test]
    fn every_error_code_has_a_message_in_each_language() {
        for code in ErrorCode::ALL {
            let ja = ApiError::new(*code).body(Lang::Ja);
            let en = ApiError::new(*code).body(Lang::En);
            assert_eq!(ja["error"]["message"], code.message_ja());
            assert_eq!(en["error"]["message"], code.message_en());
            assert_eq!(ja["error"]["code"], en["error"]["code"]);
        }
    }

    #[test]
    fn accept_language_starting_with_en_selects_english() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::from_headers(&headers), Lang::Ja);
        for (value, lang) in [
            ("en", Lang::En),
            ("en-US,en;q=0.9", Lang::En),
            ("EN-gb", Lang::En),
            ("ja,en;q=0.8", Lang::Ja),
            ("ja-JP", Lang::Ja),
            ("fr", Lang::Ja),
        ] {
            headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(value));
            assert_eq!(Lang::from_headers(&headers), lang, "{value}");
        }
    }

    #[test]
    fn a_service_status_maps_through_the_shared_table() {
        for code in ErrorCode::ALL {
            let status: tonic::Status = ServiceError::with_detail(*code, "which card").into();
            let err = ApiError::from_status(&status);
            assert_eq!(err.code(), *code);
            assert_eq!(err.status().as_u16(), code.http_status());
            // A service's own words never reach the caller (rule P13: a refusal must not
            // reveal whether a card exists).
            assert_eq!(err.body(Lang::Ja)["error"].get("detail"), None);
        }
    }

    #[test]
    fn a_5xx_says_nothing_internal() {
        let status = tonic::Status::internal("duplicate key value violates unique constraint");
        let body = ApiError::from_status(&status).body(Lang::En);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("duplicate"));

        let status = tonic::Status::unavailable("connection refused to 10.0.0.1:50051");
        let err = ApiError::from_status(&status);
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!err.body(Lang::Ja).to_string().contains("10.0.0.1"));

        let err = ApiError::with_detail(ErrorCode::Internal, "secret path /var/lib/x");
        assert!(!err.body(Lang::Ja).to_string().contains("/var/lib"));
    }

    #[test]
    fn a_4xx_made_by_the_gateway_says_which_input_was_wrong() {
        let body = ApiError::invalid_input("per_page must be 1-100").body(Lang::Ja);
        assert_eq!(body["error"]["code"], "invalid_input");
        assert_eq!(body["error"]["detail"], "per_page must be 1-100");
    }

    #[tokio::test]
    async fn too_many_attempts_carries_retry_after() {
        let response = ApiError::new(ErrorCode::TooManyAttempts).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");

        let mut status: tonic::Status = ServiceError::new(ErrorCode::TooManyAttempts).into();
        status
            .metadata_mut()
            .insert(RETRY_AFTER_METADATA_KEY, "300".parse().unwrap());
        let response = ApiError::from_status(&status).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "300");
    }

    #[test]
    fn id_errors_get_their_specific_codes() {
        assert_eq!(
            ApiError::from(IdError::UnknownBranch("oita".into())).code(),
            ErrorCode::InvalidBranch
        );
        assert_eq!(
            ApiError::from(IdError::InvalidBarcode).code(),
            ErrorCode::InvalidBarcode
        );
        assert_eq!(
            ApiError::from(IdError::InvalidTitleId).code(),
            ErrorCode::TitleNotFound
        );
    }

    #[tokio::test]
    async fn localize_re_renders_errors_in_english_only_when_asked() {
        use axum::{Router, middleware, routing::get};
        use tower::ServiceExt;

        let app = Router::new()
            .route(
                "/x",
                get(|| async { ApiError::new(ErrorCode::TitleNotFound) }),
            )
            .layer(middleware::from_fn(localize));
        for (accept, message) in [
            (None, ErrorCode::TitleNotFound.message_ja()),
            (Some("en-US"), ErrorCode::TitleNotFound.message_en()),
            (Some("ja"), ErrorCode::TitleNotFound.message_ja()),
        ] {
            let mut request = Request::builder().uri("/x");
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT_LANGUAGE, accept);
            }
            let response = app
                .clone()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            let body = json_of(response).await;
            assert_eq!(body["error"]["message"], message);
            assert_eq!(body["error"]["code"], "title_not_found");
        }
    }
}
