//! The patron's 「Webサービス」 pages driven like a browser without JavaScript, against the
//! real services: CSRF on every form, the session cookie, the rule P5 banner, the rule P6
//! lead to email registration, the verification landing page, 「パスワードを忘れた時」.

mod common;

use common::{NEW_PASSWORD, TestApp, assert_security_headers};
use reqwest::StatusCode;

const BANNER: &str = "仮パスワードのままご利用中です";
const CSRF_PAGE: &str = "画面の有効期限が切れました";

#[tokio::test]
async fn the_login_page_sets_the_csrf_cookie_and_explains_the_card_number() {
    let app = TestApp::spawn().await;
    let mut browser = app.browser();
    let page = browser.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page, "/login");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.text
            .contains("利用者カードの番号は、ハイフンを除く7桁です")
    );
    assert!(page.text.contains("href=\"/password/forgot\""));
    let cookie = page.set_cookie("kitsuki_csrf").expect("a csrf cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert_eq!(browser.cookies["kitsuki_csrf"], page.csrf_field());
    // The browser keeps its token: the next page neither sets nor changes it.
    let again = browser.get("/password/forgot").await;
    assert_eq!(again.set_cookie("kitsuki_csrf"), None);
    assert_eq!(again.csrf_field(), page.csrf_field());
}

