//! Email addresses (rules P6-P9) and the contact lookup of the notification service,
//! against PostgreSQL and SQLite.

mod common;

use common::{ADULT_BIRTH, Backend, Env, env, env_with, form, on_both_backends};
use kitsuki_patron::PatronSettings;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, CardNumber, ErrorCode};
use time::Duration;

/// A logged-in web-service patron: card, session, password.
async fn logged_in(e: &Env) -> (CardNumber, String, String) {
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let s = e.login(&card, &temporary).await;
    (card, s, temporary)
}

async fn p9_the_old_address_stays_in_force_until_the_link_is_opened(backend: Backend) {
    let e = env(backend).await;
    let (card, s, password) = logged_in(&e).await;
    // P6: a first address.
    e.verified_email(&s, "first@example.jp").await;
    let p = e.accounts.session(&s).await.unwrap();
    assert_eq!(p.email.as_deref(), Some("first@example.jp"));
    assert!(p.email_verified);
    assert_eq!(p.pending_email, None);

    let answer = e
        .accounts
        .request_email_change(&s, "Second@Example.JP")
        .await
        .unwrap();
    assert!(!answer.carrier_notice);
    let v = e.last_verification().await;
    assert_eq!(v.card_number, card.as_str());
    assert_eq!(v.expires_at, "2026-05-12T01:00:00.000000Z", "2 days");
    let p = e.accounts.session(&s).await.unwrap();
    assert_eq!(
        p.email.as_deref(),
        Some("first@example.jp"),
        "still in force"
    );
    assert_eq!(p.pending_email.as_deref(), Some("Second@example.jp"));
    let in_force = e.accounts.contact(&card, None).await.unwrap();
    assert_eq!(in_force.email, "first@example.jp");
    assert_eq!(in_force.name, "杵築 花子");
    let pending = e
        .accounts
        .contact(&card, Some(&v.verification_id))
        .await
        .unwrap();
    assert_eq!(pending.email, "Second@example.jp");

    // Opened just before the 2 days are over.
    e.advance(Duration::days(2) - Duration::minutes(1));
    e.accounts.verify_email(&v.token).await.unwrap();
    // The session idled out meanwhile; the patron logs in again.
    assert_eq!(
        e.accounts.session(&s).await.unwrap_err().code(),
        ErrorCode::NotLoggedIn
    );
    let s = e.login(&card, &password).await;
    let p = e.accounts.session(&s).await.unwrap();
    assert_eq!(p.email.as_deref(), Some("Second@example.jp"));
    assert!(p.email_verified);
    assert_eq!(p.pending_email, None);
    assert_eq!(
        e.accounts.contact(&card, None).await.unwrap().email,
        "Second@example.jp"
    );
    let changed: ev::EmailChanged = e.last("patron.email.changed").await;
    assert_eq!(changed.card_number, card.as_str());

    let again = e.accounts.verify_email(&v.token).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::TokenInvalid, "single use");
}

async fn p9_a_link_expires_after_2_days_and_changes_nothing(backend: Backend) {
    let e = env(backend).await;
    let (card, s, _) = logged_in(&e).await;
    e.accounts
        .request_email_change(&s, "late@example.jp")
        .await
        .unwrap();
    let v = e.last_verification().await;
    e.advance(Duration::days(2));
    let err = e.accounts.verify_email(&v.token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    assert_eq!(
        e.accounts.contact(&card, None).await.unwrap_err().code(),
        ErrorCode::PatronNotFound,
        "no address in force"
    );
    assert_eq!(
        e.accounts
            .contact(&card, Some(&v.verification_id))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PatronNotFound,
        "nothing to send once the link is dead"
    );
    let err = e.accounts.verify_email("no-such-token").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenInvalid);
}

async fn p9_a_newer_request_supersedes_older_pending_ones(backend: Backend) {
    let e = env(backend).await;
    let (card, s, _) = logged_in(&e).await;
    e.accounts
        .request_email_change(&s, "typo@exmaple.jp")
        .await
        .unwrap();
    let old = e.last_verification().await;
    e.accounts
        .request_email_change(&s, "right@example.jp")
        .await
        .unwrap();
    let new = e.last_verification().await;
    assert_ne!(old.verification_id, new.verification_id);
    assert_eq!(
        e.accounts
            .session(&s)
            .await
            .unwrap()
            .pending_email
            .as_deref(),
        Some("right@example.jp")
    );
    let err = e.accounts.verify_email(&old.token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenInvalid);
    assert_eq!(
        e.accounts
            .contact(&card, Some(&old.verification_id))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PatronNotFound
    );
    e.accounts.verify_email(&new.token).await.unwrap();
    assert_eq!(
        e.accounts.contact(&card, None).await.unwrap().email,
        "right@example.jp"
    );
}

