//! A patron's own loans and holds do not depend on the main library's circulation
//! instance alone (issue 8): the three instances share one database, so with
//! `circulation-kitsuki` down `GET /api/v1/me/loans`, `GET /api/v1/me/holds`, a renewal
//! (rule L2) and a cancellation (H10) are answered by the instances that are up.

mod common;

use common::{Options, TestApp};
use kitsuki_proto::Branch;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn with_the_kitsuki_instance_down_a_patron_still_reads_renews_and_cancels() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    app.title_with_copies(&admin, "吾輩は猫である", "book", &[("YM-0100", "yamaga")])
        .await;
    let wanted = app
        .title_with_copies(&admin, "こころ", "book", &[("OT-0100", "ota")])
        .await;
    let (card, _, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let clerk = app.staff_of("sato", &["yamaga", "ota"]).await;
    let other = app.borrower("大田 次郎").await;
    app.lend(&clerk, "ota", &other, "OT-0100").await;
    let loan = app.lend(&clerk, "yamaga", &card, "YM-0100").await;
    let hold = app
        .call(
            "POST",
            "/api/v1/me/holds",
            Some(&token),
            Some(json!({"title_id": wanted, "pickup_branch": "yamaga", "receipt_mail": false})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.text);
    let hold_id = hold.json()["hold_id"].as_str().unwrap().to_string();

    app.stop_circulation(Branch::Kitsuki).await;

    let loans = app
        .call("GET", "/api/v1/me/loans", Some(&token), None)
        .await;
    assert_eq!(loans.status, StatusCode::OK, "{}", loans.text);
    let loans = loans.json();
    assert_eq!(loans.as_array().unwrap().len(), 1, "{loans}");
    assert_eq!(loans[0]["loan_id"], loan["loan_id"]);
    assert_eq!(loans[0]["title"], "吾輩は猫である");

    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&token), None)
        .await;
    assert_eq!(holds.status, StatusCode::OK, "{}", holds.text);
    assert_eq!(holds.json()[0]["hold_id"], hold_id.as_str());

    // The API path names only the loan: the renewal goes to the main library's instance
    // first, which refuses the connection, so it never got there and goes on.
    let renewed = app
        .call(
            "POST",
            &format!(
                "/api/v1/me/loans/{}/renew",
                loan["loan_id"].as_str().unwrap()
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert_eq!(renewed.json()["renewed"], true);

    let cancelled = app
        .call(
            "DELETE",
            &format!("/api/v1/me/holds/{hold_id}"),
            Some(&token),
            None,
        )
        .await;
    assert!(
        cancelled.status.is_success(),
        "{} {}",
        cancelled.status,
        cancelled.text
    );
}
