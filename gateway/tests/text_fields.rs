//! Text fields through the API on both backends (API.md "Text fields"): a NUL or another
//! control character in a title, a name, a call number, a staff user name or an address is
//! 400 `invalid_text`, a value over its limit 400 `text_too_long`, never a 500 (PostgreSQL
//! cannot store a NUL) nor a 201 (SQLite would), and nothing is stored.

mod common;

use common::{ADULT, Backend, Options, TestApp};
use kitsuki_platform::on_both_backends;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    catalogue_text_with_a_control_character_is_invalid_text,
    catalogue_text_over_its_limit_is_text_too_long,
    patron_and_staff_text_is_checked_too,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(Options {
        backend,
        ..Options::default()
    })
    .await
}

fn assert_refused(reply: &common::Reply, code: &str, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.code(), code, "{what}: {}", reply.text);
}

/// Control characters of every kind the check refuses.
const BAD: &[&str] = &[
    "\u{0}", "\t", "\n", "\u{1b}", "\u{7f}", "\u{85}", "\u{ffff}",
];

async fn catalogue_text_with_a_control_character_is_invalid_text(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    for bad in BAD {
        for field in ["title", "title_reading", "author", "publisher"] {
            let mut body = json!({"title": "坊っちゃん", "type": "book"});
            body[field] = json!(format!("夏目{bad}漱石"));
            let reply = app
                .call("POST", "/api/v1/admin/titles", Some(&admin), Some(body))
                .await;
            assert_refused(&reply, "invalid_text", &format!("{field} {bad:?}"));
        }
    }
    let search = app.call("GET", "/api/v1/titles?q=漱石", None, None).await;
    assert_eq!(
        search.json()["total"],
        0,
        "nothing was stored: {}",
        search.text
    );

    // An item's call number.
    let title_id = app.new_title(&admin, "坊っちゃん", "book").await;
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/items",
            Some(&admin),
            Some(json!({"title_id": title_id, "barcode": "T-0001", "branch": "kitsuki", "call_number": "913.6\u{0}/ナ"})),
        )
        .await;
    assert_refused(&reply, "invalid_text", "call_number");
    // A barcode with a NUL is no barcode (rule M1), not a 500.
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/items",
            Some(&admin),
            Some(json!({"title_id": title_id, "barcode": "T-\u{0}1", "branch": "kitsuki"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.code(), "invalid_barcode");
    // Ordinary text still goes in.
    app.new_item(&admin, &title_id, "T-0001", "kitsuki").await;
}

async fn catalogue_text_over_its_limit_is_text_too_long(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let title = |t: String| json!({"title": t, "type": "book"});
    // At the limit (in characters, not bytes) it is accepted.
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&admin),
            Some(title("字".repeat(1000))),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&admin),
            Some(title("字".repeat(1001))),
        )
        .await;
    assert_refused(&reply, "text_too_long", "title of 1001");
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&admin),
            Some(json!({"title": "x", "type": "book", "publisher": "p".repeat(501)})),
        )
        .await;
    assert_refused(&reply, "text_too_long", "publisher of 501");
    // A megabyte title does not get as far as the handler (API.md "Limits").
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&admin),
            Some(title("a".repeat(1 << 20))),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), "payload_too_large");
}

async fn patron_and_staff_text_is_checked_too(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let register = |name: Value, reading: Value, email: Option<&str>| {
        let mut body = json!({
            "name": name, "name_reading": reading, "birth_date": ADULT,
            "id_document": "driving_licence",
        });
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        body
    };
    for (body, code, what) in [
        (
            register(json!("杵築\u{0}花子"), json!("キツキ ハナコ"), None),
            "invalid_text",
            "name",
        ),
        (
            register(json!("杵築 花子"), json!("キツキ\nハナコ"), None),
            "invalid_text",
            "reading",
        ),
        (
            register(json!("杵".repeat(101)), json!("キ"), None),
            "text_too_long",
            "long name",
        ),
        (
            register(
                json!("杵築 花子"),
                json!("キツキ ハナコ"),
                Some("hanako\u{0}@example.jp"),
            ),
            "invalid_text",
            "email",
        ),
    ] {
        let reply = app
            .call(
                "POST",
                "/api/v1/branches/kitsuki/patrons",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_refused(&reply, code, what);
    }
    // Staff: a new account's user name, and a login's.
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/staff",
            Some(&admin),
            Some(json!({"username": "yama\u{0}da", "password": "a-long-staff-password", "branches": ["kitsuki"], "role": "staff"})),
        )
        .await;
    assert_refused(&reply, "invalid_text", "staff user name");
    let reply = app
        .call(
            "POST",
            "/api/v1/staff/session",
            None,
            Some(json!({"username": "ad\u{0}min", "password": "whatever"})),
        )
        .await;
    assert_refused(&reply, "invalid_text", "staff login");
    // A patron's new address and a reset request's.
    let (card, password) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &password).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(json!({"email": "hanako\u{0}@example.jp"})),
        )
        .await;
    assert_refused(&reply, "invalid_text", "new address");
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets",
            None,
            Some(json!({"card_number": card, "email": "hanako\u{0}@example.jp"})),
        )
        .await;
    assert_refused(&reply, "invalid_text", "reset address");
}
