//! The router: every page and API route the gateway serves, listed once in
//! [`SERVED_ROUTES`]. The router is built from that list, so the list (which the OpenAPI
//! test checks against the document) cannot drift from what is served.

use axum::http::Uri;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Router, http::header};
use kitsuki_proto::ErrorCode;

use crate::api::{admin, catalog, staff};
use crate::error::{ApiError, ErrorBody, localize};
use crate::pages::{self, PageError};
use crate::security::security_headers_layer;
use crate::state::AppState;

/// Every (method, path) the router serves, in axum's path syntax (which is also
/// OpenAPI's). `/healthz`, `/readyz` and `/metrics` are served by the binary.
pub const SERVED_ROUTES: &[(&str, &str)] = &[
    // Pages.
    ("GET", "/"),
    ("GET", "/search"),
    ("GET", "/titles/{title_id}"),
    ("GET", "/titles/{title_id}/hold"),
    ("GET", "/login"),
    ("GET", "/static/site.css"),
    // JSON API.
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/titles"),
    ("GET", "/api/v1/titles/{title_id}"),
    ("POST", "/api/v1/staff/session"),
    ("DELETE", "/api/v1/staff/session"),
    ("POST", "/api/v1/admin/titles"),
    ("POST", "/api/v1/admin/items"),
    ("POST", "/api/v1/admin/staff"),
];

/// The handler of one entry of [`SERVED_ROUTES`].
fn handler_for(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("GET", "/") => get(pages::index),
        ("GET", "/search") => get(pages::search),
        ("GET", "/titles/{title_id}") => get(pages::title),
        ("GET", "/titles/{title_id}/hold") => get(pages::hold),
        ("GET", "/login") => get(pages::login),
        ("GET", "/static/site.css") => get(pages::site_css),
        ("GET", "/api/v1/openapi.json") => get(crate::openapi::serve),
        ("GET", "/api/v1/titles") => get(catalog::search_titles),
        ("GET", "/api/v1/titles/{title_id}") => get(catalog::get_title),
        ("POST", "/api/v1/staff/session") => post(staff::login),
        ("DELETE", "/api/v1/staff/session") => delete(staff::logout),
        ("POST", "/api/v1/admin/titles") => post(admin::create_title),
        ("POST", "/api/v1/admin/items") => post(admin::create_item),
        ("POST", "/api/v1/admin/staff") => post(admin::create_staff),
        // Only reachable by adding a route to the list without a handler; the router test
        // builds the router and so fails first.
        _ => panic!("no handler for {method} {path} in SERVED_ROUTES"),
    }
}

/// The gateway's application routes with their error handling and security headers.
/// The binary merges `/healthz`, `/readyz` and `/metrics` beside it.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (method, path) in SERVED_ROUTES {
        router = router.route(path, handler_for(method, path));
    }
    router
        // After the routes: it applies to the routes present when it is called.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn(localize))
        .layer(security_headers_layer())
        .with_state(state)
}

fn is_api(uri: &Uri) -> bool {
    let path = uri.path();
    path == "/api" || path.starts_with("/api/")
}

/// Unknown paths: JSON `not_found` under `/api`, a Japanese page elsewhere.
async fn not_found(uri: Uri) -> Response {
    if is_api(&uri) {
        ApiError::new(ErrorCode::NotFound).into_response()
    } else {
        PageError::not_found().into_response()
    }
}

