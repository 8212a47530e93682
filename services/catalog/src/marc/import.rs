//! What a MARC 21 record means for the catalog: which title, author, statement of
//! responsibility and publisher to display, which forms only to search by, its NDC class
//! number, and what kind of material it is.
//!
//! The one judgement here is about 880 fields. At the Library of Congress the regular
//! fields are romanised and the 880 holds the original script, so the 880 is the one to
//! display. At the NDL (JAPAN/MARC, 003 `JTNDL`) the regular fields already hold the
//! original script and the 880 holds the kana reading. A record whose 245 is already
//! in CJK script is read the NDL way whoever made it, since romanisation never
//! produces kanji. The romanised 245 of a Library of Congress record in Japanese (008
//! language `jpn`) is the title's reading, spelt in kana (`domain::reading`).

use unicode_normalization::UnicodeNormalization;

use kitsuki_proto::text::limits;

use super::record::{DataField, MarcRecord};
use super::{ImportRecord, MaterialKind};
use crate::domain::ndc::class_in;
use crate::domain::reading::romanised_reading;
use crate::domain::text::is_han;

/// The language of the item (008/35-37), when the record has a fixed field long enough.
fn language(record: &MarcRecord) -> Option<&str> {
    record.control("008").and_then(|f| f.get(35..38))
}

/// Maps a record, or `None` when it has no title (no 245, nor an 880 standing for one).
pub fn to_import_record(record: &MarcRecord) -> Option<ImportRecord> {
    let title_field = record.data_field("245");
    let title_880 = match title_field {
        Some(f) => record.linked_880(f),
        None => record.first_880_for("245"),
    };
    let original_in_880 = record.control("003").map(str::trim) != Some("JTNDL")
        && !title_field.is_some_and(|f| has_cjk(&title_text(f)));

    let mut aliases = Vec::new();
    let mut title_reading = String::new();

    let regular_title = title_field.map(title_text).unwrap_or_default();
    let other_title = title_880.map(title_text).unwrap_or_default();
    let (title, display_title_field) = if original_in_880 && !other_title.is_empty() {
        // The romanised 245 of a Japanese record spells the title's reading (ALA-LC:
        // `Natsume Sōseki shū` → なつめ そうせき しゅう).
        if language(record) == Some("jpn")
            && let Some(reading) = romanised_reading(&regular_title)
        {
            title_reading = reading;
        }
        aliases.push(regular_title);
        (other_title, title_880)
    } else {
        if is_kana_reading(&other_title) {
            title_reading = other_title;
        } else {
            aliases.push(other_title);
        }
        (regular_title, title_field)
    };
    if title.is_empty() {
        return None;
    }

    // The statement of responsibility (245 $c) of the field the title is displayed from:
    // the 880 of a Library of Congress record spells the names as printed.
    let responsibility = display_title_field
        .and_then(|f| f.subfield('c'))
        .map(clean)
        .unwrap_or_default();

    let author = match ["100", "110", "111"]
        .iter()
        .find_map(|tag| record.data_field(tag))
    {
        Some(main) => {
            let regular = name_text(main);
            let other = record.linked_880(main).map(name_text).unwrap_or_default();
            if original_in_880 && !other.is_empty() {
                aliases.push(regular);
                other
            } else {
                aliases.push(other);
                regular
            }
        }
        // No main entry: the statement of responsibility, in the script of the title.
        None => responsibility.clone(),
    };

    let publisher = publication_field(record)
        .map(|field| {
            let regular = field.subfield('b').map(clean).unwrap_or_default();
            let other = record
                .linked_880(field)
                .and_then(|f| f.subfield('b'))
                .map(clean)
                .unwrap_or_default();
            if original_in_880 && !other.is_empty() {
                other
            } else {
                regular
            }
        })
        .unwrap_or_default();

    for variant in record.data_fields("246") {
        aliases.push(title_text(variant));
        if let Some(twin) = record.linked_880(variant) {
            aliases.push(title_text(twin));
        }
    }

    let mut seen = vec![title.clone(), author.clone()];
    aliases.retain(|a| {
        if a.is_empty() || seen.contains(a) {
            return false;
        }
        seen.push(a.clone());
        true
    });

    // A record longer than a field may be (a few Library of Congress titles with their
    // contents run past 1,000 characters) is stored cut to the limit rather than refused:
    // the title stays in the catalogue and findable by its beginning.
    aliases.truncate(limits::SEARCH_ALIASES);
    for a in &mut aliases {
        fit(a, limits::SEARCH_ALIAS);
    }
    let (mut title, mut title_reading, mut author, mut responsibility, mut publisher) =
        (title, title_reading, author, responsibility, publisher);
    fit(&mut title, limits::TITLE);
    fit(&mut title_reading, limits::TITLE);
    fit(&mut author, limits::AUTHOR);
    fit(&mut responsibility, limits::RESPONSIBILITY);
    fit(&mut publisher, limits::PUBLISHER);

    Some(ImportRecord {
        source_id: source_id(record),
        title,
        title_reading,
        author,
        responsibility,
        ndc: ndc(record),
        publisher,
        year: year(record),
        isbns: record
            .data_fields("020")
            .flat_map(|f| f.subfields_of('a'))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        kind: kind(&record.leader),
        aliases,
    })
}

