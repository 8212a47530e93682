//! The circulation pages driven like a browser without JavaScript, against the real
//! services (catalog, patron-account, the three circulation instances on one database):
//! the hold flow from a title page with a login in between (rule H4), マイページ's
//! 「貸出状況」 and 「予約状況」 with 延長 (L2) and 取消 (H10), the desk pages with the
//! routing shown large (H7) and the lists, branch scoping (S3), and CSRF on every new form.

mod common;

use common::{Browser, Options, Reply, TestApp, assert_security_headers};
use reqwest::StatusCode;

const CSRF_PAGE: &str = "画面の有効期限が切れました";

/// A book whose only copy (at `branch`) is on loan: the title id.
async fn all_out(app: &TestApp, title: &str, barcode: &str, branch: &str) -> String {
    let admin = app.admin_token().await;
    let id = app
        .title_with_copies(&admin, title, "book", &[(barcode, branch)])
        .await;
    let reader = app.borrower("杵築 読子").await;
    app.lend(&admin, branch, &reader, barcode).await;
    app.title_all_out(&id).await;
    id
}

/// A staff member of `branches` with a browser logged in to the staff pages.
async fn staff_browser(app: &TestApp, username: &str, branches: &[&str]) -> Browser {
    app.staff_of(username, branches).await;
    let mut browser = app.browser();
    browser
        .staff_log_in(username, &format!("{username}-password-123"))
        .await;
    browser
}

