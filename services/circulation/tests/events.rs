//! Events in and out (every body on PostgreSQL and on SQLite): each change writes exactly its
//! events to the outbox in its own transaction, a refusal writes none; the item projection is
//! idempotent (the same event twice, or again under a new consumer name, is one item); only
//! the ready mail's `MailSent` makes a hold ready, once (H8, H9, N2).

mod common;

use common::*;
use kitsuki_circulation::{Recorded, Requester};
use kitsuki_platform::clock::Clock;
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use kitsuki_proto::ErrorCode;
use kitsuki_proto::catalog::MaterialType;
use time::macros::datetime;

on_both_backends!(
    each_change_writes_exactly_its_events_and_a_refusal_none,
    the_projection_consumer_is_idempotent,
    an_item_recorded_by_the_gateway_is_lent_at_once_and_its_event_changes_nothing,
    only_the_ready_mail_makes_a_hold_ready_and_only_once_h8_h9,
);

/// The events written since `mark`, short, and moves the mark.
async fn since(lib: &Library, mark: &mut i64) -> Vec<String> {
    let events = lib.outbox_after(*mark).await;
    if let Some(last) = events.last() {
        *mark = last.seq;
    }
    events.iter().map(|e| e.short()).collect()
}

async fn each_change_writes_exactly_its_events_and_a_refusal_none(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki), ("YM-1", Yamaga)]).await;
    let mut mark = lib.outbox_mark().await;
    assert_eq!(mark, 0, "the projection writes no events");
    let (p1, p2, p9) = (lib.patron(1), lib.patron(2), lib.patron(9));

    let loan = lib.kitsuki.checkout(&p1, &bc("KT-1"), "k").await.unwrap();
    assert_eq!(
        since(&lib, &mut mark).await,
        ["item.KT-1.ITEM_STATUS_ON_LOAN"]
    );
    let e = lib.outbox().await.pop().unwrap();
    assert_eq!(e.subject, "circulation.kitsuki.item.status");
    let item = e.item().unwrap();
    assert_eq!(
        (item.due_date.as_str(), item.holds_waiting),
        ("2026-04-15", 0)
    );
    assert_eq!(item.title_id, title.as_str());
    assert_eq!(item.meta.unwrap().event_id, e.id);

    lib.clock.set(datetime!(2026-04-05 10:00 +09:00));
    lib.yamaga
        .renew(&loan.loan_id, Requester::Staff { actor: "y" })
        .await
        .unwrap();
    assert_eq!(
        since(&lib, &mut mark).await,
        ["item.KT-1.ITEM_STATUS_ON_LOAN"]
    );
    let e = lib.outbox().await.pop().unwrap();
    assert_eq!(e.subject, "circulation.yamaga.item.status");
    assert_eq!(e.item().unwrap().due_date, "2026-04-19");

    lib.yamaga.checkout(&p9, &bc("YM-1"), "y").await.unwrap();
    assert_eq!(
        since(&lib, &mut mark).await,
        ["item.YM-1.ITEM_STATUS_ON_LOAN"]
    );

    let hold = lib.web_hold(Ota, &p2, &title, Ota).await;
    assert_eq!(
        since(&lib, &mut mark).await,
        [
            "hold.placed",
            "hold.confirmed",
            "item.KT-1.ITEM_STATUS_ON_LOAN",
            "item.YM-1.ITEM_STATUS_ON_LOAN"
        ]
    );
    assert!(
        lib.outbox_after(0)
            .await
            .iter()
            .rev()
            .take(2)
            .all(|e| e.item().unwrap().holds_waiting == 1)
    );

    // Refusals write nothing.
    let err = lib
        .kitsuki
        .checkout(&p2, &bc("KT-1"), "k")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ItemOnLoan);
    let err = lib
        .ota
        .place_hold(&web_request(&p2, &title, Ota))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::HoldDuplicate);
    let err = lib
        .ota
        .renew(&loan.loan_id, Requester::Patron(&p1))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RenewalAlreadyRenewed);
    assert!(since(&lib, &mut mark).await.is_empty());

    lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    assert_eq!(
        since(&lib, &mut mark).await,
        ["item.YM-1.ITEM_STATUS_IN_TRANSIT"]
    );
    lib.ota.checkin(&bc("YM-1"), "o").await.unwrap();
    assert_eq!(
        since(&lib, &mut mark).await,
        [
            "hold.ready_to_notify",
            "item.YM-1.ITEM_STATUS_ON_HOLD_SHELF"
        ]
    );
    let notice = lib.outbox().await.into_iter().rev().nth(1).unwrap();
    assert_eq!(notice.subject, "circulation.ota.hold.ready_to_notify");
    let h = notice.hold().unwrap();
    assert_eq!(
        (
            h.card_number.as_str(),
            h.pickup_branch.as_str(),
            h.barcode.as_str(),
            h.title_id.as_str()
        ),
        (p2.as_str(), "ota", "YM-1", title.as_str())
    );

    assert_eq!(
        lib.ready_mail_sent(Ota, &hold.hold_id).await,
        Recorded::Applied
    );
    assert!(
        since(&lib, &mut mark).await.is_empty(),
        "ready is not an event"
    );

    lib.ota.checkout(&p2, &bc("YM-1"), "o").await.unwrap();
    // The hold is fulfilled: the copy lent, and every copy's holds_waiting back to 0.
    assert_eq!(
        since(&lib, &mut mark).await,
        [
            "item.KT-1.ITEM_STATUS_ON_LOAN",
            "item.YM-1.ITEM_STATUS_ON_LOAN"
        ]
    );
    assert!(
        lib.outbox_after(0)
            .await
            .iter()
            .rev()
            .take(2)
            .all(|e| e.item().unwrap().holds_waiting == 0)
    );
    // Event ids are unique.
    let ids: std::collections::BTreeSet<String> =
        lib.outbox().await.into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), lib.outbox().await.len());
}

