//! At the branch counter (rules S2, S3, P1-P4): registering patrons, enabling the web
//! service, and the audit record, against PostgreSQL and SQLite.

mod common;

use common::{ADULT_BIRTH, Backend, Env, START, env, form, on_both_backends};
use kitsuki_patron::store;
use kitsuki_platform::clock::format_instant;
use kitsuki_proto::{Branch, CardNumber, ErrorCode};
use sqlx::Row;
use time::Duration;
use time::macros::datetime;

async fn audit_rows(e: &Env) -> Vec<(String, String, String, String, String)> {
    sqlx::query("SELECT actor, action, branch, subject, at FROM audit_log WHERE action LIKE 'patron.%' ORDER BY at, audit_id")
        .fetch_all(&e.accounts.db().pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("actor"),
                r.get("action"),
                r.get("branch"),
                r.get("subject"),
                r.get("at"),
            )
        })
        .collect()
}

async fn s2_p1_registration_gives_distinct_random_seven_digit_cards(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut cards = Vec::new();
    for i in 0..8 {
        let card = e.register(&clerk, &format!("利用者{i}"), ADULT_BIRTH).await;
        assert_eq!(card.as_str().len(), 7);
        assert!(card.as_str().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(CardNumber::parse(card.as_str()).unwrap(), card);
        cards.push(card.as_str().parse::<u32>().unwrap());
    }
    let mut sorted = cards.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), cards.len(), "P1: unique cards");
    let sequential = cards.windows(2).all(|w| w[1] == w[0] + 1);
    assert!(!sequential, "cards are random, not sequential: {cards:?}");
}

async fn p1_a_card_number_taken_is_drawn_again(backend: Backend) {
    let e = env(backend).await;
    let draws = std::sync::Arc::new(std::sync::Mutex::new(vec![5u32, 5, 7].into_iter()));
    let accounts = e
        .accounts
        .clone()
        .with_card_draws(move || draws.lock().unwrap().next().unwrap_or(9));
    let clerk = e.clerk().await;
    let first = accounts
        .register_patron(&clerk, Branch::Kitsuki, &form("一人目", ADULT_BIRTH))
        .await
        .unwrap();
    let second = accounts
        .register_patron(&clerk, Branch::Kitsuki, &form("二人目", ADULT_BIRTH))
        .await
        .unwrap();
    assert_eq!(first.as_str(), "1000005");
    assert_eq!(second.as_str(), "1000007", "5 was taken: drawn again");
    // The failed draw left nothing behind.
    assert_eq!(e.subjects().await.len(), 2);
}

async fn s3_staff_of_yamaga_cannot_register_at_ota_and_audit_says_who_when_where(backend: Backend) {
    let e = env(backend).await;
    let yamaga = e.staff("yamaga_clerk", &[Branch::Yamaga]).await;
    let refused = e
        .accounts
        .register_patron(&yamaga, Branch::Ota, &form("大田 次郎", ADULT_BIRTH))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Forbidden);
    assert!(e.subjects().await.is_empty(), "nothing registered");

    e.advance(Duration::minutes(5));
    let card = e
        .accounts
        .register_patron(&yamaga, Branch::Yamaga, &form("山香 次郎", ADULT_BIRTH))
        .await
        .unwrap();
    let rows = audit_rows(&e).await;
    assert_eq!(
        rows,
        vec![
            (
                "yamaga_clerk".to_string(),
                "patron.register.denied".to_string(),
                "ota".to_string(),
                String::new(),
                format_instant(START),
            ),
            (
                "yamaga_clerk".to_string(),
                "patron.register".to_string(),
                "yamaga".to_string(),
                card.to_string(),
                format_instant(START + Duration::minutes(5)),
            ),
        ]
    );
    let refused = e
        .accounts
        .enable_web_service(&yamaga, Branch::Kitsuki, card.as_str())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Forbidden, "S3 for enabling too");
    // Staff of several branches act at each of them.
    let both = e.staff("roving", &[Branch::Yamaga, Branch::Ota]).await;
    e.accounts
        .register_patron(&both, Branch::Ota, &form("大田 三郎", ADULT_BIRTH))
        .await
        .unwrap();
}

async fn s3_an_unknown_or_ended_staff_session_is_not_logged_in(backend: Backend) {
    let e = env(backend).await;
    for token in ["", "not-a-token"] {
        let err = e
            .accounts
            .register_patron(token, Branch::Kitsuki, &form("花子", ADULT_BIRTH))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotLoggedIn);
    }
    let clerk = e.clerk().await;
    e.accounts.staff().logout(&clerk).await.unwrap();
    let err = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, "1234567")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotLoggedIn);
}

