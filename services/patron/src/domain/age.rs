//! Rule P4: the web service is for junior-high-school students and older (中学生以上),
//! decided by the Japanese school year rather than by a birthday.
//!
//! A person born between 2 April of year Y and 1 April of year Y+1 belongs to the school
//! cohort Y and enters junior high school on 1 April of year Y+13. (1 April belongs to the
//! earlier cohort because, in Japanese law, a person reaches an age at the end of the day
//! before the birthday, 学校教育法 and 年齢計算ニ関スル法律.)

use time::{Date, Month};

/// The school cohort of a birth date: born 2 April Y .. 1 April Y+1 → Y.
pub fn school_cohort(birth: Date) -> i32 {
    // rule P4: 1 April still belongs to the previous school year's cohort.
    if (u8::from(birth.month()), birth.day()) >= (4, 2) {
        birth.year()
    } else {
        birth.year() - 1
    }
}

/// The day the patron enters junior high school: 1 April of cohort + 13. `None` only for
/// dates at the very end of the calendar the `time` crate can represent.
pub fn junior_high_entry(birth: Date) -> Option<Date> {
    Date::from_calendar_date(school_cohort(birth) + 13, Month::April, 1).ok()
}

/// Rule P4: may a patron born on `birth` use the web service on the library-local date
/// `today`? True from the day they enter junior high school.
pub fn eligible_for_web_service(birth: Date, today: Date) -> bool {
    junior_high_entry(birth).is_some_and(|entry| today >= entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    #[test]
    fn p4_born_2_april_enters_junior_high_13_years_later() {
        assert_eq!(
            junior_high_entry(date!(2010 - 04 - 02)),
            Some(date!(2023 - 04 - 01))
        );
        assert!(!eligible_for_web_service(
            date!(2010 - 04 - 02),
            date!(2023 - 03 - 31)
        ));
        assert!(eligible_for_web_service(
            date!(2010 - 04 - 02),
            date!(2023 - 04 - 01)
        ));
    }

    #[test]
    fn p4_born_1_april_belongs_to_the_previous_cohort() {
        // 1 April 2011 is in the same cohort as 2 April 2010.
        assert_eq!(school_cohort(date!(2011 - 04 - 01)), 2010);
        assert_eq!(
            junior_high_entry(date!(2011 - 04 - 01)),
            Some(date!(2023 - 04 - 01))
        );
        assert!(eligible_for_web_service(
            date!(2011 - 04 - 01),
            date!(2023 - 04 - 01)
        ));
        assert!(!eligible_for_web_service(
            date!(2011 - 04 - 01),
            date!(2023 - 03 - 31)
        ));
        // …while 2 April 2011 waits one more year.
        assert_eq!(
            junior_high_entry(date!(2011 - 04 - 02)),
            Some(date!(2024 - 04 - 01))
        );
        assert!(!eligible_for_web_service(
            date!(2011 - 04 - 02),
            date!(2023 - 04 - 01)
        ));
    }

    #[test]
    fn p4_a_twelve_year_old_in_elementary_school_is_not_eligible() {
        // Twelve years old on the day, but still in 6th grade until 1 April 2027.
        assert!(!eligible_for_web_service(
            date!(2014 - 05 - 10),
            date!(2026 - 06 - 01)
        ));
        assert!(!eligible_for_web_service(
            date!(2014 - 05 - 10),
            date!(2027 - 03 - 31)
        ));
        assert!(eligible_for_web_service(
            date!(2014 - 05 - 10),
            date!(2027 - 04 - 01)
        ));
    }

    #[test]
    fn p4_leap_day_births_follow_the_cohort_of_their_february() {
        // 29 Feb 2012 is before 2 April 2012: cohort 2011, junior high on 1 April 2024.
        assert_eq!(school_cohort(date!(2012 - 02 - 29)), 2011);
        assert_eq!(
            junior_high_entry(date!(2012 - 02 - 29)),
            Some(date!(2024 - 04 - 01))
        );
        assert!(!eligible_for_web_service(
            date!(2012 - 02 - 29),
            date!(2024 - 02 - 29)
        ));
        assert!(!eligible_for_web_service(
            date!(2012 - 02 - 29),
            date!(2024 - 03 - 31)
        ));
        assert!(eligible_for_web_service(
            date!(2012 - 02 - 29),
            date!(2024 - 04 - 01)
        ));
        // A leap day "today" is just a day.
        assert!(eligible_for_web_service(
            date!(2010 - 06 - 01),
            date!(2024 - 02 - 29)
        ));
        assert!(!eligible_for_web_service(
            date!(2011 - 06 - 01),
            date!(2024 - 02 - 29)
        ));
        // 1900 was not a leap year, 2000 was: cohorts around them are unchanged.
        assert_eq!(
            junior_high_entry(date!(2000 - 02 - 29)),
            Some(date!(2012 - 04 - 01))
        );
    }

    #[test]
    fn p4_every_birth_day_of_a_cohort_enters_on_the_same_day() {
        // Exhaustive over whole cohorts: every day from 2 April Y to 1 April Y+1.
        for y in [1990, 1999, 2000, 2003, 2011, 2012, 2015, 2095] {
            let entry = Date::from_calendar_date(y + 13, Month::April, 1).unwrap();
            let mut d = Date::from_calendar_date(y, Month::April, 2).unwrap();
            let end = Date::from_calendar_date(y + 1, Month::April, 1).unwrap();
            while d <= end {
                assert_eq!(junior_high_entry(d), Some(entry), "born {d}");
                assert!(eligible_for_web_service(d, entry), "born {d}");
                assert!(
                    !eligible_for_web_service(d, entry.previous_day().unwrap()),
                    "born {d}"
                );
                d = d.next_day().unwrap();
            }
        }
    }

    #[test]
    fn p4_around_1_and_2_april_on_both_sides() {
        // Births on 31 March, 1 April, 2 April, 3 April against todays around 1 April.
        let cases = [
            (date!(2012 - 03 - 31), date!(2024 - 04 - 01)),
            (date!(2012 - 04 - 01), date!(2024 - 04 - 01)),
            (date!(2012 - 04 - 02), date!(2025 - 04 - 01)),
            (date!(2012 - 04 - 03), date!(2025 - 04 - 01)),
        ];
        for (birth, entry) in cases {
            for delta in -3i64..=3 {
                let today = entry + time::Duration::days(delta);
                assert_eq!(
                    eligible_for_web_service(birth, today),
                    delta >= 0,
                    "born {birth}, today {today}"
                );
            }
        }
    }

    #[test]
    fn p4_newborns_and_the_far_future_are_handled() {
        assert!(!eligible_for_web_service(
            date!(2026 - 01 - 01),
            date!(2026 - 01 - 01)
        ));
        assert_eq!(junior_high_entry(Date::MAX), None);
        assert!(!eligible_for_web_service(Date::MAX, Date::MAX));
    }

    /// An independent formulation from the law's wording: a child enters junior high at the
    /// first school-year start (1 April) on or after the day following the day they reach
    /// twelve, and they reach twelve at the end of the day before their twelfth birthday.
    /// So: the first 1 April on or after the twelfth birthday (a 29 February birthday in a
    /// common year falls on 1 March, the day after they reach the age).
    fn entry_by_twelfth_birthday(birth: Date) -> Date {
        let year = birth.year() + 12;
        let birthday = Date::from_calendar_date(year, birth.month(), birth.day())
            .unwrap_or_else(|_| Date::from_calendar_date(year, Month::March, 1).unwrap());
        let april = Date::from_calendar_date(year, Month::April, 1).unwrap();
        if birthday <= april {
            april
        } else {
            Date::from_calendar_date(year + 1, Month::April, 1).unwrap()
        }
    }

    fn any_date(from: i32, to: i32) -> impl Strategy<Value = Date> {
        (from..=to, 1u16..=366).prop_map(|(y, ordinal)| {
            Date::from_ordinal_date(y, ordinal)
                .unwrap_or_else(|_| Date::from_ordinal_date(y, 365).unwrap())
        })
    }

    proptest! {
        #[test]
        fn p4_matches_the_twelfth_birthday_formulation(
            birth in any_date(1901, 2100),
            days_after in 0i64..(20 * 366),
        ) {
            let entry = entry_by_twelfth_birthday(birth);
            prop_assert_eq!(junior_high_entry(birth), Some(entry));
            let today = birth + time::Duration::days(days_after);
            prop_assert_eq!(eligible_for_web_service(birth, today), today >= entry);
        }
    }
}