async fn p7_free_mail_is_refused_and_p8_carrier_mail_gets_the_notice(backend: Backend) {
    let e = env(backend).await;
    let (_, s, _) = logged_in(&e).await;
    let before = e.subjects().await.len();
    for free in [
        "hanako@yahoo.co.jp",
        "hanako@mail.yahoo.co.jp",
        "Hanako@HOTMAIL.com",
    ] {
        let err = e.accounts.request_email_change(&s, free).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::FreeMailDomain, "{free}");
    }
    for bad in ["", "hanako", "hanako@example", "花子@example.jp"] {
        let err = e.accounts.request_email_change(&s, bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidEmail, "{bad}");
    }
    assert_eq!(e.subjects().await.len(), before, "refusals write nothing");
    assert_eq!(e.accounts.session(&s).await.unwrap().pending_email, None);

    let carrier = e
        .accounts
        .request_email_change(&s, "hanako.@docomo.ne.jp")
        .await
        .unwrap();
    assert!(carrier.carrier_notice);
    assert_eq!(carrier.sender_address, "library@city.kitsuki.lg.jp");
    let ordinary = e
        .accounts
        .request_email_change(&s, "hanako@example.jp")
        .await
        .unwrap();
    assert!(!ordinary.carrier_notice);
    let err = e
        .accounts
        .request_email_change("", "hanako@example.jp")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotLoggedIn);
}

async fn p9_an_address_given_at_the_counter_waits_for_its_link(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut f = form("杵築 花子", ADULT_BIRTH);
    f.email = "hanako@example.jp".into();
    let card = e
        .accounts
        .register_patron(&clerk, Branch::Kitsuki, &f)
        .await
        .unwrap();
    let v = e.last_verification().await;
    assert_eq!(v.card_number, card.as_str());
    assert_eq!(
        e.accounts.contact(&card, None).await.unwrap_err().code(),
        ErrorCode::PatronNotFound,
        "not in force before the link is opened"
    );
    let pending = e
        .accounts
        .contact(&card, Some(&v.verification_id))
        .await
        .unwrap();
    assert_eq!(pending.email, "hanako@example.jp");
    assert_eq!(pending.card_number, card.as_str());
    // The link works without a web-service login.
    e.accounts.verify_email(&v.token).await.unwrap();
    assert_eq!(
        e.accounts.contact(&card, None).await.unwrap().email,
        "hanako@example.jp"
    );
}

async fn get_contact_refuses_unknown_cards_and_other_patrons_verifications(backend: Backend) {
    let e = env(backend).await;
    let (card, s, _) = logged_in(&e).await;
    e.accounts
        .request_email_change(&s, "hanako@example.jp")
        .await
        .unwrap();
    let v = e.last_verification().await;
    let other = CardNumber::parse("7777777").unwrap();
    assert_eq!(
        e.accounts.contact(&other, None).await.unwrap_err().code(),
        ErrorCode::PatronNotFound
    );
    let clerk = e
        .accounts
        .staff()
        .login("kitsuki_clerk", common::STAFF_PASSWORD, "")
        .await
        .unwrap()
        .token;
    let someone = e.register(&clerk, "山香 太郎", ADULT_BIRTH).await;
    assert_eq!(
        e.accounts
            .contact(&someone, Some(&v.verification_id))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PatronNotFound,
        "a verification id answers only for its own card"
    );
    assert_eq!(
        e.accounts
            .contact(&card, Some("no-such-id"))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PatronNotFound
    );
}

async fn p7_p8_p13_configured_lists_and_limits_change_what_is_refused(backend: Backend) {
    // As the role reads them from its flags or KITSUKI_* variables.
    let settings = PatronSettings {
        free_mail_domains: Some(vec!["freemail.example".into()]),
        carrier_domains: Some(vec!["carrier.example".into()]),
        login_failures_per_account: Some(2),
        ..PatronSettings::default()
    };
    let e = env_with(backend, settings.config()).await;
    let (card, s, password) = logged_in(&e).await;
    let err = e
        .accounts
        .request_email_change(&s, "hanako@mail.freemail.example")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::FreeMailDomain,
        "P7: the configured list"
    );
    // A default free-mail domain is no longer on the list: an ordinary address now.
    let hotmail = e
        .accounts
        .request_email_change(&s, "hanako@hotmail.com")
        .await
        .unwrap();
    assert!(!hotmail.carrier_notice);
    let carrier = e
        .accounts
        .request_email_change(&s, "hanako@carrier.example")
        .await
        .unwrap();
    assert!(carrier.carrier_notice, "P8: the configured list");
    // P13: two failures per card lock it.
    for i in 0..2 {
        let _ = e
            .accounts
            .login(card.as_str(), "wrong", &format!("203.0.113.{i}"))
            .await;
    }
    let err = e
        .accounts
        .login(card.as_str(), &password, "203.0.113.9")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TooManyAttempts);
}

on_both_backends!(
    p9_the_old_address_stays_in_force_until_the_link_is_opened,
    p9_a_link_expires_after_2_days_and_changes_nothing,
    p9_a_newer_request_supersedes_older_pending_ones,
    p7_free_mail_is_refused_and_p8_carrier_mail_gets_the_notice,
    p9_an_address_given_at_the_counter_waits_for_its_link,
    get_contact_refuses_unknown_cards_and_other_patrons_verifications,
    p7_p8_p13_configured_lists_and_limits_change_what_is_refused,
);