/// Cuts `text` to at most `max` characters, the last one an ellipsis, when it is longer.
fn fit(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        let keep = text[..at]
            .char_indices()
            .nth(max.saturating_sub(1))
            .map_or(at, |(i, _)| i);
        text.truncate(keep);
        text.push('…');
    }
}

fn source_id(record: &MarcRecord) -> String {
    // Control characters too: some Library of Congress records end their 001 with a stray
    // subfield delimiter (0x1F), which no text field may hold.
    match record
        .control("001")
        .map(|s| s.trim_matches(|c: char| c.is_whitespace() || c.is_control()))
        .filter(|s| !s.is_empty())
    {
        Some(id) => format!("marc:{id}"),
        None => format!("marc-hash:{:016x}", record.content_hash()),
    }
}

/// The NDC class number of the first 084 that gives one in NDC (`$2` `njb/9`, as the NDL
/// and the Library of Congress write it, or `ndc10`), or empty. Other schemes in 084
/// (a local scheme, a Chinese classification) are not NDC numbers, whatever they look like.
fn ndc(record: &MarcRecord) -> String {
    record
        .data_fields("084")
        .filter(|f| {
            f.subfield('2').is_some_and(|scheme| {
                let scheme = scheme.trim().to_ascii_lowercase();
                scheme.starts_with("njb") || scheme.starts_with("ndc")
            })
        })
        .flat_map(|f| f.subfields_of('a'))
        .find_map(class_in)
        .filter(|class| class.len() <= limits::NDC)
        .unwrap_or_default()
}

/// 260, else the 264 for publication (second indicator 1), else any 264.
fn publication_field(record: &MarcRecord) -> Option<&DataField> {
    record
        .data_field("260")
        .or_else(|| record.data_fields("264").find(|f| f.ind2 == '1'))
        .or_else(|| record.data_field("264"))
}

/// Leader/06 (type of record) and /07 (bibliographic level).
fn kind(leader: &str) -> MaterialKind {
    let bytes = leader.as_bytes();
    match (bytes.get(6), bytes.get(7)) {
        (Some(b'a' | b't'), Some(b's')) => MaterialKind::Magazine,
        (Some(b'g' | b'i' | b'j' | b'k' | b'o' | b'r'), _) => MaterialKind::Av,
        // Text, and whatever else is lent like a book (scores, maps, mixed material).
        _ => MaterialKind::Book,
    }
}

/// 008/07-10 (Date 1) when it is a plain year, else the first year in the imprint.
fn year(record: &MarcRecord) -> Option<i32> {
    if let Some(date1) = record.control("008").and_then(|v| v.get(7..11))
        && date1.bytes().all(|b| b.is_ascii_digit())
    {
        return date1.parse().ok();
    }
    let imprint = publication_field(record)?;
    imprint.subfields_of('c').find_map(first_year).or_else(|| {
        record
            .linked_880(imprint)
            .and_then(|f| f.subfields_of('c').find_map(first_year))
    })
}

/// The first run of exactly four digits (ASCII or full-width), as in "Heisei 11 [1999]".
pub(crate) fn first_year(text: &str) -> Option<i32> {
    let mut run = 0;
    let mut value = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match digit(c) {
            Some(d) => {
                run += 1;
                value = value * 10 + d;
                let next_is_digit = chars.peek().copied().and_then(digit).is_some();
                if run == 4 && !next_is_digit {
                    return Some(value);
                }
                if run > 4 {
                    // Part of a longer number (a price, an ISBN): not a year.
                    value = 0;
                }
            }
            None => {
                run = 0;
                value = 0;
            }
        }
    }
    None
}

fn digit(c: char) -> Option<i32> {
    match c {
        '0'..='9' => Some(c as i32 - '0' as i32),
        '０'..='９' => Some(c as i32 - '０' as i32),
        _ => None,
    }
}

