//! Rule P10: a new password has at least 8 characters and is neither the card number nor
//! the birth date in any common form. Forms are compared after NFKC (full-width digits,
//! square era signs such as ㍻) and with separators stripped, so `2010/04/02`,
//! `２０１０－０４－０２`, `H22.4.2` and `平成22年4月2日` are all the birth date 2 April 2010.

use std::collections::BTreeSet;

use kitsuki_proto::CardNumber;
use time::Date;
use time::macros::date;
use unicode_normalization::UnicodeNormalization;

/// Rule P10: fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The longest password accepted anywhere (a new one, at login, at a change), in bytes of
/// UTF-8: far beyond any real password, and it keeps a request from making the server hash
/// megabytes. Longer ones are refused with `password_too_long` before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// True when `password` is over [`MAX_PASSWORD_BYTES`].
pub fn too_long(password: &str) -> bool {
    password.len() > MAX_PASSWORD_BYTES
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    /// Only spaces.
    Blank,
    SameAsCardNumber,
    SameAsBirthDate,
}

/// Rule P10 for a patron's new password.
pub fn check_new_password(
    password: &str,
    card: &CardNumber,
    birth: Date,
) -> Result<(), PasswordProblem> {
    if too_long(password) {
        return Err(PasswordProblem::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if password.chars().all(char::is_whitespace) {
        return Err(PasswordProblem::Blank);
    }
    let folded = fold(password);
    if folded == card.as_str() {
        return Err(PasswordProblem::SameAsCardNumber);
    }
    if birth_date_forms(birth).contains(&folded) {
        return Err(PasswordProblem::SameAsBirthDate);
    }
    Ok(())
}

/// Separators people put into dates and numbers, after NFKC. 年月日 go too, so that
/// `平成22年4月2日` compares as `平成2242`.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || "-/.,_:'・、。年月日".contains(c)
        || matches!(
            c,
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}'
        )
}

/// NFKC, lower case, separators removed, repeated until nothing changes: removing a
/// separator can let its neighbours compose (`g¯` is `g`, a space and a combining macron
/// after NFKC, and `ḡ` once the space is gone).
pub fn fold(s: &str) -> String {
    let step = |s: &str| -> String {
        s.nfkc()
            .flat_map(char::to_lowercase)
            .filter(|c| !is_separator(*c))
            .collect()
    };
    let mut folded = step(s);
    // After the first round only compositions that a removal made possible are left.
    for _ in 0..4 {
        let again = step(&folded);
        if again == folded {
            break;
        }
        folded = again;
    }
    folded
}

/// A Japanese era: its first day, its romaji initial and its name.
struct Era {
    first_day: Date,
    initial: char,
    name: &'static str,
}

const ERAS: [Era; 5] = [
    Era {
        first_day: date!(2019 - 05 - 01),
        initial: 'r',
        name: "令和",
    },
    Era {
        first_day: date!(1989 - 01 - 08),
        initial: 'h',
        name: "平成",
    },
    Era {
        first_day: date!(1926 - 12 - 25),
        initial: 's',
        name: "昭和",
    },
    Era {
        first_day: date!(1912 - 07 - 30),
        initial: 't',
        name: "大正",
    },
    Era {
        first_day: date!(1868 - 10 - 23),
        initial: 'm',
        name: "明治",
    },
];

/// The era of a date and the year within it (1 = 元年), for dates from Meiji on.
pub fn japanese_era(d: Date) -> Option<(&'static str, char, i32)> {
    ERAS.iter()
        .find(|e| d >= e.first_day)
        .map(|e| (e.name, e.initial, d.year() - e.first_day.year() + 1))
}

