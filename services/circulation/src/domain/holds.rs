//! The life of a hold as a state machine (rules H5, H7–H10; the statuses of API.md):
//!
//! ```text
//! provisional ─confirm─▶ confirmed ─allocate(transit)─▶ in_transit ─arrive─┐
//!      │                     │                                              ▼
//!      │                     └──────allocate(pickup shelf)──────▶ awaiting_notice
//!      │                                                                    │ mail sent
//!      ▼                                                                    ▼
//!   rejected          cancelled ◀─cancel─ (any active status)            ready ─check out─▶ fulfilled
//!                                                                           │
//!                                                                           └─expire─▶ expired
//! ```
//!
//! [`apply`] is the only way from one state to the next; a pair it does not list is refused.

use std::cmp::Ordering;

use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, TitleId};
use time::{Date, OffsetDateTime};

use super::HoldId;
use super::calendar::LibraryCalendar;
use super::shelf::{shelf_last_day, shelf_period_over};

/// The status of a hold, with the codes of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldStatus {
    Provisional,
    Confirmed,
    InTransit,
    AwaitingNotice,
    Ready,
    Fulfilled,
    Cancelled,
    Expired,
    Rejected,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 9] = [
        HoldStatus::Provisional,
        HoldStatus::Confirmed,
        HoldStatus::InTransit,
        HoldStatus::AwaitingNotice,
        HoldStatus::Ready,
        HoldStatus::Fulfilled,
        HoldStatus::Cancelled,
        HoldStatus::Expired,
        HoldStatus::Rejected,
    ];

    pub fn code(self) -> &'static str {
        match self {
            HoldStatus::Provisional => "provisional",
            HoldStatus::Confirmed => "confirmed",
            HoldStatus::InTransit => "in_transit",
            HoldStatus::AwaitingNotice => "awaiting_notice",
            HoldStatus::Ready => "ready",
            HoldStatus::Fulfilled => "fulfilled",
            HoldStatus::Cancelled => "cancelled",
            HoldStatus::Expired => "expired",
            HoldStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<HoldStatus> {
        HoldStatus::ALL.into_iter().find(|st| st.code() == s)
    }

    /// Active: not yet fulfilled, cancelled, expired or rejected. An active hold has a place
    /// in its title's queue (H6), counts towards the patron's limit (H11) and waits on its
    /// title for the renewal rule (L2).
    pub fn is_active(self) -> bool {
        !self.is_final()
    }

    /// Fulfilled, cancelled, expired or rejected: no event moves it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            HoldStatus::Fulfilled
                | HoldStatus::Cancelled
                | HoldStatus::Expired
                | HoldStatus::Rejected
        )
    }

    /// In transit to its pickup branch, or on its hold shelf: an item is held for it (L4).
    pub fn holds_item(self) -> bool {
        matches!(
            self,
            HoldStatus::InTransit | HoldStatus::AwaitingNotice | HoldStatus::Ready
        )
    }
}

/// Who confirmed a provisional hold (H5): the automatic checks, or staff reviewing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmedBy {
    Auto,
    Staff,
}

/// Who cancelled a hold (H10). A cancellation by the library is mailed to the patron (N1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    Patron,
    Staff,
}

/// Where an allocated item goes (H7): onto this branch's hold shelf, because this is the
/// pickup branch, or into transit to the pickup branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationRoute {
    PickupShelf,
    Transit,
}

/// A hold's state with what each status carries. Only statuses that hold an item carry one,
/// so a confirmed hold has no item by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldState {
    Provisional,
    Confirmed,
    InTransit {
        item: Barcode,
    },
    AwaitingNotice {
        item: Barcode,
    },
    Ready {
        item: Barcode,
        mail_sent_at: OffsetDateTime,
        /// The last library-local day on the shelf (H9, B2); it ends at midnight Asia/Tokyo.
        ready_until: Date,
    },
    Fulfilled {
        item: Barcode,
    },
    Cancelled {
        by: CancelledBy,
        /// The item the hold was holding when cancelled, released as in H9 (H10).
        item: Option<Barcode>,
    },
    Expired {
        item: Barcode,
    },
    Rejected {
        reason: Option<String>,
    },
}

