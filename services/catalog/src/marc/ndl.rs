//! NDL JAPAN/MARC records already turned into JSON (the shape of the open-source
//! `japan-marc-parser`: Japanese keys such as `タイトル.本タイトル`, `著者`, `レコードラベル`).
//!
//! Accepts a JSON array of records, a single record object, or records one after
//! another (JSON Lines). Records whose status is 削除 are withdrawals from the national
//! bibliography, not titles to add, so they are counted as skipped rather than errors.
//! The files carry no readings, so `title_reading` stays empty.

use serde_json::{Map, Value};

use super::import::{clean, first_year};
use super::record::fnv1a64;
use super::{ImportRecord, MaterialKind, ParseReport, RecordError, RecordErrorKind};

const DELETED: &str = "削除";

/// Reads every record of an NDL JSON file.
pub fn parse(bytes: &[u8]) -> ParseReport {
    let mut report = ParseReport::default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut index = 0;
    for value in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                report.errors.push(RecordError::new(
                    index,
                    RecordErrorKind::Syntax,
                    format!("JSON error: {e}; the rest of the file was not read"),
                ));
                break;
            }
        };
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            match map_record(&item) {
                Ok(Some(record)) => report.records.push(record),
                Ok(None) => report.skipped += 1,
                Err((kind, message)) => {
                    report.errors.push(RecordError::new(index, kind, message));
                }
            }
            index += 1;
        }
    }
    report
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