/// Read-your-writes (ARCHITECTURE.md "Data"): the gateway's `RecordItem` is the projection
/// of `ItemCreated`, by barcode: the item can be lent at once, a second call and the event
/// arriving later change nothing (the loan stays).
async fn an_item_recorded_by_the_gateway_is_lent_at_once_and_its_event_changes_nothing(
    backend: Backend,
) {
    use kitsuki_circulation::domain::MaterialType as Material;
    let lib = Library::open(backend).await;
    let title = kitsuki_proto::TitleId::parse(&uuid::Uuid::now_v7().to_string()).unwrap();
    assert!(
        lib.yamaga
            .record_item(&bc("KT-88"), &title, Kitsuki, Material::Book)
            .await
            .unwrap(),
        "new"
    );
    lib.kitsuki
        .checkout(&lib.patron(1), &bc("KT-88"), "k")
        .await
        .unwrap();
    assert!(
        !lib.ota
            .record_item(&bc("KT-88"), &title, Kitsuki, Material::Book)
            .await
            .unwrap(),
        "known already"
    );
    let event = item_created(&title, "KT-88", Kitsuki, MaterialType::Book);
    assert_eq!(
        lib.kitsuki
            .record_item_created("circulation-x-catalog-items", &event)
            .await
            .unwrap(),
        Recorded::Applied
    );
    let counts = lib
        .kitsuki
        .title_holdability(std::slice::from_ref(&title))
        .await
        .unwrap();
    assert_eq!(
        (counts[0].copies, counts[0].copies_on_shelf),
        (1, 0),
        "still one copy, on loan"
    );
}

