//! What staff enter at the counter when registering a patron (rules P1, P2, S2), checked
//! as plain values: names, birth date, the kind of identity document, and the card number
//! drawn for the new card.

use kitsuki_proto::CardNumber;
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

use super::email::{EmailAddress, EmailError, MailKind, MailPolicy};

/// Rule P2: the kind of identity document the staff checked. Its number is never asked
/// for nor stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdDocument {
    DrivingLicence,
    HealthInsurance,
    StudentCard,
    ResidenceCard,
    MyNumberCard,
    Passport,
    Other,
}

impl IdDocument {
    pub const ALL: [IdDocument; 7] = [
        IdDocument::DrivingLicence,
        IdDocument::HealthInsurance,
        IdDocument::StudentCard,
        IdDocument::ResidenceCard,
        IdDocument::MyNumberCard,
        IdDocument::Passport,
        IdDocument::Other,
    ];

    /// The code of patron.proto, the API and the database.
    pub fn code(self) -> &'static str {
        match self {
            IdDocument::DrivingLicence => "driving_licence",
            IdDocument::HealthInsurance => "health_insurance",
            IdDocument::StudentCard => "student_card",
            IdDocument::ResidenceCard => "residence_card",
            IdDocument::MyNumberCard => "my_number_card",
            IdDocument::Passport => "passport",
            IdDocument::Other => "other",
        }
    }

    /// The name on the library's application form.
    pub fn name_ja(self) -> &'static str {
        match self {
            IdDocument::DrivingLicence => "運転免許証",
            IdDocument::HealthInsurance => "保険証",
            IdDocument::StudentCard => "学生証",
            IdDocument::ResidenceCard => "住基カード・在留カード",
            IdDocument::MyNumberCard => "マイナンバーカード",
            IdDocument::Passport => "パスポート",
            IdDocument::Other => "その他",
        }
    }

    pub fn parse(s: &str) -> Option<IdDocument> {
        let s = s.trim().to_ascii_lowercase();
        IdDocument::ALL.into_iter().find(|d| d.code() == s)
    }
}

/// Longest name or reading accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Earliest accepted birth year is the one after this (the form says "after 1900").
pub const BIRTH_YEAR_AFTER: i32 = 1900;

/// Why a birth date was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthDateError {
    /// Not a calendar date written `YYYY-MM-DD`.
    Format,
    /// Today or later: nobody is registered before they are born.
    NotInThePast,
    /// In 1900 or before.
    TooEarly,
}

/// Parses a date written `YYYY-MM-DD` (full-width digits and hyphens accepted, as typed on
/// a Japanese keyboard). Nothing else: no time, no other separators, no era years.
pub fn parse_iso_date(input: &str) -> Option<Date> {
    let s: String = input.trim().nfkc().collect();
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i32 = s[0..4].parse().ok()?;
    let month: u8 = s[5..7].parse().ok()?;
    let day: u8 = s[8..10].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// A birth date as registered: `YYYY-MM-DD`, before `today` (library-local), after 1900.
pub fn parse_birth_date(input: &str, today: Date) -> Result<Date, BirthDateError> {
    let d = parse_iso_date(input).ok_or(BirthDateError::Format)?;
    if d.year() <= BIRTH_YEAR_AFTER {
        return Err(BirthDateError::TooEarly);
    }
    if d >= today {
        return Err(BirthDateError::NotInThePast);
    }
    Ok(d)
}

/// A name or its reading: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control
/// characters. Names are kept as written (NFKC would change some kanji people care about);
/// readings are NFKC-normalised so half-width katakana become full-width.
fn clean_name(input: &str, normalise: bool) -> Option<String> {
    let s: String = if normalise {
        input.nfkc().collect()
    } else {
        input.to_string()
    };
    let s = s.trim();
    let n = s.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&n) && !s.chars().any(char::is_control)).then(|| s.to_string())
}

/// The counter form as typed.
#[derive(Debug, Clone, Default)]
pub struct RegistrationForm {
    pub name: String,
    pub name_reading: String,
    pub birth_date: String,
    pub id_document: String,
    /// Empty for none.
    pub email: String,
}

/// A checked registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub name_reading: String,
    pub birth_date: Date,
    pub id_document: IdDocument,
    pub email: Option<EmailAddress>,
}

/// Why a registration was refused, field by field (the first problem found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    Name,
    NameReading,
    BirthDate(BirthDateError),
    IdDocument,
    Email(EmailError),
}

