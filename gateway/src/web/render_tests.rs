//! Renders every page of the patron's account, holds, the counter and the readings page
//! with the templates, and checks what each must show (rules P3–P11, H4, H9) and what every
//! page must be (phone-ready, Japanese, without script).

use kitsuki_proto::catalog::MaterialType;
use minijinja::context;

use axum::http::StatusCode;
use kitsuki_proto::ErrorCode;

use super::*;
use crate::account::my;
use crate::catalog::pages::FormView;
use crate::catalog::pages::tests::{detail, params, results};
use crate::catalog::pages::{render_results, render_title, render_title_for};
use crate::catalog::search::SearchParams;
use crate::catalog::views::TitleSummaryView;
use crate::test_support::{TITLE_ID, summary};
use crate::web::error::ApiError;
use crate::web::error::Lang;
use crate::web::templates::SITE_CSS;

#[test]
fn every_page_is_phone_ready_and_japanese() {
    let pages = [
        render_results(&LayoutView::default(), &params("", 1), &results(vec![], 0)).unwrap(),
        render_title(
            &LayoutView::default(),
            &detail(MaterialType::Book, &[]),
            None,
        )
        .unwrap(),
        PageError::not_found()
            .render(&LayoutView::default())
            .unwrap(),
        templates::render_page(
            "index.html",
            &LayoutView::default(),
            context! { form => templates::to_value(&FormView::new(&SearchParams::default())) },
        )
        .unwrap(),
    ];
    for html in pages {
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"ja\">"));
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(html.contains("/static/site.css?v="));
        // The CSP forbids inline scripts and styles.
        assert!(!html.contains("<script") && !html.contains("style="));
    }
}

#[test]
fn error_pages_speak_japanese() {
    let unavailable = PageError::from(ApiError::new(ErrorCode::Unavailable));
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        unavailable
            .render(&LayoutView::default())
            .unwrap()
            .contains("しばらくしてから")
    );
    let missing = PageError::from(ApiError::new(ErrorCode::TitleNotFound));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .render(&LayoutView::default())
            .unwrap()
            .contains("資料が見つかりません")
    );
    let bad = PageError::from(ApiError::invalid_input("page"));
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[test]
fn japanese_dates() {
    assert_eq!(words::date("2025-02-01"), "2025年2月1日");
    assert_eq!(words::date("soon"), "soon");
}

fn signed_in(temporary_password: bool) -> LayoutView {
    LayoutView {
        csrf: Some("ab".repeat(32)),
        patron: Some(layout::PatronBadge {
            name: "杵築 花子".into(),
            temporary_password,
        }),
        staff: None,
    }
}

fn me(email: &str, pending: &str) -> minijinja::Value {
    templates::to_value(&serde_json::json!({
        "card_number": "1234567", "name": "杵築 花子",
        "email": if email.is_empty() { None } else { Some(email) },
        "email_verified": !email.is_empty(),
        "pending_email": if pending.is_empty() { None } else { Some(pending) },
        "temporary_password": true,
    }))
}

fn hold_row(status: &str, position: u32) -> minijinja::Value {
    templates::to_value(&hold_row_view(status, position))
}

fn hold_row_view(status: &str, position: u32) -> my::HoldRow {
    my::HoldRow::new(
        &kitsuki_proto::circulation::Hold {
            hold_id: format!("h-{status}"),
            title_id: TITLE_ID.into(),
            pickup_branch: "ota".into(),
            status: status.into(),
            queue_position: position,
            placed_at: "2026-04-01T01:00:00.000000Z".into(),
            ready_until: if status == "ready" {
                "2026-04-09".into()
            } else {
                String::new()
            },
            reason: if status == "rejected" {
                "資料が破損しているため".into()
            } else {
                String::new()
            },
            cancellable: !matches!(status, "fulfilled" | "cancelled" | "expired" | "rejected"),
            receipt_mail: true,
            ..Default::default()
        },
        &crate::circulation::TitleNames::default(),
    )
}

fn hold_title() -> minijinja::Value {
    templates::to_value(&TitleSummaryView::new(
        &summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 1, 0)]),
        Lang::Ja,
    ))
}

