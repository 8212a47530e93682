//! Loans and holds over the JSON API (API.md "Patron", "Staff") against the real services:
//! catalog, patron-account and the three circulation instances (kitsuki, yamaga, ota) on
//! one database, fed by the catalogue's events. Web holds and rule H1's refusals, the list
//! shapes, renewal once (L2), cancellation (H10), checkout and checkin with the routing of
//! H7 at the desks, staff review (H5), branch scoping (S3), and a gateway without
//! circulation.

mod common;

use common::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

const LOAN_FIELDS: [&str; 11] = [
    "barcode",
    "branch",
    "checked_out_at",
    "due_date",
    "loan_id",
    "overdue",
    "renew_block",
    "renewable",
    "renewed",
    "title",
    "title_id",
];

const HOLD_FIELDS: [&str; 8] = [
    "hold_id",
    "pickup_branch",
    "placed_at",
    "queue_position",
    "ready_until",
    "status",
    "title",
    "title_id",
];

/// The answer column of docs/API.md's row for `METHOD PATH`: the statuses a test sees must
/// be the ones the document names (issue 8: the two never disagree).
fn api_md_answer(method_path: &str) -> String {
    let doc = include_str!("../../docs/API.md");
    let start = format!("| `{method_path}` |");
    let row = doc
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("docs/API.md has no row for {method_path}"));
    let answer = row.split(" | ").last().unwrap_or_default();
    answer.trim_end_matches('|').trim().to_string()
}

fn assert_api_md_names(method_path: &str, status: &Value) {
    let answer = api_md_answer(method_path);
    let status = status.as_str().unwrap();
    assert!(
        answer.contains(&format!("\"{status}\"")),
        "docs/API.md says of {method_path}: {answer}; the server answered status {status}"
    );
}

async fn place(app: &TestApp, token: &str, title_id: &str, pickup: &str) -> common::Reply {
    app.call(
        "POST",
        "/api/v1/me/holds",
        Some(token),
        Some(json!({"title_id": title_id, "pickup_branch": pickup, "receipt_mail": true})),
    )
    .await
}

