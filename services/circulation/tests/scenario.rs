//! The scenarios of issue 4 at service level, three branch instances on one database (every
//! body on PostgreSQL and on SQLite): a hold with pickup at Ōta on a title whose copies are
//! all on loan, a copy returned at Yamaga travels to Ōta, Ōta checks it in onto its hold
//! shelf, the ready mail's `MailSent` makes it ready until the sending date + 7 days (B2),
//! and the patron borrows it; and the hold nobody collects, which expires after the week at
//! Ōta's expiry job and passes to the next patron, or goes home.

mod common;

use common::*;
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use kitsuki_proto::ErrorCode;
use time::macros::datetime;

on_both_backends!(
    a_hold_at_ota_travels_from_yamaga_is_shelved_mailed_and_lent_h7_h8_h9,
    nobody_collects_it_and_after_7_days_it_goes_to_the_next_patron_h9,
    nobody_collects_it_and_with_no_one_waiting_it_goes_home_h9,
    a_ready_hold_cancelled_passes_its_item_on_at_once_h10,
    a_hold_cancelled_in_transit_is_routed_when_the_item_arrives_h10,
);

async fn hold_status(lib: &Library, hold_id: &str) -> kitsuki_proto::circulation::Hold {
    lib.kitsuki
        .hold(&kitsuki_circulation::domain::HoldId::new(hold_id))
        .await
        .unwrap()
}

async fn a_hold_at_ota_travels_from_yamaga_is_shelved_mailed_and_lent_h7_h8_h9(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga), ("KT-1", Kitsuki)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    lib.lend_away("KT-1", Kitsuki, 102).await;

    // rule H1: every copy is on loan, so the web hold may be placed; confirmed at once (H5)
    let patron = lib.patron(1);
    let hold = lib.web_hold(Ota, &patron, &title, Ota).await;
    assert_eq!(hold.status, "confirmed");
    assert_eq!(hold.queue_position, 1);

    // rule H7, L5: returned at Yamaga, it goes into transit to Ōta for the hold
    lib.clock.set(datetime!(2026-04-03 11:00 +09:00));
    let routed = lib
        .yamaga
        .checkin(&bc("YM-1"), "yamaga-staff")
        .await
        .unwrap();
    assert_eq!(
        (
            routed.routing.as_str(),
            routed.to_branch.as_str(),
            routed.hold_id.as_str()
        ),
        ("transit", "ota", hold.hold_id.as_str())
    );
    assert!(routed.returned);
    assert_eq!(hold_status(&lib, &hold.hold_id).await.status, "in_transit");
    let out = lib.yamaga.transits().await.unwrap();
    assert_eq!(out.outgoing.len(), 1);
    assert_eq!(out.outgoing[0].to_branch, "ota");
    let incoming = lib.ota.transits().await.unwrap().incoming;
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].barcode, "YM-1");
    assert_eq!(incoming[0].hold_id, hold.hold_id);

    // rule H7: Ōta's desk checks it in: onto its hold shelf, awaiting the ready mail
    lib.clock.set(datetime!(2026-04-04 09:30 +09:00));
    let routed = lib.ota.checkin(&bc("YM-1"), "ota-staff").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.hold_id.as_str()),
        ("hold_shelf", hold.hold_id.as_str())
    );
    assert!(!routed.returned);
    assert_eq!(
        hold_status(&lib, &hold.hold_id).await.status,
        "awaiting_notice"
    );
    assert!(lib.ota.transits().await.unwrap().incoming.is_empty());
    let shelf = lib.ota.hold_shelf().await.unwrap();
    assert_eq!(shelf.len(), 1);
    assert_eq!(shelf[0].barcode, "YM-1");
    assert_eq!(shelf[0].card_number, patron.as_str());
    let notice = lib
        .outbox()
        .await
        .into_iter()
        .filter_map(|e| e.hold())
        .find(|h| h.kind == "ready_to_notify")
        .expect("the ready mail is asked for");
    assert_eq!(notice.hold_id, hold.hold_id);
    assert_eq!(notice.pickup_branch, "ota");
    assert_eq!(notice.barcode, "YM-1");
    assert_eq!(notice.ready_until, "2026-04-11");

    // rule H8: not lent before the ready mail is sent
    let early = lib.ota.checkout(&patron, &bc("YM-1"), "ota-staff").await;
    assert_eq!(early.unwrap_err().code, ErrorCode::HoldNotReady);

    // rules H8, H9, N2: the mail goes out the next morning; the shelf runs from then
    lib.clock.set(datetime!(2026-04-05 08:15 +09:00));
    assert_eq!(
        lib.ready_mail_sent(Kitsuki, &hold.hold_id).await,
        kitsuki_circulation::Recorded::Applied
    );
    let ready = hold_status(&lib, &hold.hold_id).await;
    assert_eq!(ready.status, "ready");
    assert_eq!(ready.ready_until, "2026-04-12");
    assert_eq!(ready.mail_sent_at, "2026-04-04T23:15:00.000000Z");

    // rule L4: another patron cannot borrow it
    let other = lib.patron(2);
    let refused = lib.ota.checkout(&other, &bc("YM-1"), "ota-staff").await;
    assert_eq!(refused.unwrap_err().code, ErrorCode::ItemHeldForOther);

    // the patron borrows it: due in 14 days (L1), the hold fulfilled
    lib.clock.set(datetime!(2026-04-06 16:00 +09:00));
    let loan = lib
        .ota
        .checkout(&patron, &bc("YM-1"), "ota-staff")
        .await
        .unwrap();
    assert_eq!(loan.due_date, "2026-04-20");
    assert_eq!(loan.branch, "ota");
    assert_eq!(hold_status(&lib, &hold.hold_id).await.status, "fulfilled");
    assert!(lib.ota.hold_shelf().await.unwrap().is_empty());
    assert!(list_holds_of(&lib, &patron).await.is_empty());
    let loans = lib.ota.list_loans(&patron).await.unwrap();
    assert_eq!(loans.len(), 1);
    assert_eq!(loans[0].barcode, "YM-1");
}

