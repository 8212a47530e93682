//! Holds through the shell on real databases (every body on PostgreSQL and on SQLite): the
//! refusals of H1–H3 and H11 with their codes, web holds confirmed at once or reviewed by
//! staff (H5), counter holds and the pull list (S1), positions in one queue across branches
//! (H6), and what the patron's list shows.

mod common;

use common::*;
use kitsuki_circulation::domain::holdability::HoldPolicy;
use kitsuki_circulation::{CirculationConfig, PatronRecord, Requester};
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use kitsuki_proto::ErrorCode;
use kitsuki_proto::catalog::MaterialType;
use time::macros::datetime;

on_both_backends!(
    web_holds_follow_h1_for_the_title,
    web_holds_need_a_web_patron_with_a_verified_address_h3,
    a_patron_with_an_overdue_loan_cannot_hold_on_the_web_h2,
    one_hold_per_title_and_at_most_ten_h11,
    a_web_hold_is_provisional_then_confirmed_with_its_mails_h5,
    staff_review_confirms_or_rejects_provisional_holds_h5,
    a_counter_hold_on_an_available_title_goes_on_the_pull_list_s1,
    one_queue_per_title_across_branches_with_positions_h6,
    the_patrons_list_shows_positions_and_ended_holds,
);

fn refused(r: Result<kitsuki_proto::circulation::Hold, kitsuki_proto::ServiceError>) -> ErrorCode {
    r.unwrap_err().code
}

async fn web_holds_follow_h1_for_the_title(backend: Backend) {
    let lib = Library::open(backend).await;
    let p = lib.patron(1);
    let on_shelf = lib.book(&[("KT-1", Kitsuki)]).await;
    let magazine = lib.title(MaterialType::Magazine, &[("MG-1", Ota)]).await;
    lib.lend_away("MG-1", Ota, 90).await;
    let unknown = kitsuki_proto::TitleId::parse("00000000-0000-7000-8000-000000000001").unwrap();
    let hold = |t: &kitsuki_proto::TitleId| {
        let req = web_request(&p, t, Ota);
        let ota = lib.ota.clone();
        async move { ota.place_hold(&req).await }
    };
    assert_eq!(refused(hold(&on_shelf).await), ErrorCode::HoldAvailableCopy);
    assert_eq!(refused(hold(&magazine).await), ErrorCode::HoldMaterialType);
    assert_eq!(refused(hold(&unknown).await), ErrorCode::HoldNotHeldHere);
    let listed = lib
        .ota
        .title_holdability(&[on_shelf.clone(), magazine.clone(), unknown.clone()])
        .await
        .unwrap();
    let blocks: Vec<String> = listed
        .iter()
        .map(|t| t.hold_block.as_ref().unwrap().code.clone())
        .collect();
    assert_eq!(
        blocks,
        [
            "hold_available_copy",
            "hold_material_type",
            "hold_not_held_here"
        ]
    );
    assert!(listed.iter().all(|t| !t.holdable));
    // Once the copy is lent, the book is holdable (H1).
    lib.lend_away("KT-1", Kitsuki, 91).await;
    let listed = lib
        .ota
        .title_holdability(std::slice::from_ref(&on_shelf))
        .await
        .unwrap();
    assert!(listed[0].holdable);
    assert!(listed[0].hold_block.is_none());
    hold(&on_shelf).await.unwrap();
}

async fn web_holds_need_a_web_patron_with_a_verified_address_h3(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    let no_web = lib.patron_with(
        1,
        PatronRecord {
            web_enabled: false,
            email_verified: true,
            reading_history: false,
        },
    );
    let unverified = lib.patron_with(
        2,
        PatronRecord {
            web_enabled: true,
            email_verified: false,
            reading_history: false,
        },
    );
    assert_eq!(
        refused(lib.ota.place_hold(&web_request(&no_web, &title, Ota)).await),
        ErrorCode::WebServiceNotEnabled
    );
    assert_eq!(
        refused(
            lib.ota
                .place_hold(&web_request(&unverified, &title, Ota))
                .await
        ),
        ErrorCode::EmailNotVerified
    );
    assert_eq!(
        refused(
            lib.ota
                .place_hold(&web_request(&card(3), &title, Ota))
                .await
        ),
        ErrorCode::PatronNotFound
    );
    lib.patrons.set_down(true);
    assert_eq!(
        refused(lib.ota.place_hold(&web_request(&no_web, &title, Ota)).await),
        ErrorCode::Unavailable
    );
}

