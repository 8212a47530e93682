//! The counter's patron work over JSON (API.md "Staff") against the real patron-account
//! service: registration (rule P2), web-service enabling (P3, P4), at any branch counter
//! (S2) by staff assigned to it (S3).

mod common;

use common::{ADULT, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn new_patron(birth_date: &str) -> Value {
    json!({
        "name": "杵築 花子", "name_reading": "キツキ ハナコ", "birth_date": birth_date,
        "id_document": "health_insurance",
    })
}

#[tokio::test]
async fn p2_staff_register_a_patron_and_get_a_card_number() {
    let app = TestApp::spawn().await;
    let clerk = app.staff_of("yamada", &["yamaga"]).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/branches/yamaga/patrons",
            Some(&clerk),
            Some(new_patron(ADULT)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let card = reply.json()["card_number"].as_str().unwrap().to_string();
    assert!(
        card.len() == 7 && card.bytes().all(|b| b.is_ascii_digit()),
        "{card}"
    );
    let second = app
        .register_patron(&clerk, "yamaga", "山香 太郎", ADULT, None)
        .await;
    assert_ne!(card, second);
}

#[tokio::test]
async fn p9_an_address_given_at_the_counter_waits_for_its_link() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let card = app
        .register_patron(
            &admin,
            "kitsuki",
            "杵築 花子",
            ADULT,
            Some("hanako@example.jp"),
        )
        .await;
    let password = app.enable_web_service(&admin, "kitsuki", &card).await;
    let token = app.patron_token(&card, &password).await;
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(me["pending_email"], "hanako@example.jp");
    assert_eq!(me["email_verified"], false);
    let link = app.verification_token().await;
    let reply = app
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(json!({"token": link})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn p2_a_registration_is_refused_with_the_code_of_what_is_wrong() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let with = |key: &str, value: Value| {
        let mut body = new_patron(ADULT);
        body[key] = value;
        body
    };
    for (body, status, code) in [
        (
            with("birth_date", json!("2010-02-30")),
            StatusCode::BAD_REQUEST,
            "invalid_birth_date",
        ),
        (
            with("birth_date", json!("平成22年4月2日")),
            StatusCode::BAD_REQUEST,
            "invalid_birth_date",
        ),
        (
            with("id_document", json!("AB1234567")),
            StatusCode::BAD_REQUEST,
            "invalid_id_document",
        ),
        (
            with("name", json!(" ")),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            with("email", json!("hanako@hotmail.com")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "free_mail_domain",
        ),
        (
            json!({"name": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
    ] {
        let reply = app
            .call(
                "POST",
                "/api/v1/branches/kitsuki/patrons",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.code(), code, "{body}");
    }
    let reply = app
        .call(
            "POST",
            "/api/v1/branches/oita/patrons",
            Some(&admin),
            Some(new_patron(ADULT)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_branch");
}

#[tokio::test]
async fn s3_staff_of_yamaga_are_refused_at_ota_before_anything_is_read() {
    let app = TestApp::spawn().await;
    let clerk = app.staff_of("yamada", &["yamaga"]).await;
    let admin = app.admin_token().await;
    let card = app
        .register_patron(&admin, "ota", "大田 三郎", ADULT, None)
        .await;
    for (path, body) in [
        (
            "/api/v1/branches/ota/patrons".to_string(),
            Some(new_patron(ADULT)),
        ),
        (
            "/api/v1/branches/ota/patrons".to_string(),
            Some(json!({"nonsense": 1})),
        ),
        (
            format!("/api/v1/branches/ota/patrons/{card}/web-service"),
            None,
        ),
        (
            "/api/v1/branches/ota/patrons/not-a-card/web-service".to_string(),
            None,
        ),
    ] {
        let reply = app.call("POST", &path, Some(&clerk), body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.text
        );
        let body = reply.json();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(body["error"]["rule"], "S3");
    }
    // Rule S2: any counter, whatever the patron's home branch.
    let reply = app
        .call(
            "POST",
            &format!("/api/v1/branches/yamaga/patrons/{card}/web-service"),
            Some(&clerk),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let reply = app
        .call(
            "POST",
            "/api/v1/branches/yamaga/patrons",
            None,
            Some(new_patron(ADULT)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
}

#[tokio::test]
async fn p3_enabling_answers_the_temporary_password_once_and_p4_checks_the_age() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let card = app
        .register_patron(&admin, "kitsuki", "杵築 花子", ADULT, None)
        .await;
    let path = format!("/api/v1/branches/kitsuki/patrons/{card}/web-service");
    let reply = app.call("POST", &path, Some(&admin), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["card_number"], card.as_str());
    assert_eq!(body["name"], "杵築 花子");
    let first = body["temporary_password"].as_str().unwrap().to_string();
    assert!(first.len() >= 8);
    let session = app.patron_token(&card, &first).await;

    // A forgotten temporary password: a new one, and the old one and its sessions end.
    let second = app.enable_web_service(&admin, "kitsuki", &card).await;
    assert_ne!(first, second);
    assert_eq!(
        app.patron_login(&card, &first).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call("GET", "/api/v1/me", Some(&session), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.patron_login(&card, &second).await.status,
        StatusCode::OK
    );

    // Rule P4: a primary-school child cannot have web service.
    let child = app
        .register_patron(&admin, "kitsuki", "杵築 一郎", "2020-04-02", None)
        .await;
    let reply = app
        .call(
            "POST",
            &format!("/api/v1/branches/kitsuki/patrons/{child}/web-service"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), "not_eligible_age");

    let unknown = if card == "1000000" {
        "1000001"
    } else {
        "1000000"
    };
    for (card, status, code) in [
        (unknown, StatusCode::NOT_FOUND, "patron_not_found"),
        ("12-34", StatusCode::BAD_REQUEST, "invalid_card_number"),
    ] {
        let reply = app
            .call(
                "POST",
                &format!("/api/v1/branches/kitsuki/patrons/{card}/web-service"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(reply.status, status, "{card}: {}", reply.text);
        assert_eq!(reply.code(), code);
    }
}
