//! The JSON API's contract over HTTP, against in-process fake services (see
//! `test_support`): request forwarding, answer shapes, sessions and cookies, roles.

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use kitsuki_proto::catalog::MaterialType;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::routes::router;
use crate::state::AppState;
use crate::test_support::{MAGAZINE_ID, TITLE_ID, fake_state};

struct Call<'a> {
    method: &'a str,
    uri: &'a str,
    body: Option<Value>,
    headers: Vec<(&'a str, String)>,
    peer: Option<SocketAddr>,
}

fn call<'a>(method: &'a str, uri: &'a str) -> Call<'a> {
    Call {
        method,
        uri,
        body: None,
        headers: Vec::new(),
        peer: None,
    }
}

impl<'a> Call<'a> {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn peer(mut self, addr: &str) -> Self {
        self.peer = Some(addr.parse().unwrap());
        self
    }

    async fn send(self, state: &AppState) -> Response {
        let mut request = Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &self.headers {
            request = request.header(*k, v);
        }
        let body = match &self.body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        router(state.clone()).oneshot(request).await.unwrap()
    }
}

async fn body_json(response: Response) -> Value {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn search_forwards_the_checked_query_and_answers_summaries() {
    let (state, calls) = fake_state().await;
    let response = call(
        "GET",
        "/api/v1/titles?q=%E6%BC%B1%E7%9F%B3&type=book&branch=ota&available=true&page=2&per_page=10",
    )
    .send(&state)
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(
        (
            body["total"].clone(),
            body["page"].clone(),
            body["per_page"].clone()
        ),
        (json!(45), json!(2), json!(10))
    );
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["title"], "坊っちゃん");
    assert_eq!(hits[0]["holdable"], true, "rule H1: every copy out");
    assert_eq!(hits[1]["holdable"], false, "rule H1: a copy on the shelf");
    assert_eq!(hits[1]["hold_block"]["code"], "hold_available_copy");
    assert_eq!(
        hits[0]["availability"]["kitsuki"],
        json!({"total": 1, "available": 0})
    );

    let sent = calls.lock().unwrap().searches[0].clone();
    assert_eq!(sent.q, "漱石");
    assert_eq!(sent.r#type, MaterialType::Book as i32);
    assert_eq!(sent.branch, "ota");
    assert!(sent.available_only);
    assert_eq!((sent.page, sent.per_page), (2, 10));
}

#[tokio::test]
async fn search_defaults_to_page_1_of_20_and_browses_everything() {
    let (state, calls) = fake_state().await;
    let response = call("GET", "/api/v1/titles").send(&state).await;
    assert_eq!(response.status(), StatusCode::OK);
    let sent = calls.lock().unwrap().searches[0].clone();
    assert_eq!((sent.q.as_str(), sent.page, sent.per_page), ("", 1, 20));
    assert_eq!(sent.r#type, MaterialType::Unspecified as i32);
    assert_eq!(sent.branch, "");
}

#[tokio::test]
async fn a_title_has_its_items_with_status_and_due_date() {
    let (state, _) = fake_state().await;
    let response = call("GET", &format!("/api/v1/titles/{TITLE_ID}"))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["title_id"], TITLE_ID);
    assert_eq!(body["type"], "book");
    assert_eq!(body["holdable"], true);
    assert_eq!(
        body["items"],
        json!([
            {"barcode": "KT-0001", "branch": "kitsuki", "call_number": "913.6/ナ", "status": "on_loan", "due_date": "2025-02-01"},
            {"barcode": "OT-0001", "branch": "ota", "call_number": "913.6/ナ", "status": "in_transit", "due_date": null},
        ])
    );
}

#[tokio::test]
async fn hold_block_is_english_for_english_callers() {
    let (state, _) = fake_state().await;
    let response = call("GET", &format!("/api/v1/titles/{MAGAZINE_ID}"))
        .header("accept-language", "en")
        .send(&state)
        .await;
    let body = body_json(response).await;
    assert_eq!(body["holdable"], false);
    assert_eq!(
        body["hold_block"],
        json!({"code": "hold_material_type", "message": "Only books can be held on the web."})
    );
}

#[tokio::test]
async fn an_unknown_title_is_404_title_not_found() {
    let (state, _) = fake_state().await;
    let response = call("GET", "/api/v1/titles/0192f1c2-0000-7c3b-9d1e-0123456789ab")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(response).await["error"]["code"],
        "title_not_found"
    );
}

