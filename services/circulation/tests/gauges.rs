//! The branch gauges of the dashboards and alerts (`service/gauges.rs`), counted from the
//! rows along the life of one hold at Ōta whose copy comes from Yamaga: in transit (out of
//! Yamaga, into Ōta; rule H7), on Ōta's hold shelf awaiting its mail (with its age; H8),
//! ready, about to expire, and expired with the item still on the shelf, going home (H9).
//! Each branch counts only its own.

mod common;

use common::*;
use kitsuki_circulation::service::BranchGauges;
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use time::macros::datetime;

on_both_backends!(the_gauges_follow_a_hold_through_transit_shelf_and_expiry);

async fn the_gauges_follow_a_hold_through_transit_shelf_and_expiry(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("YM-1", Yamaga), ("KT-1", Kitsuki)]).await;
    lib.lend_away("YM-1", Yamaga, 101).await;
    lib.lend_away("KT-1", Kitsuki, 102).await;
    let patron = lib.patron(1);
    let hold = lib.web_hold(Ota, &patron, &title, Ota).await;
    for b in [Kitsuki, Yamaga, Ota] {
        assert_eq!(
            lib.at(b).branch_gauges().await.unwrap(),
            BranchGauges::default()
        );
    }

    // Returned at Yamaga: in transit to Ōta.
    lib.clock.set(datetime!(2026-04-03 11:00 +09:00));
    lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    let yamaga = lib.yamaga.branch_gauges().await.unwrap();
    let ota = lib.ota.branch_gauges().await.unwrap();
    assert_eq!((yamaga.transit_out, yamaga.transit_in), (1, 0));
    assert_eq!((ota.transit_out, ota.transit_in), (0, 1));

    // On Ōta's hold shelf, its mail not sent yet; half an hour later it is that old.
    lib.clock.set(datetime!(2026-04-04 09:30 +09:00));
    lib.ota.checkin(&bc("YM-1"), "o").await.unwrap();
    lib.clock.set(datetime!(2026-04-04 10:00 +09:00));
    let ota = lib.ota.branch_gauges().await.unwrap();
    assert_eq!(
        ota,
        BranchGauges {
            shelf: 1,
            awaiting_notice: 1,
            oldest_awaiting_seconds: 1800.0,
            ..BranchGauges::default()
        }
    );
    assert_eq!(
        lib.yamaga.branch_gauges().await.unwrap(),
        BranchGauges::default()
    );

    // The mail is sent: ready until 2026-04-11 (H9), not expiring yet.
    lib.ready_mail_sent(Ota, &hold.hold_id).await;
    let ota = lib.ota.branch_gauges().await.unwrap();
    assert_eq!(
        ota,
        BranchGauges {
            shelf: 1,
            ..BranchGauges::default()
        }
    );

    // The day before its last day it is expiring.
    lib.clock.set(datetime!(2026-04-10 09:00 +09:00));
    assert_eq!(lib.ota.branch_gauges().await.unwrap().expiring, 1);

    // Expired by the job: off the shelf's count, on the list of items to take off, and
    // (nobody else waiting) in transit home to Yamaga.
    lib.clock.set(datetime!(2026-04-12 09:00 +09:00));
    lib.ota.run_due_jobs().await.unwrap();
    let ota = lib.ota.branch_gauges().await.unwrap();
    assert_eq!(
        ota,
        BranchGauges {
            ended_on_shelf: 1,
            transit_out: 1,
            ..BranchGauges::default()
        }
    );
    assert_eq!(lib.yamaga.branch_gauges().await.unwrap().transit_in, 1);
}
