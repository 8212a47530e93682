//! `kitsuki import` of every file in `testdata/marc/` into a real catalog (SQLite
//! here; the store itself runs on both backends in catalog_store.rs): counts per file,
//! broken records reported and skipped, a second import creating nothing.

use std::path::PathBuf;
use std::sync::Arc;

use kitsuki_catalog::Catalog;
use kitsuki_catalog::import::import_report;
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

#[tokio::test]
async fn every_file_imports_with_counts_and_reimport_creates_nothing() {
    let db = db::connect(&testing::fresh_sqlite_url()).await.unwrap();
    let catalog = Catalog::open(db, None, Arc::new(SystemClock))
        .await
        .unwrap();
    let mut total = 0;
    for (file, created, bad, skipped) in EXPECTED {
        let report = kitsuki_catalog::marc::parse_file(&data(file)).unwrap();
        let s = import_report(&catalog, &report).await;
        assert_eq!(
            (s.created, s.parse_errors, s.skipped, s.failed),
            (*created, *bad, *skipped, 0),
            "{file}: {s:?}"
        );
        total += s.created;
    }
    assert_eq!(catalog.counts().await.unwrap().0 as usize, total);

    let again = kitsuki_catalog::marc::parse_file(&data("loc-jpn-880-sample.mrc")).unwrap();
    let s = import_report(&catalog, &again).await;
    assert_eq!((s.created, s.already_present), (0, 300));

    // Imported records are searchable in original script (880) and by romanised reading.
    let all = SearchFilter {
        material_type: None,
        branch: None,
        available_only: false,
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
    let s = import_report(&catalog, &report).await;
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
