//! The accounts path once more with both services on PostgreSQL (the deployments' store):
//! a counter registers and enables a patron, who logs in, changes the temporary password,
//! registers an address and opens its link; staff scoping holds. And circulation's three
//! instances on one PostgreSQL database: a web hold picked up at Ōta on a title whose copy
//! is out, the copy returned at Yamaga travels there (rule H7), and a renewal (L2).

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

#[tokio::test]
async fn the_circulation_path_works_on_postgres_with_three_instances_on_one_database() {
    let app = TestApp::spawn_with(Options {
        backend: Backend::Postgres,
        ..Options::circulation()
    })
    .await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("YM-0001", "yamaga")])
        .await;
    app.title_with_copies(&admin, "こころ", "book", &[("KT-0001", "kitsuki")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "yamaga", &reader, "YM-0001").await;
    app.title_all_out(&title).await;
    let (card, _, token) = app.hold_patron("大田 花子", "hanako@example.jp").await;
    let hold = app
        .call(
            "POST",
            "/api/v1/me/holds",
            Some(&token),
            Some(json!({"title_id": title, "pickup_branch": "ota", "receipt_mail": false})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.text);
    let hold_id = hold.json()["hold_id"].as_str().unwrap().to_string();

    let yamaga = app.staff_of("yamada", &["yamaga"]).await;
    let routed = app
        .desk(&yamaga, "yamaga", "checkins", json!({"barcode": "YM-0001"}))
        .await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.text);
    let routed = routed.json();
    assert_eq!(routed["routing"], "transit");
    assert_eq!(routed["to_branch"], "ota");
    assert_eq!(routed["hold_id"], hold_id.as_str());
    let reply = app
        .desk(&yamaga, "ota", "checkins", json!({"barcode": "YM-0001"}))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "rule S3");
    let shelved = app
        .desk(&admin, "ota", "checkins", json!({"barcode": "YM-0001"}))
        .await
        .json();
    assert_eq!(shelved["routing"], "hold_shelf");
    assert_eq!(shelved["hold_id"], hold_id.as_str());

    let loan = app.lend(&admin, "kitsuki", &card, "KT-0001").await;
    let path = format!(
        "/api/v1/me/loans/{}/renew",
        loan["loan_id"].as_str().unwrap()
    );
    let reply = app.call("POST", &path, Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = app.call("POST", &path, Some(&token), None).await;
    assert_eq!(reply.code(), "renewal_already_renewed");
    let loans = app
        .call("GET", "/api/v1/me/loans", Some(&token), None)
        .await
        .json();
    assert_eq!(loans[0]["renew_block"]["code"], "renewal_already_renewed");
}