/// The text inside the first element with `class`, tags stripped.
fn class_text(html: &str, class: &str) -> String {
    let marker = format!("class=\"{class}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let open_end = html[start..].find('>').unwrap() + start + 1;
    let close = html[open_end..].find("</").unwrap() + open_end;
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[open_end..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_string()
}

fn assert_html(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert_security_headers(reply, what);
}

#[tokio::test]
async fn h4_the_hold_flow_from_a_title_page_through_the_login_to_the_done_page() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let title = all_out(&app, "坊っちゃん", "YM-0001", "yamaga").await;
    let (card, password, _) = app.hold_patron("杵築 花子", "hanako@example.jp").await;

    let mut browser = app.browser();
    let page = browser.get(&format!("/titles/{title}")).await;
    assert_html(&page, StatusCode::OK, "title page");
    let hold = format!("/titles/{title}/hold");
    assert!(
        page.text.contains(&format!("href=\"{hold}\"")),
        "rule H1: 予約申込"
    );
    assert!(page.text.contains("予約申込"));
    let results = browser.get("/search?q=").await;
    assert!(
        results.text.contains(&format!("href=\"{hold}\"")),
        "and in the results"
    );

    // 「予約申込」 → the login, and back to the flow afterwards.
    let reply = browser.get(&hold).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), format!("/login?next={hold}"));
    let login = browser.get(reply.location()).await;
    assert_html(&login, StatusCode::OK, "login for a hold");
    assert!(
        login
            .text
            .contains("予約申込には、Webサービスへのログインが必要です")
    );
    assert!(
        login
            .text
            .contains(&format!("name=\"next\" value=\"{hold}\""))
    );
    let reply = browser
        .submit(
            &login,
            "/login",
            &[
                ("card_number", &card),
                ("password", &password),
                ("next", &hold),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    assert_eq!(reply.location(), hold);

    // 予約登録: pickup branch and the receipt mail (rule H4).
    let form = browser.get(&hold).await;
    assert_html(&form, StatusCode::OK, "hold form");
    for words in [
        "予約申込",
        "坊っちゃん",
        "連絡方法",
        "メール（hanako@example.jp）",
        "受取館",
        "value=\"kitsuki\"",
        "杵築市立図書館",
        "山香図書室",
        "大田図書室",
        "予約内容メールの送信",
        "希望する",
        "希望しない",
        ">予約</button>",
    ] {
        assert!(form.text.contains(words), "{words}");
    }
    let review_path = format!("{hold}/review");
    let missing = browser
        .submit(&form, &review_path, &[("receipt_mail", "yes")])
        .await;
    assert_html(&missing, StatusCode::BAD_REQUEST, "no pickup branch");
    assert!(missing.text.contains("受取館を選んでください"));

    let review = browser
        .submit(
            &form,
            &review_path,
            &[("pickup_branch", "ota"), ("receipt_mail", "no")],
        )
        .await;
    assert_html(&review, StatusCode::OK, "review");
    assert!(review.text.contains("予約内容の確認"));
    assert!(review.text.contains("<dd>大田図書室</dd>"));
    assert!(review.text.contains("<dd>希望しない</dd>"));
    assert!(review.text.contains(">送信</button>"));
    let holds = app.patron_token(&card, &password).await;
    let none = app
        .call("GET", "/api/v1/me/holds", Some(&holds), None)
        .await;
    assert_eq!(
        none.json().as_array().unwrap().len(),
        0,
        "nothing placed before 「送信」"
    );

    // 「送信」 → done (and a reload of the done page sends nothing again).
    let sent = browser
        .submit(
            &review,
            &hold,
            &[("pickup_branch", "ota"), ("receipt_mail", "no")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    assert!(
        sent.location()
            .starts_with(&format!("{hold}/done?hold_id="))
    );
    let done = browser.get(sent.location()).await;
    assert_html(&done, StatusCode::OK, "done");
    assert!(done.text.contains("受け付けました"), "{}", done.text);
    assert!(done.text.contains("1番目"));
    assert!(done.text.contains("大田図書室"));
    assert!(done.text.contains("資料について用意ができました"));
    let placed = app
        .call("GET", "/api/v1/me/holds", Some(&holds), None)
        .await
        .json();
    assert_eq!(placed.as_array().unwrap().len(), 1);
    assert_eq!(placed[0]["pickup_branch"], "ota");

    // The same again is refused with the reason (rule H11).
    let again = browser
        .submit(
            &review,
            &hold,
            &[("pickup_branch", "ota"), ("receipt_mail", "no")],
        )
        .await;
    assert_html(&again, StatusCode::CONFLICT, "duplicate");
    assert!(again.text.contains("この資料はすでに予約しています"));

    // マイページ: 予約状況 in words, then 取消 with a question first (rule H10).
    let my = browser.get("/my").await;
    assert_html(&my, StatusCode::OK, "マイページ");
    assert!(my.text.contains("予約状況"));
    assert!(my.text.contains("坊っちゃん"));
    assert!(my.text.contains("1番目"));
    assert!(my.text.contains("大田図書室"));
    let status = class_text(&my.text, "hold-status");
    assert!(
        ["仮予約", "予約確定"].contains(&status.as_str()),
        "{status}"
    );
    let hold_id = placed[0]["hold_id"].as_str().unwrap();
    let cancel = format!("/my/holds/{hold_id}/cancel");
    assert!(my.text.contains(&format!("action=\"{cancel}\"")));
    let question = browser.submit(&my, &cancel, &[]).await;
    assert_html(&question, StatusCode::OK, "cancel question");
    assert!(question.text.contains("取り消しますか") || question.text.contains("取り消します"));
    let still = app
        .call("GET", "/api/v1/me/holds", Some(&holds), None)
        .await
        .json();
    assert_ne!(
        still[0]["status"], "cancelled",
        "a question changes nothing"
    );
    let cancelled = browser
        .submit(&question, &cancel, &[("confirm", "yes")])
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.text
    );
    assert_eq!(cancelled.location(), "/my?done=cancelled");
    let my = browser.get("/my?done=cancelled").await;
    assert!(my.text.contains("予約を取り消しました"));
    assert_eq!(class_text(&my.text, "hold-status"), "取消");
    assert!(!my.text.contains(&format!("action=\"{cancel}\"")));
}

#[tokio::test]
async fn a_login_goes_back_only_to_a_page_of_this_site() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let (card, password) = app.web_patron("杵築 花子").await;
    for next in [
        "https://evil.example/titles/x",
        "//evil.example/my",
        "/titles/../../admin",
        "/staff",
    ] {
        let mut browser = app.browser();
        let login = browser.get("/login").await;
        let reply = browser
            .submit(
                &login,
                "/login",
                &[
                    ("card_number", &card),
                    ("password", &password),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(reply.location(), "/my", "{next}");
    }
}

#[tokio::test]
async fn h1_h3_the_flow_says_why_a_hold_cannot_be_placed() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let on_shelf = app
        .title_with_copies(&admin, "こころ", "book", &[("KT-0001", "kitsuki")])
        .await;
    let out = all_out(&app, "坊っちゃん", "YM-0001", "yamaga").await;

    let mut verified = app.browser();
    let (card, password, _) = app.hold_patron("杵築 太郎", "taro@example.jp").await;
    verified.log_in(&card, &password).await;
    let page = verified.get(&format!("/titles/{on_shelf}")).await;
    assert!(!page.text.contains("予約申込"), "rule H1");
    let reply = verified.get(&format!("/titles/{on_shelf}/hold")).await;
    assert_html(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "copy on the shelf",
    );
    assert!(reply.text.contains("予約できません"));
    assert!(reply.text.contains("貸出可能な資料があるため"));

    // Rule H3: without a verified address, the way to register one.
    let (card, password) = app.web_patron("大田 三郎").await;
    let token = app.patron_token(&card, &password).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(serde_json::json!({"email": "saburo@example.jp"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let mut unverified = app.browser();
    unverified.log_in(&card, &password).await;
    let reply = unverified.get(&format!("/titles/{out}/hold")).await;
    assert_html(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unverified");
    assert!(
        reply
            .text
            .contains("メールアドレスの登録を完了してください")
    );
    assert!(reply.text.contains("href=\"/my/email\""));
}

#[tokio::test]
async fn l2_my_loans_show_due_dates_and_renew_once_with_the_reason_after() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    app.title_with_copies(&admin, "吾輩は猫である", "book", &[("KT-0100", "kitsuki")])
        .await;
    let (card, password, _) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let loan = app.lend(&admin, "kitsuki", &card, "KT-0100").await;
    let mut browser = app.browser();
    browser.log_in(&card, &password).await;
    let my = browser.get("/my").await;
    assert_html(&my, StatusCode::OK, "マイページ");
    assert!(my.text.contains("貸出状況"));
    assert!(my.text.contains("吾輩は猫である"));
    let due = loan["due_date"].as_str().unwrap();
    let (y, rest) = due.split_once('-').unwrap();
    let (m, d) = rest.split_once('-').unwrap();
    let due_ja = format!(
        "{y}年{}月{}日",
        m.parse::<u32>().unwrap(),
        d.parse::<u32>().unwrap()
    );
    assert!(my.text.contains(&due_ja), "{due_ja}");
    assert!(!my.text.contains("overdue-mark"));
    let renew = format!("/my/loans/{}/renew", loan["loan_id"].as_str().unwrap());
    assert!(my.text.contains(&format!("action=\"{renew}\"")));
    assert!(my.text.contains("name=\"branch\" value=\"kitsuki\""));

    let reply = browser.submit(&my, &renew, &[("branch", "kitsuki")]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    assert_eq!(reply.location(), "/my?done=renewed");
    let my = browser.get("/my?done=renewed").await;
    assert!(my.text.contains("貸出期間を延長しました"));
    assert!(my.text.contains("延長済"));
    assert!(
        !my.text.contains(&format!("action=\"{renew}\"")),
        "once only"
    );
    assert!(my.text.contains("延長できません: 延長は1回のみです。"));

    // A second press from an old page: マイページ again with the reason, 422.
    let reply = browser.submit(&my, &renew, &[("branch", "kitsuki")]).await;
    assert_html(&reply, StatusCode::UNPROCESSABLE_ENTITY, "second renewal");
    assert!(reply.text.contains("延長は1回のみです。"));
    assert!(reply.text.contains("貸出状況"));
}

#[tokio::test]
async fn h7_s1_the_desk_pages_show_where_an_item_goes_and_the_lists() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    let title = app
        .title_with_copies(&admin, "坊っちゃん", "book", &[("YM-0001", "yamaga")])
        .await;
    let shelf_title = app
        .title_with_copies(&admin, "こころ", "book", &[("KT-0500", "kitsuki")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    let mut yamaga = staff_browser(&app, "yamada", &["yamaga"]).await;
    let mut ota = staff_browser(&app, "ota-clerk", &["ota"]).await;

    let menu = yamaga.get("/staff").await;
    assert!(menu.text.contains("href=\"/staff/yamaga/desk\""));
    let desk = yamaga.get("/staff/yamaga/desk").await;
    assert_html(&desk, StatusCode::OK, "desk");
    for words in [
        "貸出",
        "返却",
        "延長（カウンター・電話）",
        "カウンター予約",
        "予約棚",
        "取り寄せリスト",
        "搬送",
        "仮予約の確認",
        "取り置き期限切れ",
    ] {
        assert!(desk.text.contains(words), "{words}");
    }
    // 貸出 at the desk page.
    let lent = yamaga
        .submit(
            &desk,
            "/staff/yamaga/desk/checkout",
            &[("card_number", &reader), ("barcode", "ym-0001")],
        )
        .await;
    assert_html(&lent, StatusCode::OK, "checkout");
    assert!(lent.text.contains("貸出しました"));
    assert!(lent.text.contains("坊っちゃん"));
    assert!(lent.text.contains("返却期限"));
    let refused = yamaga
        .submit(
            &lent,
            "/staff/yamaga/desk/checkout",
            &[("card_number", &reader), ("barcode", "NOPE-1")],
        )
        .await;
    assert_html(&refused, StatusCode::NOT_FOUND, "unknown item");
    assert!(refused.text.contains("資料が見つかりません"));
    assert!(
        refused.text.contains("value=\"NOPE-1\""),
        "what was typed stays"
    );

    app.title_all_out(&title).await;
    let (card, _, token) = app.hold_patron("大田 花子", "hanako@example.jp").await;
    let reply = app
        .call(
            "POST",
            "/api/v1/me/holds",
            Some(&token),
            Some(serde_json::json!({"title_id": title, "pickup_branch": "ota", "receipt_mail": false})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let hold_id = reply.json()["hold_id"].as_str().unwrap().to_string();

    // 返却 at Yamaga: 「大田図書室へ搬送」, large, with the hold.
    let desk = yamaga.get("/staff/yamaga/desk").await;
    let back = yamaga
        .submit(
            &desk,
            "/staff/yamaga/desk/checkin",
            &[("barcode", "YM-0001")],
        )
        .await;
    assert_html(&back, StatusCode::OK, "checkin");
    assert_eq!(class_text(&back.text, "routing"), "大田図書室へ搬送");
    assert!(back.text.contains("routing-transit"));
    assert!(back.text.contains(&hold_id));
    assert!(back.text.contains("返却を受け付けました"));

    let transits = yamaga.get("/staff/yamaga/transits").await;
    assert_html(&transits, StatusCode::OK, "transits");
    assert!(transits.text.contains("発送済み"));
    assert!(transits.text.contains("YM-0001"));
    let incoming = ota.get("/staff/ota/transits").await;
    assert!(incoming.text.contains("到着予定"));
    assert!(incoming.text.contains("坊っちゃん"));
    assert!(incoming.text.contains("山香図書室"));

    // 返却 (arrival) at Ōta: 「この館の予約棚へ」.
    let desk = ota.get("/staff/ota/desk").await;
    let shelved = ota
        .submit(&desk, "/staff/ota/desk/checkin", &[("barcode", "YM-0001")])
        .await;
    assert_html(&shelved, StatusCode::OK, "arrival");
    assert_eq!(class_text(&shelved.text, "routing"), "この館の予約棚へ");
    let shelf = ota.get("/staff/ota/hold-shelf").await;
    assert_html(&shelf, StatusCode::OK, "hold shelf");
    assert!(shelf.text.contains("坊っちゃん"));
    assert!(shelf.text.contains(&card));
    assert!(shelf.text.contains("用意中（お知らせ送信前）"));

    // 予約状況 says it too (rule H8: not before the mail).
    app.holds_when(&token, "on the shelf", |h| {
        h[0]["status"] == "awaiting_notice"
    })
    .await;
    let mut patron = app.browser();
    patron
        .cookies
        .insert("kitsuki_session".into(), token.clone());
    let my = patron.get("/my").await;
    assert_eq!(
        class_text(&my.text, "hold-status"),
        "用意中（お知らせ送信前）"
    );
    assert!(my.text.contains("貸出は、おしらせメールの送信後となります"));

    // The desk's list of a patron's loans; a counter hold by a title page's address.
    let loans = yamaga
        .get(&format!("/staff/yamaga/desk/loans?card={reader}"))
        .await;
    assert_html(&loans, StatusCode::OK, "desk loans");
    assert!(loans.text.contains("貸出中の資料はありません"));
    let desk = yamaga.get("/staff/yamaga/desk").await;
    let counter = yamaga
        .submit(
            &desk,
            "/staff/yamaga/desk/holds",
            &[
                ("card_number", &card),
                (
                    "title",
                    &format!("http://localhost:8080/titles/{shelf_title}"),
                ),
                ("pickup_branch", "yamaga"),
            ],
        )
        .await;
    assert_html(&counter, StatusCode::OK, "counter hold");
    assert!(counter.text.contains("予約を受け付けました"));
    assert!(counter.text.contains("こころ"));
    let mut kitsuki = staff_browser(&app, "kimura", &["kitsuki"]).await;
    let pull = kitsuki.get("/staff/kitsuki/pull-list").await;
    assert_html(&pull, StatusCode::OK, "pull list");
    assert!(pull.text.contains("こころ"));
    assert!(pull.text.contains("KT-0500"));
    assert!(pull.text.contains("山香図書室へ搬送"));
    let expired = kitsuki.get("/staff/kitsuki/expired-holds").await;
    assert_html(&expired, StatusCode::OK, "expired holds");
    assert!(expired.text.contains("棚から下ろす資料はありません"));

    // Rule S3: Yamaga's staff are refused at Ōta's desk pages.
    for path in [
        "/staff/ota/desk",
        "/staff/ota/hold-shelf",
        "/staff/ota/expired-holds",
        "/staff/ota/pull-list",
        "/staff/ota/transits",
        "/staff/ota/provisional-holds",
        "/staff/ota/desk/loans?card=1234567",
    ] {
        let reply = yamaga.get(path).await;
        assert_html(&reply, StatusCode::FORBIDDEN, path);
        assert!(
            reply.text.contains("この操作は許可されていません"),
            "{path}"
        );
    }
    let desk = yamaga.get("/staff/yamaga/desk").await;
    let reply = yamaga
        .submit(&desk, "/staff/ota/desk/checkin", &[("barcode", "YM-0001")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn l2_staff_renew_a_patrons_loan_from_the_desk() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let admin = app.admin_token().await;
    app.title_with_copies(&admin, "坊っちゃん", "book", &[("KT-0001", "kitsuki")])
        .await;
    let reader = app.borrower("杵築 読子").await;
    let loan = app.lend(&admin, "kitsuki", &reader, "KT-0001").await;
    let mut desk = staff_browser(&app, "kimura", &["kitsuki"]).await;
    let page = desk.get("/staff/kitsuki/desk").await;
    assert!(page.text.contains("action=\"/staff/kitsuki/desk/loans\""));
    let loans = desk
        .get(&format!("/staff/kitsuki/desk/loans?card={reader}"))
        .await;
    assert_html(&loans, StatusCode::OK, "loans");
    assert!(loans.text.contains("坊っちゃん"));
    let renew = format!(
        "/staff/kitsuki/desk/loans/{}/renew",
        loan["loan_id"].as_str().unwrap()
    );
    let reply = desk.submit(&loans, &renew, &[("card", &reader)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let after = desk.get(reply.location()).await;
    assert!(after.text.contains("延長しました"));
    assert!(after.text.contains("延長済"));
    assert!(after.text.contains("延長は1回のみです。"));
    let reply = desk.submit(&loans, &renew, &[("card", &reader)]).await;
    assert_html(&reply, StatusCode::UNPROCESSABLE_ENTITY, "twice");
    let bad = desk.get("/staff/kitsuki/desk/loans?card=12-3").await;
    assert_html(&bad, StatusCode::BAD_REQUEST, "bad card");
}

#[tokio::test]
async fn h5_staff_confirm_and_reject_provisional_holds_on_their_page() {
    let app = TestApp::spawn_with(Options {
        staff_review: true,
        ..Options::circulation()
    })
    .await;
    let title = all_out(&app, "坊っちゃん", "KT-0001", "kitsuki").await;
    let mut tokens = Vec::new();
    for (name, email) in [
        ("大田 花子", "hanako@example.jp"),
        ("大田 次郎", "jiro@example.jp"),
    ] {
        let (_, _, token) = app.hold_patron(name, email).await;
        let reply = app
            .call(
                "POST",
                "/api/v1/me/holds",
                Some(&token),
                Some(serde_json::json!({"title_id": title, "pickup_branch": "ota", "receipt_mail": true})),
            )
            .await;
        assert_eq!(reply.json()["status"], "provisional", "{}", reply.text);
        tokens.push((token, reply.json()["hold_id"].as_str().unwrap().to_string()));
    }
    let mut ota = staff_browser(&app, "ota-clerk", &["ota"]).await;
    let list = ota.get("/staff/ota/provisional-holds").await;
    assert_html(&list, StatusCode::OK, "provisional holds");
    let (first, second) = (&tokens[0].1, &tokens[1].1);
    assert!(
        list.text
            .contains(&format!("action=\"/staff/ota/holds/{first}/confirm\""))
    );
    assert!(
        list.text
            .contains(&format!("action=\"/staff/ota/holds/{second}/reject\""))
    );
    assert!(list.text.contains("確定") && list.text.contains("お断り"));

    let reply = ota
        .submit(&list, &format!("/staff/ota/holds/{first}/confirm"), &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let list = ota.get(reply.location()).await;
    assert!(list.text.contains("予約を確定しました"));
    let reply = ota
        .submit(
            &list,
            &format!("/staff/ota/holds/{second}/reject"),
            &[("reason", "資料が破損しているため")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let list = ota.get(reply.location()).await;
    assert!(list.text.contains("確認を待つ仮予約はありません"));
    // Again, from the old page: the list with the reason.
    let reply = ota
        .submit(&list, &format!("/staff/ota/holds/{first}/confirm"), &[])
        .await;
    assert_html(&reply, StatusCode::CONFLICT, "already confirmed");

    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&tokens[1].0), None)
        .await
        .json();
    assert_eq!(holds[0]["status"], "rejected");
}

#[tokio::test]
async fn every_new_form_refuses_a_post_without_the_browsers_token() {
    let app = TestApp::spawn_with(Options::circulation()).await;
    let title = all_out(&app, "坊っちゃん", "KT-0001", "kitsuki").await;
    let (card, password, token) = app.hold_patron("杵築 花子", "hanako@example.jp").await;
    let mut patron = app.browser();
    patron.log_in(&card, &password).await;
    let hold = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";
    let patron_forms = [
        (
            format!("/titles/{title}/hold/review"),
            vec![("pickup_branch", "ota"), ("receipt_mail", "yes")],
        ),
        (
            format!("/titles/{title}/hold"),
            vec![("pickup_branch", "ota"), ("receipt_mail", "yes")],
        ),
        (
            format!("/my/loans/{hold}/renew"),
            vec![("branch", "kitsuki")],
        ),
        (format!("/my/holds/{hold}/cancel"), vec![("confirm", "yes")]),
    ];
    for (path, fields) in &patron_forms {
        let forged = patron.post_form(path, fields).await;
        assert_html(&forged, StatusCode::FORBIDDEN, path);
        assert!(forged.text.contains(CSRF_PAGE), "{path}");
        let zeros = "0".repeat(64);
        let wrong = [vec![("csrf", zeros.as_str())], fields.clone()].concat();
        let forged = patron.post_form(path, &wrong).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
    }
    let holds = app
        .call("GET", "/api/v1/me/holds", Some(&token), None)
        .await
        .json();
    assert_eq!(
        holds.as_array().unwrap().len(),
        0,
        "no forged hold was placed"
    );

    let mut staff = staff_browser(&app, "kimura", &["kitsuki"]).await;
    let staff_forms = [
        (
            "/staff/kitsuki/desk/checkout".to_string(),
            vec![("card_number", card.as_str()), ("barcode", "KT-0001")],
        ),
        (
            "/staff/kitsuki/desk/checkin".to_string(),
            vec![("barcode", "KT-0001")],
        ),
        (
            "/staff/kitsuki/desk/holds".to_string(),
            vec![
                ("card_number", card.as_str()),
                ("title", title.as_str()),
                ("pickup_branch", "kitsuki"),
            ],
        ),
        (
            format!("/staff/kitsuki/desk/loans/{hold}/renew"),
            vec![("card", card.as_str())],
        ),
        (format!("/staff/kitsuki/holds/{hold}/confirm"), vec![]),
        (
            format!("/staff/kitsuki/holds/{hold}/reject"),
            vec![("reason", "x")],
        ),
    ];
    for (path, fields) in &staff_forms {
        let forged = staff.post_form(path, fields).await;
        assert_html(&forged, StatusCode::FORBIDDEN, path);
        assert!(forged.text.contains(CSRF_PAGE), "{path}");
    }
    // The copy is still on loan to its reader: the forged checkin did nothing.
    let listed = app
        .call("GET", &format!("/api/v1/titles/{title}"), None, None)
        .await
        .json();
    assert_eq!(listed["items"][0]["status"], "on_loan");
}