impl HoldState {
    pub fn status(&self) -> HoldStatus {
        match self {
            HoldState::Provisional => HoldStatus::Provisional,
            HoldState::Confirmed => HoldStatus::Confirmed,
            HoldState::InTransit { .. } => HoldStatus::InTransit,
            HoldState::AwaitingNotice { .. } => HoldStatus::AwaitingNotice,
            HoldState::Ready { .. } => HoldStatus::Ready,
            HoldState::Fulfilled { .. } => HoldStatus::Fulfilled,
            HoldState::Cancelled { .. } => HoldStatus::Cancelled,
            HoldState::Expired { .. } => HoldStatus::Expired,
            HoldState::Rejected { .. } => HoldStatus::Rejected,
        }
    }

    /// The item this hold holds now (in transit or on the hold shelf), if any.
    pub fn held_item(&self) -> Option<&Barcode> {
        match self {
            HoldState::InTransit { item }
            | HoldState::AwaitingNotice { item }
            | HoldState::Ready { item, .. } => Some(item),
            _ => None,
        }
    }

    /// The `ready_until` of API.md: set only while ready.
    pub fn ready_until(&self) -> Option<Date> {
        match self {
            HoldState::Ready { ready_until, .. } => Some(*ready_until),
            _ => None,
        }
    }
}

/// A hold on a title for a patron, to be picked up at a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: HoldId,
    pub patron: CardNumber,
    pub title: TitleId,
    pub pickup: Branch,
    pub placed_at: OffsetDateTime,
    /// A sequence number the store assigns at placement, unique within a title's queue, to
    /// order holds placed at the same instant (H6).
    pub seq: u64,
    pub state: HoldState,
}

impl Hold {
    /// Queue order (H6): placement time, then sequence, then id (so that the order is total
    /// even if a store hands out a sequence twice).
    pub fn queue_cmp(&self, other: &Hold) -> Ordering {
        (self.placed_at, self.seq, &self.id).cmp(&(other.placed_at, other.seq, &other.id))
    }

    pub fn status(&self) -> HoldStatus {
        self.state.status()
    }
}

/// What can happen to a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEvent {
    /// H5: the library confirms a provisional hold (the automatic checks or staff).
    Confirm { by: ConfirmedBy },
    /// H5: staff reject a provisional hold, with a reason for the patron.
    Reject { reason: Option<String> },
    /// H10: the patron (or staff for them) cancels a hold that is not yet checked out.
    Cancel { by: CancelledBy },
    /// H7: a checked-in copy goes to this hold, onto the hold shelf here or into transit.
    Allocate {
        item: Barcode,
        route: AllocationRoute,
    },
    /// H7: the item in transit was checked in at the pickup branch.
    ArriveAtPickup,
    /// H8, N2: the ready mail was sent at this instant; the shelf clock starts (H9).
    MailSent { at: OffsetDateTime },
    /// H8: the held item is lent to the patron.
    CheckOut,
    /// H9: the expiry job, at instant `now`.
    Expire { now: OffsetDateTime },
}

/// The kind of a [`HoldEvent`], for errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldEventKind {
    Confirm,
    Reject,
    Cancel,
    Allocate,
    ArriveAtPickup,
    MailSent,
    CheckOut,
    Expire,
}

impl HoldEvent {
    pub fn kind(&self) -> HoldEventKind {
        match self {
            HoldEvent::Confirm { .. } => HoldEventKind::Confirm,
            HoldEvent::Reject { .. } => HoldEventKind::Reject,
            HoldEvent::Cancel { .. } => HoldEventKind::Cancel,
            HoldEvent::Allocate { .. } => HoldEventKind::Allocate,
            HoldEvent::ArriveAtPickup => HoldEventKind::ArriveAtPickup,
            HoldEvent::MailSent { .. } => HoldEventKind::MailSent,
            HoldEvent::CheckOut => HoldEventKind::CheckOut,
            HoldEvent::Expire { .. } => HoldEventKind::Expire,
        }
    }
}

