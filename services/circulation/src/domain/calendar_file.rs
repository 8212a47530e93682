//! The file of the branches' closed days (rule B2), so that operators set them without a
//! rebuild: circulation and notification read the same file (`KITSUKI_CALENDAR_FILE`) and
//! so compute the same due dates and keep-until dates. This module only parses text; the
//! processes read the file.
//!
//! The format is one JSON object keyed by branch code (`kitsuki`, `yamaga`, `ota`, as
//! [`Branch::code`]); a branch not listed is open every day:
//!
//! ```json
//! {
//!   "kitsuki": {
//!     "closed_weekdays": ["monday"],
//!     "closed_dates": ["2026-12-29/2027-01-03", "2027-02-11"]
//!   },
//!   "ota": { "closed_weekdays": ["monday", "tuesday"] }
//! }
//! ```
//!
//! - `closed_weekdays`: English weekday names in lower case (`monday` … `sunday`), closed
//!   every week.
//! - `closed_dates`: library-local dates `YYYY-MM-DD`, or inclusive ranges `first/last`
//!   (New Year, inventory weeks). Both lists may be left out.
//!
//! Refused, with a message naming the branch and the value: an unknown branch or field, a
//! branch given twice, an unknown weekday, a bad date, a range whose last day is before its
//! first, a branch closed on all seven weekdays, and a run of closed days longer than
//! [`MAX_CLOSED_RUN_DAYS`] (B2 moves a date past at most that many: such a calendar would
//! turn every due date in it into an internal error at the desk instead of a refusal at
//! start).

use std::fmt;

use kitsuki_proto::Branch;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use time::{Date, Weekday};

use super::calendar::{BranchCalendar, LibraryCalendar, MAX_CLOSED_RUN_DAYS, next_open_day};

/// Why a calendar file was refused. Every message names the branch and the value at fault,
/// so that the operator who reads it at a refused start knows what to mend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarFileError {
    /// Not JSON, or not an object at the top.
    #[error("not a JSON object of branch calendars: {0}")]
    Syntax(String),
    #[error("unknown branch \"{0}\" (the branches are kitsuki, yamaga and ota)")]
    UnknownBranch(String),
    #[error("branch {0} is given twice")]
    DuplicateBranch(Branch),
    /// A branch's entry is not an object of the two known lists (an unknown field, a
    /// string where a list belongs, …): serde's words.
    #[error("calendar of {branch}: {message}")]
    Entry { branch: Branch, message: String },
    #[error(
        "calendar of {branch}: unknown weekday \"{value}\" (monday, tuesday, wednesday, thursday, friday, saturday or sunday)"
    )]
    UnknownWeekday { branch: Branch, value: String },
    #[error(
        "calendar of {branch}: \"{value}\" is not a date YYYY-MM-DD or a range YYYY-MM-DD/YYYY-MM-DD"
    )]
    BadDate { branch: Branch, value: String },
    #[error("calendar of {branch}: the range \"{value}\" ends before it begins")]
    BackwardRange { branch: Branch, value: String },
    #[error("calendar of {branch}: closed on all seven weekdays, so never open")]
    ClosedEveryWeekday { branch: Branch },
    #[error(
        "calendar of {branch}: closed for more than {MAX_CLOSED_RUN_DAYS} days in a row from {from}"
    )]
    RunTooLong { branch: Branch, from: String },
}

/// One branch's entry as written. Strings, checked by hand afterwards, so that a refusal
/// names the value rather than a position in the text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchEntry {
    #[serde(default)]
    closed_weekdays: Vec<String>,
    #[serde(default)]
    closed_dates: Vec<String>,
}

/// The top-level object's entries in file order, duplicates kept: a JSON map read into a
/// map type would let the second `"ota"` silently replace the first.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object keyed by branch (kitsuki, yamaga, ota)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push((k, v));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(EntriesVisitor)
    }
}

