//! The patron's JSON API (API.md "Patron") against the real patron-account service:
//! sessions, `/me`, password and email changes, verification and reset links
//! (rules P1, P5, P7–P11, P13).

mod common;

use common::{ADULT, NEW_PASSWORD, TestApp, assert_security_headers};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn patron_login_answers_the_session_and_sets_the_session_cookie() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let reply = app.patron_login(&card, &password).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_security_headers(&reply, "login");
    let body = reply.json();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["temporary_password"], true, "rule P5");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let cookie = reply.set_cookie("kitsuki_session").unwrap();
    assert!(
        cookie.starts_with(&format!("kitsuki_session={token}")),
        "{cookie}"
    );
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Expires="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }

    let me = app.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.header("cache-control"), Some("no-store"));
    assert_eq!(
        me.json(),
        json!({"card_number": card, "name": "杵築 花子", "email": null, "email_verified": false, "pending_email": null, "temporary_password": true})
    );
    let by_cookie = app
        .request("GET", "/api/v1/me", |r| {
            r.header("cookie", format!("kitsuki_session={token}"))
        })
        .await;
    assert_eq!(by_cookie.json()["card_number"], card.as_str());

    // Rule P1: full-width digits and a hyphen are the same card.
    let wide: String = card
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    let typed = format!("{}-{}", &wide[..9], &wide[9..]);
    assert_eq!(
        app.patron_login(&typed, &password).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn p13_every_wrong_login_reads_the_same_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (card, _) = app.web_patron("杵築 花子").await;
    let not_enabled = app
        .register_patron(&admin, "yamaga", "山香 次郎", ADULT, None)
        .await;
    let unknown = if card == "1000000" {
        "1000001"
    } else {
        "1000000"
    };
    let mut bodies = Vec::new();
    for (who, password) in [
        (card.as_str(), "wrong password"),
        (unknown, "wrong password"),
        (not_enabled.as_str(), "whatever-it-is"),
        ("12", "wrong password"),
        ("", ""),
    ] {
        let reply = app.patron_login(who, password).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{who}: {}",
            reply.text
        );
        assert_eq!(reply.set_cookie("kitsuki_session"), None);
        bodies.push(reply.json());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0]["error"]["code"], "bad_credentials");
}

#[tokio::test]
async fn p13_repeated_failures_are_throttled_with_retry_after() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let mut last = None;
    for _ in 0..10 {
        let reply = app.patron_login(&card, "wrong password").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(reply);
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = last.expect("throttled within 10 failures");
    assert_eq!(reply.code(), "too_many_attempts");
    assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    // While throttled, even the right password waits.
    let reply = app.patron_login(&card, &password).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn p13_failures_are_also_counted_per_client_address() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    // Few failures per card, many from this one address (the gateway passes it on).
    let mut throttled = None;
    for n in 0..40u32 {
        let guess = format!("{:07}", 2_000_000 + n / 3);
        let reply = app.patron_login(&guess, "wrong password").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(n);
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    assert!(throttled.is_some(), "the address was never throttled");
    let reply = app.patron_login(&card, &password).await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address waits, whatever the card"
    );
}