/// Why [`apply`] refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// A library rule refuses it (H8: `hold_not_ready`; `internal` for a calendar with no
    /// open day).
    #[error("refused: {}", .0.as_str())]
    Refused(ErrorCode),
    /// The event does not apply to a hold in this status: a stale or repeated request
    /// (confirming a hold twice, cancelling a fulfilled one, a second ready mail).
    #[error("{event:?} does not apply to a {} hold", .status.code())]
    NotApplicable {
        status: HoldStatus,
        event: HoldEventKind,
    },
    /// H9: the expiry job came before the end of the shelf period.
    #[error("the hold shelf period runs until {ready_until}")]
    ShelfPeriodNotOver { ready_until: Date },
}

impl TransitionError {
    /// The API code: a request that does not apply to the hold's current state (a stale
    /// page, a repeated click, an expiry before its time) is `hold_state_conflict` (409).
    pub fn code(&self) -> ErrorCode {
        match self {
            TransitionError::Refused(code) => *code,
            TransitionError::NotApplicable { .. } | TransitionError::ShelfPeriodNotOver { .. } => {
                ErrorCode::HoldStateConflict
            }
        }
    }
}

impl From<TransitionError> for ErrorCode {
    fn from(err: TransitionError) -> ErrorCode {
        err.code()
    }
}