async fn a_patron_with_an_overdue_loan_cannot_hold_on_the_web_h2(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    lib.book(&[("YM-9", Yamaga)]).await;
    let p = lib.patron(1);
    lib.yamaga.checkout(&p, &bc("YM-9"), "y").await.unwrap();
    lib.advance_days(15);
    assert_eq!(
        refused(lib.ota.place_hold(&web_request(&p, &title, Ota)).await),
        ErrorCode::HoldOverdueBlock
    );
    // At a counter, H2 does not bind (S1 decision of the core).
    lib.ota
        .place_hold(&counter_request(&p, &title, Ota, Ota))
        .await
        .unwrap();
}

async fn one_hold_per_title_and_at_most_ten_h11(backend: Backend) {
    let config = CirculationConfig {
        holds: HoldPolicy {
            max_active_holds: 3,
            ..HoldPolicy::default()
        },
        ..config()
    };
    let lib = Library::open_with(backend, config).await;
    let p = lib.patron(1);
    let mut titles = Vec::new();
    for i in 0..4 {
        let barcode = format!("KT-{i}");
        let t = lib.book(&[(&barcode, Kitsuki)]).await;
        lib.lend_away(&barcode, Kitsuki, 100 + i).await;
        titles.push(t);
    }
    lib.web_hold(Ota, &p, &titles[0], Ota).await;
    assert_eq!(
        refused(
            lib.kitsuki
                .place_hold(&web_request(&p, &titles[0], Kitsuki))
                .await
        ),
        ErrorCode::HoldDuplicate
    );
    lib.web_hold(Ota, &p, &titles[1], Ota).await;
    lib.web_hold(Ota, &p, &titles[2], Ota).await;
    assert_eq!(
        refused(lib.ota.place_hold(&web_request(&p, &titles[3], Ota)).await),
        ErrorCode::HoldLimit
    );
}

async fn a_web_hold_is_provisional_then_confirmed_with_its_mails_h5(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    let (asked, not_asked) = (lib.patron(1), lib.patron(2));
    let mark = lib.outbox_mark().await;
    let h = lib.web_hold(Yamaga, &asked, &title, Ota).await;
    let mut quiet = web_request(&not_asked, &title, Kitsuki);
    quiet.receipt_mail = false;
    let h2 = lib.yamaga.place_hold(&quiet).await.unwrap();
    assert_eq!(h.status, "confirmed");
    assert_eq!(h.origin, "web");
    let events = lib.outbox_after(mark).await;
    let holds: Vec<(String, String, bool, String)> = events
        .iter()
        .filter_map(|e| {
            e.hold()
                .map(|h| (e.subject.clone(), h.kind, h.receipt_mail, h.hold_id))
        })
        .collect();
    assert_eq!(
        holds,
        [
            (
                "circulation.yamaga.hold.placed".into(),
                "placed".into(),
                true,
                h.hold_id.clone()
            ),
            (
                "circulation.yamaga.hold.confirmed".into(),
                "confirmed".into(),
                true,
                h.hold_id.clone()
            ),
            (
                "circulation.yamaga.hold.placed".into(),
                "placed".into(),
                false,
                h2.hold_id.clone()
            ),
            (
                "circulation.yamaga.hold.confirmed".into(),
                "confirmed".into(),
                false,
                h2.hold_id.clone()
            ),
        ]
    );
    // The catalog hears that holds wait on the title: one event per copy per change.
    let waiting: Vec<u32> = events
        .iter()
        .filter_map(|e| e.item())
        .map(|i| i.holds_waiting)
        .collect();
    assert_eq!(waiting, [1, 2]);
}

