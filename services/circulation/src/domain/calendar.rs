//! Library-local dates and the closed days of each branch (rule B2). A due date or the last
//! day of a hold-shelf period that falls on a closed day moves to the branch's next open
//! day, past the whole run of closed days.

use std::collections::BTreeSet;

use kitsuki_proto::{Branch, ErrorCode};
use time::{Date, Duration, OffsetDateTime, Weekday};

pub use kitsuki_platform::clock::LIBRARY_OFFSET;

/// The library-local (Asia/Tokyo) calendar date of an instant. Every rule that counts days
/// (due dates, overdue, the hold-shelf week) counts them in this calendar.
pub fn library_date(at: OffsetDateTime) -> Date {
    kitsuki_platform::clock::local_date(at)
}

/// The longest run of closed days [`next_open_day`] moves past. A longer run (or a calendar
/// closed on every weekday) is a configuration error, answered as `internal` rather than by
/// searching for ever. Decision: one leap year; a branch closed for longer than that should
/// not be lending or receiving holds.
pub const MAX_CLOSED_RUN_DAYS: u16 = 366;

/// One branch's closed days (rule B2): single dates (holidays, New Year, inventory weeks)
/// and weekdays closed every week. Configuration; the default is open every day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchCalendar {
    closed_dates: BTreeSet<Date>,
    /// Bit `n` set: closed every weekday with `number_days_from_monday() == n`.
    closed_weekdays: u8,
}

impl BranchCalendar {
    /// A branch open every day (rule B2's default: no closed days configured).
    pub fn open_every_day() -> BranchCalendar {
        BranchCalendar::default()
    }

    pub fn with_closed_date(mut self, date: Date) -> BranchCalendar {
        self.closed_dates.insert(date);
        self
    }

    pub fn with_closed_dates(mut self, dates: impl IntoIterator<Item = Date>) -> BranchCalendar {
        self.closed_dates.extend(dates);
        self
    }

    /// Closes every date from `first` to `last`, both included (nothing if `last < first`).
    pub fn with_closed_range(mut self, first: Date, last: Date) -> BranchCalendar {
        let mut d = first;
        while d <= last {
            self.closed_dates.insert(d);
            match d.next_day() {
                Some(next) => d = next,
                None => break,
            }
        }
        self
    }

    /// Closes the branch on this weekday every week.
    pub fn with_closed_weekday(mut self, weekday: Weekday) -> BranchCalendar {
        self.closed_weekdays |= 1 << weekday.number_days_from_monday();
        self
    }

    /// The single closed dates, in order (weekly closings not included).
    pub fn closed_dates(&self) -> impl Iterator<Item = &Date> {
        self.closed_dates.iter()
    }

    pub fn is_open(&self, date: Date) -> bool {
        let weekly = self.closed_weekdays & (1 << date.weekday().number_days_from_monday()) != 0;
        !weekly && !self.closed_dates.contains(&date)
    }
}

/// The closed-day calendars of the three branches (rule B1), each configured on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryCalendar {
    branches: [BranchCalendar; 3],
}

impl LibraryCalendar {
    /// Every branch open every day.
    pub fn open_every_day() -> LibraryCalendar {
        LibraryCalendar::default()
    }

    pub fn with_branch(mut self, branch: Branch, calendar: BranchCalendar) -> LibraryCalendar {
        self.branches[index(branch)] = calendar;
        self
    }

    pub fn branch(&self, branch: Branch) -> &BranchCalendar {
        &self.branches[index(branch)]
    }
}

fn index(branch: Branch) -> usize {
    match branch {
        Branch::Kitsuki => 0,
        Branch::Yamaga => 1,
        Branch::Ota => 2,
    }
}

/// Rule B2: `date` itself if the branch is open that day, otherwise the first open day after
/// the whole run of closed days that contains it. `internal` when no open day comes within
/// [`MAX_CLOSED_RUN_DAYS`] (a misconfigured calendar) or the date range ends.
pub fn next_open_day(calendar: &BranchCalendar, date: Date) -> Result<Date, ErrorCode> {
    let mut d = date;
    for _ in 0..=MAX_CLOSED_RUN_DAYS {
        if calendar.is_open(d) {
            return Ok(d);
        }
        d = d.next_day().ok_or(ErrorCode::Internal)?;
    }
    Err(ErrorCode::Internal)
}

