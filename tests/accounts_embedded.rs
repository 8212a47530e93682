//! Issue 3 in the embedded one-process run (`kitsuki` with no role): the same account flow
//! as across processes, with mails written as `.eml` files into the outbox folder and listed
//! on the dev page.

mod common;

use std::time::Duration;

use common::{eventually, link_token, read_mails, start, temp_dir, wait_ready};
use serde_json::{Value, json};

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut r = http.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_run_sends_account_mails_into_the_outbox_folder() {
    let dir = temp_dir("accounts-embedded");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let admin_pw = common::random_password();
    let app = start(
        "all-in-one",
        &["--listen", "127.0.0.1:0", "--data-dir", &data_s],
        &[("KITSUKI_ADMIN_PASSWORD", admin_pw.as_str())],
        &dir,
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &app.url).await;
    let base = app.url.as_str();

    let (_, v) = post(
        &http,
        format!("{base}/api/v1/staff/session"),
        None,
        json!({"username": "admin", "password": admin_pw}),
    )
    .await;
    let staff = v["token"].as_str().unwrap().to_string();
    let (s, v) = post(
        &http,
        format!("{base}/api/v1/branches/ota/patrons"),
        Some(&staff),
        json!({"name": "大田 太郎", "name_reading": "おおた たろう", "birth_date": "2000-01-15", "id_document": "health_insurance"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let card = v["card_number"].as_str().unwrap().to_string();
    let (_, v) = post(
        &http,
        format!("{base}/api/v1/branches/ota/patrons/{card}/web-service"),
        Some(&staff),
        json!({}),
    )
    .await;
    let temporary = v["temporary_password"].as_str().unwrap().to_string();
    let (s, v) = post(
        &http,
        format!("{base}/api/v1/session"),
        None,
        json!({"card_number": card, "password": temporary}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let patron = v["token"].as_str().unwrap().to_string();

    // A carrier address is accepted with the notice of P8.
    let (s, v) = post(
        &http,
        format!("{base}/api/v1/me/email"),
        Some(&patron),
        json!({"email": "taro@docomo.ne.jp"}),
    )
    .await;
    assert_eq!((s, v["carrier_notice"].as_bool()), (202, Some(true)), "{v}");
    let outbox = data.join("outbox");
    let mails = eventually(
        "the verification mail in the outbox",
        Duration::from_secs(30),
        || async {
            let m = read_mails(&outbox);
            (!m.is_empty()).then_some(m)
        },
    )
    .await;
    let token = link_token(&mails[0], "/email/verify").expect("a verification link");
    assert!(
        mails[0].contains(&format!("{base}/email/verify?token=")),
        "links point at this server: {}",
        mails[0]
    );

    // The dev page lists it.
    let page = http
        .get(format!("{base}/dev/outbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("メールアドレス"), "{page}");

    let (s, _) = post(
        &http,
        format!("{base}/api/v1/email-verifications"),
        None,
        json!({"token": token}),
    )
    .await;
    assert_eq!(s, 204);
    let mails = eventually("the completion mail", Duration::from_secs(30), || async {
        let m = read_mails(&outbox);
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("メールアドレス変更完了のお知らせ")
                && m.contains("taro@docomo.ne.jp"))
    );
    let me: Value = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&patron)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
}
