//! Events of patron-account (ARCHITECTURE.md "Nothing lost", "Data"): written to the
//! outbox in the transaction of their change, exactly for the changes, with ids and never
//! names or addresses. Against PostgreSQL and SQLite.

mod common;

use common::{ADULT_BIRTH, Backend, env, form, on_both_backends};
use kitsuki_platform::outbox;
use kitsuki_proto::Branch;
use kitsuki_proto::events as ev;
use prost::Message;
use sqlx::Row;

const NAME: &str = "杵築 花子";
const EMAIL: &str = "hanako@example.jp";

async fn events_are_enqueued_exactly_for_the_changes(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut expected: Vec<&str> = Vec::new();
    let check = |expected: &Vec<&str>, subjects: Vec<String>, step: &str| {
        assert_eq!(&subjects, expected, "after {step}");
    };

    let card = e.register(&clerk, NAME, ADULT_BIRTH).await;
    expected.push("patron.registered");
    check(&expected, e.subjects().await, "registering");

    let mut with_email = form("山香 太郎", ADULT_BIRTH);
    with_email.email = "taro@example.jp".into();
    e.accounts
        .register_patron(&clerk, Branch::Kitsuki, &with_email)
        .await
        .unwrap();
    expected.extend(["patron.registered", "patron.email.verification_requested"]);
    check(&expected, e.subjects().await, "registering with an email");

    let _ = e
        .accounts
        .register_patron(&clerk, Branch::Kitsuki, &form("", ADULT_BIRTH))
        .await;
    let young = e.register(&clerk, "大田 三郎", "2016-01-01").await;
    expected.push("patron.registered");
    let _ = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, young.as_str())
        .await;
    check(&expected, e.subjects().await, "refusals");

    let t = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap();
    expected.push("patron.web_service.enabled");
    let _ = e.accounts.login(card.as_str(), "wrong", "").await;
    let s = e.login(&card, &t.temporary_password).await;
    e.accounts.session(&s).await.unwrap();
    check(&expected, e.subjects().await, "enabling and logging in");

    e.accounts.request_email_change(&s, EMAIL).await.unwrap();
    expected.push("patron.email.verification_requested");
    let v = e.last_verification().await;
    e.accounts.verify_email(&v.token).await.unwrap();
    expected.push("patron.email.changed");
    let _ = e.accounts.verify_email(&v.token).await;
    let _ = e.accounts.request_email_change(&s, "x@yahoo.co.jp").await;
    check(&expected, e.subjects().await, "email change");

    let _ = e
        .accounts
        .change_password(&s, &t.temporary_password, "short")
        .await;
    e.accounts
        .change_password(&s, &t.temporary_password, "kitsuki-castle-town")
        .await
        .unwrap();
    expected.push("patron.password.changed");
    check(&expected, e.subjects().await, "password change");

    e.accounts
        .request_password_reset(card.as_str(), "other@example.jp", "")
        .await
        .unwrap();
    e.accounts
        .request_password_reset(card.as_str(), EMAIL, "")
        .await
        .unwrap();
    expected.push("patron.password.reset_requested");
    let reset: ev::PasswordResetRequested = e.last("patron.password.reset_requested").await;
    e.accounts
        .confirm_password_reset(&reset.token, "another-good-password")
        .await
        .unwrap();
    expected.push("patron.password.changed");
    check(&expected, e.subjects().await, "reset");

    e.accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap();
    expected.push("patron.password.changed");
    e.accounts.contact(&card, None).await.unwrap();
    e.accounts.logout(&s).await.unwrap();
    check(&expected, e.subjects().await, "a new temporary password");

    assert_eq!(
        outbox::pending_count(e.accounts.db()).await.unwrap(),
        expected.len() as i64
    );
}

async fn events_carry_ids_and_times_but_no_names_or_addresses(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut f = form(NAME, ADULT_BIRTH);
    f.email = EMAIL.into();
    let card = e
        .accounts
        .register_patron(&clerk, Branch::Yamaga, &f)
        .await
        .unwrap_err();
    assert_eq!(card.code(), kitsuki_proto::ErrorCode::Forbidden);
    let card = e
        .accounts
        .register_patron(&clerk, Branch::Kitsuki, &f)
        .await
        .unwrap();
    let t = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap();
    let v = e.last_verification().await;
    e.accounts.verify_email(&v.token).await.unwrap();
    e.accounts
        .request_password_reset(card.as_str(), EMAIL, "")
        .await
        .unwrap();

    let rows = sqlx::query("SELECT event_id, subject, payload, headers FROM outbox ORDER BY seq")
        .fetch_all(&e.accounts.db().pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    for r in &rows {
        let id: String = r.get("event_id");
        let subject: String = r.get("subject");
        let payload: Vec<u8> = r.get("payload");
        let headers: String = r.get("headers");
        // Every patron event starts with EventMeta as field 1.
        let meta = ev::PatronRegistered::decode(payload.as_slice())
            .ok()
            .and_then(|m| m.meta)
            .unwrap_or_else(|| panic!("{subject}: no meta"));
        assert_eq!(meta.event_id, id, "{subject}");
        assert_eq!(meta.occurred_at, "2026-05-10T01:00:00.000000Z");
        assert!(headers.contains("kitsuki-event-time"), "{subject}");
        let text = String::from_utf8_lossy(&payload);
        for personal in [NAME, EMAIL, "hanako", &t.temporary_password] {
            assert!(!text.contains(personal), "{subject} carries {personal}");
        }
        assert!(!subject.starts_with("library."), "subjects are relative");
    }
    let registered =
        ev::PatronRegistered::decode(rows[0].get::<Vec<u8>, _>("payload").as_slice()).unwrap();
    assert_eq!(registered.card_number, card.as_str());
    assert_eq!(registered.branch, "kitsuki");
    let enabled: ev::WebServiceEnabled = e.last("patron.web_service.enabled").await;
    assert_eq!(
        (enabled.card_number.as_str(), enabled.branch.as_str()),
        (card.as_str(), "kitsuki")
    );
    // The raw link token travels only in the verification and reset events (events.proto);
    // the database keeps only its hash.
    assert_eq!(v.token.len(), 64);
    let stored: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM email_verifications WHERE token_hash = $1")
            .bind(&v.token)
            .fetch_one(&e.accounts.db().pool)
            .await
            .unwrap()
            .get("n");
    assert_eq!(stored, 0);
}

on_both_backends!(
    events_are_enqueued_exactly_for_the_changes,
    events_carry_ids_and_times_but_no_names_or_addresses,
);
