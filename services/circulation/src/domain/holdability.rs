//! May this patron place a hold on this title (rules H1–H3, H11), on the web or at a branch
//! counter (S1), and what state does a new hold start in (H5)?

use kitsuki_proto::{Branch, ErrorCode, TitleId};
use time::OffsetDateTime;

use super::MaterialType;
use super::holds::{ConfirmedBy, Hold, HoldEvent, HoldState};
use super::loans::{Loan, has_overdue_loan};

/// Hold configuration (H5, H11). The defaults are the rules' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldPolicy {
    /// Rule H11: active holds per patron.
    pub max_active_holds: usize,
    /// Rule H5: web holds are confirmed automatically when the checks pass; `false` leaves
    /// them provisional for staff review.
    pub auto_confirm: bool,
}

impl Default for HoldPolicy {
    fn default() -> HoldPolicy {
        HoldPolicy {
            max_active_holds: 10,
            auto_confirm: true,
        }
    }
}

/// Where a hold is placed: by the patron on the web, or by staff at a branch counter (S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOrigin {
    Web,
    Counter { branch: Branch },
}

/// What the rules need to know of a title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleFacts {
    pub title: TitleId,
    pub material: MaterialType,
    /// Copies (items) of the title in the three branches.
    pub copies: usize,
    /// Copies on an open shelf now (status `available`); copies on loan, in transit or on a
    /// hold shelf are off the shelf.
    pub copies_on_shelf: usize,
}

/// What the rules need to know of the patron placing the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatronFacts<'a> {
    /// Rule H3: a verified email address is in force.
    pub email_verified: bool,
    /// The patron's current loans (H2).
    pub loans: &'a [Loan],
    /// The patron's holds, finished ones included or not (H11 counts the active ones).
    pub holds: &'a [Hold],
}

/// Rule H1 alone, for a title listing without a patron (API.md `holdable`, `hold_block`): the
/// first failing reason of the title checks in the order of [`hold_block`].
pub fn title_hold_block(origin: HoldOrigin, title: &TitleFacts) -> Option<ErrorCode> {
    let web = origin == HoldOrigin::Web;
    if web && title.material != MaterialType::Book {
        // rule H1: books only on the web
        Some(ErrorCode::HoldMaterialType)
    } else if title.copies == 0 {
        // rule H1: held by one of the three branches
        Some(ErrorCode::HoldNotHeldHere)
    } else if web && title.copies_on_shelf > 0 {
        // rule H1: only when no copy is on a shelf now
        Some(ErrorCode::HoldAvailableCopy)
    } else {
        None
    }
}

/// Rules H1–H3, H11, S1: why this patron cannot hold this title now, if they cannot. The first
/// failing reason, in this order (title first, since a title's reason is the same for every
/// patron and is what the listing shows; then the patron's):
///
/// 1. `hold_material_type` (H1, web only)
/// 2. `hold_not_held_here` (H1)
/// 3. `hold_available_copy` (H1, web only)
/// 4. `email_not_verified` (H3)
/// 5. `hold_overdue_block` (H2, web only)
/// 6. `hold_duplicate` (H11: one active hold per patron per title)
/// 7. `hold_limit` (H11: at most `max_active_holds` active holds)
///
/// Decision, counter holds (S1): staff may hold any material type and titles with a copy on
/// a shelf (which then appear on the pull list), and H2 binds web holds only, as written; a
/// counter hold still needs a copy in the library, one hold per title and the limit (H11),
/// and a verified email address, because the ready mail is the only notice and an item is
/// lent only after it (H3, H8): without an address the hold could never be collected.
/// "Logged in" (H3) is the shell's check.
pub fn hold_block(
    policy: &HoldPolicy,
    origin: HoldOrigin,
    title: &TitleFacts,
    patron: &PatronFacts<'_>,
    now: OffsetDateTime,
) -> Option<ErrorCode> {
    if let Some(code) = title_hold_block(origin, title) {
        return Some(code);
    }
    let active: Vec<&Hold> = patron
        .holds
        .iter()
        .filter(|h| h.status().is_active())
        .collect();
    if !patron.email_verified {
        Some(ErrorCode::EmailNotVerified)
    } else if origin == HoldOrigin::Web && has_overdue_loan(patron.loans, now) {
        Some(ErrorCode::HoldOverdueBlock)
    } else if active.iter().any(|h| h.title == title.title) {
        Some(ErrorCode::HoldDuplicate)
    } else if active.len() >= policy.max_active_holds {
        Some(ErrorCode::HoldLimit)
    } else {
        None
    }
}