/// Title proper with remainder, number and name of part ($a $b $n $p), in record order.
fn title_text(field: &DataField) -> String {
    join_subfields(field, &['a', 'b', 'n', 'p'])
}

/// A heading's name: personal and meeting names by $a, corporate names with their
/// subordinate units ($b), which are part of the name.
fn name_text(field: &DataField) -> String {
    let tag = match field.linkage() {
        Some(link) if field.tag == "880" => link.tag,
        _ => field.tag.as_str(),
    };
    if tag == "110" {
        join_subfields(field, &['a', 'b'])
    } else {
        field.subfield('a').map(clean).unwrap_or_default()
    }
}

fn join_subfields(field: &DataField, codes: &[char]) -> String {
    let joined = field
        .subfields
        .iter()
        .filter(|s| codes.contains(&s.code))
        .map(|s| s.value.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    clean(&joined)
}

/// Collapses whitespace, trims the ISBD punctuation that ends a transcribed element, and
/// composes characters (NFC): MARC 21 in UTF-8 stores "ō" as "o" + combining macron,
/// which displays badly and compares unequal to what people type.
pub(crate) fn clean(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    trim_isbd(&collapsed).nfc().collect()
}

fn trim_isbd(mut text: &str) -> &str {
    loop {
        let before = text;
        text = text.trim_end();
        // ISBD sets these off with a space before them; "AC/DC" keeps its slash.
        for mark in ['/', ':', ';', '='] {
            if let Some(rest) = text.strip_suffix(mark)
                && (rest.is_empty() || rest.ends_with(' '))
            {
                text = rest;
            }
        }
        text = text.strip_suffix(',').unwrap_or(text);
        // A final full stop is ISBD's, an ellipsis is the title's.
        if text.ends_with('.') && !text.ends_with("...") {
            text = &text[..text.len() - 1];
        }
        if text == before {
            return text.trim_start();
        }
    }
}

fn is_kana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}')
}

fn is_hangul(c: char) -> bool {
    matches!(c, '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' | '\u{AC00}'..='\u{D7AF}')
}

fn has_cjk(text: &str) -> bool {
    text.chars()
        .any(|c| is_han(c) || is_kana(c) || is_hangul(c))
}

/// Kana without kanji: how JAPAN/MARC records a reading.
fn is_kana_reading(text: &str) -> bool {
    text.chars().any(is_kana) && !text.chars().any(|c| is_han(c) || is_hangul(c))
}

#[cfg(test)]
mod tests {
    use super::super::record::{ControlField, Field, Subfield};
    use super::*;

    #[test]
    fn isbd_punctuation_is_trimmed_from_the_end_only() {
        assert_eq!(
            clean("Dentō wagei kōdan no subete /"),
            "Dentō wagei kōdan no subete"
        );
        assert_eq!(clean("Abe, Kazue,"), "Abe, Kazue");
        assert_eq!(clean("雄山閣,"), "雄山閣");
        assert_eq!(clean("Handa shishi."), "Handa shishi");
        assert_eq!(clean("Title : subtitle ;  "), "Title : subtitle");
        assert_eq!(clean("And then..."), "And then...");
        assert_eq!(clean(" / "), "");
    }

    #[test]
    fn first_year_skips_longer_numbers() {
        assert_eq!(first_year("Heisei 11 [1999]"), Some(1999));
        assert_eq!(first_year("平成 11 [1999]"), Some(1999));
        assert_eq!(first_year("ISBN 9784000000 c2001."), Some(2001));
        assert_eq!(first_year("２０１７年"), Some(2017));
        assert_eq!(first_year("[19--]"), None);
    }

    #[test]
    fn kind_follows_leader_06_and_07() {
        assert_eq!(kind("00000nam a2200000 a 4500"), MaterialKind::Book);
        assert_eq!(kind("00000cas a2200000 a 4500"), MaterialKind::Magazine);
        assert_eq!(kind("00000njm a2200000 a 4500"), MaterialKind::Av);
        assert_eq!(kind("00000ngm a2200000 a 4500"), MaterialKind::Av);
        assert_eq!(kind(""), MaterialKind::Book);
    }

    fn field(tag: &str, subfields: &[(char, &str)]) -> Field {
        Field::Data(DataField {
            tag: tag.into(),
            ind1: ' ',
            ind2: ' ',
            subfields: subfields
                .iter()
                .map(|&(code, value)| Subfield {
                    code,
                    value: value.into(),
                })
                .collect(),
        })
    }

