//! The MARC and NDL readers against the real records in `testdata/marc/` (see its
//! README for where each file comes from): exact counts per file, yaz's golden
//! listings, the ISO 2709 and MARCXML copies of the same records, and no panic on any
//! input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kitsuki_catalog::domain::names;
use kitsuki_catalog::marc::{
    self, Format, ImportRecord, MarcRecord, MaterialKind, ParseReport, RecordErrorKind,
    detect_format, iso2709, marcxml, parse, parse_file,
};
use proptest::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/marc/");

fn path(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn report(name: &str) -> ParseReport {
    parse_file(&path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn find<'r>(report: &'r ParseReport, source_id: &str) -> &'r ImportRecord {
    report
        .records
        .iter()
        .find(|r| r.source_id == source_id)
        .unwrap_or_else(|| panic!("{source_id} not found"))
}

/// What each file of the data directory is, and what reading it must give.
enum Expect {
    /// A record file: format, records, errors (index and kind), skipped.
    Records {
        format: Format,
        records: usize,
        errors: &'static [(usize, RecordErrorKind)],
        skipped: usize,
    },
    /// Not records (licence, golden listing, conversion table): checked elsewhere or not
    /// at all, but listed so that a new file in the directory fails this test until
    /// someone decides what it is.
    Other,
}

const FILES: &[(&str, Expect)] = &[
    (
        "loc-jpn-880-sample.mrc",
        Expect::Records {
            format: Format::Iso2709,
            records: 300,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        "loc-jpn-880-sample.xml",
        Expect::Records {
            format: Format::MarcXml,
            records: 100,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        // 300 records of which 10 have status 削除.
        "ndl-japan-marc-300.json",
        Expect::Records {
            format: Format::NdlJson,
            records: 290,
            errors: &[],
            skipped: 10,
        },
    ),
    (
        "japan-marc-shape-example.mrc",
        Expect::Records {
            format: Format::Iso2709,
            records: 2,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        "yaz/marccol1.u8.marc",
        Expect::Records {
            format: Format::Iso2709,
            records: 19,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        "yaz/marccol3.u8.marc",
        Expect::Records {
            format: Format::Iso2709,
            records: 1,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        "yaz/marccol4.u8.marc",
        Expect::Records {
            format: Format::Iso2709,
            records: 1,
            errors: &[],
            skipped: 0,
        },
    ),
    ("yaz/marccol1.u8.1.lst", Expect::Other),
    ("yaz/marccol1.u8.2.lst", Expect::Other),
    ("yaz/marccol4.u8.1.lst", Expect::Other),
    ("yaz/LICENSE", Expect::Other),
    (
        // Nine records: 0 and 7 good; 1 base address past the end, 2 base address 0,
        // 3 a 13-byte directory, 4 a non-ASCII byte in a MARC-8 directory, 5 a letter in
        // the base address, 6 no fields, 8 cut off before its terminator.
        "pymarc-edge-cases/bad_records.mrc",
        Expect::Records {
            format: Format::Iso2709,
            records: 2,
            errors: &[
                (1, RecordErrorKind::Malformed),
                (2, RecordErrorKind::Malformed),
                (3, RecordErrorKind::Malformed),
                (4, RecordErrorKind::Marc8NotSupported),
                (5, RecordErrorKind::Malformed),
                (6, RecordErrorKind::Malformed),
                (8, RecordErrorKind::Truncated),
            ],
            skipped: 0,
        },
    ),
    (
        "pymarc-edge-cases/batch.xml",
        Expect::Records {
            format: Format::MarcXml,
            records: 2,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        "pymarc-edge-cases/marc8.dat",
        Expect::Records {
            format: Format::Iso2709,
            records: 0,
            errors: &[(0, RecordErrorKind::Marc8NotSupported)],
            skipped: 0,
        },
    ),
    (
        // MARC-8 by its leader, but pure ASCII, which MARC-8 and UTF-8 spell the same.
        "pymarc-edge-cases/test.dat",
        Expect::Records {
            format: Format::Iso2709,
            records: 10,
            errors: &[],
            skipped: 0,
        },
    ),
    (
        // Valid UTF-8 as bytes, but a U+FFFD sits where a subfield code belongs.
        "pymarc-edge-cases/utf8_invalid.mrc",
        Expect::Records {
            format: Format::Iso2709,
            records: 0,
            errors: &[(0, RecordErrorKind::InvalidUtf8)],
            skipped: 0,
        },
    ),
    (
        "pymarc-edge-cases/utf8_with_leader_flag.dat",
        Expect::Records {
            format: Format::Iso2709,
            records: 1,
            errors: &[],
            skipped: 0,
        },
    ),
    ("pymarc-edge-cases/test_marc8.txt", Expect::Other),
    ("pymarc-edge-cases/test_utf8.txt", Expect::Other),
    ("pymarc-edge-cases/LICENSE", Expect::Other),
];

#[test]
fn every_data_file_is_accounted_for() {
    let mut on_disk = BTreeSet::new();
    for dir in ["", "yaz/", "pymarc-edge-cases/"] {
        for entry in std::fs::read_dir(path(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                on_disk.insert(format!("{dir}{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    let listed: BTreeSet<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn each_record_file_gives_its_exact_counts() {
    for (name, expect) in FILES {
        let Expect::Records {
            format,
            records,
            errors,
            skipped,
        } = expect
        else {
            continue;
        };
        assert_eq!(detect_format(&bytes(name)), Some(*format), "{name}");
        let report = report(name);
        let got_errors: Vec<_> = report.errors.iter().map(|e| (e.index, e.kind)).collect();
        assert_eq!(got_errors, *errors, "{name}: {:#?}", report.errors);
        assert_eq!(report.records.len(), *records, "{name}");
        assert_eq!(report.skipped, *skipped, "{name}");
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    }
}

#[test]
fn files_that_are_not_records_are_not_taken_for_json_or_xml() {
    for name in [
        "yaz/LICENSE",
        "pymarc-edge-cases/LICENSE",
        "pymarc-edge-cases/test_marc8.txt",
        "pymarc-edge-cases/test_utf8.txt",
    ] {
        assert_eq!(detect_format(&bytes(name)), None, "{name}");
        let err = parse_file(&path(name)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
    // A yaz listing starts with a leader, so it sniffs as ISO 2709; reading it finds no
    // record terminator and says so instead of inventing records.
    let listing = report("yaz/marccol1.u8.1.lst");
    assert!(listing.records.is_empty());
    assert_eq!(listing.errors.len(), 1);
    assert_eq!(listing.errors[0].kind, RecordErrorKind::Truncated);
}

fn yaz_listing(records: &[(usize, MarcRecord)]) -> String {
    records.iter().map(|(_, r)| format!("{r}\n")).collect()
}

#[test]
fn marccol1_matches_the_yaz_golden_listing_field_by_field() {
    let batch = iso2709::read(&bytes("yaz/marccol1.u8.marc"));
    assert!(batch.errors.is_empty());
    let golden = String::from_utf8(bytes("yaz/marccol1.u8.1.lst")).unwrap();
    let ours = yaz_listing(&batch.records);
    for (n, (g, o)) in golden.lines().zip(ours.lines()).enumerate() {
        assert_eq!(o, g, "line {}", n + 1);
    }
    assert_eq!(ours, golden);
}

#[test]
fn marccol4_matches_the_yaz_golden_listing() {
    let batch = iso2709::read(&bytes("yaz/marccol4.u8.marc"));
    let golden = String::from_utf8(bytes("yaz/marccol4.u8.1.lst")).unwrap();
    assert_eq!(yaz_listing(&batch.records), golden);
}

/// The second listing is of the same records written out as MARC-8 by yaz: only the
/// record lengths differ, and the one character MARC-8 lacks is a numeric reference.
#[test]
fn marccol1_marc8_listing_differs_only_where_marc8_must() {
    let batch = iso2709::read(&bytes("yaz/marccol1.u8.marc"));
    let ours = yaz_listing(&batch.records);
    let marc8 = String::from_utf8(bytes("yaz/marccol1.u8.2.lst"))
        .unwrap()
        .replace("&#x79f1;", "\u{79f1}");
    let leaders: BTreeSet<usize> = batch
        .records
        .iter()
        .scan(0, |line, (_, r)| {
            let at = *line;
            *line += r.fields.len() + 2;
            Some(at)
        })
        .collect();
    assert_eq!(ours.lines().count(), marc8.lines().count());
    for (n, (o, m)) in ours.lines().zip(marc8.lines()).enumerate() {
        if leaders.contains(&n) {
            assert_eq!(o.get(5..), m.get(5..), "leader at line {}", n + 1);
        } else {
            assert_eq!(o, m, "line {}", n + 1);
        }
    }
}

#[test]
fn marcxml_copy_equals_the_first_hundred_iso2709_records() {
    let binary = iso2709::read(&bytes("loc-jpn-880-sample.mrc"));
    let xml = marcxml::read(&bytes("loc-jpn-880-sample.xml"));
    assert_eq!(binary.records.len(), 300);
    assert_eq!(xml.records.len(), 100);
    for ((i, b), (j, x)) in binary.records.iter().zip(&xml.records) {
        assert_eq!(i, j);
        assert_eq!(b.leader, x.leader, "record {i}");
        assert_eq!(b.fields.len(), x.fields.len(), "record {i}");
        for (fb, fx) in b.fields.iter().zip(&x.fields) {
            assert_eq!(fb, fx, "record {i}");
        }
        assert_eq!(b.content_hash(), x.content_hash());
    }
    let from_binary = report("loc-jpn-880-sample.mrc");
    let from_xml = report("loc-jpn-880-sample.xml");
    assert_eq!(from_binary.records[..100], from_xml.records[..]);
}

#[test]
fn loc_titles_come_out_in_original_script_with_the_romanisation_as_alias() {
    let report = report("loc-jpn-880-sample.mrc");
    let first = &report.records[0];
    assert_eq!(
        first,
        &ImportRecord {
            source_id: "marc:00271342".into(),
            title: "伝統話芸・講談のすべて".into(),
            // The romanised 245 spells the reading (ALA-LC, ō = おう).
            title_reading: "でんとう わげい こうだん の すべて".into(),
            author: "阿部主計".into(),
            // 245 $c of the 880, as the title: "阿部主計." with ISBD's full stop trimmed.
            responsibility: "阿部主計".into(),
            ndc: String::new(),
            publisher: "雄山閣".into(),
            year: Some(1999),
            isbns: vec!["4639015925".into()],
            kind: MaterialKind::Book,
            // Composed (NFC), though the record spells "ō" as o + U+0304.
            aliases: vec!["Dentō wagei kōdan no subete".into(), "Abe, Kazue".into()],
        }
    );

    let second = find(&report, "marc:00271344");
    assert_eq!(second.title, "現代小說考 : その実態社会学的価値");
    assert!(
        second
            .aliases
            .contains(&"Gendai shōsetsu kō : sono jittai shakaigakuteki kachi".to_string())
    );

    // 246 variant titles, romanised and in their own 880, are searchable too.
    let zoku = find(&report, "marc:00271441");
    assert_eq!(zoku.title, "続・日本国の研究");
    for alias in ["Zoku Nipponkoku no kenkyū", "日本国の研究", "Inose, Naoki"] {
        assert!(zoku.aliases.contains(&alias.to_string()), "{alias}");
    }

    // No 1XX: the statement of responsibility, from the original-script 245.
    assert_eq!(find(&report, "marc:00271424").author, "沢田昭二ほか著");
    assert_eq!(
        find(&report, "marc:00271424").responsibility,
        "沢田昭二ほか著"
    );
    // Several statements, from the 880 and not the romanised 245 $c.
    let foods = report
        .records
        .iter()
        .find(|r| r.responsibility.starts_with("監修石毛直道"))
        .expect("the record edited by 石毛直道");
    assert_eq!(foods.responsibility, "監修石毛直道 ; 責任編集豊川裕之");
    // NDC from 084 $2 njb/9; the records without an 084 have none.
    assert_eq!(find(&report, "marc:00272060").ndc, "324.52");
    assert_eq!(find(&report, "marc:00290211").ndc, "367.68");
    assert_eq!(
        report.records.iter().filter(|r| !r.ndc.is_empty()).count(),
        6
    );
    assert_eq!(
        report
            .records
            .iter()
            .filter(|r| r.responsibility.is_empty())
            .count(),
        1,
        "one record has no 245 $c"
    );

    assert!(report.records.iter().all(|r| r.kind == MaterialKind::Book));
    // Every Japanese record whose romanisation is romaji all through has its reading.
    let with_reading = report
        .records
        .iter()
        .filter(|r| !r.title_reading.is_empty())
        .count();
    assert!(
        with_reading * 10 >= report.records.len() * 9,
        "{with_reading} of {} records have a reading",
        report.records.len()
    );
    assert_eq!(
        find(&report, "marc:00271441").title_reading,
        "ぞく にっぽんこく の けんきゅう"
    );
    assert!(report.records.iter().all(|r| r.year.is_some()));
}

#[test]
fn yaz_cjk_records_map_titles_and_kinds() {
    let col1 = report("yaz/marccol1.u8.marc");
    assert_eq!(col1.records[0].title, "半田 市誌");
    assert_eq!(col1.records[0].aliases, vec!["Handa shishi".to_string()]);
    assert_eq!(col1.records[0].source_id, "marc:70813420 /AJ/r86");

    let col4 = report("yaz/marccol4.u8.marc");
    let serial = &col4.records[0];
    assert_eq!(serial.kind, MaterialKind::Magazine);
    assert_eq!(serial.author, "産業技術総合研究所. 四国産学官連携センター");
    assert!(serial.aliases.contains(&"Activity report".to_string()));
    // 008 Date 1 is "200u" and 260 has no $c.
    assert_eq!(serial.year, None);
}

#[test]
fn japan_marc_layout_reads_title_and_responsibility() {
    let report = report("japan-marc-shape-example.mrc");
    let r = &report.records[0];
    assert_eq!(r.source_id, "marc:123456789012");
    assert_eq!(r.title, "タイトル : 関連情報");
    assert_eq!(r.author, "山田太郎 著");
    assert_eq!(r.responsibility, "山田太郎 著");
    // The layout example has no 084: no class number.
    assert_eq!(r.ndc, "");
    assert_eq!(r.year, Some(2017));
    // 020 has only $c (price) and $z (cancelled ISBN): nothing to import.
    assert!(r.isbns.is_empty());
}

#[test]
fn ndl_records_map_and_deleted_ones_are_skipped() {
    let report = report("ndl-japan-marc-300.json");
    let first = find(&report, "ndl:000009226517");
    assert_eq!(first.title, "鳰の海");
    assert_eq!(first.author, "田島, 和生");
    assert_eq!(first.publisher, "角川書店");
    assert_eq!(first.year, Some(2007));
    assert_eq!(first.isbns, vec!["978-4-04-621880-3".to_string()]);
    assert!(first.aliases.contains(&"句集".to_string()));
    assert_eq!(first.responsibility, "田島和生 著");
    let anne = report
        .records
        .iter()
        .find(|r| r.responsibility == "L.M.モンゴメリー [著] ; 掛川恭子 訳")
        .expect("Anne translated by 掛川恭子");
    assert_eq!(anne.author, "Montgomery, Lucy Maud ; 掛川, 恭子");
    // The files have no NDC.
    assert!(report.records.iter().all(|r| r.ndc.is_empty()));
    // 北海道財務例規 has status 削除.
    assert!(
        report
            .records
            .iter()
            .all(|r| r.source_id != "ndl:000001315992")
    );
    let ids: BTreeSet<_> = report.records.iter().map(|r| &r.source_id).collect();
    assert_eq!(ids.len(), report.records.len(), "source ids are unique");
    assert!(report.records.iter().all(|r| r.kind == MaterialKind::Book));
}

#[test]
fn bad_records_are_reported_and_the_good_ones_kept() {
    let report = report("pymarc-edge-cases/bad_records.mrc");
    for r in &report.records {
        assert_eq!(
            r.title,
            "The pragmatic programmer : from journeyman to master"
        );
        assert_eq!(r.author, "Andrew Hunt, David Thomas");
        // No 001: the id is a hash of the content, so equal records share it.
        assert!(r.source_id.starts_with("marc-hash:"));
    }
    assert_eq!(report.records[0].source_id, report.records[1].source_id);
}

#[test]
fn marc8_records_are_refused_with_a_reason() {
    let report = report("pymarc-edge-cases/marc8.dat");
    assert_eq!(report.errors[0].kind, RecordErrorKind::Marc8NotSupported);
    assert!(report.errors[0].message.contains("MARC-8"));
}

/// pymarc's conversion table shows which MARC-8 strings are already UTF-8: exactly the
/// pure-ASCII ones. Those are read; every other one is refused, never misread.
#[test]
fn marc8_text_is_read_only_when_it_is_identical_in_utf8() {
    let marc8 = bytes("pymarc-edge-cases/test_marc8.txt");
    let utf8 = String::from_utf8(bytes("pymarc-edge-cases/test_utf8.txt")).unwrap();
    let (mut read, mut refused) = (0, 0);
    for (m, u) in marc8.split(|&b| b == b'\n').zip(utf8.split('\n')) {
        if m.is_empty() {
            continue;
        }
        let mut field = b"00\x1fa".to_vec();
        field.extend_from_slice(m);
        let batch = iso2709::read(&iso_record("cam  2200000 a 4500", &[(b"245", &field)]));
        match batch.records.first() {
            Some((_, record)) => {
                read += 1;
                let title = record.data_field("245").unwrap().subfield('a');
                assert_eq!(title, Some(u));
            }
            None => {
                refused += 1;
                assert_eq!(batch.errors[0].kind, RecordErrorKind::Marc8NotSupported);
            }
        }
    }
    assert_eq!((read, refused), (58, 1457));
}

#[test]
fn batch_xml_with_prefix_parses() {
    let report = report("pymarc-edge-cases/batch.xml");
    assert_eq!(report.records[0].title, "The Great Ray Charles");
    assert_eq!(report.records[0].kind, MaterialKind::Av);
    assert_eq!(report.records[0].publisher, "Atlantic");
    assert_eq!(report.records[0].year, Some(1957));
    assert_eq!(report.records[1].title, "The White House");
}

#[test]
fn a_wrong_record_length_is_repaired_and_reported_as_a_warning() {
    let mut data = bytes("loc-jpn-880-sample.mrc");
    data[..5].copy_from_slice(b"00500"); // the first record is 865 bytes
    let report = parse(&data, Format::Iso2709);
    assert_eq!(report.records.len(), 300);
    assert!(report.errors.is_empty());
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].index, 0);
    assert_eq!(report.warnings[0].kind, RecordErrorKind::LengthMismatch);
}

#[test]
fn a_file_cut_short_keeps_the_complete_records() {
    let data = bytes("loc-jpn-880-sample.mrc");
    let report = parse(&data[..data.len() - 10], Format::Iso2709);
    assert_eq!(report.records.len(), 299);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].index, 299);
    assert_eq!(report.errors[0].kind, RecordErrorKind::Truncated);

    let xml = bytes("loc-jpn-880-sample.xml");
    let report = parse(&xml[..xml.len() / 2], Format::MarcXml);
    assert!(report.records.len() >= 49, "{}", report.records.len());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].index, report.records.len());
}

/// An ISO 2709 record from raw field bodies (indicators and subfields included).
fn iso_record(leader_tail: &str, fields: &[(&[u8; 3], &[u8])]) -> Vec<u8> {
    let mut directory = Vec::new();
    let mut data = Vec::new();
    for (tag, body) in fields {
        directory.extend_from_slice(*tag);
        directory.extend_from_slice(format!("{:04}{:05}", body.len() + 1, data.len()).as_bytes());
        data.extend_from_slice(body);
        data.push(0x1E);
    }
    let base = 24 + directory.len() + 1;
    let total = base + data.len() + 1;
    let mut out = format!(
        "{total:05}{}{base:05}{}",
        &leader_tail[..7],
        &leader_tail[12..]
    )
    .into_bytes();
    out.extend_from_slice(&directory);
    out.push(0x1E);
    out.extend_from_slice(&data);
    out.push(0x1D);
    out
}

fn first_loc_records(n: usize) -> Vec<u8> {
    let data = bytes("loc-jpn-880-sample.mrc");
    let mut end = 0;
    for _ in 0..n {
        end += data[end..].iter().position(|&b| b == 0x1D).unwrap() + 1;
    }
    data[..end].to_vec()
}

fn check_report(report: &ParseReport) {
    // Every record position is either imported, in error or skipped, once.
    let indices: Vec<usize> = report.errors.iter().map(|e| e.index).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    assert_eq!(indices, sorted);
    for r in &report.records {
        assert!(!r.title.is_empty());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for format in [Format::Iso2709, Format::MarcXml, Format::NdlJson] {
            check_report(&parse(&data, format));
        }
        let _ = detect_format(&data);
    }

    #[test]
    fn arbitrary_text_after_a_leader_never_panics(
        leader in "[0-9]{5}[a-z ]{5}22[0-9]{5}[a-z0-9 ]{3}4500",
        rest in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut data = leader.into_bytes();
        data.extend(rest);
        check_report(&parse(&data, Format::Iso2709));
    }

    #[test]
    fn damaged_real_records_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = first_loc_records(3);
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let len = data.len();
        data.truncate(cut.index(len) + 1);
        check_report(&parse(&data, Format::Iso2709));
    }

    #[test]
    fn damaged_marcxml_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let xml = bytes("pymarc-edge-cases/batch.xml");
        let mut data = xml.clone();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        check_report(&parse(&data, Format::MarcXml));
    }

    #[test]
    fn damaged_ndl_json_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let json = bytes("ndl-japan-marc-300.json");
        let mut data = json[..4000].to_vec();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        check_report(&parse(&data, Format::NdlJson));
    }
}

#[test]
fn linkage_helpers_pair_880_with_its_regular_field() {
    let batch = iso2709::read(&first_loc_records(1));
    let (_, record) = &batch.records[0];
    let title = record.data_field("245").unwrap();
    let original = record.linked_880(title).unwrap();
    assert_eq!(original.subfield('6'), Some("245-02/$1"));
    assert_eq!(record.linked_regular(original), Some(title));
    let link = marc::Linkage::parse(original.subfield('6').unwrap()).unwrap();
    assert_eq!(
        (link.tag, link.occurrence, link.script),
        ("245", "02", "$1")
    );
}

/// The display form of every seed record (`services/catalog/seed/`, loaded by the
/// all-in-one run): there is one wherever the record names someone, and no cataloguing
/// convention is left in it.
#[test]
fn seed_records_show_their_creators_without_cataloguing_conventions() {
    const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/");
    let cjk = |c: char| matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}');
    let mut checked = 0;
    for name in ["loc-jpn-880-sample.mrc", "ndl-japan-marc-300.json"] {
        let report = parse_file(&Path::new(SEED).join(name)).unwrap();
        assert!(report.records.len() >= 290, "{name}");
        for r in &report.records {
            let shown = names::creators(&r.responsibility, &r.author);
            let what = format!(
                "{name} {}: {:?} / {:?} → {shown:?}",
                r.source_id, r.responsibility, r.author
            );
            if r.responsibility.trim().is_empty() && r.author.trim().is_empty() {
                assert_eq!(shown, "", "{what}");
                continue;
            }
            checked += 1;
            assert!(!shown.is_empty(), "{what}");
            assert_eq!(shown, shown.trim(), "{what}");
            let chars: Vec<char> = shown.chars().collect();
            // 「松下, 幸子」: a heading's comma between two Japanese characters.
            for w in chars.windows(3) {
                assert!(!(cjk(w[0]) && w[1] == ',' && cjk(w[2])), "{what}");
            }
            for w in chars.windows(4) {
                assert!(
                    !(cjk(w[0]) && w[1] == ',' && w[2] == ' ' && cjk(w[3])),
                    "{what}"
                );
            }
            for leftover in ['[', ']', '［', '］'] {
                assert!(!shown.contains(leftover), "{what}");
            }
            for end in [" /", " :", " ;", " =", ",", "、", "。"] {
                assert!(!shown.ends_with(end), "{what}");
            }
            assert!(!shown.contains("  ") && !shown.contains("；；"), "{what}");
            assert!(
                !shown.contains("et al"),
                "a Japanese statement says ほか: {what}"
            );
            // Every heading's date is dropped (`, 1867-1916`).
            assert!(
                !shown.split(['；', ';']).any(|part| part
                    .trim_end()
                    .rsplit(' ')
                    .next()
                    .is_some_and(
                        |w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_digit() || c == '-')
                    )),
                "{what}"
            );
        }
    }
    assert!(checked > 450, "{checked}");
}