#[tokio::test]
async fn the_title_page_offers_a_hold_only_under_h1() {
    let (state, _) = fake_state().await;
    let html = body_text(
        call("GET", &format!("/titles/{TITLE_ID}"))
            .send(&state)
            .await,
    )
    .await;
    assert!(html.contains("予約申込"));
    assert!(html.contains("貸出中") && html.contains("搬送中"));
    let html = body_text(
        call("GET", &format!("/titles/{MAGAZINE_ID}"))
            .send(&state)
            .await,
    )
    .await;
    assert!(!html.contains("予約申込"));
    let response = call("GET", "/titles/0192f1c2-0000-7c3b-9d1e-0123456789ab")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_results_page_lists_hits_with_pagination() {
    let (state, _) = fake_state().await;
    let response = call("GET", "/search?q=%E6%BC%B1%E7%9F%B3&page=2")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = body_text(response).await;
    assert!(html.contains("45件"));
    assert!(html.contains("杵築 0/1 ・ 山香 — ・ 大田 —"));
    assert!(html.contains("前へ") && html.contains("次へ"));
}

#[tokio::test]
async fn staff_login_answers_the_session_and_sets_a_strict_http_only_cookie() {
    let (state, calls) = fake_state().await;
    let response = call("POST", "/api/v1/staff/session")
        .json(json!({"username": "admin", "password": "pw"}))
        .peer("203.0.113.9:50000")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let cookie = set_cookie(&response);
    assert!(cookie.starts_with("kitsuki_staff=admin-token"), "{cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Expires="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"));
    assert_eq!(
        body_json(response).await,
        json!({"token": "admin-token", "expires_at": "2030-01-01T09:00:00Z", "temporary_password": false})
    );
    assert_eq!(
        calls.lock().unwrap().logins[0],
        ("admin".to_string(), "203.0.113.9".to_string()),
        "the client address goes to the throttle (rule P13)"
    );
}

#[tokio::test]
async fn staff_login_without_connect_info_sends_an_empty_address() {
    let (state, calls) = fake_state().await;
    call("POST", "/api/v1/staff/session")
        .json(json!({"username": "clerk", "password": "pw"}))
        .send(&state)
        .await;
    assert_eq!(calls.lock().unwrap().logins[0].1, "");
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_site_is_https() {
    let (state, _) = fake_state().await;
    let state = state.with_secure_cookies(true);
    let response = call("POST", "/api/v1/staff/session")
        .json(json!({"username": "admin", "password": "pw"}))
        .send(&state)
        .await;
    assert!(set_cookie(&response).contains("Secure"));
}

#[tokio::test]
async fn bad_credentials_are_401_and_throttling_429_with_retry_after() {
    let (state, _) = fake_state().await;
    let response = call("POST", "/api/v1/staff/session")
        .json(json!({"username": "admin", "password": "wrong"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&response).is_empty());
    assert_eq!(
        body_json(response).await["error"]["code"],
        "bad_credentials"
    );

    let response = call("POST", "/api/v1/staff/session")
        .json(json!({"username": "locked", "password": "x"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "120");
    assert_eq!(body_json(response).await["error"]["rule"], "P13");
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let (state, calls) = fake_state().await;
    let response = call("DELETE", "/api/v1/staff/session")
        .header("cookie", "kitsuki_staff=admin-token")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookie = set_cookie(&response);
    assert!(cookie.starts_with("kitsuki_staff="), "{cookie}");
    assert!(
        cookie.contains("Max-Age=0") || cookie.contains("Expires="),
        "{cookie}"
    );
    assert_eq!(
        calls.lock().unwrap().logouts,
        vec!["admin-token".to_string()]
    );

    let response = call("DELETE", "/api/v1/staff/session")
        .bearer("clerk-token")
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(calls.lock().unwrap().logouts.len(), 2);
}

#[tokio::test]
async fn admin_creates_a_title_by_cookie_or_bearer() {
    let (state, calls) = fake_state().await;
    let new_title =
        json!({"title": "坊っちゃん", "author": "夏目漱石", "year": 1906, "type": "book"});
    let response = call("POST", "/api/v1/admin/titles")
        .header("cookie", "kitsuki_staff=admin-token")
        .json(new_title.clone())
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/api/v1/titles/{TITLE_ID}")
    );
    assert_eq!(body_json(response).await, json!({"title_id": TITLE_ID}));
    let sent = calls.lock().unwrap().new_titles[0].clone();
    assert_eq!(
        (sent.title.as_str(), sent.author.as_str(), sent.year),
        ("坊っちゃん", "夏目漱石", Some(1906))
    );

    let response = call("POST", "/api/v1/admin/titles")
        .bearer("admin-token")
        .json(new_title)
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn staff_without_the_admin_role_are_403_before_the_body_is_read() {
    let (state, calls) = fake_state().await;
    for path in [
        "/api/v1/admin/titles",
        "/api/v1/admin/items",
        "/api/v1/admin/staff",
    ] {
        let response = call("POST", path)
            .bearer("clerk-token")
            .json(json!({"nonsense": true}))
            .send(&state)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(body["error"]["rule"], "S3");
    }
    let calls = calls.lock().unwrap();
    assert!(
        calls.new_titles.is_empty() && calls.new_items.is_empty() && calls.new_staff.is_empty()
    );
}

#[tokio::test]
async fn an_invalid_or_expired_session_is_401_not_logged_in() {
    let (state, _) = fake_state().await;
    let response = call("POST", "/api/v1/admin/titles")
        .bearer("stale-token")
        .json(json!({"title": "x", "type": "book"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(response).await["error"]["code"], "not_logged_in");
}

#[tokio::test]
async fn admin_creates_an_item_with_its_barcode_upper_cased() {
    let (state, calls) = fake_state().await;
    let response = call("POST", "/api/v1/admin/items")
        .bearer("admin-token")
        .json(json!({"title_id": TITLE_ID, "barcode": "kt-0100", "branch": "yamaga", "call_number": "913.6/ナ"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        body_json(response).await,
        json!({"title_id": TITLE_ID, "barcode": "KT-0100", "branch": "yamaga", "call_number": "913.6/ナ", "status": "available", "due_date": null})
    );
    assert_eq!(calls.lock().unwrap().new_items[0].barcode, "KT-0100");

    let response = call("POST", "/api/v1/admin/items")
        .bearer("admin-token")
        .json(json!({"title_id": TITLE_ID, "barcode": "TAKEN", "branch": "ota"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(body_json(response).await["error"]["code"], "barcode_taken");

    let response = call("POST", "/api/v1/admin/items")
        .bearer("admin-token")
        .json(json!({"title_id": TITLE_ID, "barcode": "X", "branch": "oita"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(response).await["error"]["code"], "invalid_branch");
}

#[tokio::test]
async fn admin_creates_staff_recording_the_actor() {
    let (state, calls) = fake_state().await;
    let response = call("POST", "/api/v1/admin/staff")
        .bearer("admin-token")
        .json(json!({"username": "sato", "password": "long enough", "branches": ["yamaga"], "role": "staff"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = body_json(response).await;
    assert_eq!(
        body,
        json!({"username": "sato", "branches": ["yamaga"], "role": "staff"})
    );
    assert!(
        !body.to_string().contains("long enough"),
        "never echo a password"
    );
    let sent = calls.lock().unwrap().new_staff[0].clone();
    assert_eq!(sent.actor, "admin", "rule S3: who did it");

    let response = call("POST", "/api/v1/admin/staff")
        .bearer("admin-token")
        .json(json!({"username": "taken", "password": "x", "branches": ["ota"], "role": "staff"}))
        .send(&state)
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(body_json(response).await["error"]["code"], "username_taken");
}