/// Checks a counter form (rules P1, P2, P4's birth date, P7 for an email given there).
pub fn validate_registration(
    form: &RegistrationForm,
    today: Date,
    policy: &MailPolicy,
) -> Result<Registration, RegistrationError> {
    let name = clean_name(&form.name, false).ok_or(RegistrationError::Name)?;
    let name_reading =
        clean_name(&form.name_reading, true).ok_or(RegistrationError::NameReading)?;
    let birth_date =
        parse_birth_date(&form.birth_date, today).map_err(RegistrationError::BirthDate)?;
    let id_document = IdDocument::parse(&form.id_document).ok_or(RegistrationError::IdDocument)?;
    let email = if form.email.trim().is_empty() {
        None
    } else {
        let address = EmailAddress::parse(&form.email).map_err(RegistrationError::Email)?;
        // rule P7: free webmail is refused at the counter as on the web; a carrier address
        // is fine (the staff tell the patron about domain-specified reception, P8).
        match policy.classify(&address) {
            Ok(MailKind::Ordinary | MailKind::Carrier) => Some(address),
            Err(e) => return Err(RegistrationError::Email(e)),
        }
    };
    Ok(Registration {
        name,
        name_reading,
        birth_date,
        id_document,
        email,
    })
}

/// First and last card numbers issued. Numbers start at 1000000 so that a printed or
/// spreadsheet-copied card never loses a leading zero; [`CardNumber`] still accepts any 7
/// digits typed in (rule P1).
pub const FIRST_CARD: u32 = 1_000_000;
pub const LAST_CARD: u32 = 9_999_999;

