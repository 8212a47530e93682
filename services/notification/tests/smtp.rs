//! Mail through a real SMTP server (the aiosmtpd sink of `smtp_sink.py`, a child process
//! on a free port) from events on a real bus: NATS JetStream with a unique prefix, or the
//! in-process bus. Every body runs on PostgreSQL and on SQLite. Waits are deadlines.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use kitsuki_notification::MailTransport;
use kitsuki_platform::bus::{MemoryBus, NatsBus, SharedBus};
use kitsuki_platform::testing;

on_both_backends!(multi_thread(2);
    a_verification_event_on_nats_sends_one_mail_with_the_link,
    a_mail_is_retried_while_the_server_is_down_and_arrives_once,
    a_mail_the_server_refuses_is_given_up_without_logging_the_address,
);

/// Rules P9 and N1: the verification mail goes to the address being verified, with the
/// link and its expiry; the completion mail goes to the address in force.
async fn a_verification_event_on_nats_sends_one_mail_with_the_link(backend: Backend) {
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let contacts = FixedContacts::new()
        .with("1234567", "current@example.jp")
        .verifying("v-1", "1234567", "new@example.jp");
    let n = notifier(
        fresh_db(backend).await,
        config(MailTransport::Smtp { url: sink.url() }),
        contacts,
    )
    .await;
    let nats = NatsBus::connect_within(
        &testing::nats_url(),
        &testing::unique_prefix(),
        Duration::from_secs(10),
    )
    .await
    .expect("the test NATS server");
    let bus: SharedBus = Arc::new(nats.clone());
    let stop = run(&n, bus.clone());

    let verify = verification_requested("1234567", "v-1", "tok-abc", "2026-04-03T06:30:00.000000Z");
    bus.publish(&verify).await.expect("publish");
    let row = wait_for("the verification mail to be sent", || async {
        n.deliveries_of_event(&verify.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "sent")
    })
    .await;
    let mails = mails_in(&sink_dir);
    assert_eq!(mails.len(), 1, "exactly one mail");
    let (name, raw) = &mails[0];
    let mail = mime::parse(raw);
    assert_eq!(mail.header("To"), Some("new@example.jp"));
    assert_eq!(envelope_recipients(&sink_dir, name), ["new@example.jp"]);
    assert_eq!(mail.header("Subject"), Some("メールアドレス確認のお願い"));
    let from = mail.header("From").unwrap();
    assert!(
        from.contains("杵築市立図書館") && from.contains("<library@city.kitsuki.lg.jp>"),
        "{from}"
    );
    assert_eq!(
        mail.header("Message-ID"),
        Some(format!("<{}@city.kitsuki.lg.jp>", row.delivery_id).as_str())
    );
    assert!(
        mail.body
            .contains("\nhttp://localhost:8080/email/verify?token=tok-abc\n"),
        "{}",
        mail.body
    );
    assert!(
        mail.body.contains("2026年4月3日（金）15時30分"),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains("図書館からパスワードをお尋ねすることは絶対にありません")
    );
    assert_eq!(row.recipient, "new@example.jp");
    assert_eq!(row.attempts, 1);
    assert!(row.sent_at.is_some());
    assert!(
        !row.params.contains("tok-abc"),
        "the link token is not kept once sent"
    );

    let changed = email_changed("1234567");
    bus.publish(&changed).await.expect("publish");
    wait_for("the completion mail to be sent", || async {
        n.deliveries_of_event(&changed.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "sent")
    })
    .await;
    let mails = mails_in(&sink_dir);
    assert_eq!(mails.len(), 2);
    let mail = mime::parse(&mails[1].1);
    assert_eq!(
        mail.header("Subject"),
        Some("メールアドレス変更完了のお知らせ")
    );
    assert_eq!(mail.header("To"), Some("current@example.jp"));

    stop.trigger();
    nats.delete_stream().await.expect("delete the test stream");
}

/// Rule N2: while the mail server is down the delivery stays pending, its attempts
/// counted and its error recorded; once the server is up the mail arrives, once.
async fn a_mail_is_retried_while_the_server_is_down_and_arrives_once(backend: Backend) {
    let port = free_port();
    let sink_dir = temp_dir("sink");
    let contacts = FixedContacts::new().with("7654321", "patron@example.jp");
    let n = notifier(
        fresh_db(backend).await,
        config(MailTransport::Smtp {
            url: format!("smtp://127.0.0.1:{port}"),
        }),
        contacts,
    )
    .await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());

    let event = email_changed("7654321");
    bus.publish(&event).await.expect("publish");
    let row = wait_for("three failed attempts", || async {
        n.deliveries_of_event(&event.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.attempts >= 3 && !d.last_error.is_empty())
    })
    .await;
    assert_eq!(row.status, "pending");
    assert!(!row.last_error.contains('@'), "{}", row.last_error);
    assert!(row.recipient.is_empty());
    assert!(mails_in(&sink_dir).is_empty());

    let _sink = Sink::start(port, &sink_dir).await;
    let row = wait_for("the mail to be sent", || async {
        n.deliveries_of_event(&event.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "sent")
    })
    .await;
    assert!(row.attempts >= 4, "attempts {}", row.attempts);
    assert_eq!(row.last_error, "");
    let mails = mails_in(&sink_dir);
    assert_eq!(mails.len(), 1, "exactly one mail");
    assert_eq!(
        mime::parse(&mails[0].1).header("Subject"),
        Some("メールアドレス変更完了のお知らせ")
    );
    stop.trigger();
}

/// A 5xx answer is tried `max_attempts_refused` times, then the delivery is failed; the
/// server's answer quotes the address, the recorded error does not.
async fn a_mail_the_server_refuses_is_given_up_without_logging_the_address(backend: Backend) {
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let contacts = FixedContacts::new().with("2222222", "refused-me@example.jp");
    let mut cfg = config(MailTransport::Smtp { url: sink.url() });
    cfg.retry.max_attempts_refused = 2;
    let n = notifier(fresh_db(backend).await, cfg, contacts).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());

    let event = email_changed("2222222");
    bus.publish(&event).await.expect("publish");
    let row = wait_for("the delivery to be given up", || async {
        n.deliveries_of_event(&event.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "failed")
    })
    .await;
    assert_eq!(row.attempts, 2);
    assert!(row.last_error.contains("550"), "{}", row.last_error);
    assert!(!row.last_error.contains("refused-me"), "{}", row.last_error);
    assert!(mails_in(&sink_dir).is_empty());
    stop.trigger();
}
