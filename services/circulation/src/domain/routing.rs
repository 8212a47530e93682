//! Where an item goes when it is checked in at a branch (rules H7, L5, S1) or released by a
//! hold that expired or was cancelled (H9, H10): onto the open shelf, onto a hold shelf, or
//! into transit.

use kitsuki_proto::{Barcode, Branch};

use super::HoldId;
use super::holds::{AllocationRoute, Hold, HoldEvent, HoldState, HoldStatus};
use super::queue::TitleQueue;

/// What routing needs to know of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFacts {
    pub barcode: Barcode,
    /// Rule B1: every item has a home branch.
    pub home: Branch,
}

/// The hold an item is already allocated to (it holds the item: in transit or on the shelf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub hold_id: HoldId,
    pub pickup: Branch,
    pub status: HoldStatus,
}

/// The answer of a checkin at the desk (API.md `routing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Onto the open shelf of this branch, which is the item's home branch.
    Shelve,
    /// Onto this branch's hold shelf for the hold.
    HoldShelf { hold_id: HoldId },
    /// Into transit: to a hold's pickup branch, or home (`hold_id` none).
    Transit { to: Branch, hold_id: Option<HoldId> },
}

impl Routing {
    /// The `routing` code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            Routing::Shelve => "shelve",
            Routing::HoldShelf { .. } => "hold_shelf",
            Routing::Transit { .. } => "transit",
        }
    }
}

/// A routing, and the event it brings to a hold: `Allocate` when the item is newly given to
/// a hold, `ArriveAtPickup` when an item in transit reaches its pickup branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinDecision {
    pub routing: Routing,
    pub hold_event: Option<(HoldId, HoldEvent)>,
}

/// Rules H7, L5: the routing of `item` checked in at branch `here` (any branch, L5).
///
/// - An item already allocated to a hold goes to that hold's pickup branch: onto the hold
///   shelf if this is it (with `ArriveAtPickup` when it was in transit), otherwise on in
///   transit. An allocation whose hold no longer holds an item is stale and ignored.
/// - Otherwise it goes to the first confirmed hold of the title's queue (H7): this branch's
///   hold shelf if the hold's pickup branch is this one, else transit to it.
/// - With no confirmed hold, the item goes home. Decision: an item returned away from home is
///   sent back to its home branch rather than shelved where it was returned (L5 lets patrons
///   return anywhere; it does not move the collection). A checkin at home shelves it.
pub fn route_checkin(
    item: &ItemFacts,
    here: Branch,
    allocation: Option<&Allocation>,
    queue: &TitleQueue,
) -> CheckinDecision {
    if let Some(a) = allocation.filter(|a| a.status.holds_item()) {
        let event = (a.status == HoldStatus::InTransit && a.pickup == here)
            .then(|| (a.hold_id.clone(), HoldEvent::ArriveAtPickup));
        let routing = if a.pickup == here {
            Routing::HoldShelf {
                hold_id: a.hold_id.clone(),
            }
        } else {
            Routing::Transit {
                to: a.pickup,
                hold_id: Some(a.hold_id.clone()),
            }
        };
        return CheckinDecision {
            routing,
            hold_event: event,
        };
    }
    if let Some(next) = queue.next_to_allocate() {
        let (routing, route) = if next.pickup == here {
            let routing = Routing::HoldShelf {
                hold_id: next.id.clone(),
            };
            (routing, AllocationRoute::PickupShelf)
        } else {
            let routing = Routing::Transit {
                to: next.pickup,
                hold_id: Some(next.id.clone()),
            };
            (routing, AllocationRoute::Transit)
        };
        let event = HoldEvent::Allocate {
            item: item.barcode.clone(),
            route,
        };
        return CheckinDecision {
            routing,
            hold_event: Some((next.id.clone(), event)),
        };
    }
    let routing = if here == item.home {
        Routing::Shelve
    } else {
        Routing::Transit {
            to: item.home,
            hold_id: None,
        }
    };
    CheckinDecision {
        routing,
        hold_event: None,
    }
}

