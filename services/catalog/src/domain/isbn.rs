//! ISBNs: parsing the forms found in catalogue records and queries into one canonical value.
//!
//! Records carry ISBNs as `978-4-10-101013-7`, `4-10-101013-7`, `９７８４１０１０１０１３７`, or
//! with the price after them as in JAPAN/MARC (`978-4-10-101013-7 : 1500円`). An [`Isbn`] is
//! always the 13 digits of the ISBN-13, check digit verified, so two spellings of the same book
//! compare equal and the search index can match it exactly.
//!
//! The error kinds follow python-stdnum's (`InvalidFormat`, `InvalidLength`,
//! `InvalidChecksum`, `InvalidComponent`) and are checked in the same order, so its test
//! vectors apply unchanged.

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

/// A valid ISBN, held as the 13 digits of its ISBN-13 form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Isbn(String);

/// Why a text is not an ISBN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsbnError {
    /// Neither 10 nor 13 digits.
    #[error("an isbn has 10 or 13 digits, this has {found}")]
    InvalidLength {
        /// How many digits (and check characters) were found.
        found: usize,
    },
    /// A character that cannot be in an ISBN where it stands (an `X` anywhere but at the end
    /// of an ISBN-10, or no number at all).
    #[error("not an isbn: unexpected character")]
    InvalidFormat,
    /// The check digit does not match the other digits.
    #[error("the isbn check digit does not match")]
    InvalidChecksum,
    /// A well-formed EAN-13 that is not an ISBN (prefix other than 978 or 979).
    #[error("an isbn-13 starts with 978 or 979")]
    InvalidComponent,
}

impl Isbn {
    /// Parses the first ISBN in `input`, ignoring what follows it (a price, `(set)`, a
    /// qualifier), as found in catalogue records.
    ///
    /// Accepts ISBN-10 and ISBN-13, an optional `ISBN`, `ISBN-13:` or `ISBN10` label, hyphens,
    /// dashes and spaces between groups, full-width digits and a lowercase `x`.
    pub fn parse(input: &str) -> Result<Isbn, IsbnError> {
        let candidate = Candidate::scan(input)?;
        Isbn::from_compact(&candidate.isbn_part())
    }

    /// Like [`Isbn::parse`], but refuses anything after the number: for input that should be
    /// an ISBN and nothing else, such as a search box deciding whether it holds an ISBN.
    pub fn parse_exact(input: &str) -> Result<Isbn, IsbnError> {
        let candidate = Candidate::scan(input)?;
        if !candidate.rest_is_blank {
            return Err(IsbnError::InvalidFormat);
        }
        Isbn::from_compact(&candidate.compact())
    }

    /// The 13 digits, without hyphens.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISBN-10 form, for 978 ISBNs (979 ones have none).
    pub fn to_isbn10(&self) -> Option<String> {
        let body = self.0.strip_prefix("978")?.get(..9)?;
        let mut isbn10 = body.to_owned();
        isbn10.push(isbn10_check_digit(body.as_bytes()));
        Some(isbn10)
    }

    /// Validates a compact candidate (digits and `X` only) in python-stdnum's order: format,
    /// length, check digit, prefix.
    fn from_compact(compact: &str) -> Result<Isbn, IsbnError> {
        let bytes = compact.as_bytes();
        let Some((&last, body)) = bytes.split_last() else {
            return Err(IsbnError::InvalidLength { found: 0 });
        };
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(IsbnError::InvalidFormat);
        }
        match bytes.len() {
            10 => {
                if isbn10_check_digit(body) != char::from(last) {
                    return Err(IsbnError::InvalidChecksum);
                }
                let mut isbn13 = String::with_capacity(13);
                isbn13.push_str("978");
                isbn13.push_str(&compact[..9]);
                isbn13.push(ean13_check_digit(isbn13.as_bytes()));
                Ok(Isbn(isbn13))
            }
            13 => {
                if !last.is_ascii_digit() {
                    return Err(IsbnError::InvalidFormat);
                }
                if ean13_check_digit(body) != char::from(last) {
                    return Err(IsbnError::InvalidChecksum);
                }
                if !(compact.starts_with("978") || compact.starts_with("979")) {
                    return Err(IsbnError::InvalidComponent);
                }
                Ok(Isbn(compact.to_owned()))
            }
            found => Err(IsbnError::InvalidLength { found }),
        }
    }
}

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Strict, like [`Isbn::parse_exact`]: `"9784101010137 : 1500円".parse::<Isbn>()` is an error.
impl FromStr for Isbn {
    type Err = IsbnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isbn::parse_exact(s)
    }
}

impl AsRef<str> for Isbn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// ISBN-10 check character for 9 ASCII digits: weights 10..2, modulo 11, 10 written `X`.
fn isbn10_check_digit(digits: &[u8]) -> char {
    let sum: u32 = digits
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match (11 - sum % 11) % 11 {
        10 => 'X',
        n => char::from_digit(n, 10).unwrap_or('X'),
    }
}

