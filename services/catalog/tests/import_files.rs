//! `kitsuki import` of every file in `testdata/marc/` into a real catalog (SQLite
//! here; the store itself runs on both backends in catalog_store.rs): counts per file,
//! broken records reported and skipped, a second import creating nothing.

use std::path::PathBuf;
use std::sync::Arc;

use kitsuki_catalog::Catalog;
use kitsuki_catalog::import::{ImportOptions, import_file, import_report};
use kitsuki_catalog::index::SearchFilter;
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::{db, testing};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/marc/")).join(rel)
}

/// (file, titles created, bad records reported, deliberately skipped)
const EXPECTED: &[(&str, usize, usize, usize)] = &[
    ("loc-jpn-880-sample.mrc", 300, 0, 0),
    // The MARCXML holds the first 100 of the same records: same source ids, nothing new.
    ("loc-jpn-880-sample.xml", 0, 0, 0),
    ("ndl-japan-marc-300.json", 290, 0, 10),
    ("japan-marc-shape-example.mrc", 2, 0, 0),
    ("yaz/marccol1.u8.marc", 19, 0, 0),
    ("pymarc-edge-cases/bad_records.mrc", 1, 7, 0),
    ("pymarc-edge-cases/utf8_invalid.mrc", 0, 1, 0),
    ("pymarc-edge-cases/marc8.dat", 0, 1, 0),
    ("pymarc-edge-cases/batch.xml", 2, 0, 0),
];

fn small_batches() -> ImportOptions {
    ImportOptions {
        batch: 7,
        index: true,
        index_every: 20,
        merge_after: 30,
        ..ImportOptions::default()
    }
}

