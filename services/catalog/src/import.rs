//! `kitsuki import FILE`: loads MARC/NDL records into the catalog as a stream. The file
//! is read record by record on a thread of its own ([`crate::marc::read_stream`]), each
//! record mapped, checked and put into a batch; each batch of [`ImportOptions::batch`]
//! titles is stored in one transaction, and the new titles are indexed in the same pass,
//! committing the index every [`ImportOptions::index_every`] titles. At most a few batches
//! are in memory, whatever the size of the file.
//!
//! Bad records are reported and skipped; an ISBN that does not validate is dropped from its
//! record (the record itself is kept); re-importing the same file creates nothing twice
//! (source ids). An index that could not be written is said in the summary
//! ([`ImportSummary::index_error`]): the titles are stored, and the import fails.

use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use kitsuki_proto::{Barcode, Branch};

use crate::domain::isbn::Isbn;
use crate::marc::{ImportRecord, MaterialKind, ParseReport, Parsed, RecordError};
use crate::model::MaterialType;
use crate::service::{Catalog, NewTitle};

/// How an import stores and indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Titles stored in one transaction.
    pub batch: usize,
    /// Whether this process writes the catalog's index. False for a separate `kitsuki
    /// import` beside a running all-in-one, which owns the index (tantivy allows one
    /// writer) and indexes what the import commits.
    pub index: bool,
    /// New titles between two commits of the index (each commit writes a segment and
    /// syncs: one per batch would be hundreds for a real catalogue).
    pub index_every: usize,
    /// An import that indexed at least this many titles merges the index into one segment
    /// at its end ([`MERGE_AFTER_TITLES`]).
    pub merge_after: usize,
    /// Drops the dictionary of generated readings before the merge at the end
    /// ([`Catalog::release_readings`]): for `kitsuki import`, which exits after it, so that
    /// its peak memory (the merge maps the whole index) is not the dictionary's too.
    pub release_readings_before_merge: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch: BATCH,
            index: true,
            index_every: INDEX_EVERY,
            merge_after: MERGE_AFTER_TITLES,
            release_readings_before_merge: false,
        }
    }
}

/// Titles stored in one transaction: one commit for many titles (one by one, the 250,000
/// LoC records took over an hour and a half). Measured with that file (docs/ARCHITECTURE.md
/// "Import"): 500, 1,000 and 2,000 are within a few percent; 1,000 keeps a batch's
/// memory small.
pub const BATCH: usize = 1000;

/// New titles per index commit. Also bounds the ids held for indexing and the one `IN`
/// list that reads them back (under SQLite's 32,766 variables).
pub const INDEX_EVERY: usize = 10_000;

/// Bad records kept for the operator's screen; the log has every one.
const ERRORS_KEPT: usize = 20;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    // `parsed`: records read; `parse_errors`: bad records reported and skipped; `skipped`:
    // deleted records skipped; `failed`: records the database refused; `warnings`: records
    // imported after a repair.
    pub parsed: usize,
    pub created: usize,
    pub already_present: usize,
    pub parse_errors: usize,
    pub skipped: usize,
    pub invalid_isbns: usize,
    pub failed: usize,
    pub warnings: usize,
    /// The first bad records of the file, in file order (the log has them all).
    pub first_errors: Vec<RecordError>,
    /// Why the search index could not be written, when it could not: the titles are
    /// stored, the index lacks some of them.
    pub index_error: Option<String>,
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
            responsibility: r.responsibility.clone(),
            ndc: r.ndc.clone(),
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

/// One title ready to store, with the source id it is logged under.
struct Pending {
    source_id: String,
    new: NewTitle,
}

/// The records of one batch, mapped and checked, and what else the reading met on the way.
#[derive(Default)]
struct Chunk {
    titles: Vec<Pending>,
    summary: ImportSummary,
    /// Bytes of the file read when the chunk was full.
    bytes_read: u64,
}

/// Gathers what the reading gives into chunks of `batch` titles.
struct Chunker {
    batch: usize,
    chunk: Chunk,
}

impl Chunker {
    fn new(batch: usize) -> Self {
        Chunker {
            batch: batch.max(1),
            chunk: Chunk::default(),
        }
    }

