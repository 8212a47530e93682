//! Boolean settings in the forms the documents give (issue 8): the all-in-one started with
//! `KITSUKI_TEST_CLOCK=1` (API.md, ARCHITECTURE.md) serves `POST /api/v1/test/clock`, and
//! with `KITSUKI_SECURE_COOKIES=yes` it sets the Secure flag on its cookies, as the gateway
//! role does. The other spellings (`0`, `true`, `off`, …) go through the same value parser
//! and are tested on the flags in src/cli.rs.

mod common;

use common::{random_password, start, temp_dir, wait_ready};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_in_one_takes_test_clock_1_and_secure_cookies_yes_from_the_environment() {
    let dir = temp_dir("boolean-settings");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let admin_pw = random_password();
    let app = start(
        "all-in-one",
        &["--listen", "127.0.0.1:0", "--data-dir", &data_s],
        &[
            ("KITSUKI_TEST_CLOCK", "1"),
            ("KITSUKI_SECURE_COOKIES", "yes"),
            ("KITSUKI_ADMIN_PASSWORD", admin_pw.as_str()),
        ],
        &dir,
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &app.url).await;

    let r = http
        .post(format!("{}/api/v1/test/clock", app.url))
        .json(&json!({"advance_days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the test clock is served");
    let v: Value = r.json().await.unwrap();
    assert!(v["now"].as_str().is_some_and(|n| !n.is_empty()), "{v}");

    let r = http
        .post(format!("{}/api/v1/staff/session", app.url))
        .json(&json!({"username": "admin", "password": admin_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    assert!(!cookies.is_empty());
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}
