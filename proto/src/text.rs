//! The one check of free text that crosses a service boundary (a title, a name, an
//! address, a call number): what characters it may hold and how long it may be. The
//! services' gRPC handlers run it on every text field before anything is stored, so a
//! direct gRPC caller is refused as the gateway's callers are, with the same codes on
//! PostgreSQL and SQLite: PostgreSQL's `text` cannot store NUL (an insert would fail with
//! a 500) while SQLite stores it silently, and neither should hold a control character
//! that no screen or slip can show. The limits are in [`limits`] (API.md "Text fields").
//!
//! Passwords are not text in this sense (they are hashed, never stored or shown) and have
//! their own rule (P10).

use crate::error::{ErrorCode, ServiceError};

/// The longest value of each text field, in characters (Unicode scalar values, so a
/// Japanese character counts one). API.md "Text fields" lists the same numbers.
pub mod limits {
    /// 書名 and its reading (ヨミ); MARC titles with their subtitles stay well under it.
    pub const TITLE: usize = 1_000;
    pub const AUTHOR: usize = 1_000;
    pub const PUBLISHER: usize = 500;
    /// The statement of responsibility (責任表示) as a record gives it.
    pub const RESPONSIBILITY: usize = 1_000;
    /// An NDC class number (`913.6`, `289.1`); editions and marks beyond it are cut.
    pub const NDC: usize = 20;
    /// Each extra searchable text of a title (romanised title, other readings).
    pub const SEARCH_ALIAS: usize = 1_000;
    /// How many extra searchable texts a title may have.
    pub const SEARCH_ALIASES: usize = 50;
    /// Where a record came from (`marc21:<001>`).
    pub const SOURCE_ID: usize = 200;
    /// 請求記号 of an item.
    pub const CALL_NUMBER: usize = 100;
    /// A patron's name and its reading (ふりがな).
    pub const PERSON_NAME: usize = 100;
    /// An email address (RFC 5321's longest forward path).
    pub const EMAIL: usize = 254;
    /// A staff member's user name.
    pub const USERNAME: usize = 64;
    /// The reason staff give when they reject a hold (H5), sent to the patron in the mail.
    pub const REASON: usize = 500;
}

/// Whether `c` may appear in a one-line text field: no control character (C0, DEL, C1;
/// tab and line breaks included: none of our fields is multi-line), no NUL, no Unicode
/// noncharacter (U+FDD0..U+FDEF, U+xxFFFE/U+xxFFFF), no line or paragraph separator.
pub fn allowed_in_line(c: char) -> bool {
    let u = u32::from(c);
    !(c.is_control()
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
        || c == '\u{2028}'
        || c == '\u{2029}')
}

/// Checks one text field: 400 `invalid_text` if it holds a character of
/// [`allowed_in_line`]'s refusals, 400 `text_too_long` if it is longer than `max_chars`.
/// The detail names the field (never echoes the value).
pub fn check(field: &str, value: &str, max_chars: usize) -> Result<(), ServiceError> {
    if let Some(at) = value.chars().position(|c| !allowed_in_line(c)) {
        return Err(ServiceError::with_detail(
            ErrorCode::InvalidText,
            format!("{field}: character {} is not allowed", at + 1),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(ServiceError::with_detail(
            ErrorCode::TextTooLong,
            format!("{field}: at most {max_chars} characters"),
        ));
    }
    Ok(())
}

/// [`check`] of each of `values` (a repeated field), and at most `max_items` of them.
pub fn check_each(
    field: &str,
    values: &[String],
    max_chars: usize,
    max_items: usize,
) -> Result<(), ServiceError> {
    if values.len() > max_items {
        return Err(ServiceError::with_detail(
            ErrorCode::TextTooLong,
            format!("{field}: at most {max_items} entries"),
        ));
    }
    values.iter().try_for_each(|v| check(field, v, max_chars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_japanese_and_latin_text_passes() {
        for ok in [
            "",
            "坊っちゃん",
            "ボッチャン",
            "夏目 漱石",
            "Ｆｕｌｌ　ｗｉｄｔｈ",
            "Café — «l'été» №5 ½",
            "𠮷野家",
            "🦊",
            "a\u{0301}",
            "913.6/ナ",
        ] {
            assert_eq!(check("title", ok, limits::TITLE), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn nul_and_control_characters_are_invalid_text() {
        for bad in [
            "a\0b",
            "\0",
            "tab\there",
            "line\nbreak",
            "cr\r",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
            "c1\u{9f}",
            "\u{fffe}",
            "\u{ffff}",
            "\u{fdd0}",
            "\u{1fffe}",
            "\u{10ffff}",
            "sep\u{2028}",
            "sep\u{2029}",
        ] {
            let err = check("title", bad, limits::TITLE).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidText, "{bad:?}");
            assert!(err.detail.unwrap().starts_with("title: "), "{bad:?}");
        }
    }

    #[test]
    fn the_detail_names_the_field_and_never_echoes_the_value() {
        let err = check("author", "secret\0", limits::AUTHOR).unwrap_err();
        let detail = err.detail.unwrap();
        assert_eq!(detail, "author: character 7 is not allowed");
        assert!(!detail.contains("secret"));
    }

    #[test]
    fn length_is_counted_in_characters_up_to_the_limit() {
        let at_limit = "字".repeat(limits::TITLE);
        assert_eq!(check("title", &at_limit, limits::TITLE), Ok(()));
        let over = "字".repeat(limits::TITLE + 1);
        let err = check("title", &over, limits::TITLE).unwrap_err();
        assert_eq!(err.code, ErrorCode::TextTooLong);
        assert_eq!(err.detail.unwrap(), "title: at most 1000 characters");
        // A megabyte of ASCII, as an attacker would send.
        let huge = "a".repeat(1 << 20);
        assert_eq!(
            check("title", &huge, limits::TITLE).unwrap_err().code,
            ErrorCode::TextTooLong
        );
        // A character refused wins over the length: the caller fixes that first.
        let both = format!("{over}\0");
        assert_eq!(
            check("title", &both, limits::TITLE).unwrap_err().code,
            ErrorCode::InvalidText
        );
    }

    #[test]
    fn repeated_fields_are_checked_each_and_counted() {
        let ok = vec!["Botchan".to_string(), "ぼっちゃん".to_string()];
        assert_eq!(check_each("search_aliases", &ok, 10, 2), Ok(()));
        let bad = vec!["Botchan".to_string(), "x\0".to_string()];
        assert_eq!(
            check_each("search_aliases", &bad, 10, 2).unwrap_err().code,
            ErrorCode::InvalidText
        );
        let many = vec![String::new(); 3];
        assert_eq!(
            check_each("search_aliases", &many, 10, 2).unwrap_err().code,
            ErrorCode::TextTooLong
        );
    }
}
