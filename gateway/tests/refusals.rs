//! Refusals the server makes by itself, before any handler (API.md "Limits and refusals
//! the server makes by itself"): each answers with the error JSON of API.md on an `/api`
//! path, in English on request, and a Japanese page elsewhere. Sent as raw HTTP/1.1 over a
//! TCP stream, so that no client library shapes or refuses the request first.

mod common;

use common::TestApp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off the wire.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `head` (request line and headers, without the blank line), then `body`, and
/// reads the whole answer (the request asks for `Connection: close`).
async fn raw(app: &TestApp, head: &str, body: &[u8]) -> Raw {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    // The server may answer (and stop reading) before the whole body is written.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn assert_error(answer: &Raw, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{} {}", answer.head, answer.body);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}",
        answer.head
    );
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    assert!(body["error"].get("rule").is_some(), "{body}");
}

#[tokio::test]
async fn a_request_target_over_the_limit_is_414_uri_too_long() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(9 * 1024);
    let answer = raw(&app, &format!("GET /api/v1/titles?q={long} HTTP/1.1"), b"").await;
    assert_error(&answer, 414, "uri_too_long");
    assert_eq!(answer.json()["error"]["message"], "URLが長すぎます。");
    let answer = raw(
        &app,
        &format!("GET /api/v1/titles?q={long} HTTP/1.1\r\nAccept-Language: en"),
        b"",
    )
    .await;
    assert_error(&answer, 414, "uri_too_long");
    assert_eq!(answer.json()["error"]["message"], "The URI is too long.");
    // A page answers a Japanese page.
    let answer = raw(&app, &format!("GET /search?q={long} HTTP/1.1"), b"").await;
    assert_eq!(answer.status, 414);
    assert!(answer.body.contains("URLが長すぎます"), "{}", answer.body);
    // Under the limit it is served.
    let answer = raw(&app, "GET /api/v1/titles?q=abc HTTP/1.1", b"").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431_headers_too_large() {
    let app = TestApp::spawn().await;
    let many: String = (0..80).map(|i| format!("\r\nX-Filler-{i}: {i}")).collect();
    let answer = raw(&app, &format!("GET /api/v1/titles?q=a HTTP/1.1{many}"), b"").await;
    assert_error(&answer, 431, "headers_too_large");
    let cookie = "a".repeat(20 * 1024);
    let answer = raw(
        &app,
        &format!("GET /api/v1/titles?q=a HTTP/1.1\r\nCookie: x={cookie}\r\nAccept-Language: en"),
        b"",
    )
    .await;
    assert_error(&answer, 431, "headers_too_large");
    assert_eq!(
        answer.json()["error"]["message"],
        "The request headers are too large."
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_payload_too_large_declared_or_chunked() {
    let app = TestApp::spawn().await;
    let declared = raw(
        &app,
        "POST /api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 300000",
        b"",
    )
    .await;
    assert_error(&declared, 413, "payload_too_large");

    // Chunked: the size is known only while reading.
    let big = format!(
        "{{\"card_number\": \"1234567\", \"password\": \"{}\"}}",
        "a".repeat(260 * 1024)
    );
    let mut body = format!("{:x}\r\n", big.len()).into_bytes();
    body.extend_from_slice(big.as_bytes());
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let chunked = raw(
        &app,
        "POST /api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        &body,
    )
    .await;
    assert_error(&chunked, 413, "payload_too_large");
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_rejected_json_answer_the_error_json() {
    let app = TestApp::spawn().await;
    assert_error(
        &raw(&app, "GET /api/v1/nothing-here HTTP/1.1", b"").await,
        404,
        "not_found",
    );
    let wrong = raw(
        &app,
        "PUT /api/v1/titles HTTP/1.1\r\nContent-Length: 0",
        b"",
    )
    .await;
    assert_error(&wrong, 405, "method_not_allowed");
    assert!(wrong.header("allow").is_some(), "{}", wrong.head);
    let body = br#"{"card_number": "1234567", "password": "x"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let answer = raw(
            &app,
            &format!(
                "POST /api/v1/session HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {}",
                body.len()
            ),
            body,
        )
        .await;
        assert_error(&answer, 400, "invalid_input");
    }
    let answer = raw(
        &app,
        "POST /api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5",
        b"{nope",
    )
    .await;
    assert_error(&answer, 400, "invalid_input");
}
