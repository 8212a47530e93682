//! NDL JAPAN/MARC records already turned into JSON (the shape of the open-source
//! `japan-marc-parser`: Japanese keys such as `タイトル.本タイトル`, `著者`, `レコードラベル`).
//!
//! Accepts a JSON array of records, a single record object, or records one after
//! another (JSON Lines). Records whose status is 削除 are withdrawals from the national
//! bibliography, not titles to add, so they are counted as skipped rather than errors.
//! The files carry no readings, so `title_reading` stays empty, and no NDC class number.

use std::io::BufRead;
use std::ops::ControlFlow;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::import::{clean, first_year};
use super::record::fnv1a64;
use super::{ImportRecord, MaterialKind, ParseReport, Parsed, RecordError, RecordErrorKind};

const DELETED: &str = "削除";

/// Reads every record of an NDL JSON file.
pub fn parse(bytes: &[u8]) -> ParseReport {
    let mut report = ParseReport::default();
    // Reading from memory cannot fail.
    let _ = read_stream(bytes, &mut |item| {
        report.push(item);
        ControlFlow::Continue(())
    });
    report
}

/// Reads the records of `input` one at a time and hands what became of each to `emit`,
/// which may stop the reading. Streaming in every accepted shape: the elements of a
/// top-level array are deserialised one by one (serde's `SeqAccess`), never the whole
/// array, so memory holds one record whatever the size of the file. A syntax error ends
/// the reading there; the records before it, inside an array too, are kept.
pub fn read_stream<R: BufRead>(
    mut input: R,
    emit: &mut dyn FnMut(Parsed) -> ControlFlow<()>,
) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(input);
    let mut seed = Records {
        emit,
        index: 0,
        stopped: false,
    };
    // `end` succeeds at the end of the input (whitespace aside) and otherwise leaves the
    // next value in place: records one after another (JSON Lines) read like one.
    while de.end().is_err() {
        match (&mut seed).deserialize(&mut de) {
            Ok(()) => {}
            Err(_) if seed.stopped => return Ok(()),
            Err(e) if e.is_io() => return Err(e.into()),
            Err(e) => {
                let _ = (seed.emit)(Parsed::Error(RecordError::new(
                    seed.index,
                    RecordErrorKind::Syntax,
                    format!("JSON error: {e}; the rest of the file was not read"),
                )));
                return Ok(());
            }
        }
        if seed.stopped {
            return Ok(());
        }
    }
    Ok(())
}

/// The deserialisation of one top-level value (a record, or an array of them) that hands
/// each record on as soon as it is read.
struct Records<'e> {
    emit: &'e mut dyn FnMut(Parsed) -> ControlFlow<()>,
    /// Position of the next record in the file.
    index: usize,
    /// `emit` asked to stop: the error that unwinds the deserialiser is not the file's.
    stopped: bool,
}

