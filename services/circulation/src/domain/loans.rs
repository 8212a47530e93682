//! Loans: due dates (L1, B2), overdue, renewal (L2), and whether an item may be lent to this
//! patron now (L3, L4, H8).

use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, TitleId};
use time::{Date, OffsetDateTime};

use super::calendar::{LibraryCalendar, days_later_on_open_day, library_date};
use super::holds::HoldStatus;
use super::{HoldId, MaterialType};

/// Loan configuration (L1, L3). The defaults are the rules' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanPolicy {
    /// Rule L1: loan period in days, per material type.
    pub book_days: u16,
    pub magazine_days: u16,
    pub av_days: u16,
    /// Rule L3: loans per patron at a time.
    pub max_loans: usize,
}

impl Default for LoanPolicy {
    fn default() -> LoanPolicy {
        LoanPolicy {
            book_days: 14,
            magazine_days: 14,
            av_days: 14,
            max_loans: 10,
        }
    }
}

impl LoanPolicy {
    /// Rule L1: the loan period of a material type, in days.
    pub fn period_days(&self, material: MaterialType) -> u16 {
        match material {
            MaterialType::Book => self.book_days,
            MaterialType::Magazine => self.magazine_days,
            MaterialType::Av => self.av_days,
        }
    }
}

/// A current loan, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    pub barcode: Barcode,
    pub title: TitleId,
    pub material: MaterialType,
    pub patron: CardNumber,
    /// The lending branch, whose calendar moves the due date (B2).
    pub branch: Branch,
    pub checked_out_at: OffsetDateTime,
    /// Library-local date; the loan is due by the end of that day.
    pub due_date: Date,
    /// Rule L2: renewed once already.
    pub renewed: bool,
}

/// Rules L1, B2: the due date of a loan made at `lending` at instant `at`: the library-local
/// date of the checkout plus the loan period of the material type, moved to the lending
/// branch's next open day.
pub fn due_date(
    policy: &LoanPolicy,
    calendars: &LibraryCalendar,
    lending: Branch,
    material: MaterialType,
    at: OffsetDateTime,
) -> Result<Date, ErrorCode> {
    days_later_on_open_day(
        calendars.branch(lending),
        library_date(at),
        policy.period_days(material),
    )
}

/// A loan is overdue when the library-local date of `now` is after its due date: on the due
/// date itself it is not.
pub fn is_overdue(due_date: Date, now: OffsetDateTime) -> bool {
    library_date(now) > due_date
}

/// Rules H2, L2: whether any of the patron's current loans is overdue.
pub fn has_overdue_loan(loans: &[Loan], now: OffsetDateTime) -> bool {
    loans.iter().any(|l| is_overdue(l.due_date, now))
}

/// Rule L2: whether a hold "waits on the title" and so blocks renewing a loan of it.
/// Decision: every active hold waits, provisional and already-allocated ones included (a hold
/// waits until it is fulfilled, cancelled, expired or rejected). A provisional hold is
/// usually confirmed within moments, and a renewal granted in that gap would make its patron
/// wait two more weeks; a hold that already has a copy may still expire or be cancelled and
/// need another.
pub fn hold_waits(status: HoldStatus) -> bool {
    status.is_active()
}

/// Rule L2: why `loan` cannot be renewed now, if it cannot. `patron_loans` are the patron's
/// current loans (this one may be among them); `holds_on_title` the statuses of every hold on
/// the loan's title. The first failing reason, in this order: already renewed
/// (`renewal_already_renewed`), this loan overdue (`renewal_overdue_loan`), another loan of the
/// patron overdue (`renewal_patron_overdue`), a hold waiting (`renewal_has_holds`).
pub fn renewal_block(
    loan: &Loan,
    patron_loans: &[Loan],
    holds_on_title: &[HoldStatus],
    now: OffsetDateTime,
) -> Option<ErrorCode> {
    if loan.renewed {
        Some(ErrorCode::RenewalAlreadyRenewed)
    } else if is_overdue(loan.due_date, now) {
        Some(ErrorCode::RenewalOverdueLoan)
    } else if has_overdue_loan(patron_loans, now) {
        Some(ErrorCode::RenewalPatronOverdue)
    } else if holds_on_title.iter().any(|s| hold_waits(*s)) {
        Some(ErrorCode::RenewalHasHolds)
    } else {
        None
    }
}

