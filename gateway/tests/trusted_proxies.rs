//! Rule P13's per-address throttle behind a reverse proxy (`--trusted-proxies`): from a
//! trusted proxy the client is the address `X-Forwarded-For` names, so two patrons behind
//! the same ingress are counted apart; from any other peer the header is ignored, so a
//! caller cannot escape the throttle by writing a new address into each request.

mod common;

use common::{Options, Reply, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// A failed patron login with wrong card numbers (a few per card, so that only the address
/// counter can fill up), as forwarded for `client`.
async fn guess(app: &TestApp, n: u32, client: &str) -> Reply {
    let card = format!("{:07}", 3_000_000 + n / 3);
    app.request("POST", "/api/v1/session", |r| {
        r.header("x-forwarded-for", client)
            .json(&json!({"card_number": card, "password": "wrong password"}))
    })
    .await
}

/// Guesses as `client` until the address is throttled; answers how many were refused
/// with 401 before.
async fn throttle(app: &TestApp, client: &str) -> u32 {
    for n in 0..40u32 {
        let reply = guess(app, n, client).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.code(), "too_many_attempts");
            return n;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    panic!("{client} was never throttled");
}

#[tokio::test]
async fn p13_from_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    // The test connects from 127.0.0.1: here that is the ingress.
    let app = TestApp::spawn_with(Options {
        trusted_proxies: "127.0.0.0/8, ::1",
        ..Options::default()
    })
    .await;
    throttle(&app, "198.51.100.1").await;
    // Another patron behind the same proxy is not locked out by the first one's failures.
    let reply = guess(&app, 100, "198.51.100.2").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    // A forged entry left of what the proxy appended does not free the first one.
    let reply = guess(&app, 101, "203.0.113.9, 198.51.100.1").await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn p13_from_a_peer_that_is_not_a_trusted_proxy_the_header_is_ignored() {
    for trusted in ["", "10.0.0.0/8"] {
        let app = TestApp::spawn_with(Options {
            trusted_proxies: trusted,
            ..Options::default()
        })
        .await;
        throttle(&app, "198.51.100.1").await;
        // The throttled caller writes a new address: it is still the socket's address
        // that counts, and that one is locked.
        let reply = guess(&app, 100, "198.51.100.2").await;
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "trusted {trusted:?}: {}",
            reply.text
        );
    }
}
