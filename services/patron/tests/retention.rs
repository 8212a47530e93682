//! Retention (ARCHITECTURE.md "Retention"): links, sessions, login attempts and inbox ids
//! of patron-account go on their schedule once past their periods, against PostgreSQL and
//! SQLite. The test clock moves and the due jobs run, as `POST /api/v1/test/clock` does.

mod common;

use common::{ADULT_BIRTH, Backend, env, on_both_backends};
use kitsuki_platform::clock::format_instant;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testclock::DueJobs;
use kitsuki_platform::{inbox, retention};
use time::Duration;

async fn count(e: &common::Env, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&e.accounts.db().pool)
        .await
        .unwrap()
}

const TABLES: [&str; 7] = [
    "patron_sessions",
    "staff_sessions",
    "email_verifications",
    "password_resets",
    "login_failures",
    "login_throttle_keys",
    "inbox",
];

async fn counts(e: &common::Env) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push((t, count(e, t).await));
    }
    out
}

async fn tokens_sessions_attempts_and_inbox_ids_go_after_their_periods(backend: Backend) {
    let e = env(backend).await;
    let clerk = e.clerk().await;
    let (card, temporary) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let session = e.login(&card, &temporary).await;
    e.verified_email(&session, "hanako@example.jp").await;
    e.accounts
        .request_password_reset(card.as_str(), "hanako@example.jp", "192.0.2.5")
        .await
        .unwrap();
    let _ = e
        .accounts
        .login(card.as_str(), "wrong", "192.0.2.6")
        .await
        .unwrap_err();
    let mut conn = e.accounts.db().pool.acquire().await.unwrap();
    inbox::first_time(&mut conn, "test", "event-1", &format_instant(e.now()))
        .await
        .unwrap();
    drop(conn);
    let jobs = DueJobs::default();
    let shutdown = Shutdown::new();
    let task = retention::schedule(
        "patron",
        e.clock.clone(),
        e.accounts.retention(),
        &jobs,
        &shutdown,
    );
    jobs.run_all().await;
    let fresh = counts(&e).await;
    assert!(
        fresh.iter().all(|(_, n)| *n > 0),
        "nothing goes at once: {fresh:?}"
    );

    // 30 days and an hour on: the reset link (expired after 30 minutes), the login
    // attempts (15 minutes) and the inbox id (30 days after it was handled) are past their
    // periods; the sessions (12 hours) and the verification link (2 days) are not yet.
    e.advance(Duration::days(30) + Duration::hours(1));
    jobs.run_all().await;
    let later = counts(&e).await;
    let of = |t: &str| later.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!(of("password_resets"), 0, "{later:?}");
    assert_eq!(of("login_failures"), 0, "{later:?}");
    assert_eq!(of("login_throttle_keys"), 0, "{later:?}");
    assert_eq!(of("inbox"), 0, "{later:?}");
    for t in ["patron_sessions", "staff_sessions", "email_verifications"] {
        assert!(of(t) > 0, "{t} kept: {later:?}");
    }

    // 33 days on, every one of them is past its period.
    e.clock.set(common::START + Duration::days(33));
    jobs.run_all().await;
    assert!(
        counts(&e).await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        counts(&e).await
    );
    // What is not a record of the past stays: patrons, staff, the audit record (S3).
    for t in ["patrons", "staff", "audit_log"] {
        assert!(count(&e, t).await > 0, "{t}");
    }
    shutdown.trigger();
    task.await.unwrap();
}

on_both_backends!(tokens_sessions_attempts_and_inbox_ids_go_after_their_periods);
