//! The words the pages use for circulation's codes and dates: a hold's status as the
//! patron reads it (the guide's 仮予約・予約確定・…), where a checked-in item goes (rule
//! H7), branch names (rule B1) and library-local dates (Asia/Tokyo).

use kitsuki_platform::clock::{LIBRARY_OFFSET, parse_instant};
use kitsuki_proto::Branch;

/// A hold's status in words (API.md's `status`). `awaiting_notice` is the item on the
/// shelf before the ready mail went out: the guide warns that it cannot be lent yet (H8).
pub fn hold_status(status: &str) -> &'static str {
    match status {
        "provisional" => "仮予約",
        "confirmed" => "予約確定",
        "in_transit" => "搬送中",
        "awaiting_notice" => "用意中（お知らせ送信前）",
        "ready" => "用意できました",
        "fulfilled" => "貸出済",
        "cancelled" => "取消",
        "expired" => "期限切れ",
        "rejected" => "お受けできませんでした",
        _ => "確認中",
    }
}

/// The name of a branch code, or the code itself when it is not one of rule B1's.
pub fn branch_name(code: &str) -> String {
    Branch::parse(code)
        .map(|b| b.name_ja().to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// Where a checked-in item goes (rule H7), as the desk reads it in large letters:
/// 「配架」, 「この館の予約棚へ」, 「○○へ搬送」.
pub fn routing(routing: &str, to_branch: &str) -> String {
    match routing {
        "shelve" => "配架".to_string(),
        "hold_shelf" => "この館の予約棚へ".to_string(),
        "transit" if !to_branch.is_empty() => format!("{}へ搬送", branch_name(to_branch)),
        "transit" => "搬送".to_string(),
        other => other.to_string(),
    }
}

fn date_parts(date: &str) -> Option<(u32, u32, u32)> {
    let mut parts = date.trim().splitn(3, '-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some((y, m, d))
}

/// `2026-04-15` → 「2026年4月15日」; anything else as it came.
pub fn date(date: &str) -> String {
    match date_parts(date) {
        Some((y, m, d)) => format!("{y}年{m}月{d}日"),
        None => date.to_string(),
    }
}

/// Rule H9's last day on the hold shelf: `2026-04-15` → 「4月15日まで」.
pub fn keep_until(date: &str) -> String {
    match date_parts(date) {
        Some((_, m, d)) => format!("{m}月{d}日まで"),
        None => date.to_string(),
    }
}

/// An RFC 3339 instant as a library-local date and time: 「2026年4月1日 10:05」.
pub fn instant(at: &str) -> String {
    match parse_instant(at) {
        Some(t) => {
            let t = t.to_offset(LIBRARY_OFFSET);
            format!(
                "{}年{}月{}日 {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        None => at.to_string(),
    }
}

/// An RFC 3339 instant as a library-local date: 「2026年4月1日」.
pub fn instant_date(at: &str) -> String {
    match parse_instant(at) {
        Some(t) => {
            let t = t.to_offset(LIBRARY_OFFSET);
            format!("{}年{}月{}日", t.year(), u8::from(t.month()), t.day())
        }
        None => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hold_status_of_api_md_has_its_words() {
        for (code, words) in [
            ("provisional", "仮予約"),
            ("confirmed", "予約確定"),
            ("in_transit", "搬送中"),
            ("awaiting_notice", "用意中（お知らせ送信前）"),
            ("ready", "用意できました"),
            ("fulfilled", "貸出済"),
            ("cancelled", "取消"),
            ("expired", "期限切れ"),
            ("rejected", "お受けできませんでした"),
        ] {
            assert_eq!(hold_status(code), words);
        }
    }

    #[test]
    fn h7_routing_in_words() {
        assert_eq!(routing("shelve", ""), "配架");
        assert_eq!(routing("hold_shelf", ""), "この館の予約棚へ");
        assert_eq!(routing("transit", "ota"), "大田図書室へ搬送");
        assert_eq!(routing("transit", "kitsuki"), "杵築市立図書館へ搬送");
    }

    #[test]
    fn library_local_dates() {
        assert_eq!(date("2026-04-15"), "2026年4月15日");
        assert_eq!(keep_until("2026-04-08"), "4月8日まで");
        assert_eq!(keep_until("soon"), "soon");
        // 2026-03-31 23:30 UTC is 1 April in Kitsuki.
        assert_eq!(instant("2026-03-31T23:30:00.000000Z"), "2026年4月1日 08:30");
        assert_eq!(instant_date("2026-03-31T23:30:00Z"), "2026年4月1日");
    }
}