/// The card number for a uniformly random draw in `FIRST_CARD..=LAST_CARD` (values outside
/// are folded in). Numbers are random, not sequential, so that one card does not tell the
/// next (rule P13); the caller draws again when the number is taken.
pub fn card_from_draw(draw: u32) -> CardNumber {
    let span = LAST_CARD - FIRST_CARD + 1;
    let n = FIRST_CARD + draw % span;
    // n has exactly seven digits, which CardNumber always accepts.
    CardNumber::parse(&format!("{n:07}")).expect("seven digits are a card number")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 05 - 10);

    fn form() -> RegistrationForm {
        RegistrationForm {
            name: "杵築 花子".into(),
            name_reading: "キツキ ハナコ".into(),
            birth_date: "2010-04-02".into(),
            id_document: "health_insurance".into(),
            email: String::new(),
        }
    }

    #[test]
    fn p2_every_document_kind_round_trips_and_unknown_ones_are_refused() {
        for d in IdDocument::ALL {
            assert_eq!(IdDocument::parse(d.code()), Some(d));
            assert!(!d.name_ja().is_empty());
        }
        assert_eq!(
            IdDocument::parse(" Driving_Licence "),
            Some(IdDocument::DrivingLicence)
        );
        for bad in ["", "licence", "運転免許証", "123456789012"] {
            assert_eq!(IdDocument::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn p2_a_complete_form_is_accepted_without_any_document_number() {
        let r = validate_registration(&form(), TODAY, &MailPolicy::default()).unwrap();
        assert_eq!(r.name, "杵築 花子");
        assert_eq!(r.name_reading, "キツキ ハナコ");
        assert_eq!(r.birth_date, date!(2010 - 04 - 02));
        assert_eq!(r.id_document, IdDocument::HealthInsurance);
        assert_eq!(r.email, None);
    }

    #[test]
    fn p2_names_are_trimmed_and_readings_widened() {
        let mut f = form();
        f.name = "  山香 太郎 ".into();
        f.name_reading = "ﾔﾏｶﾞ ﾀﾛｳ".into();
        let r = validate_registration(&f, TODAY, &MailPolicy::default()).unwrap();
        assert_eq!(r.name, "山香 太郎");
        assert_eq!(r.name_reading, "ヤマガ タロウ");
    }

    #[test]
    fn p2_each_missing_or_bad_field_is_named() {
        let p = MailPolicy::default();
        let check = |f: RegistrationForm, want: RegistrationError| {
            assert_eq!(validate_registration(&f, TODAY, &p), Err(want));
        };
        check(
            RegistrationForm {
                name: "  ".into(),
                ..form()
            },
            RegistrationError::Name,
        );
        check(
            RegistrationForm {
                name: "あ".repeat(MAX_NAME_CHARS + 1),
                ..form()
            },
            RegistrationError::Name,
        );
        check(
            RegistrationForm {
                name: "a\u{0007}b".into(),
                ..form()
            },
            RegistrationError::Name,
        );
        check(
            RegistrationForm {
                name_reading: String::new(),
                ..form()
            },
            RegistrationError::NameReading,
        );
        check(
            RegistrationForm {
                birth_date: "2010/04/02".into(),
                ..form()
            },
            RegistrationError::BirthDate(BirthDateError::Format),
        );
        check(
            RegistrationForm {
                id_document: "my_number".into(),
                ..form()
            },
            RegistrationError::IdDocument,
        );
        check(
            RegistrationForm {
                email: "not an address".into(),
                ..form()
            },
            RegistrationError::Email(EmailError::Syntax),
        );
        check(
            RegistrationForm {
                email: "hanako@yahoo.co.jp".into(),
                ..form()
            },
            RegistrationError::Email(EmailError::FreeMail),
        );
        assert_eq!(
            RegistrationForm {
                name: "あ".repeat(MAX_NAME_CHARS),
                ..form()
            }
            .name
            .chars()
            .count(),
            MAX_NAME_CHARS
        );
        assert!(
            validate_registration(
                &RegistrationForm {
                    name: "あ".repeat(MAX_NAME_CHARS),
                    ..form()
                },
                TODAY,
                &p
            )
            .is_ok()
        );
    }

    #[test]
    fn p7_p8_an_email_at_the_counter_follows_the_web_rules() {
        let p = MailPolicy::default();
        let f = RegistrationForm {
            email: "Hanako@Example.JP".into(),
            ..form()
        };
        let r = validate_registration(&f, TODAY, &p).unwrap();
        assert_eq!(r.email.unwrap().as_str(), "Hanako@example.jp");
        let f = RegistrationForm {
            email: "hanako@docomo.ne.jp".into(),
            ..form()
        };
        assert!(
            validate_registration(&f, TODAY, &p)
                .unwrap()
                .email
                .is_some()
        );
    }

    #[test]
    fn birth_date_must_be_written_yyyy_mm_dd() {
        assert_eq!(parse_iso_date("2010-04-02"), Some(date!(2010 - 04 - 02)));
        assert_eq!(
            parse_iso_date(" ２０１０－０４－０２ "),
            Some(date!(2010 - 04 - 02))
        );
        assert_eq!(parse_iso_date("2012-02-29"), Some(date!(2012 - 02 - 29)));
        for bad in [
            "",
            "2010-4-2",
            "2010/04/02",
            "20100402",
            "2010-04-02T00:00",
            "2011-02-29",
            "2010-13-01",
            "2010-00-10",
            "2010-04-31",
            "H22-04-02",
            "+010-04-02",
            "2010-04-0２x",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn birth_date_is_in_the_past_and_after_1900() {
        assert_eq!(
            parse_birth_date("2026-05-09", TODAY),
            Ok(date!(2026 - 05 - 09))
        );
        assert_eq!(
            parse_birth_date("2026-05-10", TODAY),
            Err(BirthDateError::NotInThePast)
        );
        assert_eq!(
            parse_birth_date("2030-01-01", TODAY),
            Err(BirthDateError::NotInThePast)
        );
        assert_eq!(
            parse_birth_date("1901-01-01", TODAY),
            Ok(date!(1901 - 01 - 01))
        );
        assert_eq!(
            parse_birth_date("1900-12-31", TODAY),
            Err(BirthDateError::TooEarly)
        );
        assert_eq!(
            parse_birth_date("0001-01-01", TODAY),
            Err(BirthDateError::TooEarly)
        );
    }

    #[test]
    fn p1_drawn_cards_are_seven_digits_without_a_leading_zero() {
        assert_eq!(card_from_draw(0).as_str(), "1000000");
        assert_eq!(card_from_draw(8_999_999).as_str(), "9999999");
        assert_eq!(card_from_draw(9_000_000).as_str(), "1000000");
        assert_eq!(card_from_draw(u32::MAX).as_str().len(), 7);
    }

    proptest! {
        #[test]
        fn p1_any_draw_gives_a_valid_card(draw in any::<u32>()) {
            let card = card_from_draw(draw);
            prop_assert_eq!(card.as_str().len(), 7);
            prop_assert!(!card.as_str().starts_with('0'));
            prop_assert_eq!(CardNumber::parse(card.as_str()).unwrap(), card);
        }

        #[test]
        fn birth_dates_round_trip_through_their_written_form(
            y in 1901i32..2026, ordinal in 1u16..=365,
        ) {
            let d = Date::from_ordinal_date(y, ordinal).unwrap();
            let s = kitsuki_platform::clock::format_date(d);
            prop_assert_eq!(parse_birth_date(&s, TODAY), Ok(d));
        }
    }
}
