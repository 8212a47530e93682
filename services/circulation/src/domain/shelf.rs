//! The hold shelf (rules H8, H9, S1): how long a ready item waits for its patron, when the
//! hold expires, and the lists a branch desk works from (its hold shelf, the holds due to
//! expire, the pull list).

use kitsuki_proto::{Branch, ErrorCode};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::calendar::{LIBRARY_OFFSET, LibraryCalendar, days_later_on_open_day, library_date};
use super::holds::{Hold, HoldState, HoldStatus};
use super::queue::TitleQueue;

/// Rule H9: the hold-shelf period is one week from the sending of the ready mail.
pub const HOLD_SHELF_DAYS: u16 = 7;

/// Rule H9 with B2: the last day an item waits on the hold shelf is the library-local date
/// on which the ready mail was sent plus seven days, moved to the pickup branch's next open
/// day. Decision: the period runs to the end of that day (Asia/Tokyo), so the patron always
/// has at least a full week: a mail sent at 10:00 on 1 April keeps the item until 23:59 on
/// 8 April, not until 10:00.
pub fn shelf_last_day(
    calendars: &LibraryCalendar,
    pickup: Branch,
    mail_sent_at: OffsetDateTime,
) -> Result<Date, ErrorCode> {
    days_later_on_open_day(
        calendars.branch(pickup),
        library_date(mail_sent_at),
        HOLD_SHELF_DAYS,
    )
}

/// The first instant after the hold-shelf period whose last day is `last_day`: midnight
/// Asia/Tokyo at the start of the next day. What a timer schedules the expiry for.
pub fn shelf_ends_at(last_day: Date) -> Result<OffsetDateTime, ErrorCode> {
    let next = last_day.next_day().ok_or(ErrorCode::Internal)?;
    Ok(PrimitiveDateTime::new(next, Time::MIDNIGHT).assume_offset(LIBRARY_OFFSET))
}

/// Rule H9: the period is over once the library-local date is past its last day.
pub fn shelf_period_over(last_day: Date, now: OffsetDateTime) -> bool {
    library_date(now) > last_day
}

/// Rule S1: the branch's hold shelf, items waiting for their patrons (mail sent or not yet),
/// the longest-waiting first (queue order within a day).
pub fn hold_shelf(branch: Branch, holds: &[Hold]) -> Vec<&Hold> {
    let mut shelf: Vec<&Hold> = holds
        .iter()
        .filter(|h| h.pickup == branch)
        .filter(|h| {
            matches!(
                h.state.status(),
                HoldStatus::AwaitingNotice | HoldStatus::Ready
            )
        })
        .collect();
    // Items still awaiting their mail have no last day yet: they sort after every ready one.
    let last_day = |h: &Hold| match &h.state {
        HoldState::Ready { ready_until, .. } => Some(*ready_until),
        _ => None,
    };
    shelf.sort_by(|a, b| {
        let (da, db) = (last_day(a), last_day(b));
        (da.is_none(), da)
            .cmp(&(db.is_none(), db))
            .then_with(|| a.queue_cmp(b))
    });
    shelf
}

/// Rules H9 and S1: the ready holds at this pickup branch whose shelf period is over, for
/// the expiry job and the desk's "take off the shelf" list. Queue order.
pub fn due_for_expiry(branch: Branch, holds: &[Hold], now: OffsetDateTime) -> Vec<&Hold> {
    let mut due: Vec<&Hold> = holds
        .iter()
        .filter(|h| h.pickup == branch)
        .filter(|h| match &h.state {
            HoldState::Ready { ready_until, .. } => shelf_period_over(*ready_until, now),
            _ => false,
        })
        .collect();
    due.sort_by(|a, b| a.queue_cmp(b));
    due
}