/// Places a hold for `patron` with pickup `pickup`, brings YM-1 (lent away) onto `pickup`'s
/// hold shelf through Yamaga, and sends the ready mail at 2026-04-01 10:00 (ready until
/// 2026-04-08).
async fn shelve_for(lib: &Library, hold_id: &str, pickup: kitsuki_proto::Branch) {
    let routed = lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    assert_eq!(routed.hold_id, hold_id);
    if pickup != Yamaga {
        lib.at(pickup).checkin(&bc("YM-1"), "p").await.unwrap();
    }
    lib.clock.set(datetime!(2026-04-01 10:00 +09:00));
    lib.ready_mail_sent(pickup, hold_id).await;
    assert_eq!(hold_status(lib, hold_id).await.ready_until, "2026-04-08");
}

async fn nobody_collects_it_and_after_7_days_it_goes_to_the_next_patron_h9(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    let (first, second) = (lib.patron(1), lib.patron(2));
    let h1 = lib.web_hold(Ota, &first, &title, Ota).await;
    let h2 = lib.web_hold(Kitsuki, &second, &title, Kitsuki).await;
    assert_eq!(h2.queue_position, 2);
    shelve_for(&lib, &h1.hold_id, Ota).await;

    // One week after the mail it is still kept (to the end of the last day, H9)…
    lib.clock.set(datetime!(2026-04-08 23:59 +09:00));
    assert_eq!(lib.ota.run_due_jobs().await.unwrap(), 0);
    // …and the next day Ōta's job expires it; the other branches' jobs leave it alone.
    lib.clock.set(datetime!(2026-04-09 00:01 +09:00));
    assert_eq!(lib.kitsuki.run_due_jobs().await.unwrap(), 0);
    assert_eq!(lib.yamaga.run_due_jobs().await.unwrap(), 0);
    let mark = lib.outbox_mark().await;
    assert_eq!(lib.ota.run_due_jobs().await.unwrap(), 1);
    assert_eq!(lib.ota.run_due_jobs().await.unwrap(), 0, "once only");

    assert_eq!(hold_status(&lib, &h1.hold_id).await.status, "expired");
    let next = hold_status(&lib, &h2.hold_id).await;
    assert_eq!(next.status, "in_transit");
    assert_eq!(next.barcode, "YM-1");
    assert_eq!(next.queue_position, 1);
    let events: Vec<String> = lib
        .outbox_after(mark)
        .await
        .iter()
        .map(|e| e.short())
        .collect();
    assert_eq!(events, ["hold.expired", "item.YM-1.ITEM_STATUS_IN_TRANSIT"]);

    // S1: Ōta's desk is told to take it off the shelf and send it to Kitsuki
    let expired = lib.ota.expired_holds().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].hold_id, h1.hold_id);
    assert_eq!(
        (expired[0].routing.as_str(), expired[0].to_branch.as_str()),
        ("transit", "kitsuki")
    );
    assert_eq!(expired[0].next_hold_id, h2.hold_id);
    assert!(lib.ota.hold_shelf().await.unwrap().is_empty());

    // Kitsuki checks it in: onto its hold shelf for the second patron, mailed, lent.
    let routed = lib.kitsuki.checkin(&bc("YM-1"), "k").await.unwrap();
    assert_eq!(routed.routing, "hold_shelf");
    assert!(lib.ota.expired_holds().await.unwrap().is_empty());
    lib.ready_mail_sent(Kitsuki, &h2.hold_id).await;
    let loan = lib
        .kitsuki
        .checkout(&second, &bc("YM-1"), "k")
        .await
        .unwrap();
    assert_eq!(loan.due_date, "2026-04-23");
    // The first patron cannot borrow it any more.
    assert!(
        list_holds_of(&lib, &first)
            .await
            .iter()
            .all(|h| h.status == "expired")
    );
}