    /// Takes one step of the reading; gives the chunk when it is full.
    fn add(&mut self, item: Parsed) -> Option<Chunk> {
        let s = &mut self.chunk.summary;
        match item {
            Parsed::Record(r) => {
                s.parsed += 1;
                let (new, bad) = new_title_from_record(&r);
                s.invalid_isbns += bad;
                // The same text check as a title created over gRPC (API.md "Text fields"):
                // a record with a NUL or an over-long field is refused, on every backend.
                match new.check_text() {
                    Ok(()) => self.chunk.titles.push(Pending {
                        source_id: r.source_id,
                        new,
                    }),
                    Err(e) => {
                        tracing::warn!(source = %r.source_id, error = %e, "record not imported");
                        s.failed += 1;
                    }
                }
            }
            Parsed::Error(e) => {
                tracing::warn!(record = e.index, problem = %e.message, "record skipped");
                s.parse_errors += 1;
                if s.first_errors.len() < ERRORS_KEPT {
                    s.first_errors.push(e);
                }
            }
            Parsed::Warning(w) => {
                tracing::info!(record = w.index, repair = %w.message, "record repaired");
                s.warnings += 1;
            }
            Parsed::Skipped => s.skipped += 1,
        }
        (self.chunk.titles.len() >= self.batch).then(|| std::mem::take(&mut self.chunk))
    }

    fn finish(self) -> Chunk {
        self.chunk
    }
}

/// Stores chunks and indexes what they created: the consuming half of an import.
struct Importer<'c> {
    catalog: &'c Catalog,
    options: ImportOptions,
    summary: ImportSummary,
    /// New titles stored and not yet indexed; at most `index_every` (plus one batch).
    to_index: Vec<String>,
    /// Every new title's id, kept only for [`import_report`] (a small file in memory).
    created_ids: Option<Vec<String>>,
    /// Titles this import indexed (to decide whether to merge the index's segments).
    indexed: usize,
}

/// An import that indexed at least this many titles merges the index into one segment at
/// its end: it left a segment per commit. A small one (the admin API's file of a few
/// titles) does not make a running catalog merge its whole index.
pub const MERGE_AFTER_TITLES: usize = 20_000;

impl<'c> Importer<'c> {
    fn new(catalog: &'c Catalog, options: ImportOptions, keep_ids: bool) -> Self {
        Importer {
            catalog,
            options,
            summary: ImportSummary::default(),
            to_index: Vec::new(),
            created_ids: keep_ids.then(Vec::new),
            indexed: 0,
        }
    }

    async fn store(&mut self, chunk: Chunk) {
        let s = &mut self.summary;
        let c = chunk.summary;
        s.parsed += c.parsed;
        s.parse_errors += c.parse_errors;
        s.skipped += c.skipped;
        s.invalid_isbns += c.invalid_isbns;
        s.failed += c.failed;
        s.warnings += c.warnings;
        let room = ERRORS_KEPT.saturating_sub(s.first_errors.len());
        s.first_errors.extend(c.first_errors.into_iter().take(room));
        if chunk.titles.is_empty() {
            return;
        }
        let (sources, news): (Vec<String>, Vec<NewTitle>) = chunk
            .titles
            .into_iter()
            .map(|p| (p.source_id, p.new))
            .unzip();
        let outcomes = match self.catalog.create_titles(news.clone()).await {
            Ok(outcomes) => outcomes,
            // The database refused the batch: one by one, so that only the record it
            // refuses fails.
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(news.len());
                for new in news {
                    one_by_one.push(self.catalog.create_title(new, false).await);
                }
                one_by_one
            }
        };
        for (source, outcome) in sources.iter().zip(outcomes) {
            match outcome {
                Ok((id, true)) => {
                    s.created += 1;
                    if let Some(ids) = self.created_ids.as_mut() {
                        ids.push(id.clone());
                    }
                    if self.options.index {
                        self.to_index.push(id);
                    }
                }
                Ok((_, false)) => s.already_present += 1,
                Err(e) => {
                    tracing::warn!(source = %source, error = %e, "record not imported");
                    s.failed += 1;
                }
            }
        }
        if self.to_index.len() >= self.options.index_every {
            self.index().await;
        }
    }

    /// Indexes (and commits) what was stored since the last time. After a failure the
    /// import goes on storing without indexing: the titles are the truth, the index is
    /// rebuilt from them (`kitsuki reindex`, or the catalog's next start).
    async fn index(&mut self) {
        let ids = std::mem::take(&mut self.to_index);
        if ids.is_empty() || self.summary.index_error.is_some() {
            return;
        }
        if self.indexed == 0
            && let Err(e) = self.catalog.begin_bulk_index().await
        {
            // Merges as usual: slower, never wrong.
            tracing::warn!(error = %e, "search index not put in bulk mode");
        }
        self.indexed += ids.len();
        if let Err(e) = index_batch(self.catalog, &ids).await {
            tracing::error!(error = %e, "search index not written; the import goes on storing");
            self.summary.index_error = Some(format!("{e:#}"));
        }
    }

    async fn finish(mut self) -> (ImportSummary, Vec<String>) {
        self.index().await;
        // A bulk import leaves a segment per commit, unmerged (the bulk write begun by its
        // first `index`); searches walk each one.
        let ended = if self.indexed >= self.options.merge_after.max(1)
            && self.summary.index_error.is_none()
        {
            if self.options.release_readings_before_merge {
                self.catalog.release_readings();
            }
            self.catalog.merge_index_segments().await.map(|n| {
                tracing::info!(segments = n, "search index segments merged");
            })
        } else {
            self.catalog.end_bulk_index().await
        };
        if let Err(e) = ended {
            tracing::error!(error = %e, "search index not merged");
            self.summary.index_error.get_or_insert(format!("{e:#}"));
        }
        (self.summary, self.created_ids.unwrap_or_default())
    }
}