/// [`hold_block`] as a result, for placing the hold.
pub fn check_hold(
    policy: &HoldPolicy,
    origin: HoldOrigin,
    title: &TitleFacts,
    patron: &PatronFacts<'_>,
    now: OffsetDateTime,
) -> Result<(), ErrorCode> {
    match hold_block(policy, origin, title, patron, now) {
        Some(code) => Err(code),
        None => Ok(()),
    }
}

/// Rule H5: the state a new hold starts in. A web hold starts provisional. Decision: a counter
/// hold starts confirmed; the staff member placing it is the review H5 asks for.
pub fn initial_state(origin: HoldOrigin) -> HoldState {
    match origin {
        HoldOrigin::Web => HoldState::Provisional,
        HoldOrigin::Counter { .. } => HoldState::Confirmed,
    }
}

/// Rule H5: the event to apply right after placing a hold, when confirmation is automatic. The
/// checks of confirmation are those of placement, which have just passed.
pub fn auto_confirmation(policy: &HoldPolicy, origin: HoldOrigin) -> Option<HoldEvent> {
    (origin == HoldOrigin::Web && policy.auto_confirm).then_some(HoldEvent::Confirm {
        by: ConfirmedBy::Auto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::holds::{CancelledBy, HoldStatus};
    use crate::domain::test_support::{barcode, hold, loan, title};
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-04-10 12:00 +09:00);
    const COUNTER: HoldOrigin = HoldOrigin::Counter {
        branch: Branch::Yamaga,
    };

    /// A book held by the library, every copy on loan: holdable on the web.
    fn all_out() -> TitleFacts {
        TitleFacts {
            title: title(1),
            material: MaterialType::Book,
            copies: 2,
            copies_on_shelf: 0,
        }
    }

    fn good_patron() -> PatronFacts<'static> {
        PatronFacts {
            email_verified: true,
            loans: &[],
            holds: &[],
        }
    }

    /// `n` active holds on titles other than title 1.
    fn holds_on_other_titles(n: u32) -> Vec<Hold> {
        (0..n)
            .map(|i| Hold {
                title: title(100 + i),
                ..hold(i, Branch::Ota, HoldState::Confirmed)
            })
            .collect()
    }

    fn block(origin: HoldOrigin, t: &TitleFacts, p: &PatronFacts<'_>) -> Option<ErrorCode> {
        hold_block(&HoldPolicy::default(), origin, t, p, NOW)
    }

    #[test]
    fn a_book_with_every_copy_out_is_holdable_on_the_web_h1() {
        assert_eq!(block(HoldOrigin::Web, &all_out(), &good_patron()), None);
        assert_eq!(
            check_hold(
                &HoldPolicy::default(),
                HoldOrigin::Web,
                &all_out(),
                &good_patron(),
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn web_holds_are_for_books_only_h1() {
        for m in [MaterialType::Magazine, MaterialType::Av] {
            let t = TitleFacts {
                material: m,
                ..all_out()
            };
            assert_eq!(
                block(HoldOrigin::Web, &t, &good_patron()),
                Some(ErrorCode::HoldMaterialType)
            );
        }
    }

    #[test]
    fn a_title_no_branch_holds_cannot_be_held_h1() {
        let t = TitleFacts {
            copies: 0,
            ..all_out()
        };
        assert_eq!(
            block(HoldOrigin::Web, &t, &good_patron()),
            Some(ErrorCode::HoldNotHeldHere)
        );
        assert_eq!(
            block(COUNTER, &t, &good_patron()),
            Some(ErrorCode::HoldNotHeldHere)
        );
    }

    #[test]
    fn a_title_with_a_copy_on_a_shelf_cannot_be_held_on_the_web_h1() {
        let t = TitleFacts {
            copies_on_shelf: 1,
            ..all_out()
        };
        assert_eq!(
            block(HoldOrigin::Web, &t, &good_patron()),
            Some(ErrorCode::HoldAvailableCopy)
        );
    }

    #[test]
    fn a_patron_without_a_verified_email_cannot_hold_h3() {
        let p = PatronFacts {
            email_verified: false,
            ..good_patron()
        };
        assert_eq!(
            block(HoldOrigin::Web, &all_out(), &p),
            Some(ErrorCode::EmailNotVerified)
        );
    }

    #[test]
    fn a_patron_with_an_overdue_loan_cannot_hold_on_the_web_h2() {
        let loans = [loan(
            1,
            9,
            date!(2026 - 04 - 09),
            datetime!(2026-03-26 10:00 +09:00),
        )];
        let p = PatronFacts {
            loans: &loans,
            ..good_patron()
        };
        assert_eq!(
            block(HoldOrigin::Web, &all_out(), &p),
            Some(ErrorCode::HoldOverdueBlock)
        );
    }

    #[test]
    fn a_loan_due_today_does_not_block_a_hold_h2() {
        let loans = [loan(
            1,
            9,
            date!(2026 - 04 - 10),
            datetime!(2026-03-27 10:00 +09:00),
        )];
        let p = PatronFacts {
            loans: &loans,
            ..good_patron()
        };
        assert_eq!(block(HoldOrigin::Web, &all_out(), &p), None);
    }

    #[test]
    fn one_active_hold_per_patron_per_title_h11() {
        let holds = [hold(1, Branch::Ota, HoldState::Provisional)];
        let p = PatronFacts {
            holds: &holds,
            ..good_patron()
        };
        assert_eq!(
            block(HoldOrigin::Web, &all_out(), &p),
            Some(ErrorCode::HoldDuplicate)
        );
        assert_eq!(
            block(COUNTER, &all_out(), &p),
            Some(ErrorCode::HoldDuplicate)
        );
    }

    #[test]
    fn a_finished_hold_on_the_title_does_not_count_as_a_duplicate_h11() {
        let holds = [
            hold(
                1,
                Branch::Ota,
                HoldState::Expired {
                    item: barcode("KT-1"),
                },
            ),
            hold(
                2,
                Branch::Ota,
                HoldState::Cancelled {
                    by: CancelledBy::Patron,
                    item: None,
                },
            ),
            hold(
                3,
                Branch::Ota,
                HoldState::Fulfilled {
                    item: barcode("KT-1"),
                },
            ),
            hold(4, Branch::Ota, HoldState::Rejected { reason: None }),
        ];
        let p = PatronFacts {
            holds: &holds,
            ..good_patron()
        };
        assert_eq!(block(HoldOrigin::Web, &all_out(), &p), None);
    }

    #[test]
    fn at_most_10_active_holds_h11() {
        let nine = holds_on_other_titles(9);
        let p = PatronFacts {
            holds: &nine,
            ..good_patron()
        };
        assert_eq!(block(HoldOrigin::Web, &all_out(), &p), None);
        let ten = holds_on_other_titles(10);
        let p = PatronFacts {
            holds: &ten,
            ..good_patron()
        };
        assert_eq!(
            block(HoldOrigin::Web, &all_out(), &p),
            Some(ErrorCode::HoldLimit)
        );
        assert_eq!(block(COUNTER, &all_out(), &p), Some(ErrorCode::HoldLimit));
    }

    #[test]
    fn finished_holds_do_not_count_towards_the_limit_h11() {
        let mut holds = holds_on_other_titles(10);
        holds[0].state = HoldState::Fulfilled {
            item: barcode("KT-1"),
        };
        let p = PatronFacts {
            holds: &holds,
            ..good_patron()
        };
        assert_eq!(block(HoldOrigin::Web, &all_out(), &p), None);
    }

    #[test]
    fn the_hold_limit_is_configuration_h11() {
        let holds = holds_on_other_titles(3);
        let p = PatronFacts {
            holds: &holds,
            ..good_patron()
        };
        let policy = HoldPolicy {
            max_active_holds: 3,
            ..HoldPolicy::default()
        };
        assert_eq!(
            hold_block(&policy, HoldOrigin::Web, &all_out(), &p, NOW),
            Some(ErrorCode::HoldLimit)
        );
        assert_eq!(
            check_hold(&policy, HoldOrigin::Web, &all_out(), &p, NOW),
            Err(ErrorCode::HoldLimit)
        );
    }

    #[test]
    fn web_reasons_come_in_their_documented_order_h1_h2_h3_h11() {
        // Everything wrong at once, then fixed one at a time.
        let mut t = TitleFacts {
            material: MaterialType::Av,
            copies: 0,
            copies_on_shelf: 0,
            ..all_out()
        };
        let loans = [loan(
            1,
            9,
            date!(2026 - 04 - 01),
            datetime!(2026-03-18 10:00 +09:00),
        )];
        let mut holds = holds_on_other_titles(10);
        holds[9].title = title(1);
        let mut p = PatronFacts {
            email_verified: false,
            loans: &loans,
            holds: &holds,
        };
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::HoldMaterialType)
        );
        t.material = MaterialType::Book;
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::HoldNotHeldHere)
        );
        t.copies = 3;
        t.copies_on_shelf = 1;
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::HoldAvailableCopy)
        );
        t.copies_on_shelf = 0;
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::EmailNotVerified)
        );
        p.email_verified = true;
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::HoldOverdueBlock)
        );
        p.loans = &[];
        assert_eq!(
            block(HoldOrigin::Web, &t, &p),
            Some(ErrorCode::HoldDuplicate)
        );
        let ten_others = holds_on_other_titles(10);
        p.holds = &ten_others;
        assert_eq!(block(HoldOrigin::Web, &t, &p), Some(ErrorCode::HoldLimit));
        p.holds = &ten_others[..9];
        assert_eq!(block(HoldOrigin::Web, &t, &p), None);
    }

    #[test]
    fn counter_holds_skip_the_material_type_and_available_copy_checks_s1() {
        let t = TitleFacts {
            material: MaterialType::Magazine,
            copies_on_shelf: 2,
            ..all_out()
        };
        assert_eq!(block(COUNTER, &t, &good_patron()), None);
        assert_eq!(title_hold_block(COUNTER, &t), None);
        assert_eq!(
            title_hold_block(HoldOrigin::Web, &t),
            Some(ErrorCode::HoldMaterialType)
        );
    }

    #[test]
    fn counter_holds_skip_the_web_only_overdue_block_s1_h2() {
        let loans = [loan(
            1,
            9,
            date!(2026 - 04 - 01),
            datetime!(2026-03-18 10:00 +09:00),
        )];
        let p = PatronFacts {
            loans: &loans,
            ..good_patron()
        };
        assert_eq!(block(COUNTER, &all_out(), &p), None);
    }

    #[test]
    fn counter_holds_still_need_a_verified_email_for_the_ready_mail_s1_h3_h8() {
        let p = PatronFacts {
            email_verified: false,
            ..good_patron()
        };
        assert_eq!(
            block(COUNTER, &all_out(), &p),
            Some(ErrorCode::EmailNotVerified)
        );
    }

    #[test]
    fn web_holds_start_provisional_and_counter_holds_confirmed_h5_s1() {
        assert_eq!(
            initial_state(HoldOrigin::Web).status(),
            HoldStatus::Provisional
        );
        assert_eq!(initial_state(COUNTER).status(), HoldStatus::Confirmed);
    }

    #[test]
    fn web_holds_are_confirmed_automatically_unless_staff_review_is_configured_h5() {
        let auto = HoldPolicy::default();
        assert_eq!(
            auto_confirmation(&auto, HoldOrigin::Web),
            Some(HoldEvent::Confirm {
                by: ConfirmedBy::Auto
            })
        );
        let review = HoldPolicy {
            auto_confirm: false,
            ..auto
        };
        assert_eq!(auto_confirmation(&review, HoldOrigin::Web), None);
        assert_eq!(auto_confirmation(&auto, COUNTER), None);
    }
}
