//! The counter's pages driven like a browser, against the real services: staff login,
//! registering a patron (rule P2), enabling web service and its slip (P3, P4), branch
//! scoping (S3), and the patron who then logs in with the slip.

mod common;

use common::{TestApp, assert_security_headers};
use reqwest::StatusCode;

/// A staff member of `branches` with a browser logged in to the staff pages.
async fn staff_browser(app: &TestApp, username: &str, branches: &[&str]) -> common::Browser {
    app.staff_of(username, branches).await;
    let mut browser = app.browser();
    let reply = browser
        .staff_log_in(username, &format!("{username}-password-123"))
        .await;
    assert_eq!(reply.location(), "/staff");
    browser
}

/// The text of the element after `marker` up to the next `<`.
fn text_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].trim()
}

#[tokio::test]
async fn p2_p3_a_counter_registers_a_patron_and_prints_the_slip_the_patron_logs_in_with() {
    let app = TestApp::spawn().await;
    let mut staff = staff_browser(&app, "yamada", &["yamaga"]).await;
    let menu = staff.get("/staff").await;
    assert_eq!(menu.status, StatusCode::OK);
    assert!(menu.text.contains("山香図書室") && !menu.text.contains("大田図書室</h2>"));
    assert!(menu.text.contains("職員: yamada"));

    let form = staff.get("/staff/yamaga/patrons/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.text
            .contains("<option value=\"driving_licence\">運転免許証</option>")
    );
    assert!(!form.text.contains("type=\"password\""), "rule P12");
    let created = staff
        .submit(
            &form,
            "/staff/yamaga/patrons/new",
            &[
                ("name", "山香 花子"),
                ("name_reading", "ヤマガ ハナコ"),
                ("birth_date", "2000-04-02"),
                ("id_document", "driving_licence"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert!(created.text.contains("利用者を登録しました"));
    let card = text_after(&created.text, "<dd class=\"card-number\">").to_string();
    assert_eq!(card.len(), 7, "{card}");

    let confirm = staff
        .get(&format!("/staff/yamaga/patrons/{card}/web-service"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text.contains("中学生以上"));
    let slip = staff
        .submit(
            &confirm,
            &format!("/staff/yamaga/patrons/{card}/web-service"),
            &[],
        )
        .await;
    assert_eq!(slip.status, StatusCode::OK, "{}", slip.text);
    assert_eq!(slip.header("cache-control"), Some("no-store"));
    assert_security_headers(&slip, "slip");
    assert!(slip.text.contains("このパスワードは再表示できません"));
    assert!(slip.text.contains("山香 花子"));
    assert!(slip.text.contains(&card));
    let temporary = text_after(&slip.text, "<dd class=\"temporary-password\">").to_string();
    assert!(temporary.len() >= 8);
    // Shown once: the page of the card never shows it again.
    let again = staff
        .get(&format!("/staff/yamaga/patrons/{card}/web-service"))
        .await;
    assert!(!again.text.contains(&temporary));

    let mut patron = app.browser();
    patron.log_in(&card, &temporary).await;
    let my = patron.get("/my").await;
    assert_eq!(my.location(), "/my/email", "rule P6");
}

#[tokio::test]
async fn s3_the_pages_of_another_branch_are_refused() {
    let app = TestApp::spawn().await;
    let mut staff = staff_browser(&app, "yamada", &["yamaga"]).await;
    let page = staff.get("/staff/ota/patrons/new").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.text.contains("この操作は許可されていません"));
    let form = staff.get("/staff/yamaga/patrons/new").await;
    let reply = staff
        .submit(
            &form,
            "/staff/ota/patrons/new",
            &[
                ("name", "大田 花子"),
                ("name_reading", "オオタ ハナコ"),
                ("birth_date", "2000-04-02"),
                ("id_document", "passport"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = staff.get("/staff/ota/patrons/1234567/web-service").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = staff.get("/staff/oita/patrons/new").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_pages_need_a_staff_session_and_forms_need_the_token() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.browser();
    for path in [
        "/staff",
        "/staff/yamaga/patrons/new",
        "/staff/yamaga/patrons/1234567/web-service",
    ] {
        let reply = anonymous.get(path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.location(), "/staff/login");
    }
    // A patron session is no staff session.
    let (card, password) = app.web_patron("杵築 花子").await;
    let mut patron = app.browser();
    patron.log_in(&card, &password).await;
    assert_eq!(patron.get("/staff").await.location(), "/staff/login");

    let mut staff = app.browser();
    staff.get("/staff/login").await;
    let forged = staff
        .post_form(
            "/staff/login",
            &[("username", "admin"), ("password", common::ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.set_cookie("kitsuki_staff"), None);
    let wrong = staff
        .fill(
            "/staff/login",
            "/staff/login",
            &[("username", "admin"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text
            .contains("職員IDまたはパスワードが正しくありません")
    );
}

#[tokio::test]
async fn refusals_show_the_form_again_with_what_was_typed() {
    let app = TestApp::spawn().await;
    let mut staff = staff_browser(&app, "sato", &["kitsuki"]).await;
    let form = staff.get("/staff/kitsuki/patrons/new").await;
    let reply = staff
        .submit(
            &form,
            "/staff/kitsuki/patrons/new",
            &[
                ("name", "杵築 一郎"),
                ("name_reading", "キツキ イチロウ"),
                ("birth_date", "2010-13-01"),
                ("id_document", "student_card"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("生年月日は西暦の年月日"));
    assert!(reply.text.contains("value=\"杵築 一郎\""));
    assert!(
        reply
            .text
            .contains("<option value=\"student_card\" selected>")
    );

    // Rule P4 on the page: a child is registered, but gets no web service.
    let created = staff
        .submit(
            &form,
            "/staff/kitsuki/patrons/new",
            &[
                ("name", "杵築 一郎"),
                ("name_reading", "キツキ イチロウ"),
                ("birth_date", "2020-05-01"),
                ("id_document", "health_insurance"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let card = text_after(&created.text, "<dd class=\"card-number\">").to_string();
    let lookup = staff
        .get(&format!(
            "/staff/kitsuki/web-service?card={}-{}",
            &card[..3],
            &card[3..]
        ))
        .await;
    assert_eq!(lookup.status, StatusCode::SEE_OTHER);
    assert_eq!(
        lookup.location(),
        format!("/staff/kitsuki/patrons/{card}/web-service")
    );
    let confirm = staff.get(lookup.location()).await;
    let refused = staff.submit(&confirm, lookup.location(), &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("中学生以上です"));
    assert!(!refused.text.contains("temporary-password"));
    let bad = staff.get("/staff/kitsuki/web-service?card=12").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn staff_logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let mut staff = staff_browser(&app, "yamada", &["yamaga"]).await;
    let token = staff.cookies["kitsuki_staff"].clone();
    let menu = staff.get("/staff").await;
    let reply = staff.submit(&menu, "/staff/logout", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/staff/login");
    assert!(!staff.cookies.contains_key("kitsuki_staff"));
    let reply = app
        .call(
            "POST",
            "/api/v1/branches/yamaga/patrons",
            Some(&token),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(staff.get("/staff").await.location(), "/staff/login");
}

/// Issue 10: staff with the admin role correct a title's readings on a staff page reached
/// from the title page, a plain form without JavaScript: what is stored is shown with
/// where it came from, a reading that is not kana is refused with the API's message, a
/// correction is stored as given; a clerk is refused (rule S3), as the API refuses them.
#[tokio::test]
async fn s3_admin_staff_correct_a_titles_readings_on_the_staff_page() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let created = app
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&token),
            Some(
                serde_json::json!({"title": "十三夜", "title_reading": "ジュウサンヨル",
                "author": "樋口, 一葉", "responsibility": "樋口一葉 著", "type": "book"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["title_id"].as_str().unwrap().to_string();
    let href = format!("/staff/titles/{id}/readings");

    let mut admin = app.browser();
    admin.staff_log_in("admin", common::ADMIN_PASSWORD).await;
    let title_page = admin.get(&format!("/titles/{id}")).await;
    assert_eq!(title_page.status, StatusCode::OK);
    assert!(
        title_page.text.contains(&format!("<a href=\"{href}\">")),
        "{}",
        title_page.text
    );
    let form = admin.get(&href).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert_eq!(form.header("cache-control"), Some("no-store"));
    assert_security_headers(&form, "readings form");
    assert!(
        form.text
            .contains("<dd class=\"title-reading\">ジュウサンヨル</dd>")
    );
    assert!(
        form.text.contains("樋口一葉 著"),
        "the creators name the title"
    );
    assert!(!form.text.contains("<script"), "no JavaScript");

    let refused = admin
        .submit(
            &form,
            &href,
            &[("title_reading", "十三夜"), ("author_reading", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(
        refused
            .text
            .contains(kitsuki_proto::ErrorCode::InvalidInput.message_ja()),
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("value=\"十三夜\""),
        "what was typed stays"
    );
    assert!(
        refused
            .text
            .contains("<dd class=\"title-reading\">ジュウサンヨル</dd>")
    );

    let done = admin
        .submit(
            &refused,
            &href,
            &[
                ("title_reading", "じゅうさんや"),
                ("author_reading", "ひぐち いちよう"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("読みを修正しました。"), "{}", done.text);
    for shown in [
        "<dd class=\"title-reading\">じゅうさんや</dd>",
        "<dd class=\"author-reading\">ひぐち いちよう</dd>",
        "<dd class=\"reading-source\">登録済み</dd>",
    ] {
        assert!(done.text.contains(shown), "{shown}: {}", done.text);
    }
    let stored = app
        .call("GET", &format!("/api/v1/titles/{id}"), None, None)
        .await;
    assert_eq!(stored.json()["title_reading"], "じゅうさんや");
    // Read back from the catalogue's summary, as the next visit shows it.
    let again = admin.get(&href).await;
    for shown in [
        "<dd class=\"author-reading\">ひぐち いちよう</dd>",
        "<dd class=\"reading-source\">登録済み</dd>",
    ] {
        assert!(again.text.contains(shown), "{shown}: {}", again.text);
    }

    // Rule S3: a clerk gets neither the link nor the page, and cannot post to it.
    let mut clerk = staff_browser(&app, "clerk", &["yamaga"]).await;
    let title_page = clerk.get(&format!("/titles/{id}")).await;
    assert!(!title_page.text.contains(&href), "{}", title_page.text);
    let page = clerk.get(&href).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.text.contains("この操作は許可されていません"));
    let clerk_form = clerk.get("/staff/yamaga/patrons/new").await;
    let posted = clerk
        .submit(&clerk_form, &href, &[("title_reading", "かな")])
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    let stored = app
        .call("GET", &format!("/api/v1/titles/{id}"), None, None)
        .await;
    assert_eq!(stored.json()["title_reading"], "じゅうさんや", "unchanged");

    // Without a staff session: the staff login.
    let reply = app.browser().get(&href).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/staff/login");
}