async fn staff_review_confirms_or_rejects_provisional_holds_h5(backend: Backend) {
    let config = CirculationConfig {
        holds: HoldPolicy {
            auto_confirm: false,
            ..HoldPolicy::default()
        },
        ..config()
    };
    let lib = Library::open_with(backend, config).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    let (a, b) = (lib.patron(1), lib.patron(2));
    let ha = lib.web_hold(Ota, &a, &title, Ota).await;
    let hb = lib.web_hold(Ota, &b, &title, Ota).await;
    assert_eq!(
        (ha.status.as_str(), hb.status.as_str()),
        ("provisional", "provisional")
    );
    let listed = lib.ota.provisional_holds().await.unwrap();
    assert_eq!(
        listed.iter().map(|h| h.queue_position).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(lib.kitsuki.provisional_holds().await.unwrap().is_empty());

    // A provisional hold gets no item (H5): the copy returned goes home to its shelf.
    assert_eq!(
        lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap().routing,
        "shelve"
    );

    let mark = lib.outbox_mark().await;
    let err = lib.ota.confirm_hold(&ha.hold_id, "").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let confirmed = lib
        .ota
        .confirm_hold(&ha.hold_id, "ota-staff")
        .await
        .unwrap();
    assert_eq!(confirmed.status, "confirmed");
    let rejected = lib
        .ota
        .reject_hold(&hb.hold_id, "重複のお申し込みのため", "ota-staff")
        .await
        .unwrap();
    assert_eq!(rejected.status, "rejected");
    assert_eq!(rejected.reason, "重複のお申し込みのため");
    let again = lib
        .ota
        .confirm_hold(&hb.hold_id, "ota-staff")
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::HoldStateConflict);
    let kinds: Vec<(String, String)> = lib
        .outbox_after(mark)
        .await
        .iter()
        .filter_map(|e| e.hold())
        .map(|h| (h.kind, h.reason))
        .collect();
    assert_eq!(
        kinds,
        [
            ("confirmed".to_string(), String::new()),
            ("rejected".to_string(), "重複のお申し込みのため".to_string())
        ]
    );
    // The confirmed hold, with the copy on Kitsuki's shelf now, is on Kitsuki's pull list.
    let pull = lib.kitsuki.pull_list().await.unwrap();
    assert_eq!(pull.len(), 1);
    assert_eq!(
        (
            pull[0].hold_id.as_str(),
            pull[0].routing.as_str(),
            pull[0].to_branch.as_str()
        ),
        (ha.hold_id.as_str(), "transit", "ota")
    );
    let routed = lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.hold_id.as_str()),
        ("transit", ha.hold_id.as_str())
    );
}

async fn a_counter_hold_on_an_available_title_goes_on_the_pull_list_s1(backend: Backend) {
    let lib = Library::open(backend).await;
    let magazine = lib
        .title(
            MaterialType::Magazine,
            &[("MG-1", Yamaga), ("MG-2", Kitsuki)],
        )
        .await;
    let p = lib.patron(1);
    let mark = lib.outbox_mark().await;
    // Only this instance's own desk places counter holds.
    let err = lib
        .ota
        .place_hold(&counter_request(&p, &magazine, Ota, Yamaga))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidBranch);
    let h = lib
        .ota
        .place_hold(&counter_request(&p, &magazine, Ota, Ota))
        .await
        .unwrap();
    assert_eq!(
        (h.status.as_str(), h.origin.as_str(), h.receipt_mail),
        ("confirmed", "counter", false)
    );
    let kinds: Vec<String> = lib
        .outbox_after(mark)
        .await
        .iter()
        .filter_map(|e| e.hold())
        .map(|h| h.kind)
        .collect();
    assert_eq!(kinds, ["placed", "confirmed"]);
    // Each branch with a copy on its shelf lists it; the first copy scanned takes the hold.
    for branch in [Yamaga, Kitsuki] {
        let pull = lib.at(branch).pull_list().await.unwrap();
        assert_eq!(pull.len(), 1, "{branch}");
        assert_eq!(pull[0].to_branch, "ota");
    }
    assert!(lib.ota.pull_list().await.unwrap().is_empty());
    let routed = lib.yamaga.checkin(&bc("MG-1"), "y").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.to_branch.as_str()),
        ("transit", "ota")
    );
    assert!(lib.kitsuki.pull_list().await.unwrap().is_empty());
    // The copy pulled second is shelved again by its checkin.
    assert_eq!(
        lib.kitsuki.checkin(&bc("MG-2"), "k").await.unwrap().routing,
        "shelve"
    );
}

