//! The accounts path once more with both services on PostgreSQL (the deployments' store):
//! a counter registers and enables a patron, who logs in, changes the temporary password,
//! registers an address and opens its link; staff scoping holds.

mod common;

use common::{ADULT, Backend, NEW_PASSWORD, Options, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_patron_account_path_works_on_postgres() {
    let app = TestApp::spawn_with(Options {
        backend: Backend::Postgres,
        ..Options::default()
    })
    .await;
    let clerk = app.staff_of("yamada", &["yamaga"]).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/branches/ota/patrons",
            Some(&clerk),
            Some(json!({"name": "x", "name_reading": "x", "birth_date": ADULT, "id_document": "passport"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "rule S3");

    let card = app
        .register_patron(&clerk, "yamaga", "山香 花子", ADULT, None)
        .await;
    let temporary = app.enable_web_service(&clerk, "yamaga", &card).await;
    let token = app.patron_token(&card, &temporary).await;
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(me["temporary_password"], true);

    let reply = app
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(&token),
            Some(json!({"current_password": temporary, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.verify_email(&token, "hanako@example.jp").await;
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(me["email"], "hanako@example.jp");
    assert_eq!(me["temporary_password"], false);

    // The browser's side too: the banner is gone, マイページ shows the address.
    let mut browser = app.browser();
    browser.log_in(&card, NEW_PASSWORD).await;
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::OK);
    assert!(my.text.contains("hanako@example.jp"));
    assert!(!my.text.contains("仮パスワードのままご利用中です"));
}
