//! Issue 3 across processes: `kitsuki patron`, `kitsuki notification`, `kitsuki catalog`
//! and `kitsuki gateway` as separate processes over PostgreSQL and NATS JetStream, mail
//! through a real SMTP server on loopback. A counter clerk registers a patron and enables
//! the web service (P2, P3); the patron logs in with the temporary password (P5), registers
//! an email address (P9: verification mail → link → completion mail), then forgets the
//! password while the SMTP server is down (P11, N2: the mail is retried and arrives once
//! it is back, exactly once) and resets it with the link, which works once.

mod common;

use std::time::Duration;

use common::{SmtpSink, eventually, free_port, link_token, start, temp_dir, wait_ready};
use kitsuki_platform::testing;
use serde_json::{Value, json};

struct System {
    _procs: Vec<common::Proc>,
    base: String,
    http: reqwest::Client,
    notification: String,
}

/// The notification service's delivery log (its gRPC), newest first.
async fn deliveries(url: &str) -> Vec<kitsuki_proto::notification::Delivery> {
    let mut c = kitsuki_proto::notification::notification_service_client::NotificationServiceClient::connect(url.to_string())
        .await
        .unwrap();
    c.list_deliveries(kitsuki_proto::notification::ListDeliveriesRequest { limit: 50 })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

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
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn start_system(dir: &std::path::Path, smtp_url: &str, admin_pw: &str) -> System {
    let prefix = testing::unique_prefix();
    let nats = testing::nats_url();
    let data = dir.to_string_lossy().to_string();
    let catalog_db = testing::fresh_pg_database().await.unwrap();
    let patron_db = testing::fresh_pg_database().await.unwrap();
    let notification_db = testing::fresh_pg_database().await.unwrap();
    let bus = vec![
        ("KITSUKI_NATS_URL", nats.clone()),
        ("KITSUKI_BUS_PREFIX", prefix.clone()),
        ("KITSUKI_DATA_DIR", data.clone()),
    ];
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v = bus.clone();
        v.extend_from_slice(extra);
        v
    };
    let run = |name: &str, args: &[&str], envs: Vec<(&'static str, String)>| {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start(name, args, &envs, dir)
    };
    let catalog = run(
        "catalog",
        &["catalog", "--listen", "127.0.0.1:0"],
        with(&[("KITSUKI_DATABASE_URL", catalog_db)]),
    );
    let patron = run(
        "patron",
        &["patron", "--listen", "127.0.0.1:0"],
        with(&[
            ("KITSUKI_DATABASE_URL", patron_db),
            ("KITSUKI_ADMIN_PASSWORD", admin_pw.to_string()),
        ]),
    );
    let notification = run(
        "notification",
        &[
            "notification",
            "--listen",
            "127.0.0.1:0",
            "--patron-url",
            &patron.url,
            "--catalog-url",
            &catalog.url,
        ],
        with(&[
            ("KITSUKI_DATABASE_URL", notification_db),
            ("KITSUKI_SMTP_URL", smtp_url.to_string()),
            ("KITSUKI_PUBLIC_BASE_URL", "http://kitsuki.test".to_string()),
            ("KITSUKI_MAIL_RETRY_BASE_MS", "200".to_string()),
            ("KITSUKI_MAIL_RETRY_MAX_MS", "500".to_string()),
        ]),
    );
    let gateway = run(
        "gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--catalog-url",
            &catalog.url,
            "--patron-url",
            &patron.url,
        ],
        vec![],
    );
    let http = reqwest::Client::new();
    for p in [&catalog, &patron, &notification, &gateway] {
        wait_ready(&http, &p.url).await;
    }
    let base = gateway.url.clone();
    let notification_url = notification.url.clone();
    System {
        _procs: vec![gateway, notification, patron, catalog],
        base,
        http,
        notification: notification_url,
    }
}