/// マイページ's sections: a renewable loan, an overdue one, and a hold of every status.
fn my_sections() -> minijinja::Value {
    use kitsuki_proto::circulation as pb;
    let loan = |id: &str, overdue: bool, block: Option<&str>| pb::Loan {
        loan_id: id.into(),
        barcode: format!("KT-{id}"),
        title_id: TITLE_ID.into(),
        branch: "yamaga".into(),
        due_date: "2026-04-15".into(),
        overdue,
        renewable: block.is_none(),
        renew_block: block.map(|code| pb::Block {
            code: code.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let titles = crate::circulation::TitleNames::default();
    let loans: Vec<my::LoanRow> = [
        loan("l1", false, None),
        loan("l2", true, Some("renewal_overdue_loan")),
    ]
    .iter()
    .map(|l| my::LoanRow::new(l, &titles))
    .collect();
    let statuses = [
        "provisional",
        "confirmed",
        "in_transit",
        "awaiting_notice",
        "ready",
        "fulfilled",
        "cancelled",
        "expired",
        "rejected",
    ];
    let holds: Vec<my::HoldRow> = statuses
        .iter()
        .zip(1u32..)
        .map(|(s, n)| hold_row_view(s, if n <= 5 { n } else { 0 }))
        .collect();
    templates::to_value(&serde_json::json!({
        "circulation": true,
        "loans": loans,
        "holds": holds,
    }))
}

#[test]
fn the_usage_sections_say_due_dates_overdue_renewal_and_hold_statuses_in_words() {
    let html = templates::render_page(
        "my.html",
        &signed_in(false),
        context! { me => me("a@example.jp", ""), notice => (), error => (), sections => my_sections() },
    )
    .unwrap();
    for words in [
        "貸出状況",
        "予約状況",
        "2026年4月15日",
        "延滞",
        "action=\"/my/loans/l1/renew\"",
        ErrorCode::RenewalOverdueLoan.message_ja(),
        "仮予約",
        "予約確定",
        "搬送中",
        "用意中（お知らせ送信前）",
        "用意できました",
        "貸出済",
        "取消",
        "期限切れ",
        "お受けできませんでした",
        "資料が破損しているため",
        "3番目",
        "大田図書室",
        "4月9日まで",
        "action=\"/my/holds/h-ready/cancel\"",
    ] {
        assert!(html.contains(words), "{words}");
    }
    // Rule L2: no 延長 button where the loan cannot be renewed; H10: no 取消 once ended.
    assert!(!html.contains("action=\"/my/loans/l2/renew\""));
    assert!(!html.contains("action=\"/my/holds/h-expired/cancel\""));
    let unavailable = templates::render_page(
        "my.html",
        &signed_in(false),
        context! { me => me("a@example.jp", ""), notice => (), error => (), sections => templates::to_value(&serde_json::json!({"circulation": true, "loans": null, "holds": null})) },
    )
    .unwrap();
    assert!(unavailable.contains("貸出状況をただいま確認できません"));
}

/// Every page of the accounts and the counter, rendered from hand-built values, with
/// whether it may ask for a password (rule P12).
fn account_pages(layout: &LayoutView) -> Vec<(&'static str, String, bool)> {
    let staff = LayoutView {
        csrf: Some("cd".repeat(32)),
        patron: None,
        staff: Some(layout::StaffBadge {
            username: "yamada".into(),
        }),
    };
    let docs = templates::to_value(&crate::staff::counter::ID_DOCUMENTS);
    let form = templates::to_value(&crate::staff::counter::NewPatronBody::default());
    let r = |name: &str, layout: &LayoutView, ctx: minijinja::Value| {
        templates::render_page(name, layout, ctx).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    };
    vec![
        (
            "login.html",
            r(
                "login.html",
                layout,
                context! { card_number => "", error => () },
            ),
            true,
        ),
        (
            "my.html",
            r(
                "my.html",
                layout,
                context! { me => me("a@example.jp", ""), notice => (), error => (), sections => my_sections() },
            ),
            false,
        ),
        (
            "hold_form.html",
            r(
                "hold_form.html",
                layout,
                context! {
                    title => hold_title(),
                    email => "a@example.jp",
                    branches => templates::to_value(&[
                        serde_json::json!({"code": "kitsuki", "name": "杵築市立図書館", "checked": false}),
                        serde_json::json!({"code": "ota", "name": "大田図書室", "checked": true}),
                    ]),
                    receipt_mail => "yes",
                    error => (),
                },
            ),
            false,
        ),
        (
            "hold_review.html",
            r(
                "hold_review.html",
                layout,
                context! { title => hold_title(), email => "a@example.jp", pickup_branch => "ota", pickup_name => "大田図書室", receipt_mail => true },
            ),
            false,
        ),
        (
            "hold_done.html",
            r(
                "hold_done.html",
                layout,
                context! { hold => hold_row("provisional", 2) },
            ),
            false,
        ),
        (
            "hold_cancel.html",
            r(
                "hold_cancel.html",
                layout,
                context! { hold => hold_row("confirmed", 1) },
            ),
            false,
        ),
        (
            "my_email.html",
            r(
                "my_email.html",
                layout,
                context! { me => me("", ""), email => "", error => (), first => true },
            ),
            false,
        ),
        (
            "my_email_sent.html",
            r(
                "my_email_sent.html",
                layout,
                context! { email => "a@docomo.ne.jp", carrier_notice => true, sender_address => "library@city.kitsuki.lg.jp" },
            ),
            false,
        ),
        (
            "my_password.html",
            r("my_password.html", layout, context! { error => () }),
            true,
        ),
        (
            "password_forgot.html",
            r(
                "password_forgot.html",
                layout,
                context! { card_number => "", email => "", error => () },
            ),
            false,
        ),
        (
            "password_forgot_sent.html",
            r("password_forgot_sent.html", layout, context! {}),
            false,
        ),
        (
            "password_reset.html",
            r(
                "password_reset.html",
                layout,
                context! { token => "t", error => () },
            ),
            true,
        ),
        (
            "email_verify.html",
            r("email_verify.html", layout, context! { token => "t" }),
            false,
        ),
        (
            "notice.html",
            r(
                "notice.html",
                layout,
                context! { heading => "h", paragraphs => vec!["p"], links => templates::to_value(&[("/my", "マイページへ")]) },
            ),
            false,
        ),
        (
            "staff_login.html",
            r(
                "staff_login.html",
                layout,
                context! { username => "", error => () },
            ),
            true,
        ),
        (
            "staff_menu.html",
            r(
                "staff_menu.html",
                &staff,
                context! { branches => templates::to_value(&[serde_json::json!({"code": "yamaga", "name": "山香図書室"})]), error => () },
            ),
            false,
        ),
        (
            "staff_patron_new.html",
            r(
                "staff_patron_new.html",
                &staff,
                context! { branch => "yamaga", branch_name => "山香図書室", form => form, id_documents => docs, error => () },
            ),
            false,
        ),
        (
            "staff_patron_created.html",
            r(
                "staff_patron_created.html",
                &staff,
                context! { branch => "yamaga", card_number => "1234567", name => "杵築 花子" },
            ),
            false,
        ),
        (
            "staff_web_service.html",
            r(
                "staff_web_service.html",
                &staff,
                context! { branch => "yamaga", branch_name => "山香図書室", card_number => "1234567", error => () },
            ),
            false,
        ),
        (
            "staff_desk.html",
            r(
                "staff_desk.html",
                &staff,
                context! {
                    branch => "yamaga",
                    branch_name => "山香図書室",
                    pickups => templates::to_value(&[("kitsuki", "杵築市立図書館"), ("yamaga", "山香図書室")]),
                    outcome => templates::to_value(&serde_json::json!({
                        "checkin": {"routing": "transit", "words": "大田図書室へ搬送", "hold_id": "h-1", "going_home": false, "barcode": "YM-1", "title": "坊っちゃん", "returned": true},
                        "checkout": null, "hold": null, "error_form": null, "error": null,
                        "checkout_form": {"card_number": "", "barcode": ""},
                        "checkin_form": {"barcode": ""},
                        "hold_form": {"card_number": "", "title": "", "pickup_branch": ""},
                    })),
                },
            ),
            false,
        ),
        (
            "staff_desk_loans.html",
            r(
                "staff_desk_loans.html",
                &staff,
                context! { branch => "yamaga", branch_name => "山香図書室", card_number => "1234567", loans => my_sections().get_attr("loans").unwrap(), notice => (), error => () },
            ),
            false,
        ),
        (
            "staff_list.html",
            r(
                "staff_list.html",
                &staff,
                context! {
                    branch => "yamaga", branch_name => "山香図書室", heading => "予約棚", intro => "…",
                    tables => templates::to_value(&[serde_json::json!({"heading": null, "columns": ["資料", "資料番号"], "rows": [["坊っちゃん", "YM-1"]], "empty": "なし"})]),
                },
            ),
            false,
        ),
        (
            "staff_provisional.html",
            r(
                "staff_provisional.html",
                &staff,
                context! {
                    branch => "yamaga", branch_name => "山香図書室", notice => (), error => (),
                    holds => templates::to_value(&[serde_json::json!({"hold_id": "h-1", "title": "坊っちゃん", "card_number": "1234567", "pickup_name": "大田図書室", "placed": "2026年4月1日 10:00"})]),
                },
            ),
            false,
        ),
        (
            "staff_readings.html",
            r(
                "staff_readings.html",
                &staff,
                context! {
                    title => templates::to_value(&serde_json::json!({
                        "title_id": TITLE_ID, "title": "坊っちゃん", "creators": "夏目漱石 著",
                        "title_reading": "ボッチャン", "author_reading": "", "source": "自動生成",
                    })),
                    form => templates::to_value(&serde_json::json!({"title_reading": "ボッチャン", "author_reading": ""})),
                    notice => (), error => (),
                },
            ),
            false,
        ),
        (
            "staff_slip.html",
            r(
                "staff_slip.html",
                &staff,
                context! { branch_name => "山香図書室", card_number => "1234567", name => "杵築 花子", temporary_password => "Kx7-pq2-Wm9" },
            ),
            false,
        ),
    ]
}

#[test]
fn every_account_and_counter_page_is_phone_ready_japanese_and_script_free() {
    for (name, html, asks_password) in account_pages(&LayoutView::default()) {
        assert!(html.starts_with("<!doctype html>"), "{name}");
        assert!(html.contains("<html lang=\"ja\">"), "{name}");
        assert!(html.contains("width=device-width"), "{name}");
        assert!(
            !html.contains("<script") && !html.contains("style="),
            "{name}"
        );
        // Rule P12: only the login and password forms ask for a password.
        assert_eq!(html.contains("type=\"password\""), asks_password, "{name}");
        // Every POST form carries the CSRF field.
        let posts = html.matches("method=\"post\"").count();
        let fields = html.matches("name=\"csrf\"").count();
        assert_eq!(posts, fields, "{name}: each form has its token");
    }
}

#[test]
fn the_readings_page_shows_what_is_stored_and_whether_it_was_generated() {
    let pages = account_pages(&LayoutView::default());
    let (_, html, _) = pages
        .iter()
        .find(|(n, _, _)| *n == "staff_readings.html")
        .unwrap();
    for words in [
        "<dd class=\"title-reading\">ボッチャン</dd>",
        "<dd class=\"author-reading\">—</dd>",
        "<dd class=\"reading-source\">自動生成</dd>",
        &format!("action=\"/staff/titles/{TITLE_ID}/readings\""),
        "<label for=\"title_reading\">",
        "<label for=\"author_reading\">",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
}

#[test]
fn the_title_page_links_to_the_readings_page_only_when_asked() {
    let d = detail(MaterialType::Book, &[]);
    let href = format!("/staff/titles/{TITLE_ID}/readings");
    let with = render_title_for(&LayoutView::default(), &d, None, Some(&href)).unwrap();
    assert!(with.contains(&format!("<a href=\"{href}\">読みを修正する（職員）</a>")));
    let without = render_title(&LayoutView::default(), &d, None).unwrap();
    assert!(!without.contains("/readings"));
}

#[test]
fn the_hold_pages_show_the_creators() {
    let pages = account_pages(&LayoutView::default());
    for name in ["hold_form.html", "hold_review.html"] {
        let (_, html, _) = pages.iter().find(|(n, _, _)| *n == name).unwrap();
        assert!(
            html.contains("<dt>著者等</dt><dd>夏目漱石 著</dd>"),
            "{name}: {html}"
        );
    }
}

#[test]
fn p5_every_page_recommends_a_password_change_while_it_is_temporary() {
    let banner = "仮パスワードのままご利用中です";
    let temporary = signed_in(true);
    let mut pages: Vec<(&str, String)> = account_pages(&temporary)
        .into_iter()
        .filter(|(name, _, _)| !name.starts_with("staff_"))
        .map(|(name, html, _)| (name, html))
        .collect();
    pages.push((
        "results",
        render_results(&temporary, &params("", 1), &results(vec![], 0)).unwrap(),
    ));
    pages.push((
        "title",
        render_title(&temporary, &detail(MaterialType::Book, &[]), None).unwrap(),
    ));
    pages.push(("error", PageError::not_found().render(&temporary).unwrap()));
    for (name, html) in &pages {
        assert!(html.contains(banner), "{name}");
        assert!(html.contains("href=\"/my/password\""), "{name}");
        assert!(
            html.contains("action=\"/logout\""),
            "{name}: the logout button"
        );
    }
    for (name, html, _) in account_pages(&signed_in(false)) {
        assert!(!html.contains(banner), "{name}");
    }
    let anonymous =
        render_results(&LayoutView::default(), &params("", 1), &results(vec![], 0)).unwrap();
    assert!(!anonymous.contains(banner));
    assert!(anonymous.contains("href=\"/login\""));
    assert!(!anonymous.contains("action=\"/logout\""));
}

#[test]
fn p6_the_email_page_asks_for_an_address_first_when_none_is_registered() {
    let pages = account_pages(&signed_in(true));
    let html = &pages.iter().find(|p| p.0 == "my_email.html").unwrap().1;
    assert!(html.contains("はじめに、メールアドレスを登録してください"));
    assert!(
        html.contains("フリーメールアドレスでの登録はご遠慮ください"),
        "rule P7"
    );
}

#[test]
fn p8_the_carrier_notice_names_the_sender_address() {
    let pages = account_pages(&signed_in(false));
    let html = &pages
        .iter()
        .find(|p| p.0 == "my_email_sent.html")
        .unwrap()
        .1;
    assert!(html.contains("ドメイン指定受信"));
    assert!(html.contains("「library@city.kitsuki.lg.jp」を受信できるように設定してください"));
}

#[test]
fn p3_the_slip_shows_the_temporary_password_once_and_prints() {
    let pages = account_pages(&LayoutView::default());
    let (_, slip, _) = pages
        .iter()
        .find(|(n, _, _)| *n == "staff_slip.html")
        .unwrap();
    for word in [
        "Kx7-pq2-Wm9",
        "1234567",
        "杵築 花子",
        "このパスワードは再表示できません",
        "no-print",
    ] {
        assert!(slip.contains(word), "{word}");
    }
    assert!(SITE_CSS.contains("@media print"));
    let (_, login, _) = &pages[0];
    assert!(login.contains("利用者カードの番号は、ハイフンを除く7桁です"));
    assert!(login.contains("href=\"/password/forgot\""));
}

#[test]
fn p11_the_forgot_page_sends_patrons_without_an_address_to_a_counter() {
    let pages = account_pages(&LayoutView::default());
    for name in ["password_forgot.html", "password_forgot_sent.html"] {
        let (_, html, _) = pages.iter().find(|(n, _, _)| *n == name).unwrap();
        assert!(html.contains("カウンター"), "{name}");
    }
}

#[test]
fn the_staff_header_replaces_the_patron_one() {
    let pages = account_pages(&LayoutView::default());
    let (_, menu, _) = pages
        .iter()
        .find(|(n, _, _)| *n == "staff_menu.html")
        .unwrap();
    assert!(menu.contains("職員: yamada"));
    assert!(menu.contains("action=\"/staff/logout\""));
    assert!(menu.contains("action=\"/staff/yamaga/web-service\""));
}