impl LibraryCalendar {
    /// Rule B2: the branches' calendars from the JSON text of a calendar file (the format
    /// is in this module's documentation). Branches not in the file are open every day.
    pub fn from_json(text: &str) -> Result<LibraryCalendar, CalendarFileError> {
        let Entries(entries) = serde_json::from_str(text)
            .map_err(|e: serde_json::Error| CalendarFileError::Syntax(e.to_string()))?;
        let mut seen: Vec<Branch> = Vec::new();
        let mut calendars = LibraryCalendar::open_every_day();
        for (key, value) in entries {
            // The codes exactly as written everywhere else (events, URLs), not
            // `Branch::parse`'s lenient reading: a file is written once and read often.
            let branch = Branch::ALL
                .into_iter()
                .find(|b| b.code() == key)
                .ok_or_else(|| CalendarFileError::UnknownBranch(key.clone()))?;
            if seen.contains(&branch) {
                return Err(CalendarFileError::DuplicateBranch(branch));
            }
            seen.push(branch);
            if !value.is_object() {
                return Err(CalendarFileError::Entry {
                    branch,
                    message: format!(
                        "must be an object with closed_weekdays and/or closed_dates, not {value}"
                    ),
                });
            }
            let entry: BranchEntry =
                serde_json::from_value(value).map_err(|e| CalendarFileError::Entry {
                    branch,
                    message: e.to_string(),
                })?;
            calendars = calendars.with_branch(branch, branch_calendar(branch, &entry)?);
        }
        Ok(calendars)
    }
}

fn branch_calendar(
    branch: Branch,
    entry: &BranchEntry,
) -> Result<BranchCalendar, CalendarFileError> {
    let mut calendar = BranchCalendar::open_every_day();
    let mut weekdays = 0u8;
    for name in &entry.closed_weekdays {
        let day = weekday(name).ok_or_else(|| CalendarFileError::UnknownWeekday {
            branch,
            value: name.clone(),
        })?;
        weekdays |= 1 << day.number_days_from_monday();
        calendar = calendar.with_closed_weekday(day);
    }
    if weekdays == 0b111_1111 {
        return Err(CalendarFileError::ClosedEveryWeekday { branch });
    }
    let mut dates = Vec::new();
    for value in &entry.closed_dates {
        let bad = || CalendarFileError::BadDate {
            branch,
            value: value.clone(),
        };
        let (first, last) = match value.split_once('/') {
            Some((a, b)) => (date(a).ok_or_else(bad)?, date(b).ok_or_else(bad)?),
            None => {
                let d = date(value).ok_or_else(bad)?;
                (d, d)
            }
        };
        if last < first {
            return Err(CalendarFileError::BackwardRange {
                branch,
                value: value.clone(),
            });
        }
        // Refused before the range is spelled out day by day (a typo of a century would
        // otherwise fill memory first).
        if (last - first).whole_days() >= i64::from(MAX_CLOSED_RUN_DAYS) {
            return Err(CalendarFileError::RunTooLong {
                branch,
                from: value.clone(),
            });
        }
        dates.push((first, last));
    }
    for (first, last) in dates {
        calendar = calendar.with_closed_range(first, last);
    }
    check_runs(branch, &calendar)?;
    Ok(calendar)
}

/// Every run of closed days must end within [`MAX_CLOSED_RUN_DAYS`], or [`next_open_day`]
/// answers `internal` for the dates in it. Each run is walked once, from its first day.
fn check_runs(branch: Branch, calendar: &BranchCalendar) -> Result<(), CalendarFileError> {
    let mut covered_until: Option<Date> = None;
    for &d in calendar.closed_dates() {
        if covered_until.is_some_and(|c| d < c) {
            continue;
        }
        // A run may begin a few weekly closed days before its first closed date (at most
        // six, as a seventh weekday is open).
        let mut start = d;
        for _ in 0..7 {
            match start.previous_day() {
                Some(p) if !calendar.is_open(p) => start = p,
                _ => break,
            }
        }
        match next_open_day(calendar, start) {
            Ok(open) => covered_until = Some(open),
            Err(_) => {
                return Err(CalendarFileError::RunTooLong {
                    branch,
                    from: kitsuki_platform::clock::format_date(start),
                });
            }
        }
    }
    Ok(())
}

/// `monday` … `sunday`, exactly (the file's one spelling).
fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