/// A known path with a method it does not serve: 405 (axum adds `Allow`).
async fn method_not_allowed(uri: Uri) -> Response {
    if is_api(&uri) {
        ErrorBody::method_not_allowed().into_response()
    } else {
        let mut response = PageError {
            status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
            heading: "この操作はできません",
            message: "このページではこの操作はできません。",
        }
        .into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            "no-store".parse().expect("static header"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::CONTENT_SECURITY_POLICY;
    use crate::test_support::unreachable_state;
    use axum::body::{Body, to_bytes};
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    async fn send(method: &str, uri: &str, body: Option<&str>) -> Response {
        send_with(method, uri, body, &[]).await
    }

    async fn send_with(
        method: &str,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
            .unwrap();
        router(unreachable_state()).oneshot(request).await.unwrap()
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }

    async fn text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn concrete(path: &str) -> String {
        path.replace("{title_id}", crate::test_support::TITLE_ID)
    }

    #[tokio::test]
    async fn every_served_route_reaches_its_handler() {
        for (method, path) in SERVED_ROUTES {
            let body = (*method == "POST").then_some("{}");
            let response = send(method, &concrete(path), body).await;
            let status = response.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if path.starts_with("/api/") && status == StatusCode::NOT_FOUND {
                let body = json(response).await;
                assert_ne!(
                    body["error"]["code"], "not_found",
                    "{method} {path} fell through"
                );
            }
        }
    }

    #[tokio::test]
    async fn unknown_api_paths_answer_json_not_found() {
        let response = send("GET", "/api/v1/nothing-here", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(json(response).await["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn unknown_pages_answer_a_japanese_page() {
        let response = send("GET", "/nothing-here", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(text(response).await.contains("ページが見つかりません"));
    }

    #[tokio::test]
    async fn a_wrong_method_answers_405_json_with_allow() {
        let response = send("PUT", "/api/v1/titles", Some("{}")).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().contains_key(header::ALLOW));
        assert_eq!(json(response).await["error"]["code"], "method_not_allowed");
    }

    #[tokio::test]
    async fn every_response_carries_the_security_headers() {
        for (method, uri) in [
            ("GET", "/"),
            ("GET", "/static/site.css"),
            ("GET", "/api/v1/titles?page=0"),
            ("GET", "/api/v1/nothing"),
            ("GET", "/nothing"),
            ("PUT", "/api/v1/titles"),
        ] {
            let response = send(method, uri, None).await;
            let h = response.headers();
            assert_eq!(
                h[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY,
                "{uri}"
            );
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{uri}");
        }
    }

    #[tokio::test]
    async fn bad_search_queries_are_400_not_500() {
        for (uri, code) in [
            ("/api/v1/titles?page=0", "invalid_input"),
            ("/api/v1/titles?per_page=1000", "invalid_input"),
            ("/api/v1/titles?type=xyz", "invalid_input"),
            ("/api/v1/titles?available=maybe", "invalid_input"),
            ("/api/v1/titles?branch=oita", "invalid_branch"),
            ("/api/v1/titles?page=1&page=2", "invalid_input"),
        ] {
            let response = send("GET", uri, None).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            let body = json(response).await;
            assert_eq!(body["error"]["code"], code, "{uri}");
        }
    }

    #[tokio::test]
    async fn bad_search_pages_are_japanese_400_pages() {
        let response = send("GET", "/search?page=0", None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(text(response).await.contains("検索条件に誤りがあります"));
    }

    #[tokio::test]
    async fn errors_are_english_when_asked() {
        let response = send_with(
            "GET",
            "/api/v1/titles?type=xyz",
            None,
            &[("accept-language", "en-US")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = json(response).await;
        assert_eq!(
            body["error"]["message"],
            ErrorCode::InvalidInput.message_en()
        );
    }

    #[tokio::test]
    async fn malformed_json_bodies_are_400_invalid_input() {
        for (body, content_type) in [
            ("{not json", "application/json"),
            ("{\"username\": 1}", "application/json"),
            ("{}", "application/json"),
            ("username=a&password=b", "application/x-www-form-urlencoded"),
        ] {
            let response = send_with(
                "POST",
                "/api/v1/staff/session",
                Some(body),
                &[("content-type", content_type)],
            )
            .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                json(response).await["error"]["code"],
                "invalid_input",
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn admin_routes_need_a_staff_session() {
        for path in [
            "/api/v1/admin/titles",
            "/api/v1/admin/items",
            "/api/v1/admin/staff",
        ] {
            let response = send("POST", path, Some("{}")).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(json(response).await["error"]["code"], "not_logged_in");
        }
    }

    #[tokio::test]
    async fn a_down_service_is_503_for_the_api_and_a_friendly_page() {
        let response = send("GET", "/api/v1/titles?q=x", None).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(!body.to_string().contains("127.0.0.1"));

        let response = send("GET", "/search?q=x", None).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            text(response)
                .await
                .contains("ただいまご利用いただけません")
        );

        // A session token to check with a down patron service is 503, not 401.
        let response = send_with(
            "POST",
            "/api/v1/admin/titles",
            Some("{}"),
            &[("authorization", "Bearer abc")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_title_id_that_is_not_a_uuid_is_title_not_found() {
        let response = send("GET", "/api/v1/titles/not-a-uuid", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(json(response).await["error"]["code"], "title_not_found");
        let response = send("GET", "/titles/not-a-uuid", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(text(response).await.contains("資料が見つかりません"));
    }

    #[tokio::test]
    async fn the_stylesheet_is_cached_long() {
        let response = send("GET", "/static/site.css", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert!(
            response.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
    }

    #[tokio::test]
    async fn the_top_page_has_the_search_form() {
        let response = send("GET", "/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = text(response).await;
        assert!(html.contains("action=\"/search\""));
        assert!(html.contains("method=\"get\""));
        assert!(html.contains("貸出可能のみ"));
        assert!(html.contains("杵築市立図書館 蔵書検索"));
    }

    #[tokio::test]
    async fn the_hold_link_leads_to_the_login_page_for_now() {
        let response = send("GET", &concrete("/titles/{title_id}/hold"), None).await;
        assert!(response.status().is_redirection());
        assert_eq!(response.headers()[header::LOCATION], "/login");
    }

    #[tokio::test]
    async fn logout_without_a_session_is_204() {
        let response = send("DELETE", "/api/v1/staff/session", None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}