/// Rule S1: the pull list of a branch, the holds for which a copy should be taken from this
/// branch's open shelf (counter holds on available titles, and holds confirmed after a copy
/// came back and was shelved while they were still provisional). Each entry pairs a title's
/// queue with the number of its copies on this branch's shelf now; the first confirmed holds
/// without an item are listed, as many as there are copies. Decision: every branch with a
/// copy lists the hold; the first copy checked in allocates it (H7), and a copy pulled second
/// is shelved again by its own checkin.
pub fn pull_list<'a>(titles: &[(&'a TitleQueue, usize)]) -> Vec<&'a Hold> {
    let mut list: Vec<&'a Hold> = titles
        .iter()
        .flat_map(|(queue, copies_here)| queue.awaiting_item().take(*copies_here))
        .collect();
    list.sort_by(|a, b| a.queue_cmp(b));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::BranchCalendar;
    use crate::domain::test_support::{barcode, hold};
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::{date, datetime};

    fn ready(sent: OffsetDateTime, until: Date) -> HoldState {
        HoldState::Ready {
            item: barcode("KT-1"),
            mail_sent_at: sent,
            ready_until: until,
        }
    }

    #[test]
    fn shelf_lasts_until_the_seventh_day_after_the_mail_h9() {
        let cals = LibraryCalendar::open_every_day();
        let sent = datetime!(2026-04-01 10:00 +09:00);
        assert_eq!(
            shelf_last_day(&cals, Branch::Ota, sent),
            Ok(date!(2026 - 04 - 08))
        );
    }

    #[test]
    fn shelf_counts_from_the_library_date_of_the_mail_not_utc_h9() {
        let cals = LibraryCalendar::open_every_day();
        // 23:59:59 in Tokyo on 31 March is still 31 March…
        assert_eq!(
            shelf_last_day(&cals, Branch::Ota, datetime!(2026-03-31 14:59:59 UTC)),
            Ok(date!(2026 - 04 - 07))
        );
        // …and one second later it is 1 April in Tokyo while still 31 March in UTC.
        assert_eq!(
            shelf_last_day(&cals, Branch::Ota, datetime!(2026-03-31 15:00:00 UTC)),
            Ok(date!(2026 - 04 - 08))
        );
    }

    #[test]
    fn shelf_ending_on_a_closed_day_of_the_pickup_branch_moves_to_its_next_open_day_h9_b2() {
        let yamaga = BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 04 - 08), date!(2026 - 04 - 10));
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Yamaga, yamaga);
        let sent = datetime!(2026-04-01 10:00 +09:00);
        assert_eq!(
            shelf_last_day(&cals, Branch::Yamaga, sent),
            Ok(date!(2026 - 04 - 11))
        );
        // Another branch's closed days do not matter.
        assert_eq!(
            shelf_last_day(&cals, Branch::Kitsuki, sent),
            Ok(date!(2026 - 04 - 08))
        );
    }

    #[test]
    fn closed_days_inside_the_week_do_not_lengthen_it_h9_b2() {
        let cal = BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 04 - 02), date!(2026 - 04 - 05));
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Ota, cal);
        let sent = datetime!(2026-04-01 10:00 +09:00);
        assert_eq!(
            shelf_last_day(&cals, Branch::Ota, sent),
            Ok(date!(2026 - 04 - 08))
        );
    }

    #[test]
    fn shelf_over_new_year_moves_past_the_whole_closing_h9_b2() {
        let cal = BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 12 - 29), date!(2027 - 01 - 03));
        let cals = LibraryCalendar::open_every_day().with_branch(Branch::Kitsuki, cal);
        let sent = datetime!(2026-12-25 18:00 +09:00);
        assert_eq!(
            shelf_last_day(&cals, Branch::Kitsuki, sent),
            Ok(date!(2027 - 01 - 04))
        );
    }

    #[test]
    fn one_week_exactly_after_the_mail_is_still_inside_the_period_h9() {
        let sent = datetime!(2026-04-01 10:00 +09:00);
        let last = date!(2026 - 04 - 08);
        assert!(!shelf_period_over(last, sent + Duration::weeks(1)));
        assert!(!shelf_period_over(
            last,
            datetime!(2026-04-08 23:59:59.999999999 +09:00)
        ));
        assert!(shelf_period_over(last, datetime!(2026-04-09 00:00 +09:00)));
        assert!(shelf_period_over(last, datetime!(2026-04-08 15:00 UTC)));
        assert!(!shelf_period_over(last, datetime!(2026-04-08 14:59:59 UTC)));
    }

    #[test]
    fn shelf_ends_at_midnight_tokyo_after_the_last_day_h9() {
        assert_eq!(
            shelf_ends_at(date!(2026 - 04 - 08)),
            Ok(datetime!(2026-04-08 15:00 UTC))
        );
        assert_eq!(shelf_ends_at(Date::MAX), Err(ErrorCode::Internal));
    }

    #[test]
    fn the_hold_shelf_lists_waiting_items_of_this_branch_only_s1() {
        let sent = datetime!(2026-04-01 10:00 +09:00);
        let holds = vec![
            hold(1, Branch::Ota, ready(sent, date!(2026 - 04 - 09))),
            hold(
                2,
                Branch::Ota,
                HoldState::AwaitingNotice {
                    item: barcode("KT-2"),
                },
            ),
            hold(3, Branch::Ota, ready(sent, date!(2026 - 04 - 08))),
            hold(4, Branch::Kitsuki, ready(sent, date!(2026 - 04 - 08))),
            hold(
                5,
                Branch::Ota,
                HoldState::InTransit {
                    item: barcode("KT-5"),
                },
            ),
            hold(
                6,
                Branch::Ota,
                HoldState::Fulfilled {
                    item: barcode("KT-6"),
                },
            ),
            hold(7, Branch::Ota, HoldState::Confirmed),
        ];
        let ids: Vec<&str> = hold_shelf(Branch::Ota, &holds)
            .iter()
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(ids, ["h3", "h1", "h2"]);
    }

    #[test]
    fn expiry_takes_ready_holds_past_their_last_day_at_this_branch_h9_s1() {
        let sent = datetime!(2026-04-01 10:00 +09:00);
        let holds = vec![
            hold(1, Branch::Ota, ready(sent, date!(2026 - 04 - 08))),
            hold(2, Branch::Ota, ready(sent, date!(2026 - 04 - 09))),
            hold(3, Branch::Kitsuki, ready(sent, date!(2026 - 04 - 08))),
            hold(
                4,
                Branch::Ota,
                HoldState::AwaitingNotice {
                    item: barcode("KT-4"),
                },
            ),
            hold(
                5,
                Branch::Ota,
                HoldState::Expired {
                    item: barcode("KT-5"),
                },
            ),
        ];
        let now = datetime!(2026-04-09 00:00 +09:00);
        let ids: Vec<&str> = due_for_expiry(Branch::Ota, &holds, now)
            .iter()
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(ids, ["h1"]);
        assert!(due_for_expiry(Branch::Ota, &holds, now - Duration::nanoseconds(1)).is_empty());
    }

    #[test]
    fn the_pull_list_offers_one_hold_per_copy_on_this_shelf_in_queue_order_s1() {
        let q1 = TitleQueue::new(vec![
            hold(1, Branch::Ota, HoldState::Provisional),
            hold(2, Branch::Ota, HoldState::Confirmed),
            hold(3, Branch::Kitsuki, HoldState::Confirmed),
            hold(4, Branch::Kitsuki, HoldState::Confirmed),
        ]);
        let q2 = TitleQueue::new(vec![hold(0, Branch::Yamaga, HoldState::Confirmed)]);
        let q3 = TitleQueue::new(vec![hold(9, Branch::Yamaga, HoldState::Confirmed)]);
        let ids: Vec<&str> = pull_list(&[(&q1, 2), (&q2, 1), (&q3, 0)])
            .iter()
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(ids, ["h0", "h2", "h3"]);
    }

    proptest! {
        #[test]
        fn the_patron_always_has_at_least_a_full_week_h9(secs in 0i64..(400 * 86_400)) {
            let sent = datetime!(2026-01-01 00:00 UTC) + Duration::seconds(secs);
            let last = shelf_last_day(&LibraryCalendar::open_every_day(), Branch::Kitsuki, sent).unwrap();
            let ends = shelf_ends_at(last).unwrap();
            prop_assert!(ends - sent > Duration::weeks(1));
            prop_assert!(ends - sent <= Duration::days(8));
            prop_assert!(!shelf_period_over(last, ends - Duration::nanoseconds(1)));
            prop_assert!(shelf_period_over(last, ends));
        }
    }
}