#[tokio::test]
async fn h1_a_web_hold_on_a_book_whose_copies_are_all_on_loan_and_the_refusals_otherwise() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let out = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("YM-0001", "yamaga")])
        .await;
    let on_shelf = app
        .title_with_copies(&admin, "こころ", "book", &[("KT-0001", "kitsuki")])
        .await;
    let magazine = app
        .title_with_copies(&admin, "月刊 杵築", "magazine", &[("KT-0002", "kitsuki")])
        .await;
    let no_copies = app.new_title(&admin, "三四郎", "book").await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "yamaga", &reader, "YM-0001").await;
    // Listings follow circulation (rule H1's live 「予約申込」).
    let listed = app.title_all_out(&out).await;
    assert_eq!(listed["hold_block"], Value::Null);
    assert_eq!(listed["items"][0]["status"], "on_loan");

    let (_, _, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    for (title, code, status) in [
        (
            &on_shelf,
            "hold_available_copy",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &magazine,
            "hold_material_type",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &no_copies,
            "hold_not_held_here",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let reply = place(&app, &token, title, "ota").await;
        assert_eq!(reply.status, status, "{code}: {}", reply.text);
        assert_eq!(reply.code(), code);
        assert_eq!(reply.json()["error"]["rule"], "H1");
        let listed = app
            .call("GET", &format!("/api/v1/titles/{title}"), None, None)
            .await
            .json();
        assert_eq!(listed["holdable"], false, "{code}");
        assert_eq!(listed["hold_block"]["code"], code);
    }
    for (body, status, code) in [
        (
            json!({"title_id": out, "pickup_branch": "oita", "receipt_mail": true}),
            StatusCode::BAD_REQUEST,
            "invalid_branch",
        ),
        (
            json!({"title_id": "not-a-title", "pickup_branch": "ota", "receipt_mail": true}),
            StatusCode::NOT_FOUND,
            "title_not_found",
        ),
        (
            json!({"title_id": out, "pickup_branch": "ota"}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
    ] {
        let reply = app
            .call("POST", "/api/v1/me/holds", Some(&token), Some(body))
            .await;
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.code(), code);
    }

    let reply = place(&app, &token, &out, "ota").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let hold = reply.json();
    assert_eq!(keys(&hold), HOLD_FIELDS);
    // Rule H5: automatic confirmation is the default, so the hold is confirmed when it is
    // placed (with `receipt_mail` too), as docs/API.md says.
    assert_eq!(hold["status"], "confirmed", "{hold}");
    assert_api_md_names("POST /api/v1/me/holds", &hold["status"]);
    assert_eq!(hold["title"], "坊っちゃん");
    assert_eq!(hold["pickup_branch"], "ota");
    assert_eq!(hold["queue_position"], 1);
    assert_eq!(hold["ready_until"], Value::Null);

    let reply = place(&app, &token, &out, "kitsuki").await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "rule H11");
    assert_eq!(reply.code(), "hold_duplicate");

    // Rule H6: the next patron queues behind.
    let (_, _, second) = app.hold_patron("山香 次郎", "jiro@example.jp").await;
    let reply = place(&app, &second, &out, "yamaga").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json()["queue_position"], 2);

    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&token), None)
        .await;
    assert_eq!(holds.status, StatusCode::OK);
    assert_eq!(holds.header("cache-control"), Some("no-store"));
    let holds = holds.json();
    assert_eq!(holds.as_array().unwrap().len(), 1);
    assert_eq!(keys(&holds[0]), HOLD_FIELDS);
    assert_eq!(holds[0]["hold_id"], hold["hold_id"]);
    let listed = app
        .title_when(&out, "two holds waiting", |t| t["holds_waiting"] == 2)
        .await;
    assert_eq!(listed["holdable"], true);

    // Rule H3: an address that is not verified yet.
    let (card, password) = app.web_patron("大田 三郎").await;
    let unverified = app.patron_token(&card, &password).await;
    let reply = place(&app, &unverified, &out, "ota").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "email_not_verified");
    let reply = app.call("GET", "/api/v1/me/holds", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn l2_a_loan_is_renewed_once_and_the_second_time_the_refusal_says_why() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "吾輩は猫である", "book", &[("KT-0100", "kitsuki")])
        .await;
    let (card, _, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let clerk = app.staff_of("sato", &["kitsuki"]).await;
    let loan = app.lend(&clerk, "kitsuki", &card, "kt-0100").await;
    assert_eq!(keys(&loan), LOAN_FIELDS);
    assert_eq!(loan["barcode"], "KT-0100", "rule M1: upper-cased");
    assert_eq!(loan["title"], "吾輩は猫である");
    assert_eq!(loan["title_id"], title.as_str());

    let loans = app
        .call("GET", "/api/v1/me/loans", Some(&token), None)
        .await;
    assert_eq!(loans.status, StatusCode::OK, "{}", loans.text);
    let loans = loans.json();
    assert_eq!(loans.as_array().unwrap().len(), 1);
    let first = &loans[0];
    assert_eq!(keys(first), LOAN_FIELDS);
    assert_eq!(first["branch"], "kitsuki");
    assert_eq!(first["overdue"], false);
    assert_eq!(first["renewed"], false);
    assert_eq!(first["renewable"], true);
    assert_eq!(first["renew_block"], Value::Null);

    let path = format!(
        "/api/v1/me/loans/{}/renew",
        first["loan_id"].as_str().unwrap()
    );
    let renewed = app.call("POST", &path, Some(&token), None).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    let renewed = renewed.json();
    assert_eq!(renewed["renewed"], true);
    assert_eq!(renewed["renewable"], false);
    assert!(
        renewed["due_date"].as_str().unwrap() >= first["due_date"].as_str().unwrap(),
        "L2: the renewal date plus the loan period"
    );

    let again = app.call("POST", &path, Some(&token), None).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.code(), "renewal_already_renewed");
    assert_eq!(again.json()["error"]["rule"], "L2");
    let listed = app
        .call("GET", "/api/v1/me/loans", Some(&token), None)
        .await
        .json();
    assert_eq!(listed[0]["renewable"], false);
    assert_eq!(listed[0]["renew_block"]["code"], "renewal_already_renewed");
    let english = app
        .request("GET", "/api/v1/me/loans", |r| {
            r.bearer_auth(&token).header("accept-language", "en")
        })
        .await
        .json();
    assert_eq!(
        english[0]["renew_block"]["message"],
        "A loan can be renewed only once."
    );

    // Another patron's loan is no loan of theirs; a made-up id neither.
    let (_, _, other) = app.hold_patron("山香 次郎", "jiro@example.jp").await;
    let reply = app.call("POST", &path, Some(&other), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "loan_not_found");
    let reply = app
        .call(
            "POST",
            "/api/v1/me/loans/nothing%2Fhere/renew",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Renewal at the counter (L2: by staff too), once as well.
    let borrower = app.borrower("大田 三郎").await;
    app.new_item(&admin, &title, "KT-0101", "kitsuki").await;
    let deadline = tokio::time::Instant::now() + common::EVENTUALLY;
    let loan = loop {
        let reply = app
            .desk(
                &clerk,
                "kitsuki",
                "checkouts",
                json!({"card_number": borrower, "barcode": "KT-0101"}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            break reply.json();
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let path = format!(
        "/api/v1/branches/kitsuki/loans/{}/renew",
        loan["loan_id"].as_str().unwrap()
    );
    let reply = app.call("POST", &path, Some(&clerk), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["renewed"], true);
    let reply = app.call("POST", &path, Some(&clerk), None).await;
    assert_eq!(reply.code(), "renewal_already_renewed");
}

#[tokio::test]
async fn h10_a_patron_cancels_their_hold_and_only_theirs() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("OT-0001", "ota")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "ota", &reader, "OT-0001").await;
    app.title_all_out(&title).await;
    let (_, _, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let hold = place(&app, &token, &title, "kitsuki").await.json();
    let path = format!("/api/v1/me/holds/{}", hold["hold_id"].as_str().unwrap());

    let (_, _, other) = app.hold_patron("山香 次郎", "jiro@example.jp").await;
    let reply = app.call("DELETE", &path, Some(&other), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "hold_not_found");

    let reply = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&token), None)
        .await
        .json();
    assert_eq!(holds[0]["status"], "cancelled");
    assert_eq!(holds[0]["queue_position"], Value::Null);
    let reply = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.code(), "hold_state_conflict");
    // Cancelled, the title can be held again (H11 counts active holds).
    let reply = place(&app, &token, &title, "kitsuki").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