/// What happens to the item of a hold that ended without being checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The hold held no item: nothing to move.
    NoItem,
    /// The item sits on the pickup branch's hold shelf: routed again from there.
    Route(CheckinDecision),
    /// The item is on its way to the pickup branch: it is routed by its checkin there.
    RouteOnArrival { at: Branch },
}

/// Rules H9, H10: when a ready hold expires or a hold holding an item is cancelled, the item
/// goes to the next confirmed hold of the queue or back home. `before` is the hold as it was
/// before the `Expire` or `Cancel` event (its status says where the item is); `queue` is the
/// title's queue. Decision: an item whose hold is cancelled while it is in transit keeps
/// travelling (a van is not turned round) and is routed by the ordinary checkin at the branch
/// it reaches.
pub fn route_release(item: &ItemFacts, before: &Hold, queue: &TitleQueue) -> Release {
    match &before.state {
        HoldState::InTransit { .. } => Release::RouteOnArrival { at: before.pickup },
        // The item is on the pickup branch's hold shelf. The ended hold is not confirmed, so
        // the queue never gives the item back to it.
        HoldState::AwaitingNotice { .. } | HoldState::Ready { .. } => {
            Release::Route(route_checkin(item, before.pickup, None, queue))
        }
        HoldState::Provisional
        | HoldState::Confirmed
        | HoldState::Fulfilled { .. }
        | HoldState::Cancelled { .. }
        | HoldState::Expired { .. }
        | HoldState::Rejected { .. } => Release::NoItem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::holds::CancelledBy;
    use crate::domain::test_support::{barcode, hold, hold_id};
    use time::macros::{date, datetime};

    fn item_from(home: Branch) -> ItemFacts {
        ItemFacts {
            barcode: barcode("YA-77"),
            home,
        }
    }

    fn allocate(n: u32, route: AllocationRoute) -> Option<(HoldId, HoldEvent)> {
        Some((
            hold_id(n),
            HoldEvent::Allocate {
                item: barcode("YA-77"),
                route,
            },
        ))
    }

    fn ready() -> HoldState {
        HoldState::Ready {
            item: barcode("YA-77"),
            mail_sent_at: datetime!(2026-04-01 10:00 +09:00),
            ready_until: date!(2026 - 04 - 08),
        }
    }

    #[test]
    fn routing_codes_are_the_api_codes() {
        assert_eq!(Routing::Shelve.code(), "shelve");
        assert_eq!(
            Routing::HoldShelf {
                hold_id: hold_id(1)
            }
            .code(),
            "hold_shelf"
        );
        assert_eq!(
            Routing::Transit {
                to: Branch::Ota,
                hold_id: None
            }
            .code(),
            "transit"
        );
    }

    #[test]
    fn checkin_at_the_pickup_branch_of_the_first_confirmed_hold_goes_to_its_hold_shelf_h7() {
        let q = TitleQueue::new(vec![hold(1, Branch::Ota, HoldState::Confirmed)]);
        let d = route_checkin(&item_from(Branch::Yamaga), Branch::Ota, None, &q);
        assert_eq!(
            d.routing,
            Routing::HoldShelf {
                hold_id: hold_id(1)
            }
        );
        assert_eq!(d.hold_event, allocate(1, AllocationRoute::PickupShelf));
    }

    #[test]
    fn checkin_elsewhere_sends_the_item_to_the_pickup_branch_h7() {
        let q = TitleQueue::new(vec![hold(1, Branch::Kitsuki, HoldState::Confirmed)]);
        let d = route_checkin(&item_from(Branch::Yamaga), Branch::Ota, None, &q);
        assert_eq!(
            d.routing,
            Routing::Transit {
                to: Branch::Kitsuki,
                hold_id: Some(hold_id(1))
            }
        );
        assert_eq!(d.hold_event, allocate(1, AllocationRoute::Transit));
    }

    #[test]
    fn the_first_confirmed_hold_wins_even_if_a_later_one_picks_up_here_h6_h7() {
        let q = TitleQueue::new(vec![
            hold(1, Branch::Ota, HoldState::Provisional),
            hold(2, Branch::Kitsuki, HoldState::Confirmed),
            hold(3, Branch::Ota, HoldState::Confirmed),
        ]);
        let d = route_checkin(&item_from(Branch::Ota), Branch::Ota, None, &q);
        assert_eq!(
            d.routing,
            Routing::Transit {
                to: Branch::Kitsuki,
                hold_id: Some(hold_id(2))
            }
        );
    }

    #[test]
    fn with_no_confirmed_hold_an_item_checked_in_at_home_is_shelved_h7_l5() {
        let q = TitleQueue::new(vec![hold(1, Branch::Ota, HoldState::Provisional)]);
        let d = route_checkin(&item_from(Branch::Yamaga), Branch::Yamaga, None, &q);
        assert_eq!(d.routing, Routing::Shelve);
        assert_eq!(d.hold_event, None);
    }

    #[test]
    fn with_no_confirmed_hold_an_item_returned_away_from_home_goes_home_l5() {
        let d = route_checkin(
            &item_from(Branch::Yamaga),
            Branch::Kitsuki,
            None,
            &TitleQueue::default(),
        );
        assert_eq!(
            d.routing,
            Routing::Transit {
                to: Branch::Yamaga,
                hold_id: None
            }
        );
        assert_eq!(d.hold_event, None);
    }

    #[test]
    fn an_item_in_transit_checked_in_at_its_pickup_branch_goes_onto_the_hold_shelf_h7() {
        let a = Allocation {
            hold_id: hold_id(5),
            pickup: Branch::Ota,
            status: HoldStatus::InTransit,
        };
        // Another confirmed hold in the queue does not take it.
        let q = TitleQueue::new(vec![hold(1, Branch::Ota, HoldState::Confirmed)]);
        let d = route_checkin(&item_from(Branch::Yamaga), Branch::Ota, Some(&a), &q);
        assert_eq!(
            d.routing,
            Routing::HoldShelf {
                hold_id: hold_id(5)
            }
        );
        assert_eq!(d.hold_event, Some((hold_id(5), HoldEvent::ArriveAtPickup)));
    }

    #[test]
    fn an_item_in_transit_checked_in_on_the_way_travels_on_to_its_pickup_branch_h7() {
        let a = Allocation {
            hold_id: hold_id(5),
            pickup: Branch::Ota,
            status: HoldStatus::InTransit,
        };
        let d = route_checkin(
            &item_from(Branch::Yamaga),
            Branch::Kitsuki,
            Some(&a),
            &TitleQueue::default(),
        );
        assert_eq!(
            d.routing,
            Routing::Transit {
                to: Branch::Ota,
                hold_id: Some(hold_id(5))
            }
        );
        assert_eq!(d.hold_event, None);
    }

    #[test]
    fn scanning_an_item_already_on_its_hold_shelf_keeps_it_there_without_an_event_h7() {
        for status in [HoldStatus::AwaitingNotice, HoldStatus::Ready] {
            let a = Allocation {
                hold_id: hold_id(5),
                pickup: Branch::Ota,
                status,
            };
            let d = route_checkin(
                &item_from(Branch::Ota),
                Branch::Ota,
                Some(&a),
                &TitleQueue::default(),
            );
            assert_eq!(
                d.routing,
                Routing::HoldShelf {
                    hold_id: hold_id(5)
                }
            );
            assert_eq!(d.hold_event, None);
        }
    }

    #[test]
    fn a_stale_allocation_is_ignored_and_the_queue_decides_h7() {
        for status in HoldStatus::ALL.into_iter().filter(|s| !s.holds_item()) {
            let a = Allocation {
                hold_id: hold_id(5),
                pickup: Branch::Ota,
                status,
            };
            let d = route_checkin(
                &item_from(Branch::Kitsuki),
                Branch::Kitsuki,
                Some(&a),
                &TitleQueue::default(),
            );
            assert_eq!(d.routing, Routing::Shelve, "{status:?}");
        }
    }

    #[test]
    fn an_expired_hold_releases_its_item_to_the_next_confirmed_hold_at_the_same_branch_h9() {
        let before = hold(1, Branch::Ota, ready());
        let ended = Hold {
            state: HoldState::Expired {
                item: barcode("YA-77"),
            },
            ..before.clone()
        };
        // The queue as stored after the expiry: the ended hold is in it, expired.
        let q = TitleQueue::new(vec![ended, hold(2, Branch::Ota, HoldState::Confirmed)]);
        let ended = before;
        let got = route_release(&item_from(Branch::Yamaga), &ended, &q);
        assert_eq!(
            got,
            Release::Route(CheckinDecision {
                routing: Routing::HoldShelf {
                    hold_id: hold_id(2)
                },
                hold_event: allocate(2, AllocationRoute::PickupShelf),
            })
        );
    }

    #[test]
    fn an_expired_hold_releases_its_item_into_transit_to_the_next_holds_pickup_branch_h9() {
        let ended = hold(1, Branch::Ota, ready());
        let q = TitleQueue::new(vec![hold(2, Branch::Kitsuki, HoldState::Confirmed)]);
        let got = route_release(&item_from(Branch::Yamaga), &ended, &q);
        assert_eq!(
            got,
            Release::Route(CheckinDecision {
                routing: Routing::Transit {
                    to: Branch::Kitsuki,
                    hold_id: Some(hold_id(2))
                },
                hold_event: allocate(2, AllocationRoute::Transit),
            })
        );
    }

    #[test]
    fn with_no_next_hold_a_released_item_goes_back_to_its_home_shelf_h9() {
        let ended = hold(1, Branch::Ota, ready());
        let away = route_release(&item_from(Branch::Yamaga), &ended, &TitleQueue::default());
        assert_eq!(
            away,
            Release::Route(CheckinDecision {
                routing: Routing::Transit {
                    to: Branch::Yamaga,
                    hold_id: None
                },
                hold_event: None,
            })
        );
        let home = route_release(&item_from(Branch::Ota), &ended, &TitleQueue::default());
        assert_eq!(
            home,
            Release::Route(CheckinDecision {
                routing: Routing::Shelve,
                hold_event: None,
            })
        );
    }

    #[test]
    fn a_provisional_next_hold_does_not_take_a_released_item_h5_h9() {
        let ended = hold(1, Branch::Ota, ready());
        let q = TitleQueue::new(vec![hold(2, Branch::Ota, HoldState::Provisional)]);
        let got = route_release(&item_from(Branch::Ota), &ended, &q);
        assert_eq!(
            got,
            Release::Route(CheckinDecision {
                routing: Routing::Shelve,
                hold_event: None,
            })
        );
    }

    #[test]
    fn cancelling_a_hold_on_the_shelf_releases_its_item_as_on_expiry_h10() {
        for state in [
            HoldState::AwaitingNotice {
                item: barcode("YA-77"),
            },
            ready(),
        ] {
            let ended = hold(1, Branch::Ota, state);
            let q = TitleQueue::new(vec![hold(2, Branch::Yamaga, HoldState::Confirmed)]);
            let got = route_release(&item_from(Branch::Ota), &ended, &q);
            assert_eq!(
                got,
                Release::Route(CheckinDecision {
                    routing: Routing::Transit {
                        to: Branch::Yamaga,
                        hold_id: Some(hold_id(2))
                    },
                    hold_event: allocate(2, AllocationRoute::Transit),
                })
            );
        }
    }

    #[test]
    fn cancelling_a_hold_in_transit_routes_the_item_when_it_arrives_h10() {
        let ended = hold(
            1,
            Branch::Ota,
            HoldState::InTransit {
                item: barcode("YA-77"),
            },
        );
        assert_eq!(
            route_release(&item_from(Branch::Yamaga), &ended, &TitleQueue::default()),
            Release::RouteOnArrival { at: Branch::Ota }
        );
    }

    #[test]
    fn a_hold_without_an_item_releases_nothing_h10() {
        for state in [
            HoldState::Provisional,
            HoldState::Confirmed,
            HoldState::Cancelled {
                by: CancelledBy::Patron,
                item: None,
            },
            HoldState::Rejected { reason: None },
            HoldState::Fulfilled {
                item: barcode("YA-77"),
            },
            HoldState::Expired {
                item: barcode("YA-77"),
            },
        ] {
            let ended = hold(1, Branch::Ota, state);
            assert_eq!(
                route_release(&item_from(Branch::Ota), &ended, &TitleQueue::default()),
                Release::NoItem
            );
        }
    }
}