/// EAN-13 check digit for 12 ASCII digits: weights 1, 3, 1, 3, … modulo 10.
fn ean13_check_digit(digits: &[u8]) -> char {
    let sum: u32 = digits
        .iter()
        .zip([1, 3].into_iter().cycle())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0')
}

/// The ISBN-looking run at the start of an input: its space-separated chunks, each reduced to
/// digits and `X`.
struct Candidate {
    chunks: Vec<String>,
    rest_is_blank: bool,
}

impl Candidate {
    fn scan(input: &str) -> Result<Candidate, IsbnError> {
        // NFKC: full-width digits, `Ｘ`, `－` and the ideographic space become ASCII.
        let text: String = input.nfkc().collect();
        let text = strip_label(text.trim_start());
        let Some(first) = text.chars().next() else {
            return Err(IsbnError::InvalidLength { found: 0 });
        };
        if !first.is_ascii_digit() {
            return Err(IsbnError::InvalidFormat);
        }
        let mut chunks = vec![String::new()];
        let mut end = text.len();
        for (i, c) in text.char_indices() {
            match c {
                '0'..='9' | 'X' | 'x' => {
                    if let Some(chunk) = chunks.last_mut() {
                        chunk.push(c.to_ascii_uppercase());
                    }
                }
                '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
                ' ' => {
                    if chunks.last().is_some_and(|chunk| !chunk.is_empty()) {
                        chunks.push(String::new());
                    }
                }
                _ => {
                    end = i;
                    break;
                }
            }
        }
        chunks.retain(|chunk| !chunk.is_empty());
        Ok(Candidate {
            chunks,
            rest_is_blank: text[end..].trim().is_empty(),
        })
    }

    fn compact(&self) -> String {
        self.chunks.concat()
    }

    /// The part of the run that is the ISBN: all of it when that has an ISBN's length;
    /// otherwise the longest leading chunks that make 13, or else 10, characters, because a
    /// price or a count may follow the number after a space (`0-19-963209-X 1500`).
    fn isbn_part(&self) -> String {
        let whole = self.compact();
        if matches!(whole.len(), 10 | 13) {
            return whole;
        }
        let mut lengths = Vec::with_capacity(self.chunks.len());
        let mut total = 0;
        for chunk in &self.chunks {
            total += chunk.len();
            lengths.push(total);
        }
        [13, 10]
            .iter()
            .find_map(|wanted| lengths.iter().position(|len| len == wanted))
            .map(|last| self.chunks[..=last].concat())
            .unwrap_or(whole)
    }
}

