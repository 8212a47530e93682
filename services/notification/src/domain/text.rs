//! How dates, instants and links are written in a mail: Japanese dates and times in the
//! library's zone (Asia/Tokyo), and link query values percent-encoded so that any token
//! survives a mail client's link detection.

use kitsuki_platform::clock::LIBRARY_OFFSET;
use time::{Date, OffsetDateTime, Weekday};

fn weekday_ja(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "月",
        Weekday::Tuesday => "火",
        Weekday::Wednesday => "水",
        Weekday::Thursday => "木",
        Weekday::Friday => "金",
        Weekday::Saturday => "土",
        Weekday::Sunday => "日",
    }
}

/// `2026年4月8日（水）`: a library-local date, such as the last day on the hold shelf.
pub fn japanese_date(d: Date) -> String {
    format!(
        "{}年{}月{}日（{}）",
        d.year(),
        u8::from(d.month()),
        d.day(),
        weekday_ja(d.weekday())
    )
}

/// `2026年4月3日（金）15時30分`, in library-local time (Asia/Tokyo has no daylight saving).
pub fn japanese_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(LIBRARY_OFFSET);
    format!(
        "{}{}時{:02}分",
        japanese_date(t.date()),
        t.hour(),
        t.minute()
    )
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved characters.
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<base>/<path>?token=<token>`, whether or not the configured base ends with `/`.
pub fn token_link(base: &str, path: &str, token: &str) -> String {
    format!(
        "{}/{}?token={}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/'),
        query_value(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn datetimes_are_written_in_tokyo_time_with_the_weekday() {
        // 2026-04-03 06:30 UTC is 15:30 on Friday in Tokyo.
        assert_eq!(
            japanese_datetime(datetime!(2026-04-03 06:30 UTC)),
            "2026年4月3日（金）15時30分"
        );
        // Just after midnight in Tokyo is still the previous day in UTC.
        assert_eq!(
            japanese_datetime(datetime!(2026-12-31 15:05 UTC)),
            "2027年1月1日（金）0時05分"
        );
    }

    #[test]
    fn dates_are_written_with_the_weekday() {
        use time::macros::date;
        assert_eq!(japanese_date(date!(2026 - 04 - 08)), "2026年4月8日（水）");
        assert_eq!(japanese_date(date!(2027 - 01 - 04)), "2027年1月4日（月）");
    }

    #[test]
    fn link_tokens_are_encoded_and_bases_joined_once() {
        assert_eq!(
            token_link("http://localhost:8080/", "/email/verify", "ab+c/d="),
            "http://localhost:8080/email/verify?token=ab%2Bc%2Fd%3D"
        );
        assert_eq!(
            token_link("https://lib.example", "password/reset", "0f9a"),
            "https://lib.example/password/reset?token=0f9a"
        );
    }
}