async fn p2_registration_refusals_have_codes_and_write_nothing(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut cases = vec![
        (form("花子", "2010/04/02"), ErrorCode::InvalidBirthDate),
        (form("花子", "2026-05-10"), ErrorCode::InvalidBirthDate),
        (form("花子", "1900-06-01"), ErrorCode::InvalidBirthDate),
        (form("", ADULT_BIRTH), ErrorCode::InvalidInput),
    ];
    let mut f = form("花子", ADULT_BIRTH);
    f.id_document = "passport_number_TK1234567".into();
    cases.push((f, ErrorCode::InvalidIdDocument));
    let mut f = form("花子", ADULT_BIRTH);
    f.email = "hanako@hotmail.co.jp".into();
    cases.push((f, ErrorCode::FreeMailDomain));
    let mut f = form("花子", ADULT_BIRTH);
    f.email = "hanako@".into();
    cases.push((f, ErrorCode::InvalidEmail));
    for (f, code) in cases {
        let err = e
            .accounts
            .register_patron(&clerk, Branch::Kitsuki, &f)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{f:?}");
    }
    assert!(e.subjects().await.is_empty());
    assert!(audit_rows(&e).await.is_empty());
}

async fn p2_only_the_kind_of_document_is_stored(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let mut f = form("杵築 花子", ADULT_BIRTH);
    f.id_document = "driving_licence".into();
    let card = e
        .accounts
        .register_patron(&clerk, Branch::Kitsuki, &f)
        .await
        .unwrap();
    let mut conn = e.accounts.db().pool.acquire().await.unwrap();
    let p = store::get_patron(&mut conn, card.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.id_document, "driving_licence");
    assert_eq!(p.registered_branch, "kitsuki");
    assert_eq!(p.name, "杵築 花子");
    assert!(!p.web_enabled);
    assert_eq!(p.password_hash, None);
}

async fn p4_enabling_refused_for_a_twelve_year_old_and_allowed_on_1_april(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    // Twelve today (10 May 2026) but in 6th grade: junior high on 1 April 2027.
    let card = e.register(&clerk, "杵築 一郎", "2014-05-10").await;
    let refused = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotEligibleAge);
    // 31 March 2027, 23:59 in Kitsuki: still refused (the library-local date counts).
    e.clock.set(datetime!(2027-03-31 14:59 UTC));
    // (The clerk's session of last year has ended; a new day, a new login.)
    let clerk = e
        .accounts
        .staff()
        .login("kitsuki_clerk", common::STAFF_PASSWORD, "")
        .await
        .unwrap()
        .token;
    let refused = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotEligibleAge);
    // 1 April 2027, 00:00 in Kitsuki.
    e.clock.set(datetime!(2027-03-31 15:00 UTC));
    let t = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, card.as_str())
        .await
        .unwrap();
    assert_eq!(t.card_number, card.as_str());
    assert_eq!(t.name, "杵築 一郎");
    assert_eq!(
        e.subjects().await,
        vec!["patron.registered", "patron.web_service.enabled"],
        "refusals wrote no event"
    );
}

async fn p3_the_temporary_password_is_shown_once_and_stored_as_argon2id(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    assert_eq!(temporary.chars().count(), 10);
    let mut conn = e.accounts.db().pool.acquire().await.unwrap();
    let p = store::get_patron(&mut conn, card.as_str())
        .await
        .unwrap()
        .unwrap();
    let hash = p.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(&temporary));
    assert!(p.password_temporary && p.web_enabled);
    let audit = audit_rows(&e).await;
    assert_eq!(audit.last().unwrap().1, "patron.web_service.enable");
    assert_eq!(audit.last().unwrap().2, "kitsuki");
    // Full-width and hyphenated card numbers are the same card (P1).
    let wide: String = format!("{}-{}", &card.as_str()[..3], &card.as_str()[3..])
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
            other => other,
        })
        .collect();
    let again = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, &wide)
        .await
        .unwrap();
    assert_ne!(again.temporary_password, temporary);
    assert_eq!(
        audit_rows(&e).await.last().unwrap().1,
        "patron.temporary_password.reissue"
    );
}

async fn p3_enabling_an_unknown_or_malformed_card_is_refused(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let err = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, "7654321")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PatronNotFound);
    let err = e
        .accounts
        .enable_web_service(&clerk, Branch::Kitsuki, "12-34")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCardNumber);
}

on_both_backends!(
    s2_p1_registration_gives_distinct_random_seven_digit_cards,
    p1_a_card_number_taken_is_drawn_again,
    s3_staff_of_yamaga_cannot_register_at_ota_and_audit_says_who_when_where,
    s3_an_unknown_or_ended_staff_session_is_not_logged_in,
    p2_registration_refusals_have_codes_and_write_nothing,
    p2_only_the_kind_of_document_is_stored,
    p4_enabling_refused_for_a_twelve_year_old_and_allowed_on_1_april,
    p3_the_temporary_password_is_shown_once_and_stored_as_argon2id,
    p3_enabling_an_unknown_or_malformed_card_is_refused,
);