/// Strips a leading `ISBN`, `ISBN-13`, `ISBN10:` … label and the separator after it.
fn strip_label(text: &str) -> &str {
    let Some(label) = text.get(..4) else {
        return text;
    };
    if !label.eq_ignore_ascii_case("isbn") {
        return text;
    }
    let mut rest = &text[4..];
    for kind in ["-13", "-10", "13", "10"] {
        if let Some(after) = rest.strip_prefix(kind)
            && after.starts_with([':', ' '])
        {
            rest = after;
            break;
        }
    }
    rest.trim_start_matches([':', ' ', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(s: &str) -> String {
        Isbn::parse(s)
            .map(|isbn| isbn.to_string())
            .unwrap_or_else(|e| format!("{e:?}"))
    }

    #[test]
    fn isbn13_with_hyphens_parses_to_digits() {
        assert_eq!(parsed("978-4-10-101013-7"), "9784101010137");
    }

    #[test]
    fn isbn10_is_converted_to_isbn13() {
        assert_eq!(parsed("4-10-101013-7"), "9784101010137");
        assert_eq!(parsed("0-19-963209-X"), "9780199632091");
        assert_eq!(parsed("0-19-963209-x"), "9780199632091");
        assert_eq!(parsed("019963209X"), "9780199632091");
    }

    #[test]
    fn full_width_digits_and_labels_are_accepted() {
        assert_eq!(
            parsed("９７８－４－１０－１０１０１３－７"),
            "9784101010137"
        );
        assert_eq!(parsed("ISBN 978-4-10-101013-7"), "9784101010137");
        assert_eq!(parsed("isbn-13: 978-4-10-101013-7"), "9784101010137");
        assert_eq!(parsed("ISBN10:0-19-963209-X"), "9780199632091");
        assert_eq!(parsed("ISBN-4-10-101013-7"), "9784101010137");
        assert_eq!(parsed("ISBN:9784101010137"), "9784101010137");
    }

    #[test]
    fn japan_marc_price_after_the_number_is_ignored() {
        assert_eq!(parsed("978-4-10-101013-7 : 1500円"), "9784101010137");
        assert_eq!(parsed("978-4-10-101013-7 1500円"), "9784101010137");
        assert_eq!(parsed("0-19-963209-X 1500"), "9780199632091");
        assert_eq!(parsed("4-87188-143-1 (set)"), "9784871881432");
    }

    #[test]
    fn exact_parse_refuses_trailing_text() {
        assert_eq!(
            Isbn::parse_exact("978-4-10-101013-7 こころ"),
            Err(IsbnError::InvalidFormat)
        );
        assert_eq!(
            Isbn::parse_exact(" 978 4 10 101013 7 ").map(|i| i.to_string()),
            Ok("9784101010137".to_owned())
        );
        assert!(Isbn::parse_exact("9784101010137 1500").is_err());
        assert!("9784101010137 : 1500円".parse::<Isbn>().is_err());
        assert_eq!(
            "978-4-10-101013-7".parse::<Isbn>().map(|i| i.to_string()),
            Ok("9784101010137".to_owned())
        );
    }

    #[test]
    fn errors_follow_stdnum_kinds() {
        assert_eq!(Isbn::parse(""), Err(IsbnError::InvalidLength { found: 0 }));
        assert_eq!(Isbn::parse("こころ"), Err(IsbnError::InvalidFormat));
        assert_eq!(
            Isbn::parse("1984"),
            Err(IsbnError::InvalidLength { found: 4 })
        );
        assert_eq!(Isbn::parse("08515x-629-2"), Err(IsbnError::InvalidFormat));
        assert_eq!(Isbn::parse("085152-629-1"), Err(IsbnError::InvalidChecksum));
        assert_eq!(Isbn::parse("978-902453827X"), Err(IsbnError::InvalidFormat));
        assert_eq!(
            Isbn::parse("978-902453827"),
            Err(IsbnError::InvalidLength { found: 12 })
        );
        assert_eq!(
            Isbn::parse("7501031311309"),
            Err(IsbnError::InvalidComponent)
        );
    }

    #[test]
    fn isbn10_form_exists_only_for_978() {
        let isbn = Isbn::parse("9784101010137").unwrap();
        assert_eq!(isbn.to_isbn10().as_deref(), Some("4101010137"));
        let isbn = Isbn::parse("9780199632091").unwrap();
        assert_eq!(isbn.to_isbn10().as_deref(), Some("019963209X"));
        let isbn = Isbn::parse("979-10-90636-07-1").unwrap();
        assert_eq!(isbn.to_isbn10(), None);
    }

    fn digits(n: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(0u8..10, n)
            .prop_map(|ds| ds.iter().map(|d| char::from(b'0' + d)).collect())
    }

    fn with_ean_check(body: &str) -> String {
        format!("{body}{}", ean13_check_digit(body.as_bytes()))
    }

    proptest! {
        #[test]
        fn any_isbn13_body_with_its_check_digit_parses(
            prefix in prop::sample::select(vec!["978", "979"]),
            rest in digits(9),
        ) {
            let isbn = with_ean_check(&format!("{prefix}{rest}"));
            prop_assert_eq!(Isbn::parse(&isbn).map(|i| i.to_string()), Ok(isbn));
        }

        #[test]
        fn a_valid_ean13_outside_978_and_979_is_not_an_isbn(body in digits(12)) {
            prop_assume!(!body.starts_with("978") && !body.starts_with("979"));
            prop_assert_eq!(
                Isbn::parse(&with_ean_check(&body)),
                Err(IsbnError::InvalidComponent)
            );
        }

        #[test]
        fn changing_one_digit_of_an_isbn13_fails_the_checksum(
            prefix in prop::sample::select(vec!["978", "979"]),
            rest in digits(9),
            position in 0usize..13,
            delta in 1u8..10,
        ) {
            let mut isbn = with_ean_check(&format!("{prefix}{rest}")).into_bytes();
            isbn[position] = b'0' + (isbn[position] - b'0' + delta) % 10;
            let isbn = String::from_utf8(isbn).unwrap();
            prop_assert_eq!(Isbn::parse(&isbn), Err(IsbnError::InvalidChecksum));
        }

        #[test]
        fn any_isbn10_round_trips_through_isbn13(body in digits(9)) {
            let isbn10 = format!("{body}{}", isbn10_check_digit(body.as_bytes()));
            let isbn = Isbn::parse(&isbn10).unwrap();
            prop_assert!(isbn.as_str().starts_with("978"));
            prop_assert_eq!(isbn.to_isbn10(), Some(isbn10));
        }

        #[test]
        fn changing_one_digit_of_an_isbn10_fails_the_checksum(
            body in digits(9),
            position in 0usize..9,
            delta in 1u8..10,
        ) {
            let mut isbn10 = format!("{body}{}", isbn10_check_digit(body.as_bytes())).into_bytes();
            isbn10[position] = b'0' + (isbn10[position] - b'0' + delta) % 10;
            let isbn10 = String::from_utf8(isbn10).unwrap();
            prop_assert_eq!(Isbn::parse(&isbn10), Err(IsbnError::InvalidChecksum));
        }
    }
}
