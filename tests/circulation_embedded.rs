//! Issue 4 in the embedded one-process run (`kitsuki --test-clock`): the three branch
//! instances, notification (mails as files in the outbox folder) and the gateway in one
//! process. A copy returned at Yamaga travels to Ōta for a hold (H7); Ōta's desk checks it
//! in; the ready mail is written (H8); the patron borrows it. The next copy is not
//! collected: a week later (test clock) the hold expires and the item passes to the next
//! patron in the queue (H9).

mod common;

use std::path::Path;
use std::time::Duration;

use common::system::{Api, READY_MAIL};
use common::{eventually, link_token, read_mails, start, temp_dir, wait_ready};
use serde_json::json;

async fn hold_status(api: &Api, token: &str, hold_id: &str) -> String {
    let (_, v) = api.call("GET", "/api/v1/me/holds", Some(token), None).await;
    v.as_array()
        .and_then(|a| a.iter().find(|h| h["hold_id"] == hold_id))
        .and_then(|h| h["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn outbox_mails(outbox: &Path, needle: &str, n: usize) -> Vec<String> {
    eventually(
        &format!("{n} mails with {needle}"),
        Duration::from_secs(30),
        || async {
            let m: Vec<String> = read_mails(outbox)
                .into_iter()
                .filter(|m| m.contains(needle))
                .collect();
            (m.len() >= n).then_some(m)
        },
    )
    .await
}

async fn web_patron(
    api: &Api,
    outbox: &Path,
    staff: &str,
    email: &str,
) -> (String, String, String) {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/patrons",
            Some(staff),
            Some(json!({"name": "大田 利用者", "name_reading": "おおた", "birth_date": "1970-10-10", "id_document": "health_insurance"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let card = v["card_number"].as_str().unwrap().to_string();
    let (_, v) = api
        .call(
            "POST",
            &format!("/api/v1/branches/ota/patrons/{card}/web-service"),
            Some(staff),
            Some(json!({})),
        )
        .await;
    let password = v["temporary_password"].as_str().unwrap().to_string();
    let (_, v) = api
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"card_number": card, "password": password})),
        )
        .await;
    let token = v["token"].as_str().unwrap().to_string();
    api.call(
        "POST",
        "/api/v1/me/email",
        Some(&token),
        Some(json!({"email": email})),
    )
    .await;
    let mail = outbox_mails(outbox, email, 1).await;
    let verify = link_token(&mail[0], "/email/verify").unwrap();
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(json!({"token": verify})),
        )
        .await;
    assert_eq!(s, 204);
    (card, token, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_run_routes_a_hold_to_ota_sends_the_ready_mail_and_passes_an_uncollected_item_on()
{
    let dir = temp_dir("circulation-embedded");
    let data = dir.join("data");
    let outbox = data.join("outbox");
    let data_s = data.to_string_lossy().to_string();
    let admin_pw = common::random_password();
    let app = start(
        "all-in-one",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_s,
            "--test-clock",
        ],
        &[("KITSUKI_ADMIN_PASSWORD", admin_pw.as_str())],
        &dir,
    );
    let api = Api {
        http: reqwest::Client::new(),
        base: app.url.clone(),
    };
    wait_ready(&api.http, &app.url).await;
    let admin = json!({"username": "admin", "password": admin_pw});
    let (_, v) = api
        .call("POST", "/api/v1/staff/session", None, Some(admin.clone()))
        .await;
    let staff = v["token"].as_str().unwrap().to_string();

    let (_, v) = api
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&staff),
            Some(json!({"title": "それから", "author": "夏目漱石", "type": "book"})),
        )
        .await;
    let title_id = v["title_id"].as_str().unwrap().to_string();
    for (barcode, branch) in [("E-KT-1", "kitsuki"), ("E-YM-1", "yamaga")] {
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
    let (borrower, _, _) = web_patron(&api, &outbox, &staff, "borrower@example.jp").await;
    let (first, first_token, _) = web_patron(&api, &outbox, &staff, "first@example.jp").await;
    let (second, second_token, second_pw) =
        web_patron(&api, &outbox, &staff, "second@example.jp").await;
    let (third, third_token, _) = web_patron(&api, &outbox, &staff, "third@example.jp").await;

    for (branch, barcode) in [("kitsuki", "E-KT-1"), ("yamaga", "E-YM-1")] {
        let (s, v) = eventually(
            "checkout once circulation knows the item",
            Duration::from_secs(30),
            || {
                let (api, staff) = (&api, staff.clone());
                let body = json!({"card_number": borrower, "barcode": barcode});
                async move {
                    let r = api
                        .call(
                            "POST",
                            &format!("/api/v1/branches/{branch}/checkouts"),
                            Some(&staff),
                            Some(body),
                        )
                        .await;
                    (r.0 != 404).then_some(r)
                }
            },
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let mut holds = Vec::new();
    for token in [&first_token, &second_token, &third_token] {
        let v = eventually("a web hold once no copy is on a shelf (H1)", Duration::from_secs(30), || {
            let (api, token, title_id) = (&api, token.clone(), title_id.clone());
            async move {
                let (s, v) = api
                    .call("POST", "/api/v1/me/holds", Some(&token), Some(json!({"title_id": title_id, "pickup_branch": "ota", "receipt_mail": false})))
                    .await;
                (s == 201).then_some(v)
            }
        })
        .await;
        holds.push(v["hold_id"].as_str().unwrap().to_string());
    }

    let (_, v) = api
        .call(
            "POST",
            "/api/v1/branches/yamaga/checkins",
            Some(&staff),
            Some(json!({"barcode": "E-YM-1"})),
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
            Some(json!({"barcode": "E-YM-1"})),
        )
        .await;
    assert_eq!(v["routing"].as_str(), Some("hold_shelf"), "{v}");
    let ready = outbox_mails(&outbox, READY_MAIL, 1).await;
    assert!(ready[0].contains("first@example.jp"));
    eventually("the first hold ready", Duration::from_secs(30), || async {
        (hold_status(&api, &first_token, &holds[0]).await == "ready").then_some(())
    })
    .await;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkouts",
            Some(&staff),
            Some(json!({"card_number": first, "barcode": "E-YM-1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // The next copy goes to the second patron, who does not collect it.
    api.call(
        "POST",
        "/api/v1/branches/kitsuki/checkins",
        Some(&staff),
        Some(json!({"barcode": "E-KT-1"})),
    )
    .await;
    api.call(
        "POST",
        "/api/v1/branches/ota/checkins",
        Some(&staff),
        Some(json!({"barcode": "E-KT-1"})),
    )
    .await;
    outbox_mails(&outbox, READY_MAIL, 2).await;
    eventually("the second hold ready", Duration::from_secs(30), || async {
        (hold_status(&api, &second_token, &holds[1]).await == "ready").then_some(())
    })
    .await;
    // The third patron may not take it meanwhile (L4).
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkouts",
            Some(&staff),
            Some(json!({"card_number": third, "barcode": "E-KT-1"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("item_held_for_other")),
        "{v}"
    );

    let (s, v) = api
        .call(
            "POST",
            "/api/v1/test/clock",
            Some(&staff),
            Some(json!({"advance_days": 8})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = api
        .call("POST", "/api/v1/staff/session", None, Some(admin))
        .await;
    let staff = v["token"].as_str().unwrap().to_string();
    // Sessions idled out over the week: the second patron logs in again and sees the end.
    let (_, v) = api
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"card_number": second, "password": second_pw})),
        )
        .await;
    let second_token = v["token"].as_str().unwrap().to_string();
    assert_eq!(hold_status(&api, &second_token, &holds[1]).await, "expired");
    let mails = outbox_mails(&outbox, READY_MAIL, 3).await;
    assert!(
        mails.iter().any(|m| m.contains("third@example.jp")),
        "H9: the item passes to the next hold"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/ota/checkouts",
            Some(&staff),
            Some(json!({"card_number": third, "barcode": "E-KT-1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}