    #[test]
    fn ndl_880_is_a_reading_not_the_title() {
        let record = MarcRecord {
            leader: "00000nam a2200000zi 4500".into(),
            fields: vec![
                Field::Control(ControlField {
                    tag: "003".into(),
                    value: "JTNDL".into(),
                }),
                field(
                    "245",
                    &[
                        ('6', "880-01"),
                        ('a', "吾輩は猫である /"),
                        ('c', "夏目漱石 著."),
                    ],
                ),
                field(
                    "880",
                    &[('6', "245-01/$1"), ('a', "ワガハイ ワ ネコ デ アル")],
                ),
            ],
        };
        let r = to_import_record(&record).unwrap();
        assert_eq!(r.title, "吾輩は猫である");
        assert_eq!(r.title_reading, "ワガハイ ワ ネコ デ アル");
        assert_eq!(r.author, "夏目漱石 著");
        assert_eq!(r.responsibility, "夏目漱石 著");
        assert!(r.source_id.starts_with("marc-hash:"));
    }

    #[test]
    fn the_ndc_number_comes_from_an_084_in_ndc_only() {
        let record = |fields: Vec<Field>| MarcRecord {
            leader: "00000nam a2200000 a 4500".into(),
            fields: [vec![field("245", &[('a', "坊っちゃん")])], fields].concat(),
        };
        let with = |fields| to_import_record(&record(fields)).unwrap().ndc;
        assert_eq!(
            with(vec![field("084", &[('a', "324.52"), ('2', "njb/9")])]),
            "324.52"
        );
        assert_eq!(
            with(vec![field("084", &[('a', "９１３．６"), ('2', "NDC10")])]),
            "913.6"
        );
        // Another scheme first, then NDC; a first $a that is no number, then one that is.
        assert_eq!(
            with(vec![
                field("084", &[('a', "I247.5"), ('2', "clc")]),
                field("084", &[('a', "K913"), ('a', "913.6"), ('2', "njb/8")]),
            ]),
            "913.6"
        );
        assert_eq!(with(vec![field("084", &[('a', "913.6")])]), "");
        assert_eq!(
            with(vec![field("084", &[('a', "913.6"), ('2', "udc")])]),
            ""
        );
        assert_eq!(with(vec![]), "");
    }

    #[test]
    fn the_statement_comes_from_the_880_when_the_title_does() {
        let record = MarcRecord {
            leader: "00000nam a2200000 a 4500".into(),
            fields: vec![
                field("100", &[('6', "880-01"), ('a', "Ikeda, Akira,")]),
                field(
                    "245",
                    &[
                        ('6', "880-02"),
                        ('a', "Shūkyō /"),
                        ('c', "Ikeda Akira cho."),
                    ],
                ),
                field("880", &[('6', "100-01/$1"), ('a', "池田昭,")]),
                field(
                    "880",
                    &[('6', "245-02/$1"), ('a', "宗教 /"), ('c', "池田昭著.")],
                ),
            ],
        };
        let r = to_import_record(&record).unwrap();
        assert_eq!(r.title, "宗教");
        assert_eq!(r.author, "池田昭");
        assert_eq!(r.responsibility, "池田昭著");
    }

    #[test]
    fn a_record_without_title_is_not_mapped() {
        let record = MarcRecord {
            leader: "00000nam a2200000 a 4500".into(),
            fields: vec![field("100", &[('a', "Someone")])],
        };
        assert!(to_import_record(&record).is_none());
    }

    /// Both seen in the Library of Congress file of issue 9: an 001 ending with a stray
    /// subfield delimiter, and a 245 of more than 1,000 characters. Neither may fail the
    /// import of the record.
    #[test]
    fn a_stray_delimiter_in_001_and_an_overlong_title_are_cleaned_up() {
        let long = "Word ".repeat(400);
        let record = MarcRecord {
            leader: "00000nam a2200000 a 4500".into(),
            fields: vec![
                Field::Control(ControlField {
                    tag: "001".into(),
                    value: "00038361\u{1F}".into(),
                }),
                field("245", &[('a', &long)]),
            ],
        };
        let r = to_import_record(&record).unwrap();
        assert_eq!(r.source_id, "marc:00038361");
        assert_eq!(r.title.chars().count(), limits::TITLE);
        assert!(r.title.starts_with("Word Word") && r.title.ends_with('…'));

        let mut short = "漱石".to_string();
        fit(&mut short, 2);
        assert_eq!(short, "漱石");
        fit(&mut short, 1);
        assert_eq!(short, "…");
    }
}