/// Every common written form of a birth date, folded as [`fold`] folds a password:
/// YYYYMMDD, YYMMDD, MMDD, DDMMYYYY, MMDDYYYY with and without zero padding, and the
/// Japanese era forms (H22.4.2, H220402, 平成22年4月2日, 平成元年…, and the bare 22.4.2).
pub fn birth_date_forms(birth: Date) -> BTreeSet<String> {
    let (y, m, d) = (birth.year(), u8::from(birth.month()), birth.day());
    let months = [format!("{m:02}"), m.to_string()];
    let days = [format!("{d:02}"), d.to_string()];
    let yyyy = format!("{y:04}");
    let yy = format!("{:02}", y.rem_euclid(100));
    let mut forms = BTreeSet::new();
    for mm in &months {
        for dd in &days {
            forms.insert(format!("{yyyy}{mm}{dd}"));
            forms.insert(format!("{yy}{mm}{dd}"));
            forms.insert(format!("{mm}{dd}"));
            forms.insert(format!("{dd}{mm}{yyyy}"));
            forms.insert(format!("{mm}{dd}{yyyy}"));
            forms.insert(format!("{dd}{mm}{yy}"));
            forms.insert(format!("{mm}{dd}{yy}"));
        }
    }
    if let Some((name, initial, era_year)) = japanese_era(birth) {
        let mut years = vec![era_year.to_string(), format!("{era_year:02}")];
        if era_year == 1 {
            years.push("元".to_string());
        }
        let prefixes = [name.to_string(), initial.to_string(), String::new()];
        for prefix in &prefixes {
            for ey in &years {
                for mm in &months {
                    for dd in &days {
                        forms.insert(format!("{prefix}{ey}{mm}{dd}"));
                    }
                }
            }
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card() -> CardNumber {
        CardNumber::parse("1234567").unwrap()
    }

    const BIRTH: Date = date!(2010 - 04 - 02);

    #[test]
    fn p10_at_least_eight_characters() {
        assert_eq!(
            check_new_password("abcdefg", &card(), BIRTH),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(check_new_password("abcdefgh", &card(), BIRTH), Ok(()));
        // Characters, not bytes: eight kana are eight characters.
        assert_eq!(
            check_new_password("きつきとしょかん", &card(), BIRTH),
            Ok(())
        );
        assert_eq!(
            check_new_password("きつきとしょか", &card(), BIRTH),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            check_new_password("        ", &card(), BIRTH),
            Err(PasswordProblem::Blank)
        );
        assert_eq!(
            check_new_password(&"a".repeat(MAX_PASSWORD_BYTES + 1), &card(), BIRTH),
            Err(PasswordProblem::TooLong)
        );
        assert_eq!(
            check_new_password(&"a".repeat(MAX_PASSWORD_BYTES), &card(), BIRTH),
            Ok(())
        );
        // Bytes, not characters: 342 kana are 1,026 bytes.
        assert_eq!(
            check_new_password(&"あ".repeat(342), &card(), BIRTH),
            Err(PasswordProblem::TooLong)
        );
    }

    #[test]
    fn p10_not_the_card_number_in_any_writing() {
        for pw in [
            "123-4567",
            "１２３－４５６７",
            " 1234567 ",
            "123 4567",
            "123ー4567",
        ] {
            assert_eq!(
                check_new_password(pw, &card(), BIRTH),
                Err(PasswordProblem::SameAsCardNumber),
                "{pw:?}"
            );
        }
        // Containing the card number is not being it.
        assert_eq!(check_new_password("x1234567", &card(), BIRTH), Ok(()));
        assert_eq!(check_new_password("12345678", &card(), BIRTH), Ok(()));
    }

    #[test]
    fn p10_not_the_birth_date_in_western_forms() {
        for pw in [
            "20100402",
            "2010-04-02",
            "2010/04/02",
            "2010.04.02",
            "2010 04 02",
            "2010-4-2",
            "2010/4/2",
            "２０１０／０４／０２",
            "２０１０－０４－０２",
            "2010年4月2日",
            "2010年04月02日",
            "10-04-02",
            "100402",
            "02/04/2010",
            "04/02/2010",
            "02.04.2010",
            "4/2/2010",
            " 04-02 ",
        ] {
            let got = check_new_password(pw, &card(), BIRTH);
            assert!(
                got == Err(PasswordProblem::SameAsBirthDate)
                    || got == Err(PasswordProblem::TooShort),
                "{pw:?}: {got:?}"
            );
            assert!(birth_date_forms(BIRTH).contains(&fold(pw)), "{pw:?}");
        }
        assert_eq!(
            check_new_password("2010/04/02", &card(), BIRTH),
            Err(PasswordProblem::SameAsBirthDate)
        );
        assert_eq!(
            check_new_password("2010年4月2日", &card(), BIRTH),
            Err(PasswordProblem::SameAsBirthDate)
        );
        assert_eq!(
            check_new_password("10-04-02", &card(), BIRTH),
            Err(PasswordProblem::SameAsBirthDate)
        );
        assert_eq!(
            check_new_password("H22.4.2", &card(), BIRTH),
            Err(PasswordProblem::TooShort),
            "7 characters: refused by length first"
        );
    }

    #[test]
    fn p10_not_the_birth_date_in_japanese_era_forms() {
        // 2 April 2010 is 平成22年.
        for pw in [
            "H22.4.2",
            "H22.04.02",
            "h22/4/2",
            "H220402",
            "平成22年4月2日",
            "平成22年04月02日",
            "㍻22年4月2日",
            "平成２２年４月２日",
            "22.04.02",
            "Ｈ２２．４．２",
        ] {
            assert!(
                birth_date_forms(BIRTH).contains(&fold(pw)),
                "{pw:?} folds to {}",
                fold(pw)
            );
        }
        assert_eq!(
            check_new_password("平成22年04月02日", &card(), BIRTH),
            Err(PasswordProblem::SameAsBirthDate)
        );
        assert_eq!(
            check_new_password("H22.04.02", &card(), BIRTH),
            Err(PasswordProblem::SameAsBirthDate)
        );
        // The wrong era is not this birth date.
        assert!(!birth_date_forms(BIRTH).contains(&fold("S22.4.2")));
        assert!(!birth_date_forms(BIRTH).contains(&fold("令和22年4月2日")));
    }

    #[test]
    fn p10_era_boundaries_and_first_years() {
        assert_eq!(japanese_era(date!(1989 - 01 - 07)), Some(("昭和", 's', 64)));
        assert_eq!(japanese_era(date!(1989 - 01 - 08)), Some(("平成", 'h', 1)));
        assert_eq!(japanese_era(date!(2019 - 04 - 30)), Some(("平成", 'h', 31)));
        assert_eq!(japanese_era(date!(2019 - 05 - 01)), Some(("令和", 'r', 1)));
        assert_eq!(japanese_era(date!(1926 - 12 - 24)), Some(("大正", 't', 15)));
        assert_eq!(japanese_era(date!(1926 - 12 - 25)), Some(("昭和", 's', 1)));
        assert_eq!(japanese_era(date!(1912 - 07 - 29)), Some(("明治", 'm', 45)));
        assert_eq!(japanese_era(date!(1912 - 07 - 30)), Some(("大正", 't', 1)));
        assert_eq!(japanese_era(date!(1901 - 01 - 01)), Some(("明治", 'm', 34)));
        assert_eq!(japanese_era(date!(1868 - 10 - 22)), None);

        let gannen = birth_date_forms(date!(2019 - 05 - 01));
        for pw in [
            "令和元年5月1日",
            "R1.5.1",
            "R01.05.01",
            "令和1年5月1日",
            "㋿元年5月1日",
        ] {
            assert!(gannen.contains(&fold(pw)), "{pw:?} folds to {}", fold(pw));
        }
        let showa = birth_date_forms(date!(1975 - 11 - 23));
        for pw in ["S50.11.23", "昭和50年11月23日", "19751123", "751123"] {
            assert!(showa.contains(&fold(pw)), "{pw:?}");
        }
    }

    #[test]
    fn p10_other_dates_and_ordinary_passwords_pass() {
        for pw in [
            "20100403",
            "2011-04-02",
            "H23.4.2xx",
            "correct horse battery",
            "きつき図書館2026",
            "kitsuki-library",
        ] {
            assert_eq!(check_new_password(pw, &card(), BIRTH), Ok(()), "{pw:?}");
        }
    }

    proptest! {
        #[test]
        fn p10_every_separator_style_of_the_birth_date_is_refused(
            y in 1901i32..2026, ordinal in 1u16..=365,
            sep in prop::sample::select(vec!["-", "/", ".", " ", "－", "／", "．"]),
            pad in any::<bool>(),
        ) {
            let b = Date::from_ordinal_date(y, ordinal).unwrap();
            let (m, d) = (u8::from(b.month()), b.day());
            let pw = if pad {
                format!("{y}{sep}{m:02}{sep}{d:02}")
            } else {
                format!("{y}{sep}{m}{sep}{d}")
            };
            let c = CardNumber::parse("7654321").unwrap();
            let got = check_new_password(&pw, &c, b);
            prop_assert!(
                got == Err(PasswordProblem::SameAsBirthDate) || got == Err(PasswordProblem::TooShort),
                "{} gave {:?}", pw, got
            );
            let (name, initial, ey) = japanese_era(b).unwrap();
            let era = format!("{name}{ey}年{m}月{d}日");
            prop_assert!(birth_date_forms(b).contains(&fold(&era)));
            let era = format!("{}{ey}.{m}.{d}", initial.to_ascii_uppercase());
            prop_assert!(birth_date_forms(b).contains(&fold(&era)));
        }

        #[test]
        fn p10_fold_is_idempotent(s in "\\PC{0,20}") {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once);
        }
    }
}
