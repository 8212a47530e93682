//! The vocabulary of a catalogue search that the catalogue and the gateway share: the sort
//! orders (`sort=`), the NDC main classes a search is faceted and filtered by (with their
//! names), and publication decades. The catalogue decides with them; the gateway reads a
//! request with them and labels facets with them, so the two never disagree.

/// How the hits of a search are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SortOrder {
    /// Best match first; at equal score the newer edition, then the newer record. Without
    /// a query (every score 0): the newest records first, as a browse of new arrivals.
    #[default]
    Relevance,
    /// Latest publication year first (titles without one last), then the newer record.
    Newest,
    /// 五十音順: by the title's reading (kana order), titles without one after, by title.
    Reading,
}

impl SortOrder {
    /// Every order, in the order a page offers them.
    pub const ALL: [SortOrder; 3] = [SortOrder::Relevance, SortOrder::Newest, SortOrder::Reading];

    /// The name on the wire and in the API (`sort=`).
    pub fn code(self) -> &'static str {
        match self {
            SortOrder::Relevance => "relevance",
            SortOrder::Newest => "newest",
            SortOrder::Reading => "reading",
        }
    }

    /// The order of a code; the empty code (a request that names none) is relevance.
    pub fn parse(code: &str) -> Option<SortOrder> {
        match code {
            "" | "relevance" => Some(SortOrder::Relevance),
            "newest" => Some(SortOrder::Newest),
            "reading" => Some(SortOrder::Reading),
            _ => None,
        }
    }

    /// What a results page calls it.
    pub fn name_ja(self) -> &'static str {
        match self {
            SortOrder::Relevance => "適合度順",
            SortOrder::Newest => "出版年の新しい順",
            SortOrder::Reading => "五十音順",
        }
    }
}

/// The ten main classes (類) of NDC (日本十進分類法), first digit 0 to 9, in Japanese and
/// English, as the 新訂10版 names them.
pub const NDC_MAIN_CLASSES: [(&str, &str); 10] = [
    ("総記", "General works"),
    ("哲学", "Philosophy"),
    ("歴史", "History"),
    ("社会科学", "Social sciences"),
    ("自然科学", "Natural sciences"),
    ("技術", "Technology"),
    ("産業", "Industry"),
    ("芸術", "The arts"),
    ("言語", "Language"),
    ("文学", "Literature"),
];

/// The Japanese name of an NDC main class (`9` → `文学`).
pub fn ndc_class_name(class: u8) -> Option<&'static str> {
    NDC_MAIN_CLASSES.get(usize::from(class)).map(|(ja, _)| *ja)
}

/// The English name of an NDC main class (`9` → `Literature`).
pub fn ndc_class_name_en(class: u8) -> Option<&'static str> {
    NDC_MAIN_CLASSES.get(usize::from(class)).map(|(_, en)| *en)
}

/// An NDC main class as a request names it: one digit.
pub fn parse_ndc_class(text: &str) -> Option<u8> {
    match text.as_bytes() {
        [d @ b'0'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// Latest decade a search may be filtered by (a year is at most 9999).
pub const MAX_DECADE: i32 = 9990;

/// A decade as a request names it: its first year (`1990`), 0 to [`MAX_DECADE`].
pub fn parse_decade(text: &str) -> Option<i32> {
    let year: i32 = text.parse().ok()?;
    is_decade(year).then_some(year)
}

/// Whether a year starts a decade a search may be filtered by.
pub fn is_decade(year: i32) -> bool {
    (0..=MAX_DECADE).contains(&year) && year % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_codes_round_trip_and_empty_is_relevance() {
        for order in SortOrder::ALL {
            assert_eq!(SortOrder::parse(order.code()), Some(order));
            assert!(!order.name_ja().is_empty());
        }
        assert_eq!(SortOrder::parse(""), Some(SortOrder::Relevance));
        assert_eq!(SortOrder::parse("title"), None);
        assert_eq!(SortOrder::parse("Newest"), None);
    }

    #[test]
    fn classes_are_one_digit_with_names_in_both_languages() {
        for class in 0..10u8 {
            assert_eq!(parse_ndc_class(&class.to_string()), Some(class));
            assert!(ndc_class_name(class).is_some_and(|n| !n.is_empty()));
            assert!(ndc_class_name_en(class).is_some_and(|n| !n.is_empty()));
        }
        assert_eq!(ndc_class_name(9), Some("文学"));
        assert_eq!(ndc_class_name(10), None);
        for bad in ["", "10", "x", "9.1", "-1", "９"] {
            assert_eq!(parse_ndc_class(bad), None, "{bad}");
        }
    }

    #[test]
    fn decades_are_round_years_from_0_to_9990() {
        assert_eq!(parse_decade("1990"), Some(1990));
        assert_eq!(parse_decade("0"), Some(0));
        assert_eq!(parse_decade("9990"), Some(9990));
        for bad in ["1995", "10000", "-10", "", "199O", "2000.0"] {
            assert_eq!(parse_decade(bad), None, "{bad}");
        }
    }
}