/// Rules L2, L1, B2: the new due date of `loan` renewed at `now` (on the web, by phone or at a
/// counter, all alike): the library-local renewal date plus the loan period, moved to the
/// lending branch's next open day. Decision: the lending branch's calendar applies wherever
/// the renewal is made, as for the first due date.
pub fn renew(
    policy: &LoanPolicy,
    calendars: &LibraryCalendar,
    loan: &Loan,
    patron_loans: &[Loan],
    holds_on_title: &[HoldStatus],
    now: OffsetDateTime,
) -> Result<Date, ErrorCode> {
    if let Some(code) = renewal_block(loan, patron_loans, holds_on_title, now) {
        return Err(code);
    }
    due_date(policy, calendars, loan.branch, loan.material, now)
}

/// What a loan listing shows (API.md `overdue`, `renewable`, `renew_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanStanding {
    pub overdue: bool,
    pub renewable: bool,
    pub renew_block: Option<ErrorCode>,
}

/// The listing view of [`renewal_block`]: the same decision the renewal makes.
pub fn loan_standing(
    loan: &Loan,
    patron_loans: &[Loan],
    holds_on_title: &[HoldStatus],
    now: OffsetDateTime,
) -> LoanStanding {
    let block = renewal_block(loan, patron_loans, holds_on_title, now);
    LoanStanding {
        overdue: is_overdue(loan.due_date, now),
        renewable: block.is_none(),
        renew_block: block,
    }
}

/// The hold an item is allocated to, for the checkout decision (L4, H8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFor {
    pub hold_id: HoldId,
    pub patron: CardNumber,
    pub status: HoldStatus,
}

/// A checkout the rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub due_date: Date,
    /// The patron's ready hold this checkout fulfils (apply `CheckOut` to it).
    pub fulfils: Option<HoldId>,
}

/// A checkout asked for at a desk (or a self-check kiosk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutRequest<'a> {
    /// The lending branch, whose calendar moves the due date (B2).
    pub lending: Branch,
    pub material: MaterialType,
    pub patron: &'a CardNumber,
    /// The number of the patron's current loans (L3).
    pub current_loans: usize,
    /// The hold the item is allocated to, if any (L4, H8).
    pub held_for: Option<&'a HeldFor>,
    pub at: OffsetDateTime,
}