impl Records<'_> {
    fn record<E: serde::de::Error>(&mut self, value: &Value) -> Result<(), E> {
        let item = match map_record(value) {
            Ok(Some(record)) => Parsed::Record(record),
            Ok(None) => Parsed::Skipped,
            Err((kind, message)) => Parsed::Error(RecordError::new(self.index, kind, message)),
        };
        self.index += 1;
        if (self.emit)(item).is_break() {
            self.stopped = true;
            return Err(E::custom("stopped"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Records<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an NDL record or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            self.record(&value)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        self.record(&value)
    }

    // A top-level scalar is a record of the wrong shape, reported like one in an array.
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.record(&Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.record(&Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.record(&Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.record(&Value::from(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.record(&Value::from(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.record(&Value::Null)
    }
}

/// `Ok(None)` for a deleted record.
fn map_record(value: &Value) -> Result<Option<ImportRecord>, (RecordErrorKind, &'static str)> {
    const NO_TITLE: (RecordErrorKind, &str) = (
        RecordErrorKind::NoTitle,
        "record has no タイトル.本タイトル",
    );
    let Value::Object(record) = value else {
        return Err((RecordErrorKind::Malformed, "record is not a JSON object"));
    };
    if text(record, &["レコードラベル", "レコードステータス"]).as_deref() == Some(DELETED)
    {
        return Ok(None);
    }
    let main_title = text(record, &["タイトル", "本タイトル"]).ok_or(NO_TITLE)?;

    // ISBD order: title proper, part number, then other title information.
    let mut title = main_title;
    if let Some(part) = text(record, &["タイトル", "巻次または部編番号"]) {
        title = format!("{title} {part}");
    }
    for subtitle in strings(record.get("サブタイトル")) {
        title = format!("{title} : {subtitle}");
    }
    let title = clean(&title);
    if title.is_empty() {
        return Err(NO_TITLE);
    }

    let headings: Vec<String> = strings(record.get("著者"))
        .map(|s| clean(&s))
        .filter(|s| !s.is_empty())
        .collect();
    let statement = text(record, &["タイトル", "本タイトルに関係する責任表示"]).map(|s| clean(&s));
    // Headings first, as for MARC (1XX before 245 $c); the statement, which spells the
    // names as printed, stays searchable.
    let responsibility = statement.clone().unwrap_or_default();
    let (author, rest) = if headings.is_empty() {
        (statement.unwrap_or_default(), None)
    } else {
        (headings.join(" ; "), statement)
    };

    let imprints: Vec<&Map<String, Value>> = match record.get("出版表示等") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    let publisher = text(record, &["出版・頒布等に関する事項", "出版者・頒布者等"])
        .or_else(|| imprints.iter().find_map(|m| text(m, &["出版社等"])))
        .map(|s| clean(&s))
        .unwrap_or_default();
    let year = text(
        record,
        &["出版・頒布等に関する事項", "出版年月・頒布年月等"],
    )
    .and_then(|s| first_year(&s))
    .or_else(|| {
        imprints
            .iter()
            .find_map(|m| text(m, &["出版日付等"]).and_then(|s| first_year(&s)))
    });

    let mut aliases: Vec<String> = Vec::new();
    for alias in text(record, &["タイトル", "並列タイトル"])
        .map(|s| clean(&s))
        .into_iter()
        .chain(rest)
    {
        if !alias.is_empty() && alias != title && alias != author && !aliases.contains(&alias) {
            aliases.push(alias);
        }
    }

    let source_id = match text(record, &["レコード管理番号"]) {
        Some(id) => format!("ndl:{id}"),
        None => format!("ndl-hash:{:016x}", fnv1a64(&[value.to_string().as_bytes()])),
    };

    Ok(Some(ImportRecord {
        source_id,
        title,
        title_reading: String::new(),
        author,
        responsibility,
        // The parsed files carry no NDC (testdata/README.md).
        ndc: String::new(),
        publisher,
        year,
        isbns: text(record, &["国際標準図書番号（ISBN）", "ISBN"])
            .into_iter()
            .collect(),
        // JAPAN/MARC(M) is the monographs file.
        kind: MaterialKind::Book,
        aliases,
    }))
}

/// A non-empty trimmed string at `path`.
fn text(record: &Map<String, Value>, path: &[&str]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut map = record;
    for key in parents {
        map = map.get(*key)?.as_object()?;
    }
    let value = map.get(*last)?.as_str()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The non-empty strings of a JSON array (or a lone string).
fn strings(value: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_title_author_publisher_year() {
        let json = r#"[{"タイトル": {"本タイトル": "鳰の海", "並列タイトル": "句集",
            "本タイトルに関係する責任表示": "田島和生 著"},
            "サブタイトル": [], "著者": ["田島, 和生"],
            "レコードラベル": {"レコードステータス": "訂正"},
            "レコード管理番号": "000009226517",
            "出版・頒布等に関する事項": {"出版年月・頒布年月等": "2007.12", "出版者・頒布者等": "角川書店"},
            "国際標準図書番号（ISBN）": {"ISBN": "978-4-04-621880-3"}}]"#;
        let report = parse(json.as_bytes());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let r = &report.records[0];
        assert_eq!(r.source_id, "ndl:000009226517");
        assert_eq!(r.title, "鳰の海");
        assert_eq!(r.author, "田島, 和生");
        assert_eq!(r.publisher, "角川書店");
        assert_eq!(r.year, Some(2007));
        assert_eq!(r.isbns, vec!["978-4-04-621880-3"]);
        assert_eq!(r.aliases, vec!["句集", "田島和生 著"]);
        assert_eq!(r.responsibility, "田島和生 著");
        assert_eq!(r.ndc, "");
    }

    #[test]
    fn deleted_records_are_skipped_and_bad_ones_reported() {
        let json = r#"[{"タイトル": {"本タイトル": "x"}, "レコードラベル": {"レコードステータス": "削除"}},
            {"タイトル": {}}, 3, {"タイトル": {"本タイトル": "y"}}]"#;
        let report = parse(json.as_bytes());
        assert_eq!(report.skipped, 1);
        assert_eq!(report.records.len(), 1);
        let errors: Vec<_> = report.errors.iter().map(|e| (e.index, e.kind)).collect();
        assert_eq!(
            errors,
            vec![
                (1, RecordErrorKind::NoTitle),
                (2, RecordErrorKind::Malformed)
            ]
        );
    }

    #[test]
    fn json_lines_are_read_until_the_first_syntax_error() {
        let json = "{\"タイトル\": {\"本タイトル\": \"a\"}}\n{\"タイトル\": {\"本タイトル\": \"b\"}}\n{oops";
        let report = parse(json.as_bytes());
        assert_eq!(report.records.len(), 2);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].index, 2);
        assert_eq!(report.errors[0].kind, RecordErrorKind::Syntax);
    }
}
