//! Loans through the shell on real databases (every body on PostgreSQL and on SQLite):
//! renewal once and its three refusals (L2), the loan limit (L3), an item held for another
//! (L4), due dates on the lending branch's calendar (B2), returns at any branch (L5), the
//! returned loan that forgets its reader (V1), and the record of staff actions (S3).

mod common;

use common::*;
use kitsuki_circulation::domain::calendar::{BranchCalendar, LibraryCalendar};
use kitsuki_circulation::domain::loans::LoanPolicy;
use kitsuki_circulation::{CirculationConfig, PatronRecord, Requester, store};
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use kitsuki_proto::ErrorCode;
use time::macros::{date, datetime};

on_both_backends!(
    a_loan_is_renewed_once_only_l2,
    renewal_refused_when_the_loan_is_overdue_l2,
    renewal_refused_when_the_patron_has_another_overdue_loan_l2,
    renewal_refused_when_a_hold_waits_on_the_title_l2,
    a_patron_renews_only_their_own_loan_and_staff_any_l2,
    checkout_refused_at_the_loan_limit_l3,
    an_item_held_for_another_patron_is_not_lent_l4,
    due_dates_skip_the_lending_branchs_closed_days_b2,
    a_returned_loan_no_longer_names_the_patron_v1,
    a_patron_with_a_reading_history_keeps_the_link_v1,
    items_are_returned_at_any_branch_and_go_home_l5,
    checkout_needs_a_known_patron_and_item_and_a_checked_in_item,
    staff_actions_are_recorded_with_who_when_where_s3,
);

async fn a_loan_is_renewed_once_only_l2(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let loan = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    assert_eq!(loan.due_date, "2026-04-15");
    assert!(loan.renewable && !loan.renewed);
    lib.clock.set(datetime!(2026-04-10 12:00 +09:00));
    // On the web, through any instance: the renewal date plus the loan period.
    let renewed = lib
        .ota
        .renew(&loan.loan_id, Requester::Patron(&p))
        .await
        .unwrap();
    assert_eq!(renewed.due_date, "2026-04-24");
    assert!(renewed.renewed);
    assert!(!renewed.renewable);
    assert_eq!(
        renewed.renew_block.as_ref().map(|b| b.code.as_str()),
        Some("renewal_already_renewed")
    );
    let again = lib
        .kitsuki
        .renew(&loan.loan_id, Requester::Patron(&p))
        .await;
    assert_eq!(again.unwrap_err().code, ErrorCode::RenewalAlreadyRenewed);
    let listed = lib.kitsuki.list_loans(&p).await.unwrap();
    assert_eq!(listed[0].due_date, "2026-04-24");
    assert_eq!(listed[0].renew_block.as_ref().unwrap().rule, "L2");
}

async fn renewal_refused_when_the_loan_is_overdue_l2(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let loan = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    // Due on the 15th: on the 16th in Tokyo it is overdue.
    lib.clock.set(datetime!(2026-04-15 15:00 UTC));
    let listed = lib.kitsuki.list_loans(&p).await.unwrap();
    assert!(listed[0].overdue);
    assert_eq!(
        listed[0].renew_block.as_ref().unwrap().code,
        "renewal_overdue_loan"
    );
    let err = lib
        .kitsuki
        .renew(&loan.loan_id, Requester::Patron(&p))
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::RenewalOverdueLoan);
}

async fn renewal_refused_when_the_patron_has_another_overdue_loan_l2(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    lib.book(&[("KT-2", Kitsuki)]).await;
    let p = lib.patron(1);
    lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    lib.clock.set(datetime!(2026-04-10 10:00 +09:00));
    let second = lib.kitsuki.checkout(&p, &bc("KT-2"), "k").await.unwrap();
    lib.clock.set(datetime!(2026-04-16 10:00 +09:00));
    let err = lib
        .kitsuki
        .renew(&second.loan_id, Requester::Patron(&p))
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::RenewalPatronOverdue);
}

async fn renewal_refused_when_a_hold_waits_on_the_title_l2(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let loan = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    let other = lib.patron(2);
    lib.web_hold(Ota, &other, &title, Ota).await;
    let listed = lib.kitsuki.list_loans(&p).await.unwrap();
    assert_eq!(
        listed[0].renew_block.as_ref().unwrap().code,
        "renewal_has_holds"
    );
    let err = lib
        .kitsuki
        .renew(&loan.loan_id, Requester::Staff { actor: "k" })
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::RenewalHasHolds);
}