#[tokio::test]
async fn h7_l5_checkin_routes_to_the_pickup_branch_through_the_desks() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("YM-0001", "yamaga")])
        .await;
    let other = app
        .title_with_copies(&admin, "こころ", "book", &[("YM-0002", "yamaga")])
        .await;
    let yamaga = app.staff_of("yamada", &["yamaga"]).await;
    let ota = app.staff_of("ota-clerk", &["ota"]).await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&yamaga, "yamaga", &reader, "YM-0001").await;
    app.lend(&yamaga, "yamaga", &reader, "YM-0002").await;
    app.title_all_out(&title).await;
    let (card, _, token) = app.hold_patron("大田 花子", "hanako@example.jp").await;
    let hold = place(&app, &token, &title, "ota").await.json();
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();

    // Returned at Yamaga, it travels to Ōta for the hold.
    let reply = app
        .desk(&yamaga, "yamaga", "checkins", json!({"barcode": "ym-0001"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let routed = reply.json();
    assert_eq!(routed["routing"], "transit");
    assert_eq!(routed["to_branch"], "ota");
    assert_eq!(routed["hold_id"], hold_id.as_str());
    assert_eq!(routed["returned"], true);
    assert_eq!(routed["title"], "坊っちゃん");

    let out = app
        .call(
            "GET",
            "/api/v1/branches/yamaga/transits",
            Some(&yamaga),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    let out = out.json();
    assert_eq!(out["outgoing"][0]["barcode"], "YM-0001");
    assert_eq!(out["outgoing"][0]["to_branch"], "ota");
    let incoming = app
        .call("GET", "/api/v1/branches/ota/transits", Some(&ota), None)
        .await
        .json();
    assert_eq!(incoming["incoming"][0]["hold_id"], hold_id.as_str());
    assert_eq!(incoming["incoming"][0]["title"], "坊っちゃん");
    app.holds_when(&token, "in transit", |h| h[0]["status"] == "in_transit")
        .await;

    // Ōta's desk scans it on arrival: onto its hold shelf.
    let reply = app
        .desk(&ota, "ota", "checkins", json!({"barcode": "YM-0001"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let shelved = reply.json();
    assert_eq!(shelved["routing"], "hold_shelf");
    assert_eq!(shelved["hold_id"], hold_id.as_str());
    assert!(shelved.get("to_branch").is_none(), "{shelved}");
    assert_eq!(shelved["returned"], false);
    let shelf = app
        .call("GET", "/api/v1/branches/ota/hold-shelf", Some(&ota), None)
        .await
        .json();
    assert_eq!(shelf[0]["hold_id"], hold_id.as_str());
    assert_eq!(shelf[0]["barcode"], "YM-0001");
    assert_eq!(shelf[0]["card_number"], card.as_str());
    assert_eq!(shelf[0]["title"], "坊っちゃん");
    app.holds_when(&token, "awaiting the ready mail", |h| {
        h[0]["status"] == "awaiting_notice"
    })
    .await;
    // Rule H8: not before the ready mail (no notification service runs here).
    let reply = app
        .desk(
            &ota,
            "ota",
            "checkouts",
            json!({"card_number": card, "barcode": "YM-0001"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.code(), "hold_not_ready");
    // Rule L4: nor to anybody else.
    let reply = app
        .desk(
            &ota,
            "ota",
            "checkouts",
            json!({"card_number": reader, "barcode": "YM-0001"}),
        )
        .await;
    assert_eq!(reply.code(), "item_held_for_other");

    // Without a hold: shelved at home, or sent home from elsewhere (L5).
    let reply = app
        .desk(&ota, "ota", "checkins", json!({"barcode": "YM-0002"}))
        .await
        .json();
    assert_eq!(reply["routing"], "transit");
    assert_eq!(reply["to_branch"], "yamaga");
    assert!(reply.get("hold_id").is_none(), "{reply}");
    let reply = app
        .desk(&yamaga, "yamaga", "checkins", json!({"barcode": "YM-0002"}))
        .await
        .json();
    assert_eq!(reply["routing"], "shelve");
    app.title_when(&other, "back on the shelf", |t| {
        t["availability"]["yamaga"]["available"] == 1
    })
    .await;

    for (body, status, code) in [
        (
            json!({"barcode": "NOPE-1"}),
            StatusCode::NOT_FOUND,
            "item_not_found",
        ),
        (
            json!({"barcode": "bad barcode!"}),
            StatusCode::BAD_REQUEST,
            "invalid_barcode",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "invalid_input"),
    ] {
        let reply = app.desk(&ota, "ota", "checkins", body).await;
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.code(), code);
    }
    let reply = app
        .desk(
            &ota,
            "ota",
            "checkouts",
            json!({"card_number": "12-34", "barcode": "YM-0002"}),
        )
        .await;
    assert_eq!(reply.code(), "invalid_card_number");
}

#[tokio::test]
async fn s1_a_counter_hold_on_a_copy_on_the_shelf_goes_on_the_holding_branchs_pull_list() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "月刊 杵築", "magazine", &[("KT-0200", "kitsuki")])
        .await;
    let kitsuki = app.staff_of("kimura", &["kitsuki"]).await;
    let yamaga = app.staff_of("yamada", &["yamaga"]).await;
    let (card, _, token) = app.hold_patron("山香 花子", "hanako@example.jp").await;
    let reply = app
        .desk(
            &yamaga,
            "yamaga",
            "holds",
            json!({"card_number": card, "title_id": title, "pickup_branch": "yamaga"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let hold = reply.json();
    assert_eq!(keys(&hold), HOLD_FIELDS);
    assert_eq!(hold["status"], "confirmed", "rule S1: {hold}");
    assert_api_md_names("POST /api/v1/branches/{branch}/holds", &hold["status"]);
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();

    let pull = app
        .call(
            "GET",
            "/api/v1/branches/kitsuki/pull-list",
            Some(&kitsuki),
            None,
        )
        .await;
    assert_eq!(pull.status, StatusCode::OK, "{}", pull.text);
    let pull = pull.json();
    assert_eq!(pull[0]["hold_id"], hold_id.as_str());
    assert_eq!(pull[0]["barcode"], "KT-0200");
    assert_eq!(pull[0]["routing"], "transit");
    assert_eq!(pull[0]["to_branch"], "yamaga");
    assert_eq!(pull[0]["title"], "月刊 杵築");
    // The pulled copy scanned at the main library travels to Yamaga.
    let routed = app
        .desk(
            &kitsuki,
            "kitsuki",
            "checkins",
            json!({"barcode": "KT-0200"}),
        )
        .await
        .json();
    assert_eq!(routed["routing"], "transit");
    assert_eq!(routed["to_branch"], "yamaga");
    assert_eq!(routed["hold_id"], hold_id.as_str());
    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&token), None)
        .await
        .json();
    assert_eq!(holds[0]["hold_id"], hold_id.as_str());

    for (path, body) in [
        (
            "holds",
            json!({"card_number": card, "title_id": title, "pickup_branch": "oita"}),
        ),
        (
            "holds",
            json!({"card_number": "x", "title_id": title, "pickup_branch": "ota"}),
        ),
    ] {
        let reply = app.desk(&yamaga, "yamaga", path, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
}

#[tokio::test]
async fn h5_staff_review_confirms_or_rejects_provisional_web_holds() {
    let app = TestApp::spawn_with(Options {
        staff_review: true,
        ..Options::circulation()
    })
    .await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("KT-0300", "kitsuki")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "kitsuki", &reader, "KT-0300").await;
    app.title_all_out(&title).await;
    let ota = app.staff_of("ota-clerk", &["ota"]).await;
    let (_, _, first) = app.hold_patron("大田 花子", "hanako@example.jp").await;
    let (_, _, second) = app.hold_patron("大田 次郎", "jiro@example.jp").await;
    let a = place(&app, &first, &title, "ota").await.json();
    let b = place(&app, &second, &title, "ota").await.json();
    assert_eq!(a["status"], "provisional");
    assert_api_md_names("POST /api/v1/me/holds", &a["status"]);

    let list = app
        .call(
            "GET",
            "/api/v1/branches/ota/provisional-holds",
            Some(&ota),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let list = list.json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hold_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&a["hold_id"].as_str().unwrap()), "{list}");
    assert!(ids.contains(&b["hold_id"].as_str().unwrap()), "{list}");

    let confirm = format!(
        "/api/v1/branches/ota/holds/{}/confirm",
        a["hold_id"].as_str().unwrap()
    );
    let reply = app.call("POST", &confirm, Some(&ota), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["status"], "confirmed");
    let reply = app.call("POST", &confirm, Some(&ota), None).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);

    let reject = format!(
        "/api/v1/branches/ota/holds/{}/reject",
        b["hold_id"].as_str().unwrap()
    );
    let reply = app
        .call("POST", &reject, Some(&ota), Some(json!({"reason": 42})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    // The reason is stored and mailed: the text check of API.md "Text fields".
    for (reason, code) in [
        ("破損\u{0}".to_string(), "invalid_text"),
        ("破".repeat(501), "text_too_long"),
    ] {
        let reply = app
            .call("POST", &reject, Some(&ota), Some(json!({"reason": reason})))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.code(), code, "{}", reply.text);
    }
    let reply = app
        .call(
            "POST",
            &reject,
            Some(&ota),
            Some(json!({"reason": "資料が破損しているため"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["status"], "rejected");
    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&second), None)
        .await
        .json();
    assert_eq!(holds[0]["status"], "rejected");
    let list = app
        .call(
            "GET",
            "/api/v1/branches/ota/provisional-holds",
            Some(&ota),
            None,
        )
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test]
async fn s3_staff_of_yamaga_are_refused_at_otas_desk() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let yamaga = app.staff_of("yamada", &["yamaga"]).await;
    let hold = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";
    let posts = [
        "checkouts".to_string(),
        "checkins".to_string(),
        format!("loans/{hold}/renew"),
        "holds".to_string(),
        format!("holds/{hold}/confirm"),
        format!("holds/{hold}/reject"),
    ];
    for what in &posts {
        let reply = app.desk(&yamaga, "ota", what, json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            reply.text
        );
        assert_eq!(reply.code(), "forbidden");
        let reply = app
            .call(
                "POST",
                &format!("/api/v1/branches/ota/{what}"),
                None,
                Some(json!({})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    for list in [
        "hold-shelf",
        "expired-holds",
        "pull-list",
        "transits",
        "provisional-holds",
    ] {
        let path = format!("/api/v1/branches/ota/{list}");
        let reply = app.call("GET", &path, Some(&yamaga), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{list}");
        let own = app
            .call(
                "GET",
                &path.replace("/ota/", "/yamaga/"),
                Some(&yamaga),
                None,
            )
            .await;
        assert_eq!(own.status, StatusCode::OK, "{list}: {}", own.text);
        assert_eq!(own.header("cache-control"), Some("no-store"));
    }
    let reply = app
        .call(
            "GET",
            "/api/v1/branches/oita/hold-shelf",
            Some(&yamaga),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_branch");
}

#[tokio::test]
async fn the_test_clock_moves_every_service_and_overdue_follows() {
    let app = TestApp::spawn_with(Options {
        test_clock: true,
        ..Options::circulation()
    })
    .await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("KT-0400", "kitsuki")])
        .await;
    let other = app
        .title_with_copies(&admin, "こころ", "book", &[("KT-0401", "kitsuki")])
        .await;
    let (card, password, _) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "kitsuki", &card, "KT-0400").await;
    app.lend(&admin, "kitsuki", &reader, "KT-0401").await;
    app.title_all_out(&other).await;

    use kitsuki_platform::clock::Clock;
    let before: Vec<_> = std::iter::once(app.clock.now())
        .chain(app.circulation_clocks.iter().map(|c| c.now()))
        .collect();
    for bad in [
        json!({}),
        json!({"advance_days": 1, "now": "2030-01-01T00:00:00Z"}),
    ] {
        let reply = app
            .call("POST", "/api/v1/test/clock", None, Some(bad))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
    let reply = app
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({"advance_days": 15})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let now = reply.json()["now"].as_str().unwrap().to_string();
    let moved =
        time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339).unwrap();
    // Every clock, the services' and each circulation instance's own, moved by 15 days once.
    let clocks: Vec<_> = std::iter::once(app.clock.now())
        .chain(app.circulation_clocks.iter().map(|c| c.now()))
        .collect();
    assert_eq!(clocks.len(), 4);
    for (b, a) in before.iter().zip(&clocks) {
        let days = (*a - *b).whole_days();
        assert_eq!(days, 15, "{b} → {a}");
        assert!((*a - moved).abs() < time::Duration::minutes(1));
    }

    // Sessions ended with the time; the loan is overdue now (L2, H2).
    let token = app.patron_token(&card, &password).await;
    let loans = app
        .call("GET", "/api/v1/me/loans", Some(&token), None)
        .await
        .json();
    assert_eq!(loans[0]["overdue"], true, "{loans}");
    assert_eq!(loans[0]["renewable"], false);
    assert_eq!(loans[0]["renew_block"]["code"], "renewal_overdue_loan");
    let reply = place(&app, &token, &other, "kitsuki").await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), "hold_overdue_block");
    assert_eq!(reply.json()["error"]["rule"], "H2");
    let _ = title;

    // Moving to an instant before the clocks is refused: clocks only go forward.
    let reply = app
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({"now": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
}

#[tokio::test]
async fn the_test_clock_is_404_in_a_run_without_it() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({"advance_days": 1})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");
}

#[tokio::test]
async fn without_circulation_the_loan_and_hold_paths_are_503_and_the_catalogue_serves() {
    let app = TestApp::spawn().await;
    let (_, _, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let admin = app.admin_token().await;
    let title = app.new_title(&admin, "坊っちゃん", "book").await;
    for (method, path, body) in [
        ("GET", "/api/v1/me/loans".to_string(), None),
        ("GET", "/api/v1/me/holds".to_string(), None),
        (
            "POST",
            "/api/v1/me/holds".to_string(),
            Some(json!({"title_id": title, "pickup_branch": "ota", "receipt_mail": false})),
        ),
        ("DELETE", "/api/v1/me/holds/h1".to_string(), None),
        ("POST", "/api/v1/me/loans/l1/renew".to_string(), None),
    ] {
        let reply = app.call(method, &path, Some(&token), body).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(reply.code(), "unavailable");
    }
    let reply = app
        .desk(&admin, "kitsuki", "checkins", json!({"barcode": "KT-1"}))
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = app
        .call(
            "GET",
            "/api/v1/branches/kitsuki/hold-shelf",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = app.call("GET", "/api/v1/titles?q=", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = app
        .call("GET", &format!("/api/v1/titles/{title}"), None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // マイページ still shows the account.
    let mut browser = app.browser();
    browser
        .cookies
        .insert("kitsuki_session".into(), token.clone());
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::OK, "{}", my.text);
    assert!(my.text.contains("ただいま準備中です"));
    // The hold flow says so before anything is filled in.
    let hold = browser.get(&format!("/titles/{title}/hold")).await;
    assert_eq!(
        hold.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        hold.text
    );
    assert!(hold.text.contains("ただいまご利用いただけません"));
    let page = browser.get(&format!("/titles/{title}")).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the title page does without circulation"
    );
}

#[tokio::test]
async fn h8_h9_the_ready_mail_opens_the_shelf_week_and_an_uncollected_item_goes_to_the_next_hold() {
    let app = TestApp::spawn_with(Options {
        mail: true,
        dev_pages: true,
        test_clock: true,
        ..Options::circulation()
    })
    .await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("YM-0001", "yamaga")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, "yamaga", &reader, "YM-0001").await;
    app.title_all_out(&title).await;
    let (first_card, first_password, first) =
        app.hold_patron("大田 花子", "hanako@example.jp").await;
    let (_, _, second) = app.hold_patron("杵築 次郎", "jiro@example.jp").await;
    let a = place(&app, &first, &title, "ota").await.json();
    let b = place(&app, &second, &title, "kitsuki").await.json();
    assert_eq!(b["queue_position"], 2);

    let routed = app
        .desk(&admin, "yamaga", "checkins", json!({"barcode": "YM-0001"}))
        .await
        .json();
    assert_eq!(routed["to_branch"], "ota");
    let shelved = app
        .desk(&admin, "ota", "checkins", json!({"barcode": "YM-0001"}))
        .await
        .json();
    assert_eq!(shelved["routing"], "hold_shelf");
    assert_eq!(shelved["hold_id"], a["hold_id"]);

    // Rule H8: the ready mail goes out, and with it the hold is ready until a date.
    let holds = app
        .holds_when(&first, "ready", |h| h[0]["status"] == "ready")
        .await;
    let until = holds[0]["ready_until"].as_str().unwrap().to_string();
    assert_eq!(until.len(), 10, "{until}");
    app.sent_mail_page("資料について用意ができました").await;

    // Nobody collects it: a week and a day later the hold has expired (H9)...
    let reply = app
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({"advance_days": 8})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let first = app.patron_token(&first_card, &first_password).await;
    app.holds_when(&first, "expired", |h| h[0]["status"] == "expired")
        .await;
    // ...Ōta's desk is told to take it off the shelf and send it on to the next hold.
    let admin = app.admin_token().await;
    let expired = app
        .call(
            "GET",
            "/api/v1/branches/ota/expired-holds",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(expired.status, StatusCode::OK, "{}", expired.text);
    let expired = expired.json();
    assert_eq!(expired[0]["hold_id"], a["hold_id"], "{expired}");
    assert_eq!(expired[0]["barcode"], "YM-0001");
    assert_eq!(expired[0]["routing"], "transit");
    assert_eq!(expired[0]["to_branch"], "kitsuki");
    assert_eq!(expired[0]["next_hold_id"], b["hold_id"]);
    let routed = app
        .desk(&admin, "ota", "checkins", json!({"barcode": "YM-0001"}))
        .await
        .json();
    assert_eq!(routed["routing"], "transit");
    assert_eq!(routed["to_branch"], "kitsuki");
    assert_eq!(routed["hold_id"], b["hold_id"]);
}

/// Read-your-writes across services (ARCHITECTURE.md "Data"): the 201 of
/// `POST /api/v1/admin/items` means circulation knows the item, so a checkout right after it
/// is lent and a web hold right after that is queued, without waiting for the catalogue's
/// `ItemCreated` event: here the catalogue's relay does not run, so the event never comes
/// (the in-process bus is otherwise quicker than the next request). Many times over: never
/// `item_not_found` (nor `hold_not_held_here`, H1, for a title whose only copy was just
/// registered).
#[tokio::test]
async fn an_item_registered_through_the_admin_api_is_lent_and_held_at_once() {
    let app = TestApp::spawn_with(Options {
        catalog_relay: false,
        ..Options::circulation()
    })
    .await;
    let admin = app.admin_token().await;
    let reader = app.borrower("杵築 即子").await;
    let (_, _, token) = app.hold_patron("杵築 待子", "machiko@example.jp").await;
    let mut refused = Vec::new();
    for i in 0..15 {
        let title = app.new_title(&admin, &format!("即日 {i}"), "book").await;
        let barcode = format!("RW-{i:04}");
        app.new_item(
            &admin,
            &title,
            &barcode,
            ["kitsuki", "yamaga", "ota"][i % 3],
        )
        .await;
        let lent = app
            .desk(
                &admin,
                "kitsuki",
                "checkouts",
                json!({"card_number": reader, "barcode": barcode}),
            )
            .await;
        if lent.status != StatusCode::CREATED {
            refused.push(format!("checkout {barcode}: {} {}", lent.status, lent.text));
            continue;
        }
        // H11: within the patron's 10 active holds.
        if i < 8 {
            let held = place(&app, &token, &title, "ota").await;
            if held.status != StatusCode::CREATED {
                refused.push(format!("hold on {title}: {} {}", held.status, held.text));
            }
        }
        // L3: back at once, so the reader's limit is not reached.
        let back = app
            .desk(&admin, "kitsuki", "checkins", json!({"barcode": barcode}))
            .await;
        assert_eq!(back.status, StatusCode::OK, "checkin: {}", back.text);
    }
    assert!(
        refused.is_empty(),
        "refused right after registration: {refused:#?}"
    );
}
