//! One hold queue per title across all three branches (rule H6), in order of placement: the
//! patron's position, the number waiting, and which hold the next copy goes to (H7).

use super::HoldId;
use super::holds::{Hold, HoldStatus};

/// The holds on one title in queue order (placement time, then sequence; see
/// [`Hold::queue_cmp`]). The caller loads the holds of a single title; finished holds may be
/// included and are simply not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TitleQueue {
    holds: Vec<Hold>,
}

impl TitleQueue {
    /// Builds the queue from the title's holds in any order.
    pub fn new(holds: impl IntoIterator<Item = Hold>) -> TitleQueue {
        let mut holds: Vec<Hold> = holds.into_iter().collect();
        holds.sort_by(Hold::queue_cmp);
        TitleQueue { holds }
    }

    /// Every hold, in queue order.
    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }

    /// The active holds (H6), in queue order.
    pub fn active(&self) -> impl Iterator<Item = &Hold> {
        self.holds.iter().filter(|h| h.status().is_active())
    }

    /// Rule H6: the position the patron sees, 1 for the first. Only active holds count, ahead
    /// and for the hold itself: a finished hold has no position. Decision: holds that already
    /// have an item (in transit, on the shelf) and provisional ones still count, since they
    /// are active and keep their place.
    pub fn position(&self, id: &HoldId) -> Option<u32> {
        self.active()
            .position(|h| &h.id == id)
            .map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX))
    }

    /// The number of active holds: the `holds_waiting` of a title.
    pub fn waiting(&self) -> usize {
        self.active().count()
    }

    /// Confirmed holds, which have no item yet, in queue order: those the next copies go to.
    pub fn awaiting_item(&self) -> impl Iterator<Item = &Hold> {
        self.holds
            .iter()
            .filter(|h| h.status() == HoldStatus::Confirmed)
    }

    /// Rule H7: the hold the next checked-in copy goes to, the first confirmed hold without an
    /// item. Provisional holds are not in force yet (H5): they are skipped but keep their place.
    pub fn next_to_allocate(&self) -> Option<&Hold> {
        self.awaiting_item().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::holds::{CancelledBy, HoldState};
    use crate::domain::test_support::{barcode, hold, hold_id};
    use kitsuki_proto::Branch;
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    fn state_of(status: HoldStatus) -> HoldState {
        let item = barcode("KT-1");
        match status {
            HoldStatus::Provisional => HoldState::Provisional,
            HoldStatus::Confirmed => HoldState::Confirmed,
            HoldStatus::InTransit => HoldState::InTransit { item },
            HoldStatus::AwaitingNotice => HoldState::AwaitingNotice { item },
            HoldStatus::Ready => HoldState::Ready {
                item,
                mail_sent_at: datetime!(2026-04-01 10:00 +09:00),
                ready_until: time::macros::date!(2026 - 04 - 08),
            },
            HoldStatus::Fulfilled => HoldState::Fulfilled { item },
            HoldStatus::Cancelled => HoldState::Cancelled {
                by: CancelledBy::Patron,
                item: None,
            },
            HoldStatus::Expired => HoldState::Expired { item },
            HoldStatus::Rejected => HoldState::Rejected { reason: None },
        }
    }

    #[test]
    fn positions_count_active_holds_in_order_of_placement_across_branches_h6() {
        let q = TitleQueue::new(vec![
            hold(3, Branch::Ota, HoldState::Confirmed),
            hold(1, Branch::Kitsuki, HoldState::Provisional),
            hold(2, Branch::Yamaga, state_of(HoldStatus::Cancelled)),
            hold(4, Branch::Kitsuki, state_of(HoldStatus::Ready)),
        ]);
        assert_eq!(q.position(&hold_id(1)), Some(1));
        assert_eq!(q.position(&hold_id(2)), None);
        assert_eq!(q.position(&hold_id(3)), Some(2));
        assert_eq!(q.position(&hold_id(4)), Some(3));
        assert_eq!(q.position(&hold_id(99)), None);
        assert_eq!(q.waiting(), 3);
    }

    #[test]
    fn holds_placed_at_the_same_instant_are_ordered_by_sequence_h6() {
        let mut a = hold(1, Branch::Ota, HoldState::Confirmed);
        let mut b = hold(2, Branch::Ota, HoldState::Confirmed);
        b.placed_at = a.placed_at;
        a.seq = 20;
        b.seq = 10;
        let q = TitleQueue::new(vec![a, b]);
        assert_eq!(q.position(&hold_id(2)), Some(1));
        assert_eq!(q.next_to_allocate().unwrap().id, hold_id(2));
    }

    #[test]
    fn allocation_skips_provisional_holds_which_keep_their_place_h5_h7() {
        let q = TitleQueue::new(vec![
            hold(1, Branch::Ota, HoldState::Provisional),
            hold(2, Branch::Ota, state_of(HoldStatus::InTransit)),
            hold(3, Branch::Yamaga, HoldState::Confirmed),
            hold(4, Branch::Kitsuki, HoldState::Confirmed),
        ]);
        assert_eq!(q.next_to_allocate().unwrap().id, hold_id(3));
        assert_eq!(q.position(&hold_id(1)), Some(1));
    }

    #[test]
    fn no_confirmed_hold_means_no_allocation_h7() {
        let q = TitleQueue::new(vec![
            hold(1, Branch::Ota, HoldState::Provisional),
            hold(2, Branch::Ota, state_of(HoldStatus::Ready)),
            hold(3, Branch::Ota, state_of(HoldStatus::Expired)),
        ]);
        assert_eq!(q.next_to_allocate(), None);
        assert_eq!(TitleQueue::default().next_to_allocate(), None);
    }

    fn status_strategy() -> impl Strategy<Value = HoldStatus> {
        proptest::sample::select(HoldStatus::ALL.to_vec())
    }

    /// Up to 24 holds with placement times in a narrow range (many ties), unique sequences in
    /// a shuffled order, and any statuses.
    fn holds_strategy() -> impl Strategy<Value = Vec<Hold>> {
        proptest::collection::vec((0i64..6, status_strategy()), 0..24)
            .prop_flat_map(|specs| {
                let n = specs.len();
                (
                    Just(specs),
                    Just((0..n as u64).collect::<Vec<_>>()).prop_shuffle(),
                )
            })
            .prop_map(|(specs, seqs)| {
                let base = datetime!(2026-04-01 10:00 +09:00);
                specs
                    .into_iter()
                    .zip(seqs)
                    .enumerate()
                    .map(|(i, ((minute, status), seq))| {
                        let mut h = hold(i as u32, Branch::ALL[i % 3], state_of(status));
                        h.placed_at = base + Duration::minutes(minute);
                        h.seq = seq;
                        h
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn positions_are_one_to_n_distinct_and_consecutive_for_active_holds_h6(holds in holds_strategy()) {
            let q = TitleQueue::new(holds.clone());
            let mut positions: Vec<u32> = holds
                .iter()
                .filter_map(|h| {
                    let p = q.position(&h.id);
                    assert_eq!(p.is_some(), h.status().is_active(), "{:?}", h.status());
                    p
                })
                .collect();
            positions.sort_unstable();
            let expected: Vec<u32> = (1..=q.waiting() as u32).collect();
            prop_assert_eq!(positions, expected);
        }

        #[test]
        fn positions_follow_placement_then_sequence_whatever_the_input_order_h6(holds in holds_strategy()) {
            let q = TitleQueue::new(holds.clone());
            let reversed = TitleQueue::new(holds.iter().rev().cloned());
            prop_assert_eq!(&q, &reversed);
            let active: Vec<&Hold> = q.active().collect();
            for pair in active.windows(2) {
                prop_assert!((pair[0].placed_at, pair[0].seq) < (pair[1].placed_at, pair[1].seq));
                prop_assert_eq!(q.position(&pair[0].id).unwrap() + 1, q.position(&pair[1].id).unwrap());
            }
        }

        #[test]
        fn allocation_always_picks_the_earliest_confirmed_unallocated_hold_h7(holds in holds_strategy()) {
            let q = TitleQueue::new(holds.clone());
            match q.next_to_allocate() {
                None => prop_assert!(holds.iter().all(|h| h.status() != HoldStatus::Confirmed)),
                Some(chosen) => {
                    prop_assert_eq!(chosen.status(), HoldStatus::Confirmed);
                    prop_assert!(chosen.state.held_item().is_none());
                    for h in &holds {
                        if h.status() == HoldStatus::Confirmed && h.id != chosen.id {
                            prop_assert!((chosen.placed_at, chosen.seq) < (h.placed_at, h.seq));
                        }
                    }
                }
            }
        }

        #[test]
        fn removing_a_hold_shifts_only_those_behind_it_h6(holds in holds_strategy(), pick in any::<proptest::sample::Index>(), cancel in any::<bool>()) {
            prop_assume!(!holds.is_empty());
            let q = TitleQueue::new(holds.clone());
            let gone = pick.get(&holds).id.clone();
            let gone_pos = q.position(&gone);
            // Removed from the list, or cancelled in place: the same for positions.
            let after: Vec<Hold> = if cancel {
                holds.iter().cloned().map(|mut h| {
                    if h.id == gone && h.status().is_active() {
                        h.state = HoldState::Cancelled { by: CancelledBy::Patron, item: h.state.held_item().cloned() };
                    }
                    h
                }).collect()
            } else {
                holds.iter().filter(|h| h.id != gone).cloned().collect()
            };
            let q2 = TitleQueue::new(after);
            prop_assert_eq!(q2.position(&gone), None);
            for h in holds.iter().filter(|h| h.id != gone) {
                let (before, now) = (q.position(&h.id), q2.position(&h.id));
                let expected = match (before, gone_pos) {
                    (Some(b), Some(g)) if b > g => Some(b - 1),
                    (b, _) => b,
                };
                prop_assert_eq!(now, expected, "hold {}", h.id);
            }
        }
    }
}