#[tokio::test]
async fn every_file_imports_with_counts_and_reimport_creates_nothing() {
    let db = db::connect(&testing::fresh_sqlite_url()).await.unwrap();
    let catalog = Catalog::open(db, None, Arc::new(SystemClock))
        .await
        .unwrap();
    let mut total = 0;
    for (file, created, bad, skipped) in EXPECTED {
        // The streaming import, as `kitsuki import` runs it, in batches smaller than the
        // files so that a file spans several batches and index commits.
        let s = import_file(&catalog, &data(file), small_batches(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            (s.created, s.parse_errors, s.skipped, s.failed),
            (*created, *bad, *skipped, 0),
            "{file}: {s:?}"
        );
        total += s.created;
        // A file that indexed 30 titles or more (in commits of 20) leaves few segments.
        if *created >= 30 {
            let segments = catalog.search_index().segments();
            assert!(
                segments <= kitsuki_catalog::index::MAX_SEGMENTS,
                "{file}: {segments}"
            );
        }
    }
    assert_eq!(catalog.counts().await.unwrap().0 as usize, total);

    let again = kitsuki_catalog::marc::parse_file(&data("loc-jpn-880-sample.mrc")).unwrap();
    let (s, created) = import_report(&catalog, &again, ImportOptions::default()).await;
    assert!(created.is_empty());
    assert_eq!((s.created, s.already_present), (0, 300));

    // Imported records are searchable in original script (880) and by romanised reading.
    let all = SearchFilter {
        material_type: None,
        branch: None,
        available_only: false,
        ..SearchFilter::default()
    };
    let hit = catalog.search("講談", &all, 1, 10).await.unwrap();
    assert!(
        hit.hits
            .iter()
            .any(|h| h.title.contains("伝統話芸・講談のすべて")),
        "{:?}",
        hit.hits
    );
    let hit = catalog.search("Dento wagei", &all, 1, 10).await.unwrap();
    assert!(hit.total >= 1, "romanised 245 kept as a searchable reading");
    // ISBNs are validated and normalised to 13 digits.
    let with_isbn = catalog.search("鳰の海", &all, 1, 10).await.unwrap();
    assert_eq!(with_isbn.hits[0].isbn, "9784046218803");
}

/// A record whose text PostgreSQL cannot store (a NUL) or that is over a field's limit is
/// refused by the same check as a title created over gRPC (API.md "Text fields"), on both
/// backends alike, and the records beside it in its batch are imported.
async fn a_record_with_a_nul_or_an_overlong_title_is_refused_alone(url: String) {
    let db = db::connect(&url).await.unwrap();
    let catalog = Catalog::open(db, None, Arc::new(SystemClock))
        .await
        .unwrap();
    let mut report = kitsuki_catalog::marc::parse_file(&data("loc-jpn-880-sample.mrc")).unwrap();
    report.records.truncate(5);
    report.records[1].title = "伝統\u{0}話芸".into();
    report.records[3].title = "長".repeat(kitsuki_proto::text::limits::TITLE + 1);
    let (s, _) = import_report(&catalog, &report, ImportOptions::default()).await;
    assert_eq!((s.created, s.failed), (3, 2), "{s:?}");
    assert_eq!(catalog.counts().await.unwrap().0, 3);
}

#[tokio::test]
async fn text_check_on_import_sqlite() {
    a_record_with_a_nul_or_an_overlong_title_is_refused_alone(testing::fresh_sqlite_url()).await;
}

#[tokio::test]
async fn text_check_on_import_postgres() {
    let url = testing::fresh_pg_database().await.unwrap();
    a_record_with_a_nul_or_an_overlong_title_is_refused_alone(url).await;
}

/// Every record file read as a stream through read-ahead buffers of 1, 7 and 4096 bytes
/// (records, and the bytes of one record, split across reads anywhere) gives exactly
/// what reading it whole gives: the same records, errors, warnings and skips.
#[test]
fn streaming_equals_reading_the_whole_file() {
    use kitsuki_catalog::marc::{ParseReport, detect_format, parse, read_stream};
    use std::io::BufReader;
    use std::ops::ControlFlow;

    let mut files: Vec<&str> = EXPECTED.iter().map(|(f, ..)| *f).collect();
    files.extend([
        "yaz/marccol3.u8.marc",
        "yaz/marccol4.u8.marc",
        "yaz/marccol1.u8.1.lst",
        "pymarc-edge-cases/test.dat",
        "pymarc-edge-cases/utf8_with_leader_flag.dat",
    ]);
    for file in files {
        let bytes = std::fs::read(data(file)).unwrap();
        let format = detect_format(&bytes).unwrap();
        let whole = parse(&bytes, format);
        assert!(
            !whole.records.is_empty() || !whole.errors.is_empty(),
            "{file}"
        );
        assert_eq!(
            kitsuki_catalog::marc::parse_file(&data(file)).unwrap(),
            whole,
            "{file}"
        );
        for capacity in [1, 7, 4096] {
            let mut streamed = ParseReport::default();
            read_stream(
                BufReader::with_capacity(capacity, bytes.as_slice()),
                format,
                &mut |item| {
                    streamed.push(item);
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
            assert_eq!(streamed, whole, "{file}, read {capacity} bytes at a time");
        }
    }
}

/// A broken ISO 2709 file (a wrong record length, a damaged record, a cut-off end) and an
/// NDL array broken in the middle stream like whole files: the repair is a warning, the
/// records before the damage are kept; `Break` stops the reading at once.
#[test]
fn broken_files_stream_with_their_warnings_and_errors() {
    use kitsuki_catalog::marc::{Format, ParseReport, Parsed, RecordErrorKind, parse, read_stream};
    use std::io::BufReader;
    use std::ops::ControlFlow;

    let good = std::fs::read(data("loc-jpn-880-sample.mrc")).unwrap();
    // The first three records, the first with a wrong length, then half of the fourth.
    let ends: Vec<usize> = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == 0x1D)
        .map(|(i, _)| i + 1)
        .take(4)
        .collect();
    let mut broken = good[..ends[2]].to_vec();
    broken[..5].copy_from_slice(b"00030");
    broken.extend_from_slice(&good[ends[2]..(ends[2] + ends[3]) / 2]);
    let whole = parse(&broken, Format::Iso2709);
    assert_eq!(whole.records.len(), 3);
    assert_eq!(whole.warnings.len(), 1);
    assert_eq!(whole.warnings[0].kind, RecordErrorKind::LengthMismatch);
    assert_eq!(whole.errors.len(), 1);
    assert_eq!(
        (whole.errors[0].index, whole.errors[0].kind),
        (3, RecordErrorKind::Truncated)
    );
    let mut streamed = ParseReport::default();
    read_stream(
        BufReader::with_capacity(5, broken.as_slice()),
        Format::Iso2709,
        &mut |i| {
            streamed.push(i);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(streamed, whole);

    let json = r#"[{"タイトル": {"本タイトル": "一"}}, {"タイトル": {"本タイトル": "二"}}, {"タイトル": oops"#;
    let report = parse(json.as_bytes(), Format::NdlJson);
    assert_eq!(report.records.len(), 2);
    assert_eq!(
        report
            .errors
            .iter()
            .map(|e| (e.index, e.kind))
            .collect::<Vec<_>>(),
        vec![(2, RecordErrorKind::Syntax)]
    );

    for format in [Format::Iso2709, Format::MarcXml, Format::NdlJson] {
        let file = match format {
            Format::Iso2709 => "loc-jpn-880-sample.mrc",
            Format::MarcXml => "loc-jpn-880-sample.xml",
            Format::NdlJson => "ndl-japan-marc-300.json",
        };
        let bytes = std::fs::read(data(file)).unwrap();
        let mut seen = Vec::new();
        read_stream(bytes.as_slice(), format, &mut |item| {
            seen.push(item);
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(seen.len(), 1, "{file}");
        assert!(matches!(seen[0], Parsed::Record(_)), "{file}");
    }
}