async fn one_queue_per_title_across_branches_with_positions_h6(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki), ("YM-1", Yamaga)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    lib.lend_away("YM-1", Yamaga, 91).await;
    let mut holds = Vec::new();
    for (i, branch) in [Kitsuki, Yamaga, Ota, Kitsuki, Ota].into_iter().enumerate() {
        let p = lib.patron(i as u32 + 1);
        let h = lib.web_hold(branch, &p, &title, branch).await;
        assert_eq!(h.queue_position, i as u32 + 1);
        holds.push((p, h));
    }
    // The second cancels: those behind move up.
    lib.kitsuki
        .cancel_hold(&holds[1].1.hold_id, Requester::Patron(&holds[1].0), None)
        .await
        .unwrap();
    let positions: Vec<u32> = {
        let mut v = Vec::new();
        for (p, _) in [&holds[0], &holds[2], &holds[3], &holds[4]] {
            v.push(lib.ota.list_holds(p).await.unwrap()[0].queue_position);
        }
        v
    };
    assert_eq!(positions, [1, 2, 3, 4]);
    // The first copy back goes to the first in the queue, wherever it is returned (H7).
    let routed = lib.ota.checkin(&bc("YM-1"), "o").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.to_branch.as_str()),
        ("transit", "kitsuki")
    );
    assert_eq!(routed.hold_id, holds[0].1.hold_id);
    let routed = lib.ota.checkin(&bc("KT-1"), "o").await.unwrap();
    assert_eq!(
        (routed.routing.as_str(), routed.hold_id.as_str()),
        ("hold_shelf", holds[2].1.hold_id.as_str())
    );
}

async fn the_patrons_list_shows_positions_and_ended_holds(backend: Backend) {
    let lib = Library::open(backend).await;
    let t1 = lib.book(&[("KT-1", Kitsuki)]).await;
    let t2 = lib.book(&[("KT-2", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 90).await;
    lib.lend_away("KT-2", Kitsuki, 91).await;
    let other = lib.patron(2);
    lib.web_hold(Ota, &other, &t1, Ota).await;
    let p = lib.patron(1);
    let h1 = lib.web_hold(Ota, &p, &t1, Yamaga).await;
    let h2 = lib.web_hold(Ota, &p, &t2, Ota).await;
    lib.ota
        .cancel_hold(
            &h2.hold_id,
            Requester::Staff { actor: "ota-staff" },
            Some("蔵書点検のため"),
        )
        .await
        .unwrap();
    let list = lib.kitsuki.list_holds(&p).await.unwrap();
    let seen: Vec<(String, u32, bool, String)> = list
        .iter()
        .map(|h| {
            (
                h.hold_id.clone(),
                h.queue_position,
                h.cancellable,
                h.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (h1.hold_id.clone(), 2, true, String::new()),
            (h2.hold_id.clone(), 0, false, "蔵書点検のため".to_string()),
        ]
    );
    assert_eq!(list[0].pickup_branch, "yamaga");
    // Ended holds are shown for 30 days.
    lib.clock.set(datetime!(2026-05-02 10:00 +09:00));
    let list = lib.kitsuki.list_holds(&p).await.unwrap();
    assert_eq!(list.len(), 1);
}
