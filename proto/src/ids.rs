//! Validated identifiers that cross service boundaries. Each has one constructor that checks
//! it, so past the edge a value of the type is valid (STYLE.md "Validate on construction").

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("unknown branch: {0}")]
    UnknownBranch(String),
    #[error("a card number has 7 digits")]
    InvalidCardNumber,
    #[error("a barcode is 1-32 ASCII letters, digits or hyphens")]
    InvalidBarcode,
    #[error("a title id is a UUID")]
    InvalidTitleId,
}

/// Rule B1: the three branches. Every item has a home branch among them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Branch {
    Kitsuki,
    Yamaga,
    Ota,
}

impl Branch {
    pub const ALL: [Branch; 3] = [Branch::Kitsuki, Branch::Yamaga, Branch::Ota];

    /// The code used in URLs, events and the database.
    pub fn code(self) -> &'static str {
        match self {
            Branch::Kitsuki => "kitsuki",
            Branch::Yamaga => "yamaga",
            Branch::Ota => "ota",
        }
    }

    /// The name a patron reads (rule B1).
    pub fn name_ja(self) -> &'static str {
        match self {
            Branch::Kitsuki => "杵築市立図書館",
            Branch::Yamaga => "山香図書室",
            Branch::Ota => "大田図書室",
        }
    }

    pub fn parse(s: &str) -> Result<Branch, IdError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kitsuki" => Ok(Branch::Kitsuki),
            "yamaga" => Ok(Branch::Yamaga),
            "ota" => Ok(Branch::Ota),
            other => Err(IdError::UnknownBranch(other.to_string())),
        }
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Branch {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Branch::parse(s)
    }
}

/// Rule P1: a patron card number is 7 digits, entered without the hyphen. Input is
/// normalised first (full-width digits, hyphens, spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn parse(input: &str) -> Result<CardNumber, IdError> {
        // NFKC folds full-width digits and the full-width hyphen-minus; the other dashes a
        // phone keyboard offers are dropped like the ASCII hyphen.
        let digits: String = input
            .nfkc()
            .filter(|c| !c.is_whitespace() && !is_dash(*c))
            .collect();
        if digits.len() == 7 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(CardNumber(digits))
        } else {
            Err(IdError::InvalidCardNumber)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
            | '\u{30FC}'
            | '\u{FF70}'
    )
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Rule M1: a barcode is 1-32 ASCII letters, digits or hyphens, upper-cased on input, unique
/// across the three branches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Barcode(String);

impl Barcode {
    pub fn parse(input: &str) -> Result<Barcode, IdError> {
        let s: String = input.trim().nfkc().collect::<String>().to_ascii_uppercase();
        let ok = (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Barcode(s))
        } else {
            Err(IdError::InvalidBarcode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Barcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A title (bibliographic record) id: a UUID in its lowercase hyphenated form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TitleId(String);

impl TitleId {
    pub fn parse(input: &str) -> Result<TitleId, IdError> {
        let s = input.trim().to_ascii_lowercase();
        let b = s.as_bytes();
        let shape = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        if shape {
            Ok(TitleId(s))
        } else {
            Err(IdError::InvalidTitleId)
        }
    }

    /// Wraps a freshly generated UUID string.
    pub fn from_uuid_string(s: String) -> TitleId {
        TitleId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TitleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn card_number_p1_accepts_full_width_digits_hyphen_and_spaces() {
        assert_eq!(
            CardNumber::parse("１２３-４５６７").unwrap().as_str(),
            "1234567"
        );
        assert_eq!(CardNumber::parse(" 123 4567 ").unwrap().as_str(), "1234567");
        assert_eq!(CardNumber::parse("123ー4567").unwrap().as_str(), "1234567");
        assert_eq!(CardNumber::parse("1234567").unwrap().as_str(), "1234567");
    }

    #[test]
    fn card_number_p1_refuses_anything_not_seven_digits() {
        for bad in [
            "",
            "123456",
            "12345678",
            "12a4567",
            "１２３４５６",
            "1234567x",
            "٣٤٥٦٧٨٩",
        ] {
            assert_eq!(
                CardNumber::parse(bad),
                Err(IdError::InvalidCardNumber),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn card_number_p1_any_seven_digits_round_trip(n in 0u32..10_000_000) {
            let s = format!("{n:07}");
            prop_assert_eq!(CardNumber::parse(&s).unwrap().to_string(), s.clone());
            let hyphen = format!("{}-{}", &s[..3], &s[3..]);
            prop_assert_eq!(CardNumber::parse(&hyphen).unwrap().to_string(), s.clone());
            let wide: String = s.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap()).collect();
            prop_assert_eq!(CardNumber::parse(&wide).unwrap().to_string(), s.clone());
        }

        #[test]
        fn barcode_m1_valid_chars_upper_cased(s in "[A-Za-z0-9-]{1,32}") {
            prop_assert_eq!(Barcode::parse(&s).unwrap().to_string(), s.to_ascii_uppercase());
        }

        #[test]
        fn barcode_m1_refuses_other_chars(s in "[A-Za-z0-9]{0,10}[ _/.あ][A-Za-z0-9]{0,10}") {
            let wrapped = format!("X{}X", s);
            prop_assert!(Barcode::parse(&wrapped).is_err());
        }
    }

    #[test]
    fn barcode_m1_length_limits() {
        assert!(Barcode::parse("").is_err());
        assert!(Barcode::parse(&"A".repeat(33)).is_err());
        assert_eq!(Barcode::parse("ｋｔ-００１").unwrap().as_str(), "KT-001");
    }

    #[test]
    fn branch_b1_three_branches_with_names() {
        assert_eq!(Branch::ALL.len(), 3);
        for b in Branch::ALL {
            assert_eq!(Branch::parse(b.code()).unwrap(), b);
        }
        assert_eq!(Branch::Yamaga.name_ja(), "山香図書室");
        assert!(Branch::parse("oita").is_err());
    }

    #[test]
    fn title_id_is_a_uuid() {
        let id = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";
        assert_eq!(TitleId::parse(&id.to_uppercase()).unwrap().as_str(), id);
        assert!(TitleId::parse("not-a-uuid").is_err());
        assert!(TitleId::parse("0192f1c2x7a5e-7c3b-9d1e-0123456789ab").is_err());
    }
}