/// `date` plus `days`, then moved to the branch's next open day (rule B2): the shape of a
/// due date (L1, L2) and of the last day on the hold shelf (H9).
pub fn days_later_on_open_day(
    calendar: &BranchCalendar,
    date: Date,
    days: u16,
) -> Result<Date, ErrorCode> {
    let target = date
        .checked_add(Duration::days(i64::from(days)))
        .ok_or(ErrorCode::Internal)?;
    next_open_day(calendar, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    /// Kitsuki's New Year closing (年末年始): 29 December to 3 January.
    fn new_year_closing() -> BranchCalendar {
        BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 12 - 29), date!(2027 - 01 - 03))
    }

    #[test]
    fn library_date_is_asia_tokyo_b2() {
        assert_eq!(
            library_date(datetime!(2026-03-31 14:59:59 UTC)),
            date!(2026 - 03 - 31)
        );
        assert_eq!(
            library_date(datetime!(2026-03-31 15:00:00 UTC)),
            date!(2026 - 04 - 01)
        );
        assert_eq!(
            library_date(datetime!(2026-04-01 00:00:00 +09:00)),
            date!(2026 - 04 - 01)
        );
    }

    #[test]
    fn open_day_is_kept_b2() {
        let cal = new_year_closing();
        assert_eq!(
            next_open_day(&cal, date!(2026 - 12 - 28)),
            Ok(date!(2026 - 12 - 28))
        );
        assert_eq!(
            next_open_day(&BranchCalendar::open_every_day(), date!(2026 - 07 - 15)),
            Ok(date!(2026 - 07 - 15))
        );
    }

    #[test]
    fn a_single_closed_day_moves_to_the_next_day_b2() {
        let cal = BranchCalendar::open_every_day().with_closed_date(date!(2026 - 05 - 04));
        assert_eq!(
            next_open_day(&cal, date!(2026 - 05 - 04)),
            Ok(date!(2026 - 05 - 05))
        );
    }

    #[test]
    fn a_run_of_closed_days_across_new_year_moves_past_the_whole_run_b2() {
        let cal = new_year_closing();
        for d in [
            date!(2026 - 12 - 29),
            date!(2026 - 12 - 31),
            date!(2027 - 01 - 01),
            date!(2027 - 01 - 03),
        ] {
            assert_eq!(next_open_day(&cal, d), Ok(date!(2027 - 01 - 04)), "{d}");
        }
    }

    #[test]
    fn a_run_of_closed_days_joined_by_a_weekly_closing_moves_past_both_b2() {
        // 4 January 2027 is a Monday: with Mondays closed, New Year runs on to the 5th.
        assert_eq!(date!(2027 - 01 - 04).weekday(), Weekday::Monday);
        let cal = new_year_closing().with_closed_weekday(Weekday::Monday);
        assert_eq!(
            next_open_day(&cal, date!(2026 - 12 - 30)),
            Ok(date!(2027 - 01 - 05))
        );
    }

    #[test]
    fn weekly_closed_days_apply_every_week_b2() {
        let cal = BranchCalendar::open_every_day().with_closed_weekday(Weekday::Monday);
        // 2026-04-06 and 2026-04-13 are Mondays.
        assert_eq!(
            next_open_day(&cal, date!(2026 - 04 - 06)),
            Ok(date!(2026 - 04 - 07))
        );
        assert_eq!(
            next_open_day(&cal, date!(2026 - 04 - 13)),
            Ok(date!(2026 - 04 - 14))
        );
        assert!(cal.is_open(date!(2026 - 04 - 12)));
    }

    #[test]
    fn a_calendar_closed_every_weekday_is_an_error_not_a_hang_b2() {
        let cal = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ]
        .into_iter()
        .fold(
            BranchCalendar::open_every_day(),
            BranchCalendar::with_closed_weekday,
        );
        assert_eq!(
            next_open_day(&cal, date!(2026 - 04 - 01)),
            Err(ErrorCode::Internal)
        );
    }

    #[test]
    fn the_longest_run_moved_past_is_bounded_b2() {
        let start = date!(2028 - 01 - 01);
        let last_allowed = start + Duration::days(i64::from(MAX_CLOSED_RUN_DAYS) - 1);
        let cal = BranchCalendar::open_every_day().with_closed_range(start, last_allowed);
        assert_eq!(
            next_open_day(&cal, start),
            Ok(last_allowed + Duration::days(1))
        );
        let cal = cal.with_closed_date(last_allowed + Duration::days(1));
        assert_eq!(next_open_day(&cal, start), Err(ErrorCode::Internal));
    }

    #[test]
    fn the_end_of_the_date_range_is_an_error_not_a_panic() {
        let cal = BranchCalendar::open_every_day().with_closed_date(Date::MAX);
        assert_eq!(next_open_day(&cal, Date::MAX), Err(ErrorCode::Internal));
        assert_eq!(
            days_later_on_open_day(&BranchCalendar::open_every_day(), Date::MAX, 1),
            Err(ErrorCode::Internal)
        );
    }

    #[test]
    fn days_later_counts_then_moves_b2() {
        let cal = new_year_closing();
        assert_eq!(
            days_later_on_open_day(&cal, date!(2026 - 12 - 16), 14),
            Ok(date!(2027 - 01 - 04))
        );
        assert_eq!(
            days_later_on_open_day(&cal, date!(2026 - 12 - 14), 14),
            Ok(date!(2026 - 12 - 28))
        );
        assert_eq!(
            days_later_on_open_day(&cal, date!(2026 - 12 - 29), 0),
            Ok(date!(2027 - 01 - 04))
        );
    }

    #[test]
    fn each_branch_keeps_its_own_calendar_b2() {
        let cals =
            LibraryCalendar::open_every_day().with_branch(Branch::Yamaga, new_year_closing());
        let d = date!(2027 - 01 - 01);
        assert!(!cals.branch(Branch::Yamaga).is_open(d));
        assert!(cals.branch(Branch::Kitsuki).is_open(d));
        assert!(cals.branch(Branch::Ota).is_open(d));
    }

    #[test]
    fn an_empty_range_closes_nothing() {
        let cal = BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 05 - 05), date!(2026 - 05 - 01));
        assert_eq!(cal, BranchCalendar::open_every_day());
    }

    fn calendar_strategy() -> impl Strategy<Value = BranchCalendar> {
        // Closed dates within a 90-day window, and up to six weekly closed weekdays (never all seven).
        (
            proptest::collection::btree_set(0i64..90, 0..60),
            proptest::sample::subsequence((0u8..7).collect::<Vec<_>>(), 0..=6),
        )
            .prop_map(|(offsets, weekdays)| {
                let base = date!(2026 - 12 - 01);
                let mut cal = BranchCalendar::open_every_day()
                    .with_closed_dates(offsets.into_iter().map(|o| base + Duration::days(o)));
                for n in weekdays {
                    cal = cal.with_closed_weekday(Weekday::Monday.nth_next(n));
                }
                cal
            })
    }

    proptest! {
        #[test]
        fn next_open_day_is_the_first_open_day_on_or_after_b2(cal in calendar_strategy(), off in 0i64..100) {
            let d = date!(2026 - 12 - 01) + Duration::days(off);
            let open = next_open_day(&cal, d).unwrap();
            prop_assert!(open >= d);
            prop_assert!(cal.is_open(open));
            let mut x = d;
            while x < open {
                prop_assert!(!cal.is_open(x), "{x} is open but was skipped");
                x = x.next_day().unwrap();
            }
            prop_assert_eq!(next_open_day(&cal, open).unwrap(), open);
        }

        #[test]
        fn next_open_day_never_reorders_dates_b2(cal in calendar_strategy(), a in 0i64..100, b in 0i64..100) {
            let base = date!(2026 - 12 - 01);
            let (da, db) = (base + Duration::days(a.min(b)), base + Duration::days(a.max(b)));
            prop_assert!(next_open_day(&cal, da).unwrap() <= next_open_day(&cal, db).unwrap());
        }
    }
}
