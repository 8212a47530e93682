//! `kitsuki import FILE`: loads parsed MARC/NDL records into the catalog. Bad records are
//! reported and skipped; an ISBN that does not validate is dropped from its record (the
//! record itself is kept); re-importing the same file creates nothing twice (source ids).

use kitsuki_proto::{Barcode, Branch};

use crate::domain::isbn::Isbn;
use crate::marc::{ImportRecord, MaterialKind, ParseReport};
use crate::model::MaterialType;
use crate::service::{Catalog, NewTitle};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    // `parsed`: records read; `parse_errors`: bad records reported and skipped; `skipped`:
    // deleted records skipped; `failed`: records the database refused.
    pub parsed: usize,
    pub created: usize,
    pub already_present: usize,
    pub parse_errors: usize,
    pub skipped: usize,
    pub invalid_isbns: usize,
    pub failed: usize,
    pub created_ids: Vec<String>,
}

impl ImportSummary {
    /// Records of the file that were not imported (bad or deleted ones).
    pub fn records_skipped(&self) -> usize {
        self.parse_errors + self.skipped
    }

    /// Records of any kind the file held: none means it was not a catalogue at all.
    pub fn records_in_file(&self) -> usize {
        self.parsed + self.parse_errors + self.skipped
    }
}

fn kind(k: &MaterialKind) -> MaterialType {
    match k {
        MaterialKind::Book => MaterialType::Book,
        MaterialKind::Magazine => MaterialType::Magazine,
        MaterialKind::Av => MaterialType::Av,
    }
}

/// The first ISBN of a record that validates, and how many did not.
fn first_valid_isbn(raw: &[String]) -> (Option<Isbn>, usize) {
    let mut bad = 0;
    for r in raw {
        match Isbn::parse(r) {
            Ok(i) => return (Some(i), bad),
            Err(_) => bad += 1,
        }
    }
    (None, bad)
}

pub fn new_title_from_record(r: &ImportRecord) -> (NewTitle, usize) {
    let (isbn, bad) = first_valid_isbn(&r.isbns);
    (
        NewTitle {
            title: r.title.clone(),
            title_reading: r.title_reading.clone(),
            author: r.author.clone(),
            publisher: r.publisher.clone(),
            year: r.year.map(i64::from),
            isbn,
            material_type: kind(&r.kind),
            aliases: r.aliases.clone(),
            source_id: Some(r.source_id.clone()),
        },
        bad,
    )
}

/// Imports the records of a parsed file, then indexes what was created in one batch.
pub async fn import_report(catalog: &Catalog, report: &ParseReport) -> ImportSummary {
    let s = import_records(catalog, report).await;
    if let Err(e) = catalog.refresh_index(&s.created_ids).await {
        tracing::error!(error = %e, "index not refreshed after import");
    }
    s
}

/// Imports the records of a parsed file into the database (each title with its
/// `catalog.title.created` in the outbox), leaving the indexing to whoever owns the index:
/// [`import_report`], or the running all-in-one for a separate `kitsuki import`.
pub async fn import_records(catalog: &Catalog, report: &ParseReport) -> ImportSummary {
    let mut s = ImportSummary {
        parsed: report.records.len(),
        parse_errors: report.errors.len(),
        skipped: report.skipped,
        ..ImportSummary::default()
    };
    for e in &report.errors {
        tracing::warn!(record = e.index, problem = %e.message, "record skipped");
    }
    for chunk in report.records.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        let mut news: Vec<NewTitle> = Vec::with_capacity(chunk.len());
        for r in chunk {
            let (new, bad) = new_title_from_record(r);
            s.invalid_isbns += bad;
            // The same text check as a title created over gRPC (API.md "Text fields"): a
            // record with a NUL or an over-long field is refused, on every backend alike.
            match new.check_text() {
                Ok(()) => {
                    batch.push(r);
                    news.push(new);
                }
                Err(e) => {
                    tracing::warn!(source = %r.source_id, error = %e, "record not imported");
                    s.failed += 1;
                }
            }
        }
        let outcomes = match catalog.create_titles(news.clone()).await {
            Ok(outcomes) => outcomes,
            // The database refused the batch: one by one, so that only the record it
            // refuses fails.
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(news.len());
                for new in news {
                    one_by_one.push(catalog.create_title(new, false).await);
                }
                one_by_one
            }
        };
        for (r, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok((id, true)) => {
                    s.created += 1;
                    s.created_ids.push(id);
                }
                Ok((_, false)) => s.already_present += 1,
                Err(e) => {
                    tracing::warn!(source = %r.source_id, error = %e, "record not imported");
                    s.failed += 1;
                }
            }
        }
    }
    s
}

/// Titles stored in one transaction: one commit for many titles. The 250,000 LoC records
/// took 64 s in a debug build (46 titles a second, over an hour and a half, one by one).
const BATCH: usize = 500;

/// Demo stock for the embedded first start: one to three copies of each title spread
/// over the three branches, deterministically, so the demo shows every availability shape.
pub async fn spread_items(
    catalog: &Catalog,
    title_ids: &[String],
    prefix: &str,
) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut touched = Vec::new();
    for (i, id) in title_ids.iter().enumerate() {
        let copies = 1 + i % 3;
        for c in 0..copies {
            let branch = Branch::ALL[(i + c) % 3];
            let barcode = Barcode::parse(&format!("{prefix}{:05}-{}", i + 1, c + 1))?;
            let call = format!(
                "{}-{}",
                branch
                    .code()
                    .chars()
                    .next()
                    .unwrap_or('x')
                    .to_ascii_uppercase(),
                i + 1
            );
            match catalog
                .create_item(id, &barcode, branch, &call, false)
                .await
            {
                Ok(_) => n += 1,
                Err(e) if e.code == kitsuki_proto::ErrorCode::BarcodeTaken => {}
                Err(e) => return Err(anyhow::anyhow!("seeding items: {e}")),
            }
        }
        touched.push(id.clone());
    }
    catalog
        .refresh_index(&touched)
        .await
        .map_err(|e| anyhow::anyhow!("indexing items: {e}"))?;
    Ok(n)
}