/// `YYYY-MM-DD` exactly: four-digit year, two-digit month and day, a real date.
fn date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u16>().ok();
    let month = time::Month::try_from(u8::try_from(n(5..7)?).ok()?).ok()?;
    let day = u8::try_from(n(8..10)?).ok()?;
    Date::from_calendar_date(i32::from(n(0..4)?), month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::date;

    fn parse(text: &str) -> Result<LibraryCalendar, CalendarFileError> {
        LibraryCalendar::from_json(text)
    }

    fn err(text: &str) -> CalendarFileError {
        parse(text).expect_err(text)
    }

    #[test]
    fn the_documented_example_parses_b2() {
        let cals = parse(
            r#"{
              "kitsuki": {"closed_weekdays": ["monday"], "closed_dates": ["2026-12-29/2027-01-03", "2027-02-11"]},
              "ota": {"closed_weekdays": ["monday", "tuesday"]}
            }"#,
        )
        .unwrap();
        let expected = LibraryCalendar::open_every_day()
            .with_branch(
                Branch::Kitsuki,
                BranchCalendar::open_every_day()
                    .with_closed_weekday(Weekday::Monday)
                    .with_closed_range(date!(2026 - 12 - 29), date!(2027 - 01 - 03))
                    .with_closed_date(date!(2027 - 02 - 11)),
            )
            .with_branch(
                Branch::Ota,
                BranchCalendar::open_every_day()
                    .with_closed_weekday(Weekday::Monday)
                    .with_closed_weekday(Weekday::Tuesday),
            );
        assert_eq!(cals, expected);
        assert_eq!(
            cals.branch(Branch::Yamaga),
            &BranchCalendar::open_every_day()
        );
    }

    #[test]
    fn the_new_year_run_crosses_the_year_end_b2() {
        let cals = parse(r#"{"yamaga": {"closed_dates": ["2026-12-29/2027-01-03"]}}"#).unwrap();
        let cal = cals.branch(Branch::Yamaga);
        assert!(cal.is_open(date!(2026 - 12 - 28)));
        let mut d = date!(2026 - 12 - 29);
        while d <= date!(2027 - 01 - 03) {
            assert!(!cal.is_open(d), "{d} closed");
            assert_eq!(next_open_day(cal, d), Ok(date!(2027 - 01 - 04)), "{d}");
            d = d.next_day().unwrap();
        }
        assert!(cal.is_open(date!(2027 - 01 - 04)));
        assert!(cals.branch(Branch::Kitsuki).is_open(date!(2027 - 01 - 01)));
    }

    #[test]
    fn a_range_of_one_day_closes_that_day_b2() {
        let cals = parse(r#"{"ota": {"closed_dates": ["2027-02-11/2027-02-11"]}}"#).unwrap();
        assert_eq!(
            cals.branch(Branch::Ota),
            &BranchCalendar::open_every_day().with_closed_date(date!(2027 - 02 - 11))
        );
    }

    #[test]
    fn every_weekday_name_is_read_b2() {
        let names = [
            ("monday", Weekday::Monday),
            ("tuesday", Weekday::Tuesday),
            ("wednesday", Weekday::Wednesday),
            ("thursday", Weekday::Thursday),
            ("friday", Weekday::Friday),
            ("saturday", Weekday::Saturday),
            ("sunday", Weekday::Sunday),
        ];
        for (name, day) in names {
            let cals = parse(&format!(
                r#"{{"kitsuki": {{"closed_weekdays": ["{name}"]}}}}"#
            ))
            .unwrap();
            assert_eq!(
                cals.branch(Branch::Kitsuki),
                &BranchCalendar::open_every_day().with_closed_weekday(day),
                "{name}"
            );
        }
        // Six of them at once is allowed: one open day a week remains.
        let six: Vec<String> = names[..6].iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let cals = parse(&format!(
            r#"{{"kitsuki": {{"closed_weekdays": [{}]}}}}"#,
            six.join(",")
        ))
        .unwrap();
        // 2026-04-05 is a Sunday, the one open weekday.
        assert_eq!(
            next_open_day(cals.branch(Branch::Kitsuki), date!(2026 - 04 - 06)),
            Ok(date!(2026 - 04 - 12))
        );
    }

    #[test]
    fn each_branch_is_read_under_its_own_code_b1() {
        for b in Branch::ALL {
            let cals = parse(&format!(
                r#"{{"{}": {{"closed_dates": ["2027-05-05"]}}}}"#,
                b.code()
            ))
            .unwrap();
            for other in Branch::ALL {
                assert_eq!(
                    cals.branch(other).is_open(date!(2027 - 05 - 05)),
                    other != b,
                    "{b} listed, {other} asked"
                );
            }
        }
    }

    #[test]
    fn empty_lists_and_objects_mean_open_every_day_b2() {
        assert_eq!(parse("{}").unwrap(), LibraryCalendar::open_every_day());
        assert_eq!(
            parse(r#"{"kitsuki": {}, "yamaga": {"closed_weekdays": [], "closed_dates": []}}"#)
                .unwrap(),
            LibraryCalendar::open_every_day()
        );
    }

    #[test]
    fn overlapping_and_repeated_entries_add_up() {
        let cals = parse(
            r#"{"kitsuki": {"closed_weekdays": ["monday", "monday"],
                "closed_dates": ["2027-01-01/2027-01-05", "2027-01-03/2027-01-07", "2027-01-07"]}}"#,
        )
        .unwrap();
        assert_eq!(
            cals.branch(Branch::Kitsuki),
            &BranchCalendar::open_every_day()
                .with_closed_weekday(Weekday::Monday)
                .with_closed_range(date!(2027 - 01 - 01), date!(2027 - 01 - 07))
        );
    }

    #[test]
    fn the_longest_allowed_run_is_read_and_one_day_more_is_refused_b2() {
        // 2028 is a leap year: 2028-01-01..2028-12-31 is 366 days.
        let cals = parse(r#"{"ota": {"closed_dates": ["2028-01-01/2028-12-31"]}}"#).unwrap();
        assert_eq!(
            next_open_day(cals.branch(Branch::Ota), date!(2028 - 01 - 01)),
            Ok(date!(2029 - 01 - 01))
        );
        assert_eq!(
            err(r#"{"ota": {"closed_dates": ["2028-01-01/2029-01-01"]}}"#),
            CalendarFileError::RunTooLong {
                branch: Branch::Ota,
                from: "2028-01-01/2029-01-01".into()
            }
        );
    }

    #[test]
    fn a_run_too_long_made_of_joined_ranges_is_refused_b2() {
        // Two ranges of 200 days that touch: each is allowed alone, together they are not.
        let e = err(
            r#"{"yamaga": {"closed_dates": ["2028-01-01/2028-07-18", "2028-07-19/2029-02-03"]}}"#,
        );
        assert_eq!(
            e,
            CalendarFileError::RunTooLong {
                branch: Branch::Yamaga,
                from: "2028-01-01".into()
            }
        );
    }

    #[test]
    fn a_run_too_long_joined_by_weekly_closings_is_refused_from_its_first_day_b2() {
        // Closed Saturday to Friday except Sunday, and every Sunday of a long stretch: the
        // run starts on the Monday before the first closed Sunday. 2028-01-02 is a Sunday.
        let sundays: Vec<String> = (0..60)
            .map(|w| {
                let d = date!(2028 - 01 - 02) + Duration::weeks(w);
                format!("\"{}\"", kitsuki_platform::clock::format_date(d))
            })
            .collect();
        let text = format!(
            r#"{{"kitsuki": {{"closed_weekdays": ["monday","tuesday","wednesday","thursday","friday","saturday"], "closed_dates": [{}]}}}}"#,
            sundays.join(",")
        );
        assert_eq!(
            err(&text),
            CalendarFileError::RunTooLong {
                branch: Branch::Kitsuki,
                from: "2027-12-27".into()
            }
        );
    }

    #[test]
    fn an_unknown_branch_is_refused_by_name() {
        let e = err(r#"{"beppu": {"closed_weekdays": ["monday"]}}"#);
        assert_eq!(e, CalendarFileError::UnknownBranch("beppu".into()));
        assert!(e.to_string().contains("\"beppu\""), "{e}");
        // The codes exactly: no upper case, no spaces.
        assert_eq!(
            err(r#"{"Ota": {}}"#),
            CalendarFileError::UnknownBranch("Ota".into())
        );
        assert_eq!(
            err(r#"{" ota": {}}"#),
            CalendarFileError::UnknownBranch(" ota".into())
        );
    }

    #[test]
    fn a_branch_given_twice_is_refused() {
        let e = err(r#"{"ota": {"closed_weekdays": ["monday"]}, "ota": {}}"#);
        assert_eq!(e, CalendarFileError::DuplicateBranch(Branch::Ota));
        assert_eq!(e.to_string(), "branch ota is given twice");
    }

    #[test]
    fn an_unknown_weekday_is_refused_with_branch_and_value() {
        for bad in ["Monday", "mon", "月曜日", "", " monday", "funday"] {
            let e = err(&format!(
                r#"{{"yamaga": {{"closed_weekdays": ["{bad}"]}}}}"#
            ));
            assert_eq!(
                e,
                CalendarFileError::UnknownWeekday {
                    branch: Branch::Yamaga,
                    value: bad.into()
                }
            );
            let m = e.to_string();
            assert!(
                m.contains("yamaga") && m.contains(&format!("\"{bad}\"")),
                "{m}"
            );
        }
    }

    #[test]
    fn a_bad_date_is_refused_with_branch_and_value() {
        for bad in [
            "2027-02-30",
            "2027-13-01",
            "2027-00-10",
            "2027-01-00",
            "2027-1-3",
            "27-01-03",
            "2027/01/03",
            "20270103",
            "2027-01-03T00:00:00",
            "+2027-01-03",
            " 2027-01-03",
            "",
            "2026-12-29/",
            "/2027-01-03",
            "2026-12-29/2027-01-32",
            "2026-12-29/2027-01-03/2027-01-05",
            "2026-12-29..2027-01-03",
            "２０２７-01-03",
        ] {
            let e = err(&format!(r#"{{"kitsuki": {{"closed_dates": ["{bad}"]}}}}"#));
            assert_eq!(
                e,
                CalendarFileError::BadDate {
                    branch: Branch::Kitsuki,
                    value: bad.into()
                },
                "{bad}"
            );
            let m = e.to_string();
            assert!(m.contains("kitsuki") && m.contains(bad), "{m}");
        }
    }

    #[test]
    fn a_leap_day_is_a_date_only_in_a_leap_year() {
        assert!(parse(r#"{"ota": {"closed_dates": ["2028-02-29"]}}"#).is_ok());
        assert!(matches!(
            err(r#"{"ota": {"closed_dates": ["2027-02-29"]}}"#),
            CalendarFileError::BadDate { .. }
        ));
    }

    #[test]
    fn a_range_ending_before_it_begins_is_refused() {
        let e = err(r#"{"ota": {"closed_dates": ["2027-01-03/2026-12-29"]}}"#);
        assert_eq!(
            e,
            CalendarFileError::BackwardRange {
                branch: Branch::Ota,
                value: "2027-01-03/2026-12-29".into()
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("ota") && m.contains("2027-01-03/2026-12-29"),
            "{m}"
        );
    }

    #[test]
    fn a_branch_closed_on_all_seven_weekdays_is_refused() {
        let e = err(
            r#"{"yamaga": {"closed_weekdays": ["monday","tuesday","wednesday","thursday","friday","saturday","sunday"]}}"#,
        );
        assert_eq!(
            e,
            CalendarFileError::ClosedEveryWeekday {
                branch: Branch::Yamaga
            }
        );
        assert!(e.to_string().contains("yamaga"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_branch() {
        let e = err(r#"{"kitsuki": {"closed_weekdays": [], "holidays": ["2027-01-01"]}}"#);
        match &e {
            CalendarFileError::Entry { branch, message } => {
                assert_eq!(*branch, Branch::Kitsuki);
                assert!(message.contains("holidays"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("calendar of kitsuki: "), "{e}");
    }

    #[test]
    fn a_branch_entry_of_the_wrong_shape_is_refused_with_its_branch() {
        for text in [
            r#"{"ota": null}"#,
            r#"{"ota": ["monday"]}"#,
            r#"{"ota": "closed"}"#,
            r#"{"ota": {"closed_weekdays": "monday"}}"#,
            r#"{"ota": {"closed_dates": [20270101]}}"#,
            r#"{"ota": {"closed_dates": null}}"#,
        ] {
            match err(text) {
                CalendarFileError::Entry { branch, .. } => assert_eq!(branch, Branch::Ota),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_that_is_not_an_object_of_branches_is_refused() {
        for text in [
            "",
            "   ",
            "[]",
            "null",
            "\"ota\"",
            "{\"ota\": {}",
            "{ota: {}}",
            "{} {}",
        ] {
            match err(text) {
                CalendarFileError::Syntax(m) => assert!(!m.is_empty(), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_first_fault_in_file_order_is_reported() {
        let e = err(
            r#"{"kitsuki": {"closed_dates": ["2027-02-30"]}, "ota": {"closed_weekdays": ["x"]}}"#,
        );
        assert!(matches!(
            e,
            CalendarFileError::BadDate {
                branch: Branch::Kitsuki,
                ..
            }
        ));
    }
}