/// Waits until the sink holds `n` mails and returns them (decoded).
async fn mails(sink: &SmtpSink, n: usize) -> Vec<String> {
    eventually(
        &format!("{n} mails at the SMTP server"),
        Duration::from_secs(60),
        || async {
            let m = sink.mails();
            (m.len() >= n).then_some(m)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_registration_email_verification_and_password_reset_across_processes() {
    let dir = temp_dir("accounts");
    let port = free_port();
    let mut sink = SmtpSink::start(port, &dir.join("smtp"));
    let admin_pw = common::random_password();
    let sys = start_system(&dir, &sink.url(), &admin_pw).await;
    let (http, base) = (&sys.http, sys.base.as_str());

    // Staff at the counter (S2, P2-P4).
    let (s, v) = post(
        http,
        format!("{base}/api/v1/staff/session"),
        None,
        json!({"username": "admin", "password": admin_pw}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let staff = v["token"].as_str().unwrap().to_string();
    let (s, v) = post(
        http,
        format!("{base}/api/v1/branches/yamaga/patrons"),
        Some(&staff),
        json!({"name": "杵築 花子", "name_reading": "きつき はなこ", "birth_date": "1990-05-05", "id_document": "driving_licence"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let card = v["card_number"].as_str().unwrap().to_string();
    assert_eq!(card.len(), 7, "P1: 7 digits");
    let (s, v) = post(
        http,
        format!("{base}/api/v1/branches/yamaga/patrons/{card}/web-service"),
        Some(&staff),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let temporary = v["temporary_password"].as_str().unwrap().to_string();

    // The patron logs in with the temporary password (P5) — the card typed with a hyphen (P1).
    let hyphenated = format!("{}-{}", &card[..3], &card[3..]);
    let (s, v) = post(
        http,
        format!("{base}/api/v1/session"),
        None,
        json!({"card_number": hyphenated, "password": temporary}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["temporary_password"], true);
    let patron = v["token"].as_str().unwrap().to_string();

    // P9: registering an address sends a verification mail to it; the link completes it and
    // the completion mail follows.
    let (s, v) = post(
        http,
        format!("{base}/api/v1/me/email"),
        Some(&patron),
        json!({"email": "hanako@example.jp"}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let first = mails(&sink, 1).await;
    assert!(
        first[0].contains("To: hanako@example.jp") || first[0].contains("<hanako@example.jp>"),
        "{}",
        first[0]
    );
    let token = link_token(&first[0], "/email/verify").expect("a verification link");
    assert!(
        first[0].contains("http://kitsuki.test/email/verify?token="),
        "{}",
        first[0]
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
    assert_eq!(
        me["email_verified"], false,
        "not in force before the link is opened"
    );
    assert_eq!(me["pending_email"], "hanako@example.jp");
    let (s, _) = post(
        http,
        format!("{base}/api/v1/email-verifications"),
        None,
        json!({"token": token}),
    )
    .await;
    assert_eq!(s, 204);
    let two = mails(&sink, 2).await;
    assert!(
        two[1].contains("メールアドレス変更完了のお知らせ"),
        "{}",
        two[1]
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
    assert_eq!(
        (me["email"].as_str(), me["email_verified"].as_bool()),
        (Some("hanako@example.jp"), Some(true))
    );

    // P11 with the SMTP server down: the answer is the same, the mail waits and is retried.
    sink.stop();
    let (s, _) = post(
        http,
        format!("{base}/api/v1/password-resets"),
        None,
        json!({"card_number": card, "email": "hanako@example.jp"}),
    )
    .await;
    assert_eq!(s, 202);
    let (s, _) = post(
        http,
        format!("{base}/api/v1/password-resets"),
        None,
        json!({"card_number": card, "email": "someone@example.jp"}),
    )
    .await;
    assert_eq!(
        s, 202,
        "P11: the same answer when card and address do not match"
    );
    eventually(
        "the reset mail failing and waiting for a retry",
        Duration::from_secs(60),
        || async {
            deliveries(&sys.notification)
                .await
                .iter()
                .find(|d| d.status == "pending" && d.attempts >= 2)
                .map(|_| ())
        },
    )
    .await;
    let sink = SmtpSink::start(port, &dir.join("smtp"));
    let three = mails(&sink, 3).await;
    let reset = link_token(&three[2], "/password/reset").expect("a reset link");
    // Every delivery is settled: nothing left that could arrive a second time.
    let log = eventually("every delivery sent", Duration::from_secs(30), || async {
        let d = deliveries(&sys.notification).await;
        d.iter().all(|d| d.status == "sent").then_some(d)
    })
    .await;
    assert_eq!(
        log.len(),
        3,
        "verification, completion, reset: the mismatch sends nothing"
    );
    assert_eq!(sink.mails().len(), 3, "the reset mail arrives once");

    let (s, v) = post(
        http,
        format!("{base}/api/v1/password-resets/confirm"),
        None,
        json!({"token": reset, "new_password": "a-new-Passw0rd"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(
        http,
        format!("{base}/api/v1/password-resets/confirm"),
        None,
        json!({"token": reset, "new_password": "another-Passw0rd"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("token_invalid")),
        "a reset link works once"
    );
    // The old session was revoked by the reset; the new password logs in.
    let r = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&patron)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = post(
        http,
        format!("{base}/api/v1/session"),
        None,
        json!({"card_number": card, "password": "a-new-Passw0rd"}),
    )
    .await;
    assert_eq!((s, v["temporary_password"].as_bool()), (200, Some(false)));
}
