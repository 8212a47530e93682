//! A service behind the gateway that is down (its client points at a closed port): 503,
//! as JSON for the API and as a Japanese page for people, never with the address or the
//! transport's words; and pages that need only the other service keep working.

mod common;

use common::{Options, TestApp, assert_security_headers};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_down_patron_service_is_503_and_the_catalogue_still_serves() {
    let app = TestApp::spawn_with(Options {
        patron_down: true,
        ..Options::default()
    })
    .await;
    let reply = app.patron_login("1234567", "whatever-password").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code(), "unavailable");
    assert!(!reply.text.contains("127.0.0.1"));
    assert_security_headers(&reply, "503");

    // A token to check with a down service is a 503, not a 401.
    for (method, path) in [("GET", "/api/v1/me"), ("POST", "/api/v1/admin/titles")] {
        let reply = app
            .call(
                method,
                path,
                Some("some-token"),
                Some(json!({"title": "x", "type": "book"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets",
            None,
            Some(json!({"card_number": "1234567", "email": "a@example.jp"})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "rule P11 cannot hide an outage"
    );

    // Pages: the login page needs nobody; logging in does.
    let mut browser = app.browser();
    let reply = browser
        .fill(
            "/login",
            "/login",
            &[("card_number", "1234567"), ("password", "whatever")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.text.contains("ただいまご利用いただけません"));

    // A browser with a session cookie: the catalogue pages carry on, account pages say why.
    browser
        .cookies
        .insert("kitsuki_session".into(), "some-token".into());
    let top = browser.get("/").await;
    assert_eq!(top.status, StatusCode::OK);
    assert!(top.text.contains("蔵書検索"));
    let search = browser.get("/search?q=x").await;
    assert_eq!(search.status, StatusCode::OK);
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(my.text.contains("ただいまご利用いただけません"));
}

#[tokio::test]
async fn a_down_catalog_is_503_for_the_api_and_a_friendly_page() {
    let app = TestApp::spawn_with(Options {
        catalog_down: true,
        ..Options::default()
    })
    .await;
    let reply = app.call("GET", "/api/v1/titles?q=x", None, None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code(), "unavailable");
    assert!(!reply.text.contains("127.0.0.1"));
    let reply = app.request("GET", "/search?q=x", |r| r).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.text.contains("ただいまご利用いただけません"));
    // The account side does not need the catalogue.
    let (card, password) = app.web_patron("杵築 花子").await;
    assert_eq!(
        app.patron_login(&card, &password).await.status,
        StatusCode::OK
    );
}
