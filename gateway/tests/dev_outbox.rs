//! The developer's outbox pages of the embedded run (issue 3), against the real services:
//! a patron's email change through the API makes patron-account publish its event, the
//! notification service writes the verification mail as a file, `/dev/outbox` lists it,
//! its page shows the decoded link, and that link completes the change. Without the dev
//! pages turned on the same paths are unknown.

mod common;

use common::{Options, TestApp, assert_security_headers};
use reqwest::StatusCode;
use serde_json::json;

const BANNER: &str = "開発用の画面です。運用環境では表示されません。";
const VERIFY_SUBJECT: &str = "メールアドレス確認のお願い";
const CHANGED_SUBJECT: &str = "メールアドレス変更完了のお知らせ";

fn with_mail(dev_pages: bool) -> Options {
    Options {
        mail: true,
        dev_pages,
        ..Options::default()
    }
}

/// The `href` of the first link of `html` that starts with `prefix`, unescaped.
fn link_starting(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(&format!("<a href=\"{prefix}"))? + "<a href=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// A patron with web service, signed in through the API: (card number, session token).
async fn patron(app: &TestApp) -> (String, String) {
    let (card, temporary) = app.web_patron("杵築 花子").await;
    let token = app.patron_token(&card, &temporary).await;
    (card, token)
}

async fn request_email_change(app: &TestApp, token: &str, email: &str) {
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(token),
            Some(json!({"email": email})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
}

#[tokio::test]
async fn the_outbox_lists_the_verification_mail_and_its_link_completes_the_change() {
    let app = TestApp::spawn_with(with_mail(true)).await;
    let mut browser = app.browser();

    let empty = browser.get("/dev/outbox").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert!(empty.text.contains("<h1>送信メール（開発用）</h1>"));
    assert!(empty.text.contains(BANNER));
    assert!(empty.text.contains("送信したメールはまだありません。"));
    assert_eq!(empty.header("cache-control"), Some("no-store"));
    assert_security_headers(&empty, "/dev/outbox");

    let (_, token) = patron(&app).await;
    request_email_change(&app, &token, "hanako@example.jp").await;

    let mail_page = app.sent_mail_page(VERIFY_SUBJECT).await;
    let list = browser.get("/dev/outbox").await;
    let row = &list.text[list.text.find("<tbody>").unwrap()..];
    for cell in [
        "hanako@example.jp",
        VERIFY_SUBJECT,
        "送信済み",
        "<td data-label=\"試行回数\">1</td>",
        "年",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert!(!list.text.contains("送信したメールはまだありません。"));
    let id = mail_page.strip_prefix("/dev/outbox/").unwrap();
    assert_eq!(
        app.outbox_files(1).await,
        vec![id.to_string()],
        "the page links the mail file the service wrote"
    );

    let mail = browser.get(&mail_page).await;
    assert_eq!(mail.status, StatusCode::OK, "{}", mail.text);
    assert_eq!(mail.header("cache-control"), Some("no-store"));
    assert_security_headers(&mail, "a dev mail page");
    for text in [
        BANNER,
        &format!("<h1>{VERIFY_SUBJECT}</h1>"),
        "<dd>hanako@example.jp</dd>",
        "<dd>杵築市立図書館 &lt;library@city.kitsuki.lg.jp&gt;</dd>",
        "杵築 花子 様",
        "図書館からパスワードをお尋ねすることは絶対にありません",
        &format!("{id}.eml"),
    ] {
        assert!(mail.text.contains(text), "{text} in {}", mail.text);
    }
    // The body is shown decoded: no transfer encoding is left in it.
    let body_start = mail.text.find("<pre class=\"mail-body\">").unwrap();
    let body_end = mail.text[body_start..].find("</pre>").unwrap() + body_start;
    let body = &mail.text[body_start..body_end];
    assert!(
        !body.contains("=E3") && !body.contains("=?utf-8?"),
        "{body}"
    );

    // The verification link points at this gateway (the service's public base URL).
    let link = link_starting(body, &format!("{}/email/verify?token=", app.base))
        .unwrap_or_else(|| panic!("no verification link in {body}"));
    let landing = browser.get(link.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.text);
    let link_token = link.split_once("token=").unwrap().1;
    let done = browser
        .submit(&landing, "/email/verify", &[("token", link_token)])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("メールアドレスの登録が完了しました"));

    let me = app
        .call("GET", "/api/v1/me", Some(&token), None)
        .await
        .json();
    assert_eq!(me["email"], "hanako@example.jp");
    assert_eq!(me["pending_email"], serde_json::Value::Null);

    // The change is announced to the new address, newest first in the list.
    let changed = app.sent_mail_page(CHANGED_SUBJECT).await;
    assert_ne!(changed, mail_page);
    let list = browser.get("/dev/outbox").await;
    assert!(
        list.text.find(CHANGED_SUBJECT).unwrap() < list.text.find(VERIFY_SUBJECT).unwrap(),
        "newest first"
    );
    let page = browser.get(&changed).await;
    assert!(page.text.contains(&format!("<h1>{CHANGED_SUBJECT}</h1>")));
    assert!(page.text.contains("<dd>hanako@example.jp</dd>"));

    // Ids that are not the service's, or not in the folder, are unknown pages.
    for path in [
        "/dev/outbox/0192f1c2-7a5e-7c3b-9d1e-0123456789ab",
        &format!("/dev/outbox/{}", id.to_uppercase()),
        &format!("/dev/outbox/..%2F{id}"),
        "/dev/outbox/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.text.contains("ページが見つかりません"), "{path}");
    }
}

#[tokio::test]
async fn without_dev_pages_the_outbox_paths_are_unknown_even_with_mail_in_the_folder() {
    let app = TestApp::spawn_with(with_mail(false)).await;
    let (_, token) = patron(&app).await;
    request_email_change(&app, &token, "hanako@example.jp").await;
    let ids = app.outbox_files(1).await;

    for path in ["/dev/outbox".to_string(), format!("/dev/outbox/{}", ids[0])] {
        let reply = app.request("GET", &path, |r| r).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.text.contains("ページが見つかりません"), "{path}");
        assert!(!reply.text.contains(BANNER), "{path}");
        assert!(!reply.text.contains("hanako@example.jp"), "{path}");
    }
    // Nor are they part of the API document.
    let doc = app
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .json();
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/dev"))
    );
}