/// Indexes what the import stored since the index's watermark and commits the index: the
/// one place the import writes the index. The titles are read back by change sequence
/// ([`Catalog::catch_up_index`]), so a title another writer changed meanwhile is indexed
/// too and the watermark never passes a title the index lacks.
async fn index_batch(catalog: &Catalog, _title_ids: &[String]) -> anyhow::Result<()> {
    catalog.catch_up_index().await.map(drop)
}

/// A reader that counts the bytes read, for the progress of an import.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Where an import stands, after each stored batch.
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress<'s> {
    pub summary: &'s ImportSummary,
    /// Bytes of the file read so far, and its size.
    pub bytes_read: u64,
    pub bytes_total: u64,
}

/// Imports a file as a stream (the module's doc): the reading on a thread of its own, at
/// most two batches waiting for the database. `progress` is called after each batch. An
/// error is a file that cannot be read (not a bad record: those are counted); the batches
/// stored before it stay.
pub async fn import_file(
    catalog: &Catalog,
    path: &Path,
    options: ImportOptions,
    progress: &mut (dyn FnMut(ImportProgress<'_>) + Send),
) -> anyhow::Result<ImportSummary> {
    let file =
        std::fs::File::open(path).with_context(|| format!("while opening {}", path.display()))?;
    let bytes_total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        read: read.clone(),
    };
    let (input, format) = crate::marc::open_reader(path, counting)?;
    tracing::info!(?format, file = %path.display(), bytes = bytes_total, "import started");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    // A thread, not the blocking pool: when the import fails the process may end without
    // waiting for the reading (the runtime waits for its blocking tasks).
    let reader = std::thread::Builder::new()
        .name("import-read".into())
        .spawn(move || -> std::io::Result<()> {
            let mut chunker = Chunker::new(options.batch);
            let send = |mut chunk: Chunk| {
                chunk.bytes_read = read.load(Ordering::Relaxed);
                // Closed: the importer gave up; stop reading.
                tx.blocking_send(chunk).map_err(drop)
            };
            let mut stopped = false;
            crate::marc::read_stream(input, format, &mut |item| {
                if let Some(chunk) = chunker.add(item)
                    && send(chunk).is_err()
                {
                    stopped = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
            if !stopped {
                let _ = send(chunker.finish());
            }
            Ok(())
        })
        .context("while starting the reading thread")?;

    let mut importer = Importer::new(catalog, options, false);
    while let Some(chunk) = rx.recv().await {
        let bytes_read = chunk.bytes_read;
        importer.store(chunk).await;
        progress(ImportProgress {
            summary: &importer.summary,
            bytes_read,
            bytes_total,
        });
    }
    let read = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
    let (summary, _) = importer.finish().await;
    read.with_context(|| format!("while reading {}", path.display()))?;
    Ok(summary)
}

/// Whether opening the catalog failed because another process writes its index (tantivy's
/// writer lock): the running all-in-one, whose index a separate import leaves alone.
pub fn is_index_busy(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::index::IndexError>(),
            Some(crate::index::IndexError::Busy { .. })
        )
    })
}

/// Imports the records of a file already parsed into memory (the embedded seed, tests)
/// the same way, and gives the new titles' ids too.
pub async fn import_report(
    catalog: &Catalog,
    report: &ParseReport,
    options: ImportOptions,
) -> (ImportSummary, Vec<String>) {
    let mut importer = Importer::new(catalog, options, true);
    let mut chunker = Chunker::new(options.batch);
    let items = report
        .errors
        .iter()
        .cloned()
        .map(Parsed::Error)
        .chain(report.warnings.iter().cloned().map(Parsed::Warning))
        .chain((0..report.skipped).map(|_| Parsed::Skipped))
        .chain(report.records.iter().cloned().map(Parsed::Record));
    for item in items {
        if let Some(chunk) = chunker.add(item) {
            importer.store(chunk).await;
        }
    }
    importer.store(chunker.finish()).await;
    importer.finish().await
}

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
