//! Changing and resetting passwords (rules P3, P5, P10, P11, P13), against PostgreSQL and
//! SQLite.

mod common;

use common::{ADULT_BIRTH, Backend, env, on_both_backends};
use kitsuki_patron::PatronError;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, ErrorCode};
use time::Duration;

const NEW_PASSWORD: &str = "kitsuki-castle-town";

async fn p10_a_password_change_revokes_other_sessions_but_not_the_current(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let here = e.login(&card, &temporary).await;
    let elsewhere = e.login(&card, &temporary).await;
    e.accounts
        .change_password(&here, &temporary, NEW_PASSWORD)
        .await
        .unwrap();
    let p = e.accounts.session(&here).await.unwrap();
    assert!(!p.temporary_password, "P5: no longer temporary");
    assert_eq!(
        e.accounts.session(&elsewhere).await.unwrap_err().code(),
        ErrorCode::NotLoggedIn
    );
    assert_eq!(
        e.accounts
            .login(card.as_str(), &temporary, "192.0.2.1")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
    let g = e
        .accounts
        .login(card.as_str(), NEW_PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    assert!(!g.temporary_password);
    let changed: ev::PasswordChanged = e.last("patron.password.changed").await;
    assert_eq!(changed.card_number, card.as_str());
}

async fn p10_a_change_needs_the_current_password_and_refuses_weak_ones(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let s = e.login(&card, &temporary).await;
    let wrong = e
        .accounts
        .change_password(&s, "not-the-password", NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::BadCredentials);
    let hyphenated = format!("{}-{}", &card.as_str()[..3], &card.as_str()[3..]);
    // Born 2 April 2010 = 平成22年4月2日.
    for weak in [
        "short",
        hyphenated.as_str(),
        "2010/04/02",
        "20100402",
        "平成22年4月2日",
        "H22.04.02",
        "２０１０－０４－０２",
    ] {
        let err = e
            .accounts
            .change_password(&s, &temporary, weak)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::WeakPassword, "{weak}");
    }
    // Nothing changed: the temporary password still works and is still temporary.
    assert!(e.accounts.session(&s).await.unwrap().temporary_password);
    assert!(
        e.subjects()
            .await
            .iter()
            .all(|s| s != "patron.password.changed")
    );
    // A change without a session is not possible.
    let err = e
        .accounts
        .change_password("", &temporary, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotLoggedIn);
}

async fn p13_wrong_current_passwords_count_against_the_card(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let s = e.login(&card, &temporary).await;
    for _ in 0..5 {
        let _ = e.accounts.change_password(&s, "guess", NEW_PASSWORD).await;
    }
    let err = e
        .accounts
        .change_password(&s, &temporary, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PatronError::Throttled {
            retry_after_secs: 900
        }
    );
}

async fn p3_a_new_temporary_password_revokes_every_session(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let a = e.login(&card, &temporary).await;
    e.accounts
        .change_password(&a, &temporary, NEW_PASSWORD)
        .await
        .unwrap();
    let b = e.login(&card, NEW_PASSWORD).await;
    let again = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap();
    for s in [&a, &b] {
        assert_eq!(
            e.accounts.session(s).await.unwrap_err().code(),
            ErrorCode::NotLoggedIn
        );
    }
    let g = e
        .accounts
        .login(card.as_str(), &again.temporary_password, "192.0.2.1")
        .await
        .unwrap();
    assert!(g.temporary_password, "P5: temporary again");
}

/// A web-service patron with a verified address; returns card, password and session.
async fn patron_with_verified_email(
    e: &common::Env,
    email: &str,
) -> (kitsuki_proto::CardNumber, String, String) {
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let s = e.login(&card, &temporary).await;
    e.verified_email(&s, email).await;
    (card, temporary, s)
}

async fn p11_a_reset_link_works_once(backend: Backend) {
    let e = env(backend).await;
    let (card, temporary, session) = patron_with_verified_email(&e, "Hanako@Example.jp").await;
    // Case-insensitive match with the verified address.
    e.accounts
        .request_password_reset(card.as_str(), "hanako@EXAMPLE.JP", "192.0.2.1")
        .await
        .unwrap();
    let reset: ev::PasswordResetRequested = e.last("patron.password.reset_requested").await;
    assert_eq!(reset.card_number, card.as_str());
    assert_eq!(reset.expires_at, "2026-05-10T01:30:00.000000Z");
    // P10 applies; a weak password leaves the link usable.
    let weak = e
        .accounts
        .confirm_password_reset(&reset.token, "2010-04-02")
        .await
        .unwrap_err();
    assert_eq!(weak.code(), ErrorCode::WeakPassword);
    e.accounts
        .confirm_password_reset(&reset.token, NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        e.accounts.session(&session).await.unwrap_err().code(),
        ErrorCode::NotLoggedIn,
        "every session revoked"
    );
    let g = e
        .accounts
        .login(card.as_str(), NEW_PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    assert!(!g.temporary_password);
    assert_eq!(
        e.accounts
            .login(card.as_str(), &temporary, "192.0.2.1")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
    let again = e
        .accounts
        .confirm_password_reset(&reset.token, "another-password")
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::TokenInvalid, "single use");
    let unknown = e
        .accounts
        .confirm_password_reset("0000", NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::TokenInvalid);
}

async fn p11_a_reset_link_expires_after_30_minutes(backend: Backend) {
    let e = env(backend).await;
    let (card, _, _) = patron_with_verified_email(&e, "hanako@example.jp").await;
    e.accounts
        .request_password_reset(card.as_str(), "hanako@example.jp", "")
        .await
        .unwrap();
    let first: ev::PasswordResetRequested = e.last("patron.password.reset_requested").await;
    e.advance(Duration::minutes(1));
    e.accounts
        .request_password_reset(card.as_str(), "hanako@example.jp", "")
        .await
        .unwrap();
    let second: ev::PasswordResetRequested = e.last("patron.password.reset_requested").await;
    // 30 minutes after the first request: the first link has expired, the second (asked
    // for a minute later) has not.
    e.advance(Duration::minutes(29));
    let err = e
        .accounts
        .confirm_password_reset(&first.token, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    e.accounts
        .confirm_password_reset(&second.token, NEW_PASSWORD)
        .await
        .unwrap();
    // Using one spends the others.
    let err = e
        .accounts
        .confirm_password_reset(&first.token, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenInvalid);
}

async fn p11_the_answer_is_the_same_whether_or_not_card_and_address_match(backend: Backend) {
    let e = env(backend).await;
    let (card, _, session) = patron_with_verified_email(&e, "hanako@example.jp").await;
    let clerk = e
        .accounts
        .staff()
        .login("kitsuki_clerk", common::STAFF_PASSWORD, "")
        .await
        .unwrap()
        .token;
    let (no_email, _) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let before = e.subjects().await.len();
    // Pending, not verified: no reset (the patron must come to a counter).
    e.accounts
        .request_email_change(&session, "new@example.jp")
        .await
        .unwrap();
    let before = before + 1;
    for (c, m) in [
        (card.as_str(), "other@example.jp"),
        (card.as_str(), "new@example.jp"),
        ("7777777", "hanako@example.jp"),
        ("not a card", "hanako@example.jp"),
        (no_email.as_str(), "hanako@example.jp"),
        (card.as_str(), ""),
    ] {
        let answer = e.accounts.request_password_reset(c, m, "").await;
        assert_eq!(answer, Ok(()), "{c} {m}");
    }
    assert_eq!(
        e.subjects().await.len(),
        before,
        "no reset link for any of them"
    );
}

async fn p11_p13_reset_requests_are_throttled_whether_they_match_or_not(backend: Backend) {
    let e = env(backend).await;
    let (card, _, _) = patron_with_verified_email(&e, "hanako@example.jp").await;
    for c in [card.as_str(), "7777777"] {
        for i in 0..5 {
            e.accounts
                .request_password_reset(c, "hanako@example.jp", &format!("192.0.2.{i}"))
                .await
                .unwrap();
        }
        let err = e
            .accounts
            .request_password_reset(c, "hanako@example.jp", "192.0.2.100")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PatronError::Throttled {
                retry_after_secs: 900
            },
            "{c}"
        );
    }
    // Reset requests do not lock the login.
    let err = e
        .accounts
        .login(card.as_str(), "wrong", "192.0.2.1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadCredentials);
}

async fn p11_p13_of_100_parallel_reset_requests_at_most_the_limit_mail_a_link(backend: Backend) {
    let e = env(backend).await;
    let (card, _, _) = patron_with_verified_email(&e, "hanako@example.jp").await;
    let requests = (0..100).map(|_| {
        let accounts = e.accounts.clone();
        let card = card.to_string();
        tokio::spawn(async move {
            accounts
                .request_password_reset(&card, "hanako@example.jp", "192.0.2.77")
                .await
        })
    });
    let answers: Vec<_> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for a in &answers {
        if let Err(err) = a {
            assert_eq!(err.code(), ErrorCode::TooManyAttempts);
        }
    }
    let answered = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(answered, 5, "the card's limit, whatever the concurrency");
    let mailed = e
        .subjects()
        .await
        .iter()
        .filter(|s| *s == "patron.password.reset_requested")
        .count();
    assert_eq!(mailed, 5, "one link per request let through");
}

on_both_backends!(
    p10_a_password_change_revokes_other_sessions_but_not_the_current,
    p10_a_change_needs_the_current_password_and_refuses_weak_ones,
    p13_wrong_current_passwords_count_against_the_card,
    p3_a_new_temporary_password_revokes_every_session,
    p11_a_reset_link_works_once,
    p11_a_reset_link_expires_after_30_minutes,
    p11_the_answer_is_the_same_whether_or_not_card_and_address_match,
    p11_p13_reset_requests_are_throttled_whether_they_match_or_not,
    p11_p13_of_100_parallel_reset_requests_at_most_the_limit_mail_a_link,
);