async fn a_patron_renews_only_their_own_loan_and_staff_any_l2(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let (p, other) = (lib.patron(1), lib.patron(2));
    let loan = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    let err = lib
        .kitsuki
        .renew(&loan.loan_id, Requester::Patron(&other))
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::LoanNotFound);
    let err = lib
        .kitsuki
        .renew("no-such-loan", Requester::Patron(&p))
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::LoanNotFound);
    let err = lib
        .kitsuki
        .renew(&loan.loan_id, Requester::Staff { actor: " " })
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::InvalidInput);
    let ok = lib
        .yamaga
        .renew(
            &loan.loan_id,
            Requester::Staff {
                actor: "yamaga-staff",
            },
        )
        .await
        .unwrap();
    assert!(ok.renewed);
}

async fn checkout_refused_at_the_loan_limit_l3(backend: Backend) {
    let config = CirculationConfig {
        loans: LoanPolicy {
            max_loans: 3,
            ..LoanPolicy::default()
        },
        ..config()
    };
    let lib = Library::open_with(backend, config).await;
    let p = lib.patron(1);
    for i in 1..=4 {
        lib.book(&[(&format!("KT-{i}"), Kitsuki)]).await;
    }
    for i in 1..=3 {
        lib.kitsuki
            .checkout(&p, &bc(&format!("KT-{i}")), "k")
            .await
            .unwrap();
    }
    let err = lib.kitsuki.checkout(&p, &bc("KT-4"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::LoanLimit);
    // A return makes room.
    lib.ota.checkin(&bc("KT-1"), "o").await.unwrap();
    lib.kitsuki.checkout(&p, &bc("KT-4"), "k").await.unwrap();
}

async fn an_item_held_for_another_patron_is_not_lent_l4(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    let (holder, other) = (lib.patron(1), lib.patron(2));
    // A counter hold on an available copy: Kitsuki pulls it and checks it in (S1).
    let hold = lib
        .kitsuki
        .place_hold(&counter_request(&holder, &title, Kitsuki, Kitsuki))
        .await
        .unwrap();
    let pull = lib.kitsuki.pull_list().await.unwrap();
    assert_eq!(pull.len(), 1);
    assert_eq!(
        (pull[0].hold_id.as_str(), pull[0].barcode.as_str()),
        (hold.hold_id.as_str(), "KT-1")
    );
    assert_eq!(pull[0].routing, "hold_shelf");
    let routed = lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    assert_eq!(routed.routing, "hold_shelf");
    assert!(lib.kitsuki.pull_list().await.unwrap().is_empty());
    let err = lib.kitsuki.checkout(&other, &bc("KT-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ItemHeldForOther);
    let err = lib.kitsuki.checkout(&holder, &bc("KT-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::HoldNotReady);
}

async fn due_dates_skip_the_lending_branchs_closed_days_b2(backend: Backend) {
    // Ōta is closed on Wednesdays; 2026-04-15 is one.
    let calendars = LibraryCalendar::open_every_day().with_branch(
        Ota,
        BranchCalendar::open_every_day().with_closed_weekday(time::Weekday::Wednesday),
    );
    let lib = Library::open_with(
        backend,
        CirculationConfig {
            calendars,
            ..config()
        },
    )
    .await;
    lib.book(&[("OT-1", Ota)]).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let at_ota = lib.ota.checkout(&p, &bc("OT-1"), "o").await.unwrap();
    assert_eq!(at_ota.due_date, "2026-04-16");
    let at_kitsuki = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    assert_eq!(at_kitsuki.due_date, "2026-04-15");
    assert_eq!(date!(2026 - 04 - 15).weekday(), time::Weekday::Wednesday);
}

async fn a_returned_loan_no_longer_names_the_patron_v1(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    // Through a hold, so that the fulfilled hold is forgotten too.
    lib.lend_away("KT-1", Kitsuki, 9).await;
    let hold = lib.web_hold(Kitsuki, &p, &title, Kitsuki).await;
    lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    lib.ready_mail_sent(Kitsuki, &hold.hold_id).await;
    lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    lib.yamaga.checkin(&bc("KT-1"), "y").await.unwrap();

    assert!(lib.kitsuki.list_loans(&p).await.unwrap().is_empty());
    let mut conn = lib.db.pool.acquire().await.unwrap();
    let returned = store::returned_loans_of_item(&mut conn, &bc("KT-1"))
        .await
        .unwrap();
    assert_eq!(returned.len(), 2);
    assert!(returned.iter().all(|(reader, _)| reader.is_none()));
    // Nothing in circulation's database names the patron with the item any more.
    for (table, column) in [
        ("loans", "card_number"),
        ("holds", "card_number"),
        ("returned_loans", "reader"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(p.as_str())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_actions WHERE subject = $1")
        .bind(p.as_str())
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 0, "the record of staff actions never names a borrower");
    // The returned record keeps dates, not instants.
    let dates: Vec<String> = sqlx::query_scalar("SELECT checked_out_on FROM returned_loans")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(dates.iter().all(|d| d.len() == 10), "{dates:?}");
}

async fn a_patron_with_a_reading_history_keeps_the_link_v1(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron_with(
        1,
        PatronRecord {
            web_enabled: true,
            email_verified: true,
            reading_history: true,
        },
    );
    lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    let mut conn = lib.db.pool.acquire().await.unwrap();
    let returned = store::returned_loans_of_item(&mut conn, &bc("KT-1"))
        .await
        .unwrap();
    assert_eq!(
        returned,
        [(Some(p.as_str().to_string()), "2026-04-01".to_string())]
    );
    // If patron-account cannot say, nothing is kept.
    lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    lib.patrons.set_down(true);
    lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    let returned = store::returned_loans_of_item(&mut conn, &bc("KT-1"))
        .await
        .unwrap();
    assert_eq!(returned.iter().filter(|(r, _)| r.is_none()).count(), 1);
}

async fn items_are_returned_at_any_branch_and_go_home_l5(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("YM-1", Yamaga)]).await;
    let p = lib.patron(1);
    lib.yamaga.checkout(&p, &bc("YM-1"), "y").await.unwrap();
    let mark = lib.outbox_mark().await;
    let routed = lib.kitsuki.checkin(&bc("YM-1"), "k").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.to_branch.as_str()),
        ("transit", "yamaga")
    );
    assert!(routed.returned);
    let events: Vec<String> = lib
        .outbox_after(mark)
        .await
        .iter()
        .map(|e| e.short())
        .collect();
    assert_eq!(events, ["item.YM-1.ITEM_STATUS_IN_TRANSIT"]);
    assert!(lib.kitsuki.list_loans(&p).await.unwrap().is_empty());
    let routed = lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    assert_eq!(routed.routing, "shelve");
    assert!(!routed.returned);
    // Scanning it again changes nothing and says nothing.
    let mark = lib.outbox_mark().await;
    assert_eq!(
        lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap().routing,
        "shelve"
    );
    assert!(lib.outbox_after(mark).await.is_empty());
}

async fn checkout_needs_a_known_patron_and_item_and_a_checked_in_item(backend: Backend) {
    let lib = Library::open(backend).await;
    lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let err = lib.kitsuki.checkout(&card(404), &bc("KT-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::PatronNotFound);
    let err = lib.kitsuki.checkout(&p, &bc("NOPE-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ItemNotFound);
    let err = lib.kitsuki.checkin(&bc("NOPE-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ItemNotFound);
    lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await.unwrap();
    let err = lib.kitsuki.checkout(&lib.patron(2), &bc("KT-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ItemOnLoan);
    lib.patrons.set_down(true);
    let err = lib.kitsuki.checkout(&p, &bc("KT-1"), "k").await;
    assert_eq!(err.unwrap_err().code, ErrorCode::Unavailable);
}

async fn staff_actions_are_recorded_with_who_when_where_s3(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let loan = lib
        .kitsuki
        .checkout(&p, &bc("KT-1"), "alice")
        .await
        .unwrap();
    lib.ota
        .renew(&loan.loan_id, Requester::Staff { actor: "bob" })
        .await
        .unwrap();
    lib.yamaga.checkin(&bc("KT-1"), "carol").await.unwrap();
    let hold = lib
        .ota
        .place_hold(&counter_request(&lib.patron(2), &title, Ota, Ota))
        .await
        .unwrap();
    // A patron's own action on the web is not a staff action.
    lib.kitsuki
        .cancel_hold(&hold.hold_id, Requester::Patron(&card(2)), None)
        .await
        .unwrap();
    let mut conn = lib.db.pool.acquire().await.unwrap();
    let actions: Vec<(String, String, String, String)> = store::staff_actions(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|(actor, action, branch, subject, at)| {
            assert_eq!(at, "2026-04-01T01:00:00.000000Z");
            (actor, action, branch, subject)
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        actions,
        [
            s("alice", "checkout", "kitsuki", "KT-1"),
            s("bob", "renew", "ota", "KT-1"),
            s("carol", "checkin", "yamaga", "KT-1"),
            s("staff-ota", "place_hold", "ota", &hold.hold_id),
        ]
    );
}