/// The one transition function of a hold: its next state after `event`, or why not.
///
/// - Confirm, Reject: only a provisional hold (H5).
/// - Cancel: any active hold, until it is checked out (H10); the held item, if any, is kept in
///   the cancelled state for the record, and released by
///   [`route_release`](super::routing::route_release) given the hold as it was before.
/// - Allocate: only a confirmed hold, which has no item yet (H7); provisional holds are not in
///   force and are skipped by allocation.
/// - ArriveAtPickup: only in transit.
/// - MailSent: only awaiting notice; the last shelf day is computed from the pickup branch's
///   calendar (H9, B2). Decision: a repeated mail on a ready hold does not restart the clock
///   (it is `NotApplicable`, which the shell treats as a duplicate).
/// - CheckOut: only ready (H8); an active hold that is not ready yet is `hold_not_ready`.
/// - Expire: only ready, and only once the shelf period is over (H9).
pub fn apply(
    hold: &Hold,
    event: &HoldEvent,
    calendars: &LibraryCalendar,
) -> Result<HoldState, TransitionError> {
    let status = hold.state.status();
    let not_applicable = || TransitionError::NotApplicable {
        status,
        event: event.kind(),
    };
    if status.is_final() {
        return Err(not_applicable());
    }
    match (&hold.state, event) {
        (HoldState::Provisional, HoldEvent::Confirm { .. }) => Ok(HoldState::Confirmed),
        (HoldState::Provisional, HoldEvent::Reject { reason }) => Ok(HoldState::Rejected {
            reason: reason.clone(),
        }),
        (state, HoldEvent::Cancel { by }) => Ok(HoldState::Cancelled {
            by: *by,
            item: state.held_item().cloned(),
        }),
        (HoldState::Confirmed, HoldEvent::Allocate { item, route }) => Ok(match route {
            AllocationRoute::PickupShelf => HoldState::AwaitingNotice { item: item.clone() },
            AllocationRoute::Transit => HoldState::InTransit { item: item.clone() },
        }),
        (HoldState::InTransit { item }, HoldEvent::ArriveAtPickup) => {
            Ok(HoldState::AwaitingNotice { item: item.clone() })
        }
        (HoldState::AwaitingNotice { item }, HoldEvent::MailSent { at }) => {
            // rule H9: the shelf clock starts when the ready mail was sent (N2)
            let ready_until =
                shelf_last_day(calendars, hold.pickup, *at).map_err(TransitionError::Refused)?;
            Ok(HoldState::Ready {
                item: item.clone(),
                mail_sent_at: *at,
                ready_until,
            })
        }
        (HoldState::Ready { item, .. }, HoldEvent::CheckOut) => {
            Ok(HoldState::Fulfilled { item: item.clone() })
        }
        // rule H8: lent only after the ready mail was sent
        (_, HoldEvent::CheckOut) => Err(TransitionError::Refused(ErrorCode::HoldNotReady)),
        (
            HoldState::Ready {
                item, ready_until, ..
            },
            HoldEvent::Expire { now },
        ) => {
            if shelf_period_over(*ready_until, *now) {
                Ok(HoldState::Expired { item: item.clone() })
            } else {
                Err(TransitionError::ShelfPeriodNotOver {
                    ready_until: *ready_until,
                })
            }
        }
        _ => Err(not_applicable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::BranchCalendar;
    use crate::domain::test_support::{barcode, hold};
    use time::Duration;
    use time::macros::{date, datetime};

    const SENT: OffsetDateTime = datetime!(2026-04-01 10:00 +09:00);
    const LAST_DAY: Date = date!(2026 - 04 - 08);
    /// The first instant after the shelf period of a mail sent at `SENT`.
    const SHELF_ENDS: OffsetDateTime = datetime!(2026-04-09 00:00 +09:00);

    fn item() -> Barcode {
        barcode("KT-0001")
    }

    /// One representative state per status.
    fn state_of(status: HoldStatus) -> HoldState {
        match status {
            HoldStatus::Provisional => HoldState::Provisional,
            HoldStatus::Confirmed => HoldState::Confirmed,
            HoldStatus::InTransit => HoldState::InTransit { item: item() },
            HoldStatus::AwaitingNotice => HoldState::AwaitingNotice { item: item() },
            HoldStatus::Ready => HoldState::Ready {
                item: item(),
                mail_sent_at: SENT,
                ready_until: LAST_DAY,
            },
            HoldStatus::Fulfilled => HoldState::Fulfilled { item: item() },
            HoldStatus::Cancelled => HoldState::Cancelled {
                by: CancelledBy::Patron,
                item: None,
            },
            HoldStatus::Expired => HoldState::Expired { item: item() },
            HoldStatus::Rejected => HoldState::Rejected { reason: None },
        }
    }

    /// Every event, with both confirmers, both cancellers, both routes and an expiry on
    /// each side of the end of the shelf period.
    fn events() -> [HoldEvent; 12] {
        [
            HoldEvent::Confirm {
                by: ConfirmedBy::Auto,
            },
            HoldEvent::Confirm {
                by: ConfirmedBy::Staff,
            },
            HoldEvent::Reject {
                reason: Some("所蔵なし".into()),
            },
            HoldEvent::Cancel {
                by: CancelledBy::Patron,
            },
            HoldEvent::Cancel {
                by: CancelledBy::Staff,
            },
            HoldEvent::Allocate {
                item: item(),
                route: AllocationRoute::PickupShelf,
            },
            HoldEvent::Allocate {
                item: item(),
                route: AllocationRoute::Transit,
            },
            HoldEvent::ArriveAtPickup,
            HoldEvent::MailSent { at: SENT },
            HoldEvent::CheckOut,
            HoldEvent::Expire {
                now: SHELF_ENDS - Duration::nanoseconds(1),
            },
            HoldEvent::Expire { now: SHELF_ENDS },
        ]
    }

    /// Fails to compile when an event kind is added without a column in the table.
    fn column_of(kind: HoldEventKind) -> &'static [usize] {
        match kind {
            HoldEventKind::Confirm => &[0, 1],
            HoldEventKind::Reject => &[2],
            HoldEventKind::Cancel => &[3, 4],
            HoldEventKind::Allocate => &[5, 6],
            HoldEventKind::ArriveAtPickup => &[7],
            HoldEventKind::MailSent => &[8],
            HoldEventKind::CheckOut => &[9],
            HoldEventKind::Expire => &[10, 11],
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        To(HoldStatus),
        /// `NotApplicable`.
        Na,
        /// `Refused(hold_not_ready)` (H8).
        NotReady,
        /// `ShelfPeriodNotOver` (H9).
        Early,
    }

    use Expect::{Early, Na, NotReady, To};
    use HoldStatus as S;
    const CF: Expect = To(S::Confirmed);
    const RJ: Expect = To(S::Rejected);
    const CX: Expect = To(S::Cancelled);
    const AN: Expect = To(S::AwaitingNotice);
    const IT: Expect = To(S::InTransit);
    const RD: Expect = To(S::Ready);
    const FU: Expect = To(S::Fulfilled);
    const EX: Expect = To(S::Expired);

    /// The whole machine: one row per status, one column per event of [`events`].
    #[rustfmt::skip]
    const TABLE: [(HoldStatus, [Expect; 12]); 9] = [
        //                   confirm  reject cancel   allocate  arrive mail check expire
        //                   auto stf        pat  stf shelf tr              out   early late
        (S::Provisional,    [CF,  CF,  RJ,   CX,  CX, Na,   Na,  Na,    Na, NotReady, Na, Na]),
        (S::Confirmed,      [Na,  Na,  Na,   CX,  CX, AN,   IT,  Na,    Na, NotReady, Na, Na]),
        (S::InTransit,      [Na,  Na,  Na,   CX,  CX, Na,   Na,  AN,    Na, NotReady, Na, Na]),
        (S::AwaitingNotice, [Na,  Na,  Na,   CX,  CX, Na,   Na,  Na,    RD, NotReady, Na, Na]),
        (S::Ready,          [Na,  Na,  Na,   CX,  CX, Na,   Na,  Na,    Na, FU,    Early, EX]),
        (S::Fulfilled,      [Na,  Na,  Na,   Na,  Na, Na,   Na,  Na,    Na, Na,       Na, Na]),
        (S::Cancelled,      [Na,  Na,  Na,   Na,  Na, Na,   Na,  Na,    Na, Na,       Na, Na]),
        (S::Expired,        [Na,  Na,  Na,   Na,  Na, Na,   Na,  Na,    Na, Na,       Na, Na]),
        (S::Rejected,       [Na,  Na,  Na,   Na,  Na, Na,   Na,  Na,    Na, Na,       Na, Na]),
    ];

    #[test]
    fn the_table_covers_every_status_and_every_event_kind() {
        let statuses: Vec<HoldStatus> = TABLE.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, HoldStatus::ALL);
        for (i, e) in events().iter().enumerate() {
            assert!(
                column_of(e.kind()).contains(&i),
                "column {i} is not a {:?}",
                e.kind()
            );
        }
    }

    #[test]
    fn every_state_event_pair_follows_the_table_h5_h7_h8_h9_h10() {
        let cals = LibraryCalendar::open_every_day();
        for (status, row) in TABLE {
            for (event, expect) in events().iter().zip(row) {
                let h = hold(1, Branch::Ota, state_of(status));
                let got = apply(&h, event, &cals);
                let ok = match (expect, &got) {
                    (To(s), Ok(next)) => next.status() == s,
                    (
                        Na,
                        Err(TransitionError::NotApplicable {
                            status: st,
                            event: k,
                        }),
                    ) => *st == status && *k == event.kind(),
                    (NotReady, Err(TransitionError::Refused(ErrorCode::HoldNotReady))) => true,
                    (Early, Err(TransitionError::ShelfPeriodNotOver { ready_until })) => {
                        *ready_until == LAST_DAY
                    }
                    _ => false,
                };
                assert!(
                    ok,
                    "{status:?} + {event:?}: expected {expect:?}, got {got:?}"
                );
            }
        }
    }

    #[test]
    fn final_statuses_accept_no_event() {
        let cals = LibraryCalendar::open_every_day();
        for status in HoldStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for event in events() {
                assert!(apply(&hold(1, Branch::Ota, state_of(status)), &event, &cals).is_err());
            }
        }
    }

    #[test]
    fn statuses_round_trip_their_api_codes() {
        for s in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(s.code()), Some(s));
            assert_eq!(state_of(s).status(), s);
        }
        assert_eq!(HoldStatus::parse("waiting"), None);
    }

    #[test]
    fn active_final_and_item_holding_statuses_h6_h11_l4() {
        use HoldStatus::*;
        let active: Vec<_> = HoldStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [Provisional, Confirmed, InTransit, AwaitingNotice, Ready]
        );
        let holding: Vec<_> = HoldStatus::ALL
            .into_iter()
            .filter(|s| s.holds_item())
            .collect();
        assert_eq!(holding, [InTransit, AwaitingNotice, Ready]);
        for s in HoldStatus::ALL {
            assert_eq!(s.holds_item(), state_of(s).held_item().is_some(), "{s:?}");
        }
    }

    #[test]
    fn allocation_carries_the_item_to_the_shelf_or_into_transit_h7() {
        let cals = LibraryCalendar::open_every_day();
        let h = hold(1, Branch::Ota, HoldState::Confirmed);
        let shelf = HoldEvent::Allocate {
            item: barcode("OT-9"),
            route: AllocationRoute::PickupShelf,
        };
        assert_eq!(
            apply(&h, &shelf, &cals),
            Ok(HoldState::AwaitingNotice {
                item: barcode("OT-9")
            })
        );
        let transit = HoldEvent::Allocate {
            item: barcode("YA-9"),
            route: AllocationRoute::Transit,
        };
        let in_transit = apply(&h, &transit, &cals).unwrap();
        assert_eq!(
            in_transit,
            HoldState::InTransit {
                item: barcode("YA-9")
            }
        );
        let arrived = Hold {
            state: in_transit,
            ..h
        };
        assert_eq!(
            apply(&arrived, &HoldEvent::ArriveAtPickup, &cals),
            Ok(HoldState::AwaitingNotice {
                item: barcode("YA-9")
            })
        );
    }

    #[test]
    fn a_provisional_hold_gets_no_item_h5_h7() {
        let h = hold(1, Branch::Ota, HoldState::Provisional);
        let e = HoldEvent::Allocate {
            item: item(),
            route: AllocationRoute::PickupShelf,
        };
        assert_eq!(
            apply(&h, &e, &LibraryCalendar::open_every_day()),
            Err(TransitionError::NotApplicable {
                status: HoldStatus::Provisional,
                event: HoldEventKind::Allocate,
            })
        );
    }

    #[test]
    fn the_ready_mail_sets_ready_until_from_the_pickup_branch_calendar_h8_h9_b2() {
        let ota = BranchCalendar::open_every_day().with_closed_date(LAST_DAY);
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Ota, ota);
        let e = HoldEvent::MailSent { at: SENT };
        let at_ota = apply(
            &hold(1, Branch::Ota, state_of(S::AwaitingNotice)),
            &e,
            &cals,
        );
        assert_eq!(
            at_ota,
            Ok(HoldState::Ready {
                item: item(),
                mail_sent_at: SENT,
                ready_until: date!(2026 - 04 - 09),
            })
        );
        let at_kitsuki = apply(
            &hold(1, Branch::Kitsuki, state_of(S::AwaitingNotice)),
            &e,
            &cals,
        );
        assert_eq!(at_kitsuki.unwrap().ready_until(), Some(LAST_DAY));
    }

    #[test]
    fn a_pickup_branch_that_is_never_open_fails_the_mail_transition_as_internal_b2() {
        let closed = (0..7).fold(BranchCalendar::open_every_day(), |c, n| {
            c.with_closed_weekday(time::Weekday::Monday.nth_next(n))
        });
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Ota, closed);
        let got = apply(
            &hold(1, Branch::Ota, state_of(S::AwaitingNotice)),
            &HoldEvent::MailSent { at: SENT },
            &cals,
        );
        assert_eq!(got, Err(TransitionError::Refused(ErrorCode::Internal)));
        assert_eq!(got.unwrap_err().code(), ErrorCode::Internal);
    }

    #[test]
    fn a_second_ready_mail_does_not_restart_the_shelf_clock_h9() {
        let h = hold(1, Branch::Ota, state_of(S::Ready));
        let later = HoldEvent::MailSent {
            at: SENT + Duration::days(3),
        };
        let got = apply(&h, &later, &LibraryCalendar::open_every_day());
        assert!(matches!(got, Err(TransitionError::NotApplicable { .. })));
    }

    #[test]
    fn checkout_is_refused_before_the_ready_mail_h8() {
        let cals = LibraryCalendar::open_every_day();
        for status in [
            S::Provisional,
            S::Confirmed,
            S::InTransit,
            S::AwaitingNotice,
        ] {
            let got = apply(
                &hold(1, Branch::Ota, state_of(status)),
                &HoldEvent::CheckOut,
                &cals,
            );
            assert_eq!(got, Err(TransitionError::Refused(ErrorCode::HoldNotReady)));
            assert_eq!(got.unwrap_err().code(), ErrorCode::HoldNotReady);
        }
        let got = apply(
            &hold(1, Branch::Ota, state_of(S::Ready)),
            &HoldEvent::CheckOut,
            &cals,
        );
        assert_eq!(got, Ok(HoldState::Fulfilled { item: item() }));
    }

    #[test]
    fn expiry_comes_at_midnight_tokyo_after_the_last_shelf_day_not_at_one_week_exactly_h9() {
        let cals = LibraryCalendar::open_every_day();
        let h = hold(1, Branch::Ota, state_of(S::Ready));
        let at = |now| apply(&h, &HoldEvent::Expire { now }, &cals);
        let early = Err(TransitionError::ShelfPeriodNotOver {
            ready_until: LAST_DAY,
        });
        assert_eq!(at(SENT + Duration::weeks(1)), early);
        assert_eq!(at(datetime!(2026-04-08 23:59:59 +09:00)), early);
        assert_eq!(
            at(datetime!(2026-04-08 15:00 UTC)),
            Ok(HoldState::Expired { item: item() })
        );
        assert_eq!(
            at(SHELF_ENDS + Duration::days(30)),
            Ok(HoldState::Expired { item: item() })
        );
    }

    #[test]
    fn awaiting_notice_never_expires_because_the_clock_has_not_started_h9_n2() {
        let h = hold(1, Branch::Ota, state_of(S::AwaitingNotice));
        let got = apply(
            &h,
            &HoldEvent::Expire {
                now: SENT + Duration::days(365),
            },
            &LibraryCalendar::open_every_day(),
        );
        assert!(matches!(got, Err(TransitionError::NotApplicable { .. })));
    }

    #[test]
    fn cancelling_keeps_the_released_item_to_route_it_on_h10() {
        let cals = LibraryCalendar::open_every_day();
        for status in HoldStatus::ALL.into_iter().filter(|s| s.is_active()) {
            let h = hold(1, Branch::Ota, state_of(status));
            let got = apply(
                &h,
                &HoldEvent::Cancel {
                    by: CancelledBy::Staff,
                },
                &cals,
            )
            .unwrap();
            assert_eq!(
                got,
                HoldState::Cancelled {
                    by: CancelledBy::Staff,
                    item: h.state.held_item().cloned(),
                },
                "{status:?}"
            );
        }
    }

    #[test]
    fn cancelling_after_checkout_is_refused_h10() {
        let got = apply(
            &hold(1, Branch::Ota, state_of(S::Fulfilled)),
            &HoldEvent::Cancel {
                by: CancelledBy::Patron,
            },
            &LibraryCalendar::open_every_day(),
        );
        assert_eq!(
            got,
            Err(TransitionError::NotApplicable {
                status: HoldStatus::Fulfilled,
                event: HoldEventKind::Cancel,
            })
        );
    }

    #[test]
    fn rejection_keeps_the_reason_for_the_patron_h5() {
        let got = apply(
            &hold(1, Branch::Ota, HoldState::Provisional),
            &HoldEvent::Reject {
                reason: Some("重複申込".into()),
            },
            &LibraryCalendar::open_every_day(),
        );
        assert_eq!(
            got,
            Ok(HoldState::Rejected {
                reason: Some("重複申込".into()),
            })
        );
    }

    #[test]
    fn conflicts_answer_hold_state_conflict() {
        let e = TransitionError::NotApplicable {
            status: HoldStatus::Cancelled,
            event: HoldEventKind::Confirm,
        };
        assert_eq!(ErrorCode::from(e.clone()), ErrorCode::HoldStateConflict);
        assert_eq!(ErrorCode::HoldStateConflict.http_status(), 409);
        let early = TransitionError::ShelfPeriodNotOver {
            ready_until: time::macros::date!(2026 - 04 - 08),
        };
        assert_eq!(early.code(), ErrorCode::HoldStateConflict);
        assert_eq!(e.to_string(), "Confirm does not apply to a cancelled hold");
    }

    #[test]
    fn queue_order_is_placement_then_sequence_then_id_h6() {
        let a = hold(1, Branch::Ota, HoldState::Confirmed);
        let mut b = hold(2, Branch::Ota, HoldState::Confirmed);
        assert_eq!(a.queue_cmp(&b), Ordering::Less);
        b.placed_at = a.placed_at;
        b.seq = 0;
        assert_eq!(a.queue_cmp(&b), Ordering::Greater);
        b.seq = a.seq;
        assert_eq!(a.queue_cmp(&b), Ordering::Less, "h1 < h2 by id");
        assert_eq!(a.queue_cmp(&a.clone()), Ordering::Equal);
    }
}