async fn nobody_collects_it_and_with_no_one_waiting_it_goes_home_h9(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    let patron = lib.patron(1);
    let h = lib.web_hold(Ota, &patron, &title, Ota).await;
    shelve_for(&lib, &h.hold_id, Ota).await;
    // As the test clock does after it moves: every instance's due jobs run.
    let jobs = kitsuki_platform::testclock::DueJobs::default();
    for c in [&lib.kitsuki, &lib.yamaga, &lib.ota] {
        c.register_due_jobs(&jobs);
    }
    lib.advance_days(8);
    jobs.run_all().await;
    assert_eq!(hold_status(&lib, &h.hold_id).await.status, "expired");
    let expired = lib.ota.expired_holds().await.unwrap();
    assert_eq!(
        (expired[0].routing.as_str(), expired[0].to_branch.as_str()),
        ("transit", "yamaga")
    );
    let home = lib.yamaga.transits().await.unwrap().incoming;
    assert_eq!(home.len(), 1);
    assert_eq!(home[0].hold_id, "");
    let routed = lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    assert_eq!(routed.routing, "shelve");
    let t = lib.kitsuki.title_holdability(&[title]).await.unwrap();
    assert_eq!((t[0].copies_on_shelf, t[0].holds_waiting), (1, 0));
    assert!(!t[0].holdable, "a copy is on the shelf (H1)");
}

async fn a_ready_hold_cancelled_passes_its_item_on_at_once_h10(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    let (first, second) = (lib.patron(1), lib.patron(2));
    let h1 = lib.web_hold(Yamaga, &first, &title, Yamaga).await;
    let h2 = lib.web_hold(Yamaga, &second, &title, Yamaga).await;
    shelve_for(&lib, &h1.hold_id, Yamaga).await;

    // Another patron cannot cancel it; the patron can (H10), from any instance.
    let err = lib
        .ota
        .cancel_hold(
            &h1.hold_id,
            kitsuki_circulation::Requester::Patron(&second),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::HoldNotFound);
    let mark = lib.outbox_mark().await;
    let cancelled = lib
        .ota
        .cancel_hold(
            &h1.hold_id,
            kitsuki_circulation::Requester::Patron(&first),
            None,
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    // The item stays on Yamaga's hold shelf, now for the next hold, which is mailed.
    let next = hold_status(&lib, &h2.hold_id).await;
    assert_eq!(
        (next.status.as_str(), next.barcode.as_str()),
        ("awaiting_notice", "YM-1")
    );
    let events = lib.outbox_after(mark).await;
    let holds: Vec<(String, String, bool)> = events
        .iter()
        .filter_map(|e| e.hold())
        .map(|h| (h.kind, h.hold_id, h.by_library))
        .collect();
    assert_eq!(
        holds,
        [
            ("cancelled".to_string(), h1.hold_id.clone(), false),
            ("ready_to_notify".to_string(), h2.hold_id.clone(), false)
        ]
    );
    // The item did not change status (hold shelf to hold shelf): one event per copy for the
    // queue that shrank.
    let items: Vec<String> = events
        .iter()
        .filter(|e| e.item().is_some())
        .map(|e| e.short())
        .collect();
    assert_eq!(items, ["item.YM-1.ITEM_STATUS_ON_HOLD_SHELF"]);
    let expired = lib.yamaga.expired_holds().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].routing, "hold_shelf");
    assert_eq!(expired[0].next_hold_id, h2.hold_id);
    // A second cancellation is a conflict with the hold's state.
    let again = lib
        .yamaga
        .cancel_hold(
            &h1.hold_id,
            kitsuki_circulation::Requester::Patron(&first),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::HoldStateConflict);
}

async fn a_hold_cancelled_in_transit_is_routed_when_the_item_arrives_h10(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    let patron = lib.patron(1);
    let h = lib.web_hold(Ota, &patron, &title, Ota).await;
    lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    // Cancelled by the library, with a reason: the cancellation is mailed (N1).
    let mark = lib.outbox_mark().await;
    lib.ota
        .cancel_hold(
            &h.hold_id,
            kitsuki_circulation::Requester::Staff { actor: "ota-staff" },
            Some("資料破損のため"),
        )
        .await
        .unwrap();
    let cancelled = lib
        .outbox_after(mark)
        .await
        .iter()
        .find_map(|e| e.hold())
        .unwrap();
    assert!(cancelled.by_library);
    assert_eq!(cancelled.reason, "資料破損のため");
    assert_eq!(cancelled.barcode, "YM-1");
    // Still travelling to Ōta, for no hold now; Ōta's checkin sends it home.
    let incoming = lib.ota.transits().await.unwrap().incoming;
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].hold_id, "");
    let routed = lib.ota.checkin(&bc("YM-1"), "o").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.to_branch.as_str()),
        ("transit", "yamaga")
    );
}

async fn list_holds_of(
    lib: &Library,
    card: &kitsuki_proto::CardNumber,
) -> Vec<kitsuki_proto::circulation::Hold> {
    lib.kitsuki.list_holds(card).await.unwrap()
}
