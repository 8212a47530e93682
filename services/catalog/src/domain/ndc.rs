//! NDC (日本十進分類法, Nippon Decimal Classification) class numbers: which texts are one,
//! and the names of the ten main classes, the first digit, by which a search is faceted.
//!
//! A class number is one to three digits, optionally a point and more digits (`913.6`,
//! `289.1`, `007.64`). Records write more around it: the edition in MARC 084 `$2 njb9` is
//! a subfield of its own, but JAPAN/MARC and hand-made records also carry `913.6/N`,
//! `913.6 (9版)` or full-width digits; [`class_in`] takes the number from the front of such
//! a text, and [`is_class_number`] is what the admin API accepts as given.

use unicode_normalization::UnicodeNormalization;

pub use kitsuki_proto::search::{
    NDC_MAIN_CLASSES as MAIN_CLASSES, ndc_class_name as main_class_name,
    ndc_class_name_en as main_class_name_en,
};

/// Whether `text` is a class number exactly: `^[0-9]{1,3}(\.[0-9]+)?$`.
pub fn is_class_number(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && whole.len() <= 3 && fraction.is_none_or(digits)
}

/// The class number at the front of a record's text (NFKC first, so full-width digits
/// count), or `None` where it does not start with one. A number of one or two digits is
/// kept as written: some records class a whole collection by its main class only.
pub fn class_in(text: &str) -> Option<String> {
    let text: String = text.nfkc().collect();
    let text = text.trim();
    let whole: String = text.chars().take_while(char::is_ascii_digit).collect();
    if whole.is_empty() || whole.len() > 3 {
        return None;
    }
    let rest = &text[whole.len()..];
    let fraction: String = rest
        .strip_prefix('.')
        .map(|r| r.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    if fraction.is_empty() {
        Some(whole)
    } else {
        Some(format!("{whole}.{fraction}"))
    }
}

/// The main class (first digit, 0 to 9) of a class number, or `None` for an empty or
/// malformed one.
pub fn main_class(class_number: &str) -> Option<u8> {
    if !is_class_number(class_number) {
        return None;
    }
    class_number.bytes().next().map(|b| b - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_numbers_are_one_to_three_digits_and_a_decimal_part() {
        for ok in ["9", "91", "913", "913.6", "007.64", "289.1"] {
            assert!(is_class_number(ok), "{ok}");
        }
        for bad in [
            "",
            "9134",
            "913.",
            ".6",
            "913.6a",
            "９１３",
            "913 .6",
            "-913",
            "913.6.1",
        ] {
            assert!(!is_class_number(bad), "{bad}");
        }
    }

    #[test]
    fn the_number_is_taken_from_the_front_of_a_records_text() {
        assert_eq!(class_in("913.6").as_deref(), Some("913.6"));
        assert_eq!(class_in(" ９１３．６/N ").as_deref(), Some("913.6"));
        assert_eq!(class_in("913.6 (9版)").as_deref(), Some("913.6"));
        assert_eq!(class_in("913/ナ").as_deref(), Some("913"));
        assert_eq!(class_in("913.").as_deref(), Some("913"));
        assert_eq!(class_in("K913"), None);
        assert_eq!(class_in("9130"), None);
        assert_eq!(class_in(""), None);
    }

    #[test]
    fn every_main_class_has_a_name_in_both_languages() {
        for class in 0..10u8 {
            assert!(main_class_name(class).is_some_and(|n| !n.is_empty()));
            assert!(main_class_name_en(class).is_some_and(|n| !n.is_empty()));
        }
        assert_eq!(main_class_name(10), None);
        assert_eq!(main_class("913.6"), Some(9));
        assert_eq!(main_class_name(9), Some("文学"));
        assert_eq!(main_class("007.64"), Some(0));
        assert_eq!(main_class_name(0), Some("総記"));
        assert_eq!(main_class(""), None);
        assert_eq!(main_class("x"), None);
    }
}
