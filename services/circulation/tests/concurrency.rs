//! The guards under load (ARCHITECTURE.md "Data"), every body on PostgreSQL and on SQLite:
//! many patrons placing holds on one title at once, through the three instances, get
//! distinct consecutive positions that do not move afterwards (H6); copies of one title
//! checked in at two branch instances at the same moment never go to the same hold, and no
//! hold gets two items (H7); checkouts of one patron at two desks at once never pass the
//! loan limit (L3).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use kitsuki_circulation::CirculationConfig;
use kitsuki_circulation::domain::loans::LoanPolicy;
use kitsuki_proto::Branch::{self, Kitsuki, Ota, Yamaga};
use kitsuki_proto::ErrorCode;
use tokio::sync::Barrier;

on_both_backends!(
    twenty_patrons_holding_one_title_at_once_get_positions_1_to_20_h6,
    copies_checked_in_at_two_branches_at_once_never_share_a_hold_h7,
    one_patron_at_two_desks_at_once_never_passes_the_loan_limit_l3,
);

async fn twenty_patrons_holding_one_title_at_once_get_positions_1_to_20_h6(backend: Backend) {
    let lib = Arc::new(Library::open(backend).await);
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    lib.lend_away("KT-1", Kitsuki, 999).await;
    // The test clock stands still: every placement has the same instant, and only the
    // title's sequence orders them.
    let n = 20u32;
    let barrier = Arc::new(Barrier::new(n as usize));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (1..=n)
        .map(|i| {
            let (lib, title, barrier) = (lib.clone(), title.clone(), barrier.clone());
            tokio::spawn(async move {
                let p = lib.patron(i);
                let via = Branch::ALL[i as usize % 3];
                barrier.wait().await;
                let h = lib
                    .at(via)
                    .place_hold(&web_request(&p, &title, via))
                    .await
                    .unwrap();
                (p, h)
            })
        })
        .collect();
    let mut placed = Vec::new();
    for t in tasks {
        placed.push(t.await.unwrap());
    }
    eprintln!(
        "{backend}: {n} concurrent placements in {:?}",
        started.elapsed()
    );
    let positions: BTreeSet<u32> = placed.iter().map(|(_, h)| h.queue_position).collect();
    assert_eq!(positions, (1..=n).collect::<BTreeSet<_>>());
    // What each patron was told is what they see afterwards: positions do not move.
    for (p, h) in &placed {
        let now = lib.yamaga.list_holds(p).await.unwrap();
        assert_eq!(now[0].queue_position, h.queue_position, "{}", h.hold_id);
    }
    // And allocation follows them: the copy goes to position 1.
    let first = placed.iter().find(|(_, h)| h.queue_position == 1).unwrap();
    let routed = lib.kitsuki.checkin(&bc("KT-1"), "k").await.unwrap();
    assert_eq!(routed.hold_id, first.1.hold_id);
}

/// Each round: a title with copies at Yamaga and Kitsuki, all on loan, fewer confirmed holds
/// than copies; the copies are checked in in pairs, one at each branch, at the same moment.
async fn copies_checked_in_at_two_branches_at_once_never_share_a_hold_h7(backend: Backend) {
    let lib = Arc::new(Library::open(backend).await);
    let rounds = 4;
    let pairs = 3;
    let holders = 4;
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let copies: Vec<(String, Branch)> = (0..pairs)
            .flat_map(|i| {
                [
                    (format!("YM-{round}-{i}"), Yamaga),
                    (format!("KT-{round}-{i}"), Kitsuki),
                ]
            })
            .collect();
        let refs: Vec<(&str, Branch)> = copies.iter().map(|(b, h)| (b.as_str(), *h)).collect();
        let title = lib.book(&refs).await;
        for (i, (barcode, branch)) in copies.iter().enumerate() {
            lib.lend_away(barcode, *branch, 500 + round * 100 + i as u32)
                .await;
        }
        let mut holds = Vec::new();
        for i in 0..holders {
            let p = lib.patron(1000 + round * 100 + i);
            holds.push(
                lib.web_hold(Ota, &p, &title, [Ota, Kitsuki, Yamaga][i as usize % 3])
                    .await,
            );
        }
        let mut answers = Vec::new();
        for i in 0..pairs {
            let barrier = Arc::new(Barrier::new(2));
            let tasks: Vec<_> = [
                (format!("YM-{round}-{i}"), Yamaga),
                (format!("KT-{round}-{i}"), Kitsuki),
            ]
            .into_iter()
            .map(|(barcode, branch)| {
                let (lib, barrier) = (lib.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    lib.at(branch).checkin(&bc(&barcode), "desk").await.unwrap()
                })
            })
            .collect();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
        }
        // Every hold got exactly one item, and the rest went home.
        let mut by_hold: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in &answers {
            if !a.hold_id.is_empty() {
                by_hold
                    .entry(a.hold_id.clone())
                    .or_default()
                    .push(a.barcode.clone());
            }
        }
        assert_eq!(
            by_hold.len(),
            holders as usize,
            "round {round}: {answers:?}"
        );
        assert!(
            by_hold.values().all(|items| items.len() == 1),
            "{by_hold:?}"
        );
        let home = answers.iter().filter(|a| a.hold_id.is_empty()).count();
        assert_eq!(home, 2 * pairs as usize - holders as usize);
        for h in &holds {
            let now = lib
                .kitsuki
                .hold(&kitsuki_circulation::domain::HoldId::new(&h.hold_id))
                .await
                .unwrap();
            assert!(
                ["in_transit", "awaiting_notice"].contains(&now.status.as_str()),
                "{}",
                now.status
            );
            assert_eq!(by_hold[&h.hold_id], std::slice::from_ref(&now.barcode));
        }
    }
    eprintln!(
        "{backend}: {} concurrent checkin pairs in {:?}",
        rounds * pairs,
        started.elapsed()
    );
}

async fn one_patron_at_two_desks_at_once_never_passes_the_loan_limit_l3(backend: Backend) {
    let config = CirculationConfig {
        loans: LoanPolicy {
            max_loans: 2,
            ..LoanPolicy::default()
        },
        ..config()
    };
    let lib = Arc::new(Library::open_with(backend, config).await);
    let desks = 8;
    for round in 0..4u32 {
        let p = lib.patron(round + 1);
        for i in 0..desks {
            lib.book(&[(&format!("X-{round}-{i}"), Branch::ALL[i % 3])])
                .await;
        }
        let barrier = Arc::new(Barrier::new(desks));
        let tasks: Vec<_> = (0..desks)
            .map(|i| {
                let (lib, p, barrier) = (lib.clone(), p.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    lib.at(Branch::ALL[i % 3])
                        .checkout(&p, &bc(&format!("X-{round}-{i}")), "desk")
                        .await
                })
            })
            .collect();
        let mut lent = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => lent += 1,
                Err(e) => assert_eq!(e.code, ErrorCode::LoanLimit),
            }
        }
        assert_eq!(lent, 2, "round {round}");
        assert_eq!(lib.ota.list_loans(&p).await.unwrap().len(), 2);
    }
}