#[tokio::test]
async fn a_form_without_the_browsers_token_is_refused_and_with_it_accepted() {
    let app = TestApp::spawn().await;
    let (card, password) = app.web_patron("杵築 花子").await;
    let fields = [
        ("card_number", card.as_str()),
        ("password", password.as_str()),
    ];

    // Another site's form: no field, or a field that is not this browser's token.
    let mut browser = app.browser();
    let page = browser.get("/login").await;
    for forged in [
        browser.post_form("/login", &fields).await,
        browser
            .post_form("/login", &[("csrf", &"0".repeat(64)), fields[0], fields[1]])
            .await,
    ] {
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
        assert!(forged.text.contains(CSRF_PAGE));
        assert_eq!(forged.set_cookie("kitsuki_session"), None);
        assert_security_headers(&forged, "csrf refusal");
    }
    // A browser that never had the cookie (SameSite=Strict keeps it from cross-site posts).
    let mut stranger = app.browser();
    let refused = stranger
        .post_form(
            "/login",
            &[("csrf", &page.csrf_field()), fields[0], fields[1]],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let reply = browser.submit(&page, "/login", &fields).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    assert_eq!(reply.location(), "/my");
    assert_security_headers(&reply, "login redirect");
    let cookie = reply.set_cookie("kitsuki_session").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }

    // Signed in: a forged email change or logout changes nothing.
    let forged = browser
        .post_form("/my/email", &[("email", "attacker@example.jp")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = browser.post_form("/logout", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let token = browser.cookies["kitsuki_session"].clone();
    let me = app.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK, "still signed in");
    assert_eq!(me.json()["pending_email"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_wrong_login_shows_the_form_again_without_saying_more() {
    let app = TestApp::spawn().await;
    let (card, _) = app.web_patron("杵築 花子").await;
    let mut browser = app.browser();
    let reply = browser
        .fill(
            "/login",
            "/login",
            &[("card_number", &card), ("password", "secret-typo")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .text
            .contains("利用者カードの番号またはパスワードが正しくありません")
    );
    assert!(
        reply.text.contains(&format!("value=\"{card}\"")),
        "the card number stays"
    );
    assert!(
        !reply.text.contains("secret-typo"),
        "the password is never shown again"
    );
    assert_eq!(reply.set_cookie("kitsuki_session"), None);

    // Rule P1: a number of the wrong shape says what a card number is.
    let reply = browser
        .fill(
            "/login",
            "/login",
            &[("card_number", "123-45"), ("password", "x")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .text
            .contains("ハイフンを除く7桁の数字で入力してください")
    );
}

#[tokio::test]
async fn p5_every_page_recommends_a_password_change_until_it_is_changed() {
    let app = TestApp::spawn().await;
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let mut browser = app.browser();
    browser.log_in(&card, &temporary).await;
    for path in [
        "/",
        "/search",
        "/my/email",
        "/my/password",
        "/password/forgot",
        "/titles/0192f1c2-0000-7c3b-9d1e-0123456789ab",
        "/no-such-page",
    ] {
        let page = browser.get(path).await;
        assert!(page.text.contains(BANNER), "{path}: {}", page.text);
        assert!(page.text.contains("action=\"/logout\""), "{path}");
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }

    let form = browser.get("/my/password").await;
    let reply = browser
        .submit(
            &form,
            "/my/password",
            &[
                ("current_password", &temporary),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", "something-else-1"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("一致しません"));
    let reply = browser
        .submit(
            &form,
            "/my/password",
            &[
                ("current_password", "not-it"),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text.contains("現在のパスワードが正しくありません"));
    let reply = browser
        .submit(
            &form,
            "/my/password",
            &[
                ("current_password", &temporary),
                ("new_password", &card),
                ("new_password_confirm", &card),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.text.contains("8文字以上"));
    let reply = browser
        .submit(
            &form,
            "/my/password",
            &[
                ("current_password", &temporary),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    assert_eq!(reply.location(), "/my?done=password");

    for path in ["/", "/my/email", "/search"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.text.contains(BANNER), "{path}");
    }
}

#[tokio::test]
async fn p6_the_first_login_leads_to_email_registration_and_p9_its_link_completes_it() {
    let app = TestApp::spawn().await;
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let mut browser = app.browser();
    let reply = browser.log_in(&card, &temporary).await;
    assert_eq!(reply.location(), "/my");
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::SEE_OTHER);
    assert_eq!(my.location(), "/my/email");
    let form = browser.get("/my/email").await;
    assert!(
        form.text
            .contains("はじめに、メールアドレスを登録してください")
    );
    assert!(
        form.text
            .contains("フリーメールアドレスでの登録はご遠慮ください")
    );

    // Rule P7.
    let reply = browser
        .submit(&form, "/my/email", &[("email", "hanako@hotmail.co.jp")])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply
            .text
            .contains("フリーメールアドレスはご登録いただけません")
    );
    assert!(reply.text.contains("value=\"hanako@hotmail.co.jp\""));

    // Rule P8: a carrier address, and the sender address to allow.
    let reply = browser
        .submit(&form, "/my/email", &[("email", "hanako@docomo.ne.jp")])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.text.contains("確認のメールを送信しました"));
    assert!(
        reply
            .text
            .contains("「library@city.kitsuki.lg.jp」を受信できるように設定してください")
    );

    // Waiting for the link: マイページ shows it instead of leading back.
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::OK);
    assert!(my.text.contains("メールアドレスの登録が完了していません"));
    assert!(my.text.contains(&card));

    // The link: a GET (a mail scanner's too) spends nothing; the button does.
    let link = app.verification_token().await;
    let mut mail_client = app.browser();
    let landing = mail_client
        .get(&format!("/email/verify?token={link}"))
        .await;
    assert_eq!(landing.status, StatusCode::OK);
    let landing = mail_client
        .get(&format!("/email/verify?token={link}"))
        .await;
    assert!(landing.text.contains("登録を完了する"));
    let forged = mail_client
        .post_form("/email/verify", &[("token", &link)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let done = mail_client
        .submit(&landing, "/email/verify", &[("token", &link)])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("メールアドレスの登録が完了しました"));
    let again = mail_client
        .submit(&landing, "/email/verify", &[("token", &link)])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text.contains("リンクが無効です"));

    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::OK);
    assert!(my.text.contains("hanako@docomo.ne.jp"));
    assert!(!my.text.contains("登録が完了していません"));
    let missing = browser.get("/email/verify").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn p11_the_forgot_page_answers_the_same_and_the_reset_link_sets_a_new_password() {
    let app = TestApp::spawn().await;
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &temporary).await;
    app.verify_email(&token, "hanako@example.jp").await;

    let mut browser = app.browser();
    let form = browser.get("/password/forgot").await;
    assert!(
        form.text.contains("カウンター"),
        "without an address: come to a counter"
    );
    let mut answers = Vec::new();
    for (who, address) in [
        (card.as_str(), "someone@example.jp"),
        ("7654321", "hanako@example.jp"),
        (card.as_str(), "hanako@example.jp"),
    ] {
        let reply = browser
            .submit(
                &form,
                "/password/forgot",
                &[("card_number", who), ("email", address)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        answers.push(reply.text);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "rule P11: one answer"
    );
    let reply = browser
        .submit(
            &form,
            "/password/forgot",
            &[("card_number", "12"), ("email", "hanako@example.jp")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("ハイフンを除く7桁"));

    let link = app.reset_token().await;
    let reset = browser.get(&format!("/password/reset?token={link}")).await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(reset.header("cache-control"), Some("no-store"));
    let reply = browser
        .submit(
            &reset,
            "/password/reset",
            &[
                ("token", &link),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", "different-one-1"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = browser
        .submit(
            &reset,
            "/password/reset",
            &[
                ("token", &link),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.text.contains("パスワードを再設定しました"));
    let reply = browser
        .submit(
            &reset,
            "/password/reset",
            &[
                ("token", &link),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("リンクが無効です"));

    browser.log_in(&card, NEW_PASSWORD).await;
    let page = browser.get("/my").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text.contains(BANNER),
        "a reset password is no temporary one"
    );
    assert_eq!(
        browser.get("/password/reset").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn logout_and_a_password_change_elsewhere_end_the_browsers_session() {
    let app = TestApp::spawn().await;
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let mut browser = app.browser();
    browser.log_in(&card, &temporary).await;
    let token = browser.cookies["kitsuki_session"].clone();

    let page = browser.get("/my/password").await;
    let reply = browser.submit(&page, "/logout", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/");
    assert!(
        reply
            .set_cookie("kitsuki_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!browser.cookies.contains_key("kitsuki_session"));
    let me = app.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the session is revoked, not just forgotten"
    );
    let my = browser.get("/my").await;
    assert_eq!(my.status, StatusCode::SEE_OTHER);
    assert_eq!(my.location(), "/login");
    assert_security_headers(&my, "redirect");

    // Signed in again; the password is changed from another device: this one is out.
    browser.log_in(&card, &temporary).await;
    let elsewhere = app.patron_token(&card, &temporary).await;
    let reply = app
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(&elsewhere),
            Some(serde_json::json!({"current_password": temporary, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let my = browser.get("/my").await;
    assert_eq!(my.location(), "/login");
    let top = browser.get("/").await;
    assert!(!top.text.contains(BANNER) && top.text.contains("href=\"/login\""));
}

#[tokio::test]
async fn account_pages_send_anonymous_browsers_to_login() {
    let app = TestApp::spawn().await;
    let mut browser = app.browser();
    for path in ["/my", "/my/email", "/my/password"] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.location(), "/login", "{path}");
        assert_security_headers(&reply, path);
    }
    // The hold flow comes back to itself after the login (rule H3).
    let hold = "/titles/0192f1c2-7a5e-7c3b-9d1e-0123456789ab/hold";
    let reply = browser.get(hold).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), format!("/login?next={hold}"));
    let (card, password) = app.web_patron("杵築 花子").await;
    browser.log_in(&card, &password).await;
    assert_eq!(browser.get("/login").await.location(), "/my");
    // A title that does not exist.
    let reply = browser.get(hold).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.contains("資料が見つかりません"));
}