/// Rules L3, L4, H8, L1: may the item be lent now, and until when. The first failing reason,
/// in this order: the item holds a hold for another patron (`item_held_for_other`, L4); it
/// holds the patron's own hold whose ready mail has not been sent (`hold_not_ready`, H8); the
/// patron is at the loan limit (`loan_limit`, L3). An allocation whose hold holds no item any
/// more is stale and ignored.
pub fn checkout(
    policy: &LoanPolicy,
    calendars: &LibraryCalendar,
    request: &CheckoutRequest<'_>,
) -> Result<Checkout, ErrorCode> {
    let held_for = request.held_for.filter(|h| h.status.holds_item());
    let mut fulfils = None;
    if let Some(h) = held_for {
        if &h.patron != request.patron {
            // rule L4: an item that holds a hold for one patron cannot be lent to another
            return Err(ErrorCode::ItemHeldForOther);
        }
        if h.status != HoldStatus::Ready {
            // rule H8: lent only after the ready mail was sent
            return Err(ErrorCode::HoldNotReady);
        }
        fulfils = Some(h.hold_id.clone());
    }
    if request.current_loans >= policy.max_loans {
        // rule L3
        return Err(ErrorCode::LoanLimit);
    }
    Ok(Checkout {
        due_date: due_date(
            policy,
            calendars,
            request.lending,
            request.material,
            request.at,
        )?,
        fulfils,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::BranchCalendar;
    use crate::domain::test_support::{card, hold_id, loan};
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-04-10 12:00 +09:00);

    fn current(due: Date) -> Loan {
        loan(1, 1, due, datetime!(2026-04-01 10:00 +09:00))
    }

    #[test]
    fn loan_period_is_14_days_for_every_type_by_default_l1() {
        let p = LoanPolicy::default();
        let cals = LibraryCalendar::open_every_day();
        for m in MaterialType::ALL {
            assert_eq!(p.period_days(m), 14);
            assert_eq!(
                due_date(
                    &p,
                    &cals,
                    Branch::Ota,
                    m,
                    datetime!(2026-04-01 10:00 +09:00)
                ),
                Ok(date!(2026 - 04 - 15))
            );
        }
    }

    #[test]
    fn loan_period_is_configured_per_material_type_l1() {
        let p = LoanPolicy {
            av_days: 7,
            magazine_days: 10,
            ..LoanPolicy::default()
        };
        let cals = LibraryCalendar::open_every_day();
        let at = datetime!(2026-04-01 10:00 +09:00);
        assert_eq!(
            due_date(&p, &cals, Branch::Ota, MaterialType::Av, at),
            Ok(date!(2026 - 04 - 08))
        );
        assert_eq!(
            due_date(&p, &cals, Branch::Ota, MaterialType::Magazine, at),
            Ok(date!(2026 - 04 - 11))
        );
        assert_eq!(
            due_date(&p, &cals, Branch::Ota, MaterialType::Book, at),
            Ok(date!(2026 - 04 - 15))
        );
    }

    #[test]
    fn due_date_counts_from_the_library_date_of_the_checkout_l1() {
        let cals = LibraryCalendar::open_every_day();
        let p = LoanPolicy::default();
        // 00:30 in Tokyo on 2 April is still 1 April in UTC.
        let at = datetime!(2026-04-01 15:30 UTC);
        assert_eq!(
            due_date(&p, &cals, Branch::Ota, MaterialType::Book, at),
            Ok(date!(2026 - 04 - 16))
        );
    }

    #[test]
    fn due_date_on_a_closed_day_of_the_lending_branch_moves_to_its_next_open_day_b2() {
        let ota = BranchCalendar::open_every_day().with_closed_weekday(time::Weekday::Wednesday);
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Ota, ota);
        let p = LoanPolicy::default();
        // 2026-04-15 is a Wednesday.
        let at = datetime!(2026-04-01 10:00 +09:00);
        assert_eq!(
            due_date(&p, &cals, Branch::Ota, MaterialType::Book, at),
            Ok(date!(2026 - 04 - 16))
        );
        assert_eq!(
            due_date(&p, &cals, Branch::Kitsuki, MaterialType::Book, at),
            Ok(date!(2026 - 04 - 15))
        );
    }

    #[test]
    fn due_date_in_the_new_year_closing_moves_past_the_whole_run_b2() {
        let cal = BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 12 - 29), date!(2027 - 01 - 03))
            .with_closed_weekday(time::Weekday::Monday);
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Kitsuki, cal);
        let at = datetime!(2026-12-17 10:00 +09:00);
        assert_eq!(
            due_date(
                &LoanPolicy::default(),
                &cals,
                Branch::Kitsuki,
                MaterialType::Book,
                at
            ),
            Ok(date!(2027 - 01 - 05))
        );
    }

    #[test]
    fn a_loan_is_not_overdue_on_its_due_date_and_is_the_day_after() {
        let due = date!(2026 - 04 - 15);
        assert!(!is_overdue(due, datetime!(2026-04-15 00:00 +09:00)));
        assert!(!is_overdue(
            due,
            datetime!(2026-04-15 23:59:59.999999999 +09:00)
        ));
        assert!(is_overdue(due, datetime!(2026-04-16 00:00 +09:00)));
        // The same instants in UTC: 15:00 UTC on the 15th is already the 16th in Tokyo.
        assert!(!is_overdue(due, datetime!(2026-04-15 14:59:59 UTC)));
        assert!(is_overdue(due, datetime!(2026-04-15 15:00 UTC)));
    }

    #[test]
    fn renewal_gives_the_renewal_date_plus_the_loan_period_l2() {
        let l = current(date!(2026 - 04 - 15));
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            std::slice::from_ref(&l),
            &[],
            NOW,
        );
        assert_eq!(got, Ok(date!(2026 - 04 - 24)));
    }

    #[test]
    fn renewal_on_the_due_date_itself_is_allowed_l2() {
        let l = current(date!(2026 - 04 - 10));
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            &[],
            &[],
            NOW,
        );
        assert_eq!(got, Ok(date!(2026 - 04 - 24)));
    }

    #[test]
    fn renewed_due_date_on_a_closed_day_of_the_lending_branch_moves_b2_l2() {
        let l = current(date!(2026 - 04 - 15)); // lent at Kitsuki
        let kitsuki = BranchCalendar::open_every_day().with_closed_date(date!(2026 - 04 - 24));
        let ota = BranchCalendar::open_every_day().with_closed_date(date!(2026 - 04 - 25));
        let cals = LibraryCalendar::open_every_day()
            .with_branch(Branch::Kitsuki, kitsuki)
            .with_branch(Branch::Ota, ota);
        let got = renew(&LoanPolicy::default(), &cals, &l, &[], &[], NOW);
        assert_eq!(got, Ok(date!(2026 - 04 - 25)));
    }

    #[test]
    fn renewal_uses_the_period_of_the_material_type_l1_l2() {
        let mut l = current(date!(2026 - 04 - 15));
        l.material = MaterialType::Av;
        let p = LoanPolicy {
            av_days: 7,
            ..LoanPolicy::default()
        };
        let got = renew(&p, &LibraryCalendar::open_every_day(), &l, &[], &[], NOW);
        assert_eq!(got, Ok(date!(2026 - 04 - 17)));
    }

    #[test]
    fn renewal_refused_when_already_renewed_once_l2() {
        let mut l = current(date!(2026 - 04 - 15));
        l.renewed = true;
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            &[],
            &[],
            NOW,
        );
        assert_eq!(got, Err(ErrorCode::RenewalAlreadyRenewed));
    }

    #[test]
    fn renewal_refused_when_the_loan_is_overdue_l2() {
        let l = current(date!(2026 - 04 - 09));
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            std::slice::from_ref(&l),
            &[],
            NOW,
        );
        assert_eq!(got, Err(ErrorCode::RenewalOverdueLoan));
    }

    #[test]
    fn renewal_refused_when_the_patron_has_another_overdue_loan_l2() {
        let l = current(date!(2026 - 04 - 15));
        let other = loan(
            1,
            2,
            date!(2026 - 04 - 09),
            datetime!(2026-03-26 10:00 +09:00),
        );
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            &[l.clone(), other],
            &[],
            NOW,
        );
        assert_eq!(got, Err(ErrorCode::RenewalPatronOverdue));
    }

    #[test]
    fn renewal_refused_when_a_hold_waits_on_the_title_l2() {
        let l = current(date!(2026 - 04 - 15));
        for status in HoldStatus::ALL.into_iter().filter(|s| s.is_active()) {
            let got = renew(
                &LoanPolicy::default(),
                &LibraryCalendar::open_every_day(),
                &l,
                &[],
                &[status],
                NOW,
            );
            assert_eq!(got, Err(ErrorCode::RenewalHasHolds), "{status:?}");
        }
    }

    #[test]
    fn finished_holds_do_not_block_renewal_l2() {
        let l = current(date!(2026 - 04 - 15));
        let finished: Vec<HoldStatus> = HoldStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finished.len(), 4);
        let got = renew(
            &LoanPolicy::default(),
            &LibraryCalendar::open_every_day(),
            &l,
            &[],
            &finished,
            NOW,
        );
        assert_eq!(got, Ok(date!(2026 - 04 - 24)));
    }

    #[test]
    fn renewal_reasons_come_in_their_documented_order_l2() {
        let mut l = current(date!(2026 - 04 - 09));
        l.renewed = true;
        let other = loan(
            1,
            2,
            date!(2026 - 04 - 01),
            datetime!(2026-03-18 10:00 +09:00),
        );
        let all = [l.clone(), other.clone()];
        let holds = [HoldStatus::Confirmed];
        assert_eq!(
            renewal_block(&l, &all, &holds, NOW),
            Some(ErrorCode::RenewalAlreadyRenewed)
        );
        l.renewed = false;
        assert_eq!(
            renewal_block(&l, &all, &holds, NOW),
            Some(ErrorCode::RenewalOverdueLoan)
        );
        l.due_date = date!(2026 - 04 - 15);
        assert_eq!(
            renewal_block(&l, &[l.clone(), other], &holds, NOW),
            Some(ErrorCode::RenewalPatronOverdue)
        );
        assert_eq!(
            renewal_block(&l, std::slice::from_ref(&l), &holds, NOW),
            Some(ErrorCode::RenewalHasHolds)
        );
        assert_eq!(renewal_block(&l, std::slice::from_ref(&l), &[], NOW), None);
    }

    #[test]
    fn the_listing_says_renewable_and_why_not_l2() {
        let l = current(date!(2026 - 04 - 15));
        assert_eq!(
            loan_standing(&l, &[], &[], NOW),
            LoanStanding {
                overdue: false,
                renewable: true,
                renew_block: None
            }
        );
        assert_eq!(
            loan_standing(&l, &[], &[HoldStatus::Provisional], NOW),
            LoanStanding {
                overdue: false,
                renewable: false,
                renew_block: Some(ErrorCode::RenewalHasHolds)
            }
        );
        let late = current(date!(2026 - 04 - 09));
        assert_eq!(
            loan_standing(&late, &[], &[], NOW),
            LoanStanding {
                overdue: true,
                renewable: false,
                renew_block: Some(ErrorCode::RenewalOverdueLoan)
            }
        );
    }

    fn held_for(patron: u32, status: HoldStatus) -> HeldFor {
        HeldFor {
            hold_id: hold_id(7),
            patron: card(patron),
            status,
        }
    }

    fn request<'a>(
        patron: &'a CardNumber,
        current_loans: usize,
        held_for: Option<&'a HeldFor>,
    ) -> CheckoutRequest<'a> {
        CheckoutRequest {
            lending: Branch::Ota,
            material: MaterialType::Book,
            patron,
            current_loans,
            held_for,
            at: datetime!(2026-04-01 10:00 +09:00),
        }
    }

    fn lend(current_loans: usize, held: Option<&HeldFor>) -> Result<Checkout, ErrorCode> {
        let patron = card(1);
        let cals = LibraryCalendar::open_every_day();
        checkout(
            &LoanPolicy::default(),
            &cals,
            &request(&patron, current_loans, held),
        )
    }

    #[test]
    fn checkout_of_a_free_item_gives_the_due_date_l1() {
        assert_eq!(
            lend(0, None),
            Ok(Checkout {
                due_date: date!(2026 - 04 - 15),
                fulfils: None
            })
        );
    }

    #[test]
    fn checkout_due_date_follows_the_lending_branch_calendar_l1_b2() {
        let ota = BranchCalendar::open_every_day().with_closed_date(date!(2026 - 04 - 15));
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Ota, ota);
        let patron = card(1);
        let got = checkout(&LoanPolicy::default(), &cals, &request(&patron, 0, None));
        assert_eq!(got.map(|c| c.due_date), Ok(date!(2026 - 04 - 16)));
    }

    #[test]
    fn checkout_refused_at_the_loan_limit_of_10_l3() {
        assert!(lend(9, None).is_ok());
        assert_eq!(lend(10, None), Err(ErrorCode::LoanLimit));
        assert_eq!(lend(11, None), Err(ErrorCode::LoanLimit));
    }

    #[test]
    fn the_loan_limit_is_configuration_l3() {
        let p = LoanPolicy {
            max_loans: 3,
            ..LoanPolicy::default()
        };
        let cals = LibraryCalendar::open_every_day();
        let c = card(1);
        assert!(checkout(&p, &cals, &request(&c, 2, None)).is_ok());
        assert_eq!(
            checkout(&p, &cals, &request(&c, 3, None)),
            Err(ErrorCode::LoanLimit)
        );
    }

    #[test]
    fn an_item_held_for_another_patron_cannot_be_lent_l4() {
        for status in [
            HoldStatus::InTransit,
            HoldStatus::AwaitingNotice,
            HoldStatus::Ready,
        ] {
            assert_eq!(
                lend(0, Some(&held_for(2, status))),
                Err(ErrorCode::ItemHeldForOther),
                "{status:?}"
            );
        }
    }

    #[test]
    fn item_held_for_other_comes_before_the_loan_limit_l4_l3() {
        assert_eq!(
            lend(10, Some(&held_for(2, HoldStatus::Ready))),
            Err(ErrorCode::ItemHeldForOther)
        );
    }

    #[test]
    fn the_patrons_own_hold_is_lent_only_once_ready_h8() {
        for status in [HoldStatus::InTransit, HoldStatus::AwaitingNotice] {
            assert_eq!(
                lend(0, Some(&held_for(1, status))),
                Err(ErrorCode::HoldNotReady),
                "{status:?}"
            );
        }
        assert_eq!(
            lend(0, Some(&held_for(1, HoldStatus::Ready))),
            Ok(Checkout {
                due_date: date!(2026 - 04 - 15),
                fulfils: Some(hold_id(7))
            })
        );
    }

    #[test]
    fn a_ready_hold_still_counts_against_the_loan_limit_l3() {
        assert_eq!(
            lend(10, Some(&held_for(1, HoldStatus::Ready))),
            Err(ErrorCode::LoanLimit)
        );
    }

    #[test]
    fn a_stale_allocation_does_not_block_checkout_l4() {
        for status in HoldStatus::ALL.into_iter().filter(|s| !s.holds_item()) {
            assert_eq!(
                lend(0, Some(&held_for(2, status))).map(|c| c.fulfils),
                Ok(None),
                "{status:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn renewal_never_shortens_a_loan_l2_b2(
            closed in proptest::collection::btree_set(0i64..60, 0..40),
            lent_at in 0i64..20,
            renewed_after in 0i64..14,
        ) {
            let base = date!(2026 - 04 - 01);
            let cal = BranchCalendar::open_every_day()
                .with_closed_dates(closed.into_iter().map(|o| base + Duration::days(o)));
            let cals = LibraryCalendar::open_every_day().with_branch(Branch::Kitsuki, cal);
            let p = LoanPolicy::default();
            let out = datetime!(2026-04-01 10:00 +09:00) + Duration::days(lent_at);
            let due = due_date(&p, &cals, Branch::Kitsuki, MaterialType::Book, out).unwrap();
            let l = Loan { due_date: due, checked_out_at: out, ..current(due) };
            let now = out + Duration::days(renewed_after);
            prop_assume!(!is_overdue(due, now));
            let new_due = renew(&p, &cals, &l, &[], &[], now).unwrap();
            prop_assert!(new_due >= due);
            prop_assert!(new_due >= library_date(now) + Duration::days(14));
            prop_assert!(cals.branch(Branch::Kitsuki).is_open(new_due));
        }
    }
}