/// Rule P13 under parallel guesses, end to end: of 100 wrong passwords sent at once on one
/// card from one address, the card's limit (5) are verified (401), every other is 429;
/// the right password after them waits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p13_of_100_parallel_guesses_at_most_the_limit_are_verified() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let guesses = (0..100).map(|i| {
        let (app, card) = (&app, card.clone());
        async move { app.patron_login(&card, &format!("wrong guess {i}")).await }
    });
    let replies = futures::future::join_all(guesses).await;
    let verified = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((verified, throttled), (5, 95));
    let reply = app.patron_login(&card, &password).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_patron_token_only_ever_reads_its_own_account() {
    let app = TestApp::spawn().await;
    let (card_a, password_a) = app.web_patron("杵築 花子").await;
    let (card_b, password_b) = app.web_patron("山香 太郎").await;
    let a = app.patron_token(&card_a, &password_a).await;
    let b = app.patron_token(&card_b, &password_b).await;
    for path in [
        "/api/v1/me".to_string(),
        format!("/api/v1/me?card_number={card_b}"),
        format!("/api/v1/me?card={card_b}"),
    ] {
        let me = app.call("GET", &path, Some(&a), None).await.json();
        assert_eq!(me["card_number"], card_a.as_str(), "{path}");
        assert_eq!(me["name"], "杵築 花子", "{path}");
    }
    // A's cookie and B's bearer: the bearer speaks, and only for B.
    let reply = app
        .request("GET", "/api/v1/me", |r| {
            r.header("cookie", format!("kitsuki_session={a}"))
                .bearer_auth(&b)
        })
        .await;
    assert_eq!(reply.json()["card_number"], card_b.as_str());
    // No path names a patron.
    let reply = app
        .call("GET", &format!("/api/v1/patrons/{card_b}"), Some(&a), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // A staff token is no patron session.
    let staff = app.admin_token().await;
    let reply = app.call("GET", "/api/v1/me", Some(&staff), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
}

#[tokio::test]
async fn p10_a_password_change_revokes_the_other_sessions_and_ends_p5() {
    let app = TestApp::spawn().await;
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let this = app.patron_token(&card, &temporary).await;
    let other = app.patron_token(&card, &temporary).await;

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let reply = app
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(&this),
            Some(change("wrong", NEW_PASSWORD)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.code(), "bad_credentials");
    for weak in ["short", card.as_str(), "19850615"] {
        let reply = app
            .call(
                "PUT",
                "/api/v1/me/password",
                Some(&this),
                Some(change(&temporary, weak)),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{weak}: {}",
            reply.text
        );
        assert_eq!(reply.code(), "weak_password");
    }
    let reply = app
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(&this),
            Some(change(&temporary, NEW_PASSWORD)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);

    let reply = app.call("GET", "/api/v1/me", Some(&other), None).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the other session is revoked"
    );
    assert_eq!(reply.code(), "not_logged_in");
    let me = app
        .call("GET", "/api/v1/me", Some(&this), None)
        .await
        .json();
    assert_eq!(me["temporary_password"], false, "rule P5 is over");
    assert_eq!(
        app.patron_login(&card, &temporary).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.patron_login(&card, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &password).await;
    let reply = app
        .call("DELETE", "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(
        reply
            .set_cookie("kitsuki_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let reply = app.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
    // Logging out again, or without any session, needs a session like every call under
    // bearerAuth (the OpenAPI contract, issue 8): 401, and the cookie is cleared all the same.
    let reply = app
        .call("DELETE", "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
    assert!(
        reply
            .set_cookie("kitsuki_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let reply = app.call("DELETE", "/api/v1/session", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "not_logged_in");
}

#[tokio::test]
async fn p7_p8_p9_an_address_is_in_force_once_its_link_is_opened() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &password).await;
    let email = |address: &str| json!({"email": address});

    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(email("hanako@example.jp")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"carrier_notice": false, "sender_address": "library@city.kitsuki.lg.jp"})
    );
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(
        (me["email"].clone(), me["pending_email"].clone()),
        (json!(null), json!("hanako@example.jp"))
    );

    let link = app.verification_token().await;
    let verify = json!({"token": link});
    let reply = app
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(verify.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(me["email"], "hanako@example.jp");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["pending_email"], json!(null));
    let reply = app
        .call("POST", "/api/v1/email-verifications", None, Some(verify))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "a link works once");
    assert_eq!(reply.code(), "token_invalid");

    // Rule P8: a carrier address is accepted, with the notice.
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(email("hanako@docomo.ne.jp")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.json()["carrier_notice"], true);
    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(
        me["email"], "hanako@example.jp",
        "rule P9: the old address stays until the link is opened"
    );

    // Rule P7: free webmail is refused in Japanese (English on request).
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(email("hanako@yahoo.co.jp")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "free_mail_domain");
    assert_eq!(body["error"]["rule"], "P7");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("フリーメール")
    );
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(email("not an address")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_email");
}

#[tokio::test]
async fn p9_a_verification_link_expires_after_two_days() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &password).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(json!({"email": "hanako@example.jp"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let link = app.verification_token().await;
    app.clock.advance(Duration::days(2) + Duration::minutes(1));
    let reply = app
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(json!({"token": link})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::GONE, "{}", reply.text);
    assert_eq!(reply.code(), "token_expired");
    let reply = app
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(json!({"token": ""})),
        )
        .await;
    assert_eq!(reply.code(), "token_invalid");
}

#[tokio::test]
async fn p11_a_reset_request_answers_the_same_and_its_link_works_once() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let session = app.patron_token(&card, &password).await;
    app.verify_email(&session, "hanako@example.jp").await;
    let (other_card, _) = app.web_patron("山香 太郎").await;

    let mut replies = Vec::new();
    for (who, address) in [
        (card.as_str(), "hanako@example.jp"),
        (card.as_str(), "someone@example.jp"),
        (other_card.as_str(), "hanako@example.jp"),
        ("1234567", "hanako@example.jp"),
    ] {
        let reply = app
            .call(
                "POST",
                "/api/v1/password-resets",
                None,
                Some(json!({"card_number": who, "email": address})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{who} {address}: {}",
            reply.text
        );
        replies.push(reply.text);
    }
    assert!(
        replies.iter().all(|t| *t == replies[0]),
        "rule P11: {replies:?}"
    );
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets",
            None,
            Some(json!({"card_number": "12-34", "email": "x@example.jp"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_card_number");

    // Only the matching request mailed a link.
    let link = app.reset_token().await;
    let confirm = |new: &str| json!({"token": link, "new_password": new});
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets/confirm",
            None,
            Some(confirm("short")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "weak_password");
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets/confirm",
            None,
            Some(confirm(NEW_PASSWORD)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets/confirm",
            None,
            Some(confirm("another-long-one-99")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "token_invalid");

    assert_eq!(
        app.call("GET", "/api/v1/me", Some(&session), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "sessions end with a reset"
    );
    assert_eq!(
        app.patron_login(&card, &password).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.patron_login(&card, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn p11_a_reset_link_expires_after_30_minutes() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let session = app.patron_token(&card, &password).await;
    app.verify_email(&session, "hanako@example.jp").await;
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets",
            None,
            Some(json!({"card_number": card, "email": "Hanako@Example.jp"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let link = app.reset_token().await;
    app.clock.advance(Duration::minutes(31));
    let reply = app
        .call(
            "POST",
            "/api/v1/password-resets/confirm",
            None,
            Some(json!({"token": link, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::GONE, "{}", reply.text);
    assert_eq!(reply.code(), "token_expired");
}

#[tokio::test]
async fn a_cookie_call_that_changes_something_must_be_json() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &password).await;
    let cookie = format!("kitsuki_session={token}");
    let reply = app
        .request("POST", "/api/v1/me/email", |r| {
            r.header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("email=attacker%40example.jp")
        })
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(reply.code(), "csrf_failed");
    let reply = app
        .request("DELETE", "/api/v1/session", |r| r.header("cookie", &cookie))
        .await;
    assert_eq!(reply.code(), "csrf_failed");
    // Reading needs nothing more; changing with JSON is accepted.
    let reply = app
        .request("GET", "/api/v1/me", |r| r.header("cookie", &cookie))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = app
        .request("POST", "/api/v1/me/email", |r| {
            r.header("cookie", &cookie)
                .json(&json!({"email": "hanako@example.jp"}))
        })
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let reply = app
        .request("DELETE", "/api/v1/session", |r| {
            r.header("cookie", &cookie)
                .header("content-type", "application/json")
        })
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn without_a_session_the_account_paths_are_401() {
    let app = TestApp::spawn().await;
    for (method, path, body) in [
        ("GET", "/api/v1/me", None),
        (
            "PUT",
            "/api/v1/me/password",
            Some(json!({"current_password": "a", "new_password": "b"})),
        ),
        (
            "POST",
            "/api/v1/me/email",
            Some(json!({"email": "a@example.jp"})),
        ),
    ] {
        let reply = app.call(method, path, None, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.code(), "not_logged_in", "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
    }
    let reply = app
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"card_number": "1234567"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_input");
}
