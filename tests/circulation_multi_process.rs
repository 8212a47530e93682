//! Issue 4 across processes: catalog, patron-account, notification, three circulation
//! instances (kitsuki, yamaga, ota over one PostgreSQL database) and the gateway as separate
//! processes over NATS JetStream, mail through a real SMTP server, the test clock moved
//! through the gateway (the system is started by [`common::system`]).
//!
//! Scenario (H1, H5-H9, L5, N1, N2): every copy of a title is on loan; a patron places a
//! web hold with pickup at Ōta; the copy returned at Yamaga travels to Ōta (H7); Ōta's desk
//! checks it in onto its hold shelf; the ready mail reaches the SMTP server (H8) and only
//! then can the patron borrow it. A second hold on the same title waits behind; nobody
//! collects the next copy, and after 7 days (test clock) the hold expires and the item
//! goes to the next patron in the queue (H9), whose ready mail follows.

mod common;

use std::time::Duration;

use common::eventually;
use common::system::{READY_MAIL, System, hold_of, login, mails_matching, web_patron};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_travels_to_the_pickup_branch_ready_mail_then_loan_and_expiry_passes_it_on() {
    // The processes stay in `sys` (stopped at the end of the test); the scenario below
    // uses the API, the SMTP server and the admin password.
    let sys = System::start("circulation").await;
    let System {
        api,
        sink,
        admin_pw,
        ..
    } = sys;

    let (_, v) = api
        .call(
            "POST",
            "/api/v1/staff/session",
            None,
            Some(json!({"username": "admin", "password": admin_pw})),
        )
        .await;
    let staff = v["token"].as_str().unwrap().to_string();

    // A book with two copies, at Kitsuki and Yamaga.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&staff),
            Some(json!({"title": "坊っちゃん", "author": "夏目漱石", "type": "book"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let title_id = v["title_id"].as_str().unwrap().to_string();
    for (barcode, branch) in [("KT-1", "kitsuki"), ("YM-1", "yamaga")] {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/admin/items",
                Some(&staff),
                Some(json!({"title_id": title_id, "barcode": barcode, "branch": branch})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    let (borrower, _, _) =
        web_patron(&api, &sink, &staff, "借りる 人", "borrower@example.jp").await;
    let (first, first_token, _) =
        web_patron(&api, &sink, &staff, "予約 一郎", "ichiro@example.jp").await;
    let (second, second_token, second_pw) =
        web_patron(&api, &sink, &staff, "予約 二郎", "jiro@example.jp").await;

    // A copy on the shelf: no web hold (H1).
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/me/holds",
            Some(&first_token),
            Some(json!({"title_id": title_id, "pickup_branch": "ota", "receipt_mail": true})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("hold_available_copy")),
        "{v}"
    );

    // Both copies go out on loan (the desks' projection of the catalog's items is fed by events).
    for (branch, barcode) in [("kitsuki", "KT-1"), ("yamaga", "YM-1")] {
        let (s, v) = eventually(
            "the item known to circulation",
            Duration::from_secs(30),
            || {
                let api = &api;
                let body = json!({"card_number": borrower, "barcode": barcode});
                let staff = staff.clone();
                async move {
                    let (s, v) = api
                        .call(
                            "POST",
                            &format!("/api/v1/branches/{branch}/checkouts"),
                            Some(&staff),
                            Some(body),
                        )
                        .await;
                    (s != 404).then_some((s, v))
                }
            },
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }

    // Holds with pickup at Ōta (H4-H6): the first, then the second in the queue.
    let place = |token: String| {
        let api = &api;
        let title_id = title_id.clone();
        async move {
            eventually("a web hold accepted once no copy is on a shelf", Duration::from_secs(30), || {
                let token = token.clone();
                let title_id = title_id.clone();
                async move {
                    let (s, v) = api
                        .call("POST", "/api/v1/me/holds", Some(&token), Some(json!({"title_id": title_id, "pickup_branch": "ota", "receipt_mail": true})))
                        .await;
                    (s == 201).then_some(v)
                }
            })
            .await
        }
    };
    let first_hold = place(first_token.clone()).await;
    let second_hold = place(second_token.clone()).await;
    assert!(
        ["provisional", "confirmed"].contains(&first_hold["status"].as_str().unwrap()),
        "{first_hold}"
    );
    let hold_id = first_hold["hold_id"].as_str().unwrap().to_string();
    mails_matching(&sink, "ichiro@example.jp", 3).await; // verification, receipt, confirmation…
    let h = eventually(
        "the first hold confirmed",
        Duration::from_secs(30),
        || async {
            let h = hold_of(&api, &first_token).await;
            (h["status"] == "confirmed").then_some(h)
        },
    )
    .await;
    assert_eq!(h["queue_position"], 1);
    assert_eq!(
        hold_of(&api, &second_token).await["queue_position"],
        2,
        "H6: one queue across branches"
    );

    // Returned at Yamaga (L5): into transit to Ōta (H7).
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/yamaga/checkins",
            Some(&staff),
            Some(json!({"barcode": "YM-1"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["routing"].as_str(), v["to_branch"].as_str()),
        (Some("transit"), Some("ota")),
        "{v}"
    );
    assert_eq!(hold_of(&api, &first_token).await["status"], "in_transit");
    // Ōta checks it in: onto its hold shelf.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkins",
            Some(&staff),
            Some(json!({"barcode": "YM-1"})),
        )
        .await;
    assert_eq!((s, v["routing"].as_str()), (200, Some("hold_shelf")), "{v}");
    assert_eq!(v["hold_id"].as_str(), Some(hold_id.as_str()));

    // The ready mail reaches the SMTP server (H8), then the hold is ready with its date (H9).
    let ready = mails_matching(&sink, READY_MAIL, 1).await;
    assert!(
        ready[0].contains("ichiro@example.jp") && ready[0].contains("大田図書室"),
        "{}",
        ready[0]
    );
    let h = eventually("the hold ready", Duration::from_secs(30), || async {
        let h = hold_of(&api, &first_token).await;
        (h["status"] == "ready").then_some(h)
    })
    .await;
    assert!(
        h["ready_until"].as_str().is_some_and(|d| d.len() == 10),
        "{h}"
    );

    // The patron borrows it at Ōta.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkouts",
            Some(&staff),
            Some(json!({"card_number": first, "barcode": "YM-1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // The second patron's hold: the Kitsuki copy comes back and goes to Ōta's shelf…
    let (_, v) = api
        .call(
            "POST",
            "/api/v1/branches/kitsuki/checkins",
            Some(&staff),
            Some(json!({"barcode": "KT-1"})),
        )
        .await;
    assert_eq!(
        (v["routing"].as_str(), v["to_branch"].as_str()),
        (Some("transit"), Some("ota")),
        "{v}"
    );
    let (_, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkins",
            Some(&staff),
            Some(json!({"barcode": "KT-1"})),
        )
        .await;
    assert_eq!(v["routing"].as_str(), Some("hold_shelf"), "{v}");
    mails_matching(&sink, READY_MAIL, 2).await;
    eventually("the second hold ready", Duration::from_secs(30), || async {
        (hold_of(&api, &second_token).await["status"] == "ready").then_some(())
    })
    .await;
    // …a third patron queues behind, nobody collects within the week (H9).
    let (third, third_token, _) =
        web_patron(&api, &sink, &staff, "予約 三郎", "saburo@example.jp").await;
    let _ = place(third_token.clone()).await;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/test/clock",
            Some(&staff),
            Some(json!({"advance_days": 8})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Sessions idled out over the week: log in again.
    let staff = login(
        &api,
        "/api/v1/staff/session",
        json!({"username": "admin", "password": admin_pw}),
    )
    .await;
    let second_token = login(
        &api,
        "/api/v1/session",
        json!({"card_number": second, "password": second_pw}),
    )
    .await;
    let (_, holds) = api
        .call("GET", "/api/v1/me/holds", Some(&second_token), None)
        .await;
    let second_now = holds
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hold_id"] == second_hold["hold_id"])
        .cloned()
        .unwrap();
    assert_eq!(second_now["status"], "expired", "{holds}");
    // The item passes to the next hold in the queue, whose ready mail follows.
    let mails = mails_matching(&sink, READY_MAIL, 3).await;
    assert!(mails.iter().any(|m| m.contains("saburo@example.jp")));
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkouts",
            Some(&staff),
            Some(json!({"card_number": third, "barcode": "KT-1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

/// Read-your-writes across processes (ARCHITECTURE.md "Data"): right after the start, an
/// item registered through the admin API is lent at once, by a circulation process other
/// than the catalogue's, many times over: never `item_not_found` (the gateway told
/// circulation before its 201; the `ItemCreated` event through the relay and NATS comes
/// later and changes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_registered_through_the_admin_api_is_lent_at_once_by_every_instance() {
    let sys = System::start("read-your-writes").await;
    let staff = sys.staff().await;
    let api = &sys.api;
    let reader = common::system::counter_patron(api, &staff, "杵築 即子").await;
    let mut refused = Vec::new();
    for i in 0..12 {
        let desk = ["kitsuki", "yamaga", "ota"][i % 3];
        let barcode = format!("RW-{i:04}");
        common::system::title_with_copies(
            api,
            &staff,
            &format!("即日 {i}"),
            "夏目漱石",
            &[(barcode.as_str(), ["ota", "kitsuki", "yamaga"][i % 3])],
        )
        .await;
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/branches/{desk}/checkouts"),
                Some(&staff),
                Some(json!({"card_number": reader, "barcode": barcode})),
            )
            .await;
        if s != 201 {
            refused.push(format!("checkout of {barcode} at {desk}: {s} {v}"));
            continue;
        }
        // L3: back at once, so the reader's limit is not reached.
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/branches/{desk}/checkins"),
                Some(&staff),
                Some(json!({"barcode": barcode})),
            )
            .await;
        assert_eq!(s, 200, "checkin: {v}");
    }
    assert!(
        refused.is_empty(),
        "refused right after registration: {refused:#?}"
    );
}

/// `/readyz` only after catching up (ARCHITECTURE.md "Operations"): with every circulation
/// instance down, items registered meanwhile reach circulation only as events waiting in
/// its durable consumer; an instance started then says ready only once it has handled
/// them, so checkouts sent the moment `/readyz` says 200 find every item (none
/// `item_not_found`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circulation_instance_is_ready_only_once_the_backlog_of_items_is_projected() {
    let mut sys = System::start("catch-up").await;
    let staff = sys.staff().await;
    let reader = common::system::counter_patron(&sys.api, &staff, "杵築 後子").await;
    let addr = sys
        .circulation_of("ota")
        .url
        .trim_start_matches("http://")
        .to_string();
    for branch in common::system::BRANCHES {
        sys.circulation_of(branch).terminate();
    }
    // The backlog: 300 copies (the gateway cannot tell circulation of them: all down).
    let barcodes: Vec<String> = (0..300).map(|i| format!("CU-{i:04}")).collect();
    let copies: Vec<(&str, &str)> = barcodes.iter().map(|b| (b.as_str(), "ota")).collect();
    common::system::title_with_copies(&sys.api, &staff, "積読", "夏目漱石", &copies).await;

    let restarted = sys.start_circulation("ota", &addr);
    *sys.circulation_of("ota") = restarted;
    common::wait_ready(&sys.api.http, &format!("http://{addr}")).await;
    // L3: ten loans, of the copies registered last (the end of the backlog).
    let mut refused = Vec::new();
    for barcode in barcodes.iter().rev().take(10) {
        let (s, v) = sys
            .api
            .call(
                "POST",
                "/api/v1/branches/ota/checkouts",
                Some(&staff),
                Some(json!({"card_number": reader, "barcode": barcode})),
            )
            .await;
        if s != 201 {
            refused.push(format!("{barcode}: {s} {v}"));
        }
    }
    assert!(
        refused.is_empty(),
        "refused right after /readyz said 200: {refused:#?}"
    );
}