async fn the_projection_consumer_is_idempotent(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = kitsuki_proto::TitleId::parse(&uuid::Uuid::now_v7().to_string()).unwrap();
    let event = item_created(&title, "kt-77", Kitsuki, MaterialType::Book);
    let consumer = "circulation-x-catalog-items";
    assert_eq!(
        lib.ota.record_item_created(consumer, &event).await.unwrap(),
        Recorded::Applied
    );
    assert_eq!(
        lib.yamaga
            .record_item_created(consumer, &event)
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    // A new consumer name reads the stream again: the item is kept as it is.
    lib.lend_away("KT-77", Kitsuki, 5).await;
    assert_eq!(
        lib.kitsuki
            .record_item_created("rebuilt-catalog-items", &event)
            .await
            .unwrap(),
        Recorded::Applied
    );
    let counts = lib
        .kitsuki
        .title_holdability(std::slice::from_ref(&title))
        .await
        .unwrap();
    assert_eq!((counts[0].copies, counts[0].copies_on_shelf), (1, 0));
    // Unusable events are rejected (acknowledged), not retried for ever.
    let mut bad = event.clone();
    bad.id = "other-id".into();
    bad.payload = vec![0xff, 0xff];
    assert_eq!(
        lib.kitsuki
            .record_item_created(consumer, &bad)
            .await
            .unwrap(),
        Recorded::Rejected
    );
    let untyped = item_created(&title, "KT-78", Kitsuki, MaterialType::Unspecified);
    assert_eq!(
        lib.kitsuki
            .record_item_created(consumer, &untyped)
            .await
            .unwrap(),
        Recorded::Rejected
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&lib.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(
        lib.outbox()
            .await
            .iter()
            .all(|e| !e.subject.starts_with("catalog"))
    );
}

async fn only_the_ready_mail_makes_a_hold_ready_and_only_once_h8_h9(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 9).await;
    let p = lib.patron(1);
    let hold = lib.web_hold(Kitsuki, &p, &title, Kitsuki).await;
    let confirmed_id = lib
        .outbox()
        .await
        .into_iter()
        .find(|e| e.hold().is_some_and(|h| h.kind == "confirmed"))
        .unwrap()
        .id;
    lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    // The confirmation mail, sent late (notification was down), changes nothing (H8).
    let late = mail_sent(
        &confirmed_id,
        &hold.hold_id,
        "hold_confirmed",
        lib.clock.now(),
    );
    assert_eq!(
        lib.ota.record_mail_sent("mails", &late).await.unwrap(),
        Recorded::Ignored
    );
    let h = lib
        .kitsuki
        .hold(&kitsuki_circulation::domain::HoldId::new(&hold.hold_id))
        .await
        .unwrap();
    assert_eq!(h.status, "awaiting_notice");
    // A mail without a hold, or for no known hold, is ignored.
    let other = mail_sent("x", "", "email_changed", lib.clock.now());
    assert_eq!(
        lib.ota.record_mail_sent("mails", &other).await.unwrap(),
        Recorded::Ignored
    );
    let unknown = mail_sent("x", "no-such-hold", "hold_ready", lib.clock.now());
    assert_eq!(
        lib.ota.record_mail_sent("mails", &unknown).await.unwrap(),
        Recorded::Ignored
    );

    // The ready mail, answering the ready_to_notify event (whatever its template's name).
    let notice = lib
        .outbox()
        .await
        .into_iter()
        .find(|e| e.hold().is_some_and(|h| h.kind == "ready_to_notify"))
        .unwrap();
    lib.clock.set(datetime!(2026-04-02 21:00 +09:00));
    let ready = mail_sent(
        &notice.id,
        &hold.hold_id,
        "renamed_template",
        lib.clock.now(),
    );
    assert_eq!(
        lib.yamaga.record_mail_sent("mails", &ready).await.unwrap(),
        Recorded::Applied
    );
    assert_eq!(
        lib.yamaga.record_mail_sent("mails", &ready).await.unwrap(),
        Recorded::Duplicate
    );
    // A second ready mail (a resend) does not restart the shelf clock (H9).
    lib.clock.set(datetime!(2026-04-05 09:00 +09:00));
    let resend = mail_sent(&notice.id, &hold.hold_id, "hold_ready", lib.clock.now());
    assert_eq!(
        lib.kitsuki
            .record_mail_sent("mails", &resend)
            .await
            .unwrap(),
        Recorded::Ignored
    );
    let h = lib
        .kitsuki
        .hold(&kitsuki_circulation::domain::HoldId::new(&hold.hold_id))
        .await
        .unwrap();
    assert_eq!(
        (h.status.as_str(), h.ready_until.as_str()),
        ("ready", "2026-04-09")
    );
}
