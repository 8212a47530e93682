//! Staff sessions and administration over HTTP against the real patron-account service
//! (API.md "Staff", "Catalogue administration"; rules S3, P13).

mod common;

use common::{ADMIN_PASSWORD, Options, TestApp, assert_security_headers};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn staff_login_answers_the_session_and_sets_a_strict_http_only_cookie() {
    let app = TestApp::spawn().await;
    let reply = app
        .call(
            "POST",
            "/api/v1/staff/session",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    let token = body["token"].as_str().unwrap();
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["temporary_password"], false);
    let cookie = reply.set_cookie("kitsuki_staff").unwrap();
    assert!(
        cookie.starts_with(&format!("kitsuki_staff={token}")),
        "{cookie}"
    );
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Expires="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"));
}

#[tokio::test]
async fn every_cookie_is_secure_when_the_site_is_https() {
    let app = TestApp::spawn_with(Options {
        secure_cookies: true,
        ..Options::default()
    })
    .await;
    let reply = app
        .call(
            "POST",
            "/api/v1/staff/session",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert!(
        reply
            .set_cookie("kitsuki_staff")
            .unwrap()
            .contains("Secure")
    );
    let (card, password) = app.web_patron("杵築 花子").await;
    let reply = app.patron_login(&card, &password).await;
    assert!(
        reply
            .set_cookie("kitsuki_session")
            .unwrap()
            .contains("Secure")
    );
    let mut browser = app.browser();
    let page = browser.get("/login").await;
    assert!(page.set_cookie("kitsuki_csrf").unwrap().contains("Secure"));
    let reply = browser.log_in(&card, &password).await;
    assert!(
        reply
            .set_cookie("kitsuki_session")
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn p13_bad_credentials_are_401_and_repeated_failures_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let wrong = json!({"username": "admin", "password": "wrong"});
    let reply = app
        .call("POST", "/api/v1/staff/session", None, Some(wrong.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.set_cookie("kitsuki_staff"), None);
    assert_eq!(reply.code(), "bad_credentials");
    let mut last = reply;
    for _ in 0..10 {
        last = app
            .call("POST", "/api/v1/staff/session", None, Some(wrong.clone()))
            .await;
        if last.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.text);
    let wait: u64 = last.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0);
    assert_eq!(last.json()["error"]["rule"], "P13");
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let reply = app
        .request("DELETE", "/api/v1/staff/session", |r| {
            r.header("cookie", format!("kitsuki_staff={token}"))
                .header("content-type", "application/json")
        })
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let cookie = reply.set_cookie("kitsuki_staff").unwrap();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&token),
            Some(json!({"title": "x", "type": "book"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");

    // Without a session, or with the ended one, it is 401 (the OpenAPI contract, issue 8).
    let reply = app
        .call("DELETE", "/api/v1/staff/session", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
    let reply = app
        .call("DELETE", "/api/v1/staff/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
}

#[tokio::test]
async fn a_cookie_call_that_changes_something_must_be_json() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // What a form of another origin could send: the cookie, and no JSON content type.
    let reply = app
        .request("POST", "/api/v1/admin/titles", |r| {
            r.header("cookie", format!("kitsuki_staff={token}"))
                .header("content-type", "text/plain")
                .body(r#"{"title": "x", "type": "book"}"#)
        })
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(reply.code(), "csrf_failed");
    let reply = app
        .request("DELETE", "/api/v1/staff/session", |r| {
            r.header("cookie", format!("kitsuki_staff={token}"))
        })
        .await;
    assert_eq!(reply.code(), "csrf_failed");

    // The same call as a page's script would make it: accepted.
    let reply = app
        .request("POST", "/api/v1/admin/titles", |r| {
            r.header("cookie", format!("kitsuki_staff={token}"))
                .json(&json!({"title": "坊っちゃん", "type": "book"}))
        })
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn s3_staff_without_the_admin_role_are_403_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let clerk = app.staff_of("clerk", &["yamaga"]).await;
    for path in [
        "/api/v1/admin/titles",
        "/api/v1/admin/items",
        "/api/v1/admin/staff",
    ] {
        let reply = app
            .call("POST", path, Some(&clerk), Some(json!({"nonsense": true})))
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        let body = reply.json();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(body["error"]["rule"], "S3");
    }
    let reply = app.call("GET", "/api/v1/titles", None, None).await;
    assert_eq!(reply.json()["total"], 0, "nothing was created");
}

#[tokio::test]
async fn an_unknown_session_is_401_not_logged_in() {
    let app = TestApp::spawn().await;
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some("stale-token"),
            Some(json!({"title": "x", "type": "book"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
    assert_security_headers(&reply, "401");
}

#[tokio::test]
async fn admin_creates_staff_who_can_log_in_and_names_are_unique() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/staff",
            Some(&admin),
            Some(json!({"username": "sato", "password": "long enough 123", "branches": ["ota", "yamaga"], "role": "staff"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let body = reply.json();
    assert_eq!(
        body,
        json!({"username": "sato", "branches": ["yamaga", "ota"], "role": "staff"})
    );
    assert!(!reply.text.contains("long enough"), "never echo a password");
    app.staff_login("sato", "long enough 123").await;

    let reply = app
        .call(
            "POST",
            "/api/v1/admin/staff",
            Some(&admin),
            Some(json!({"username": "sato", "password": "another one 456", "branches": ["ota"], "role": "staff"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "username_taken");
}
