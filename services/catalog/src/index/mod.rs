//! The full-text search index of titles (tantivy), kept beside the catalog database.
//!
//! The database is the truth; this index follows it. Every change of a title's search
//! document has a number of the catalogue change sequence (`titles.change_seq`), and each
//! commit of the index records in its payload the highest number it fully holds, its
//! watermark ([`SearchIndex::watermark`]): catching up is indexing the titles numbered above
//! it (`Catalog::catch_up_index`), and a start opens the index as it is instead of
//! rebuilding it. An index without a watermark of this [`FORMAT`] is rebuilt. Japanese has no spaces between words, so instead of words the text fields are
//! indexed as overlapping character bigrams (plus single characters), after
//! [`normalize`](crate::domain::text::normalize). A query term then matches when its bigrams
//! occur in a row in one field: substring search, so `漱石` finds `夏目漱石` and, accepted,
//! `京都` also finds `東京都`.
//!
//! Why our own tokenizer rather than tantivy's `NgramTokenizer::new(2, 2, false)`: that one
//! gives every gram position 0, so a phrase query over the grams can never match (see the test
//! `tantivy_ngram_tokenizer_puts_every_gram_at_position_zero`). Ours gives each gram the
//! position of its first character, which makes "bigrams in a row" a phrase query.
//!
//! Words of scripts that put spaces between words (Latin, Cyrillic, digits …) are also
//! indexed whole, in a words field beside each text field ([`WordTokenizer`], no
//! positions), and a query term written only in such letters
//! matches the words that **start** with it (`materia` finds `materials`, `histor` finds
//! `history`), ranked by BM25 where the word is the term itself and a little lower where it
//! only starts with it; a word's first 2 to 8 characters are indexed as terms of their own
//! ([`PREFIX_MARK`]), so that a short prefix is one posting list, not thousands of words. The bigram phrase is not used for them: it matched inside words
//! (`the` in `mother`) and, for common bigrams such as `th`, read the positions of nearly
//! every document, which was three quarters of a search's time at 250,000 titles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::collector::Count;
use tantivy::columnar::StrColumn;
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::{LockError, OpenDirectoryError};
use tantivy::query::{
    AllQuery, AutomatonWeight, BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Occur,
    PhraseQuery, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{
    DocSet, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, TERMINATED,
    TantivyDocument, Term,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod facets;
pub mod ranking;
#[cfg(test)]
mod search_tests;
mod suggest;
mod tiers;

pub use facets::{Facets, decade_of};
pub use ranking::SortOrder;
use ranking::{Hit, NO_YEAR, TopHits};
pub use suggest::Suggestion;

use crate::domain::isbn::Isbn;
use crate::domain::reading::{is_kana_text, reading_key, romaji_to_kana, romanised_reading};
use crate::domain::text::normalize;

/// Name under which [`CharGramTokenizer`] is registered with each index.
const CJK_TOKENIZER: &str = "kitsuki_cjk_uni_bigram";

/// Most hits one search returns; larger pages are cut to this (a page is a screenful, and
/// tantivy allocates for the whole page up front).
pub const MAX_LIMIT: usize = 1000;

/// Indexing memory budget, also what the writer holds at most before it writes a segment.
/// One thread (two cores are shared with the database and the other services); 64 MB
/// writes a 250,000-title build in a handful of segments, where 32 MB made twice as many
/// for the merges to fold together, and stays within the all-in-one's memory target.
const WRITER_MEMORY_BYTES: usize = 64_000_000;

/// What the documents hold and how their text is tokenised, beyond what the schema says:
/// raise it when [`SearchIndex`] indexes a title differently (the tokenizer, the
/// normalisation, what goes into a field), and every index of an older format is rebuilt
/// at its next start, in the background (`Catalog::open`).
pub const FORMAT: u32 = 6;

/// Name under which [`WordTokenizer`] is registered with each index.
const WORDS_TOKENIZER: &str = "kitsuki_words";

/// Marks the first 2 to [`PREFIX_MAX_CHARS`] characters of a word in a words field:
/// `\u{2}hi`, `\u{2}his`, … `\u{2}historie` for `histories` (a word never holds a control
/// character, so a prefix never equals a word). A query term of up to that length finds
/// the words it starts with one posting list; a longer one walks the term dictionary
/// ([`WordPrefix`]), which for a long prefix holds few words.
const PREFIX_MARK: char = '\u{2}';

/// Segments left after the merges of a bulk write that [`SearchIndex::merge_segments`]
/// accepts without folding them into one.
pub const MAX_SEGMENTS: usize = 4;

/// The longest word prefix indexed as a term of its own. Short prefixes are the ones that
/// expand to thousands of words (`the` → `theatre`, `theology`, …).
const PREFIX_MAX_CHARS: usize = 8;

/// What a query term that only starts a word scores, relative to the field's boost: below
/// the BM25 of the word itself in nearly every case, so exact words rank first.
const PREFIX_SCORE: f32 = 0.5;

/// How much a match in the readings counts: as one in the title's reading.
const READING_BOOST: f32 = 1.5;

/// The commit payload: which catalogue state the index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Payload {
    format: u32,
    /// Every title change numbered up to this is in the index.
    change_seq: u64,
}

/// Field names, also the sort key name of `created_at`.
mod field {
    pub const TITLE_ID: &str = "title_id";
    pub const TITLE: &str = "title";
    pub const TITLE_READING: &str = "title_reading";
    pub const AUTHOR: &str = "author";
    pub const PUBLISHER: &str = "publisher";
    pub const ALIASES: &str = "aliases";
    /// The words (and word prefixes) of each text field, without positions.
    pub const TITLE_WORDS: &str = "title_words";
    pub const TITLE_READING_WORDS: &str = "title_reading_words";
    pub const AUTHOR_WORDS: &str = "author_words";
    pub const PUBLISHER_WORDS: &str = "publisher_words";
    pub const ALIASES_WORDS: &str = "aliases_words";
    /// The readings of the title and its aliases as [`reading_key`]s (bigrams): what a kana
    /// or romaji query term is also compared with.
    pub const READINGS: &str = "readings";
    /// The author's reading as a [`reading_key`] (bigrams): kana and romaji queries name
    /// an author through it, and the author tier asks it.
    pub const AUTHOR_READINGS: &str = "author_readings";
    /// Publication year (a column): "newest", newer editions first, decade facet.
    pub const YEAR: &str = "year";
    /// First year of the publication decade, to filter by.
    pub const DECADE: &str = "decade";
    /// The NDC main class, 0 to 9 (filter and column).
    pub const NDC_CLASS: &str = "ndc_class";
    /// The key of 五十音順 (a column only): see `reading_sort_key`.
    pub const READING_SORT: &str = "reading_sort";
    /// The title's reading key as one term, for the reading tiers (`tiers.rs`); only a
    /// title with a reading has one.
    pub const READING_KEY: &str = "reading_key";
    /// The normalised title as one term: the exact and prefix tiers (`tiers.rs`).
    pub const TITLE_KEY: &str = "title_key";
    /// Hash of the work (normalised title and author), so that editions group.
    pub const WORK: &str = "work";
    pub const ISBN: &str = "isbn";
    pub const MATERIAL_TYPE: &str = "material_type";
    pub const BRANCHES: &str = "branches";
    pub const AVAILABLE_BRANCHES: &str = "available_branches";
    pub const AVAILABLE_ANYWHERE: &str = "available_anywhere";
    pub const CREATED_AT: &str = "created_at";
}

/// One title as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDoc {
    pub title_id: String,
    pub title: String,
    pub title_reading: String,
    pub author: String,
    /// The author's reading (kana), matched as a reading only.
    pub author_reading: String,
    pub publisher: String,
    /// As found in the record; anything [`Isbn::parse`] accepts (a trailing price is fine).
    pub isbn: String,
    /// Other titles of the same work: original title, series title, romanised title.
    pub aliases: Vec<String>,
    /// `book`, `magazine` or `av`.
    pub material_type: String,
    /// Branches holding an item of this title.
    pub branches: Vec<String>,
    /// Branches with an item on the shelf now.
    pub available_branches: Vec<String>,
    /// RFC 3339 instant, for "newest first".
    pub created_at: String,
    /// Publication year.
    pub year: Option<i64>,
    /// NDC class number (`913.6`), or empty.
    pub ndc: String,
}

/// What one field takes on disk: term dictionary, postings, positions, column, norms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpace {
    pub field: String,
    pub bytes: [u64; 5],
}

/// Restrictions applied to every search; all values compare exactly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchFilter {
    pub material_type: Option<String>,
    pub branch: Option<String>,
    /// With `branch`: an item is on the shelf at that branch. Without: at any branch.
    pub available_only: bool,
    /// NDC main class (first digit of the class number).
    pub ndc_class: Option<u8>,
    /// First year of a publication decade (1990: 1990 to 1999).
    pub decade: Option<i64>,
}

/// How a search orders and shapes its page, beyond what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchOptions {
    pub sort: SortOrder,
    /// Count [`Facets`] over every match.
    pub facets: bool,
    /// One hit per work (same normalised title and author), standing for its editions:
    /// the best-ranked edition, with how many there are.
    pub group_editions: bool,
}

/// The columns facets are counted from.
const FACET_COLUMNS: facets::FacetColumns = facets::FacetColumns {
    available_branches: field::AVAILABLE_BRANCHES,
    material_type: field::MATERIAL_TYPE,
    ndc_class: field::NDC_CLASS,
    year: field::YEAR,
};

/// One page of hits and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchResult {
    /// Matching titles, or works when editions are grouped.
    pub total: u64,
    pub title_ids: Vec<String>,
    /// Beside `title_ids`: how many editions each hit stands for (1 unless grouped).
    pub editions: Vec<u32>,
    /// When asked for.
    pub facets: Option<Facets>,
}

/// Why the index could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot create the index directory {path}")]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the index directory {path}")]
    OpenDirectory {
        path: PathBuf,
        #[source]
        source: OpenDirectoryError,
    },
    #[error(
        "the index in {path} was built with another schema; remove it and run `kitsuki reindex`"
    )]
    SchemaMismatch { path: PathBuf },
    #[error("title {title_id:?} cannot be indexed: {reason}")]
    InvalidDocument {
        title_id: String,
        reason: &'static str,
    },
    #[error("the index writer was poisoned by a panic during an earlier update")]
    WriterPoisoned,
    /// Another process holds the index's writer lock (tantivy allows one writer): a
    /// running kitsuki, whose follower indexes what this process writes.
    #[error("the index in {path} is in use by another process")]
    Busy { path: PathBuf },
    #[error("this index was opened to be read only")]
    ReadOnly,
}

/// The search index. `Send + Sync`: share one in an `Arc`; writes are serialised inside.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<Writer>,
    fields: Fields,
}

/// The writer (none for an index opened read only) and the watermark of its last commit.
struct Writer {
    inner: Option<IndexWriter>,
    /// `None`: the index holds documents of unknown state (no payload of this format).
    watermark: Option<u64>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("num_docs", &self.num_docs())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if needed.
    ///
    /// Refuses an index of another schema ([`IndexError::SchemaMismatch`]: it would give
    /// wrong answers, not errors) and one whose writer another process holds
    /// ([`IndexError::Busy`]).
    pub fn open_or_create(dir: &Path) -> Result<Self, IndexError> {
        let index = match Self::open_dir(dir)? {
            Some(index) => {
                if index.schema() != schema() {
                    return Err(IndexError::SchemaMismatch {
                        path: dir.to_owned(),
                    });
                }
                index
            }
            None => {
                let directory = Self::directory(dir)?;
                Index::create(directory, schema(), IndexSettings::default())?
            }
        };
        Self::from_index(index, true).map_err(|e| match e {
            IndexError::Tantivy(tantivy::TantivyError::LockFailure(LockError::LockBusy, _)) => {
                IndexError::Busy {
                    path: dir.to_owned(),
                }
            }
            e => e,
        })
    }

    /// Opens the index in `dir` without a writer, whatever its schema, as long as it has
    /// the fields searches use: an old index serving while its replacement is built.
    pub fn open_read_only(dir: &Path) -> Result<Self, IndexError> {
        match Self::open_dir(dir)? {
            Some(index) => Self::from_index(index, false),
            None => Err(IndexError::OpenDirectory {
                path: dir.to_owned(),
                source: OpenDirectoryError::DoesNotExist(dir.to_owned()),
            }),
        }
    }

    fn directory(dir: &Path) -> Result<MmapDirectory, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::CreateDirectory {
            path: dir.to_owned(),
            source,
        })?;
        MmapDirectory::open(dir).map_err(|source| IndexError::OpenDirectory {
            path: dir.to_owned(),
            source,
        })
    }

    /// The index stored in `dir`, if there is one.
    fn open_dir(dir: &Path) -> Result<Option<Index>, IndexError> {
        let directory = Self::directory(dir)?;
        if Index::exists(&directory).map_err(tantivy::TantivyError::from)? {
            Ok(Some(Index::open(directory)?))
        } else {
            Ok(None)
        }
    }

    /// A fresh index in memory, for tests and for the embedded demo.
    pub fn in_memory() -> Result<Self, IndexError> {
        Self::from_index(Index::create_in_ram(schema()), true)
    }

    fn from_index(index: Index, writable: bool) -> Result<Self, IndexError> {
        // Tokenizers are not stored with the index: register ours on every open.
        index
            .tokenizers()
            .register(CJK_TOKENIZER, TextAnalyzer::from(CharGramTokenizer));
        index
            .tokenizers()
            .register(WORDS_TOKENIZER, TextAnalyzer::from(WordTokenizer));
        let fields = Fields::new(&index.schema())?;
        let payload = index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<Payload>(&p).ok())
            .filter(|p| p.format == FORMAT);
        let writer = if writable {
            Some(new_writer(&index)?)
        } else {
            None
        };
        // Manual: every write reloads the reader itself, so results are visible on return.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        // An index without documents holds nothing, whatever its payload: watermark 0.
        let watermark = match payload {
            Some(p) => Some(p.change_seq),
            None if reader.searcher().num_docs() == 0 => Some(0),
            None => None,
        };
        Ok(SearchIndex {
            reader,
            writer: Mutex::new(Writer {
                inner: writer,
                watermark,
            }),
            fields,
        })
    }

    /// The highest catalogue change sequence number up to which every change is in the
    /// index (from its last commit's payload); `None` when it holds documents of an unknown
    /// state (built by an older kitsuki, or of another [`FORMAT`]): rebuild it.
    pub fn watermark(&self) -> Option<u64> {
        self.writer.lock().ok().and_then(|w| w.watermark)
    }

    /// Adds or replaces (by `title_id`) each valid document without committing: they are
    /// not visible until [`SearchIndex::commit_up_to`]. A document that cannot be indexed
    /// (an empty id, a bad `created_at`) is logged and skipped, so that it cannot hold a
    /// catch-up back for ever; answers how many were added.
    pub fn stage(&self, docs: &[IndexDoc]) -> Result<usize, IndexError> {
        let prepared: Vec<_> = docs
            .iter()
            .filter_map(|doc| match self.to_document(doc) {
                Ok(d) => Some(d),
                Err(err) => {
                    tracing::error!(%err, "title not indexed");
                    None
                }
            })
            .collect();
        let n = prepared.len();
        let mut guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let writer = guard.inner.as_mut().ok_or(IndexError::ReadOnly)?;
        for (id, doc) in prepared {
            writer.delete_term(Term::from_field_text(self.fields.title_id, &id));
            writer.add_document(doc)?;
        }
        Ok(n)
    }

    /// Begins a bulk write (an import, a rebuild): no segment is merged until
    /// [`SearchIndex::merge_segments`] (or [`SearchIndex::end_bulk`]) ends it. Merging
    /// while a bulk write indexes reads every title again at each level of the merge
    /// policy, and a background merge of large segments beside the indexing was an
    /// import's peak memory: at 250,000 titles ~155 MB of mapped segment files while ~180
    /// MB of heap indexed (docs/ARCHITECTURE.md "Import").
    pub fn begin_bulk(&self) -> Result<(), IndexError> {
        let guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let writer = guard.inner.as_ref().ok_or(IndexError::ReadOnly)?;
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        Ok(())
    }

    /// Ends a bulk write without merging: the segments are merged by [`merge_policy`]
    /// again as commits come.
    pub fn end_bulk(&self) -> Result<(), IndexError> {
        let guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let writer = guard.inner.as_ref().ok_or(IndexError::ReadOnly)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        Ok(())
    }

    /// Lets the merges of [`merge_policy`] end, then, if more than [`MAX_SEGMENTS`] are
    /// left, folds them into [`MAX_SEGMENTS`] of about equal size, one merge after the
    /// other (a merge maps every segment it reads: folding a 250,000-title import into one
    /// segment mapped the whole index at once, ~200 MB of the import's peak); answers how many segments there were once the
    /// merges ended. For after a bulk write (an import, a rebuild): a search walks each
    /// segment. What was staged and not committed is dropped; the watermark is kept
    /// (tantivy carries the last commit's payload over a merge). Ends a bulk write: the
    /// writer after it merges by [`merge_policy`].
    pub fn merge_segments(&self) -> Result<usize, IndexError> {
        let mut guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let writer = guard.inner.take().ok_or(IndexError::ReadOnly)?;
        let index = writer.index().clone();
        // The merges the merge policy started end first: a segment merged twice is thrown
        // away by one of the two ("couldn't find segment in SegmentManager").
        writer.wait_merging_threads()?;
        let mut writer = new_writer(&index)?;
        // Only the ids and sizes: a live `SegmentMeta` keeps its segment's files from the
        // garbage collection below.
        let sizes: Vec<_> = index
            .searchable_segment_metas()?
            .iter()
            .map(|m| (m.id(), m.num_docs()))
            .collect();
        let mut merged = Ok(());
        if sizes.len() > MAX_SEGMENTS {
            // The policy would merge what a group's merge leaves, the next group's segments
            // among them, and that group's merge would then find them gone.
            writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            for group in merge_groups(&sizes, MAX_SEGMENTS) {
                merged = writer.merge(&group).wait().map(drop);
                if merged.is_err() {
                    break;
                }
                // The searcher lets go of the merged segments (and the pages the merge read
                // of them), so the next group's merge is the only one mapped.
                merged = self.reader.reload();
                if merged.is_err() {
                    break;
                }
            }
            writer.set_merge_policy(Box::new(merge_policy()));
            if merged.is_ok() {
                // The merged segments' files are deleted only by a garbage collection after
                // the searcher let go of them: without it a 250,000-title import left its
                // 175 MB index beside ~200 MB of merged-away files.
                merged = writer.garbage_collect_files().wait().map(drop);
            }
        }
        guard.inner = Some(writer);
        merged?;
        self.reader.reload()?;
        Ok(sizes.len())
    }

    /// Commits what was staged, recording that the index now holds every change numbered
    /// up to `watermark`, and makes it visible to searches.
    pub fn commit_up_to(&self, watermark: u64) -> Result<(), IndexError> {
        let mut guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let w = &mut *guard;
        let writer = w.inner.as_mut().ok_or(IndexError::ReadOnly)?;
        commit_with_payload(writer, watermark)?;
        w.watermark = Some(watermark);
        self.reader.reload()?;
        Ok(())
    }

    /// Adds or replaces (by `title_id`) each document, in one commit.
    ///
    /// Every document is checked before any is written, so a bad one changes nothing. When
    /// the same `title_id` appears twice, the later one wins.
    #[tracing::instrument(skip_all, fields(docs = docs.len()))]
    pub fn upsert_many(&self, docs: &[IndexDoc]) -> Result<(), IndexError> {
        if docs.is_empty() {
            return Ok(());
        }
        let prepared = docs
            .iter()
            .map(|doc| self.to_document(doc))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let w = &mut *guard;
        let writer = w.inner.as_mut().ok_or(IndexError::ReadOnly)?;
        let applied = prepared.into_iter().try_for_each(|(id, doc)| {
            writer.delete_term(Term::from_field_text(self.fields.title_id, &id));
            writer.add_document(doc).map(drop)
        });
        self.finish_write(writer, w.watermark, applied)
    }

    /// Adds or replaces one document.
    pub fn upsert(&self, doc: &IndexDoc) -> Result<(), IndexError> {
        self.upsert_many(std::slice::from_ref(doc))
    }

    /// Removes every document (before a full reindex): the watermark is then 0.
    #[tracing::instrument(skip_all)]
    pub fn clear(&self) -> Result<(), IndexError> {
        let mut guard = self.writer.lock().map_err(|_| IndexError::WriterPoisoned)?;
        let w = &mut *guard;
        let writer = w.inner.as_mut().ok_or(IndexError::ReadOnly)?;
        let applied = writer.delete_all_documents().map(drop);
        self.finish_write(writer, Some(0), applied)?;
        w.watermark = Some(0);
        Ok(())
    }

    /// Commits what was applied (keeping `watermark` in the payload: tantivy does not
    /// carry a payload over to the next commit), or rolls it back so that a later commit
    /// cannot publish half of a failed batch; then makes the result visible to searches.
    fn finish_write(
        &self,
        writer: &mut IndexWriter,
        watermark: Option<u64>,
        applied: tantivy::Result<()>,
    ) -> Result<(), IndexError> {
        if let Err(err) = applied {
            writer.rollback()?;
            return Err(err.into());
        }
        match watermark {
            Some(w) => commit_with_payload(writer, w)?,
            None => {
                writer.commit()?;
            }
        }
        self.reader.reload()?;
        Ok(())
    }

    /// How many segments a search walks (one after [`SearchIndex::merge_segments`]).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Whether a document of this title is visible to searches.
    pub fn contains(&self, title_id: &str) -> bool {
        let term = Term::from_field_text(self.fields.title_id, title_id);
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        self.reader
            .searcher()
            .search(&query, &Count)
            .is_ok_and(|n| n > 0)
    }

    /// Bytes on disk per field, over every segment: term dictionary, postings, positions,
    /// columns (fast fields) and field norms, largest first. What the index's size is made
    /// of (`examples/index_space.rs`).
    pub fn space_by_field(&self) -> Result<Vec<FieldSpace>, IndexError> {
        let usage = self
            .reader
            .searcher()
            .space_usage()
            .map_err(|e| IndexError::Tantivy(e.into()))?;
        let mut by_name: HashMap<String, FieldSpace> = HashMap::new();
        for segment in usage.segments() {
            let parts = [
                segment.termdict(),
                segment.postings(),
                segment.positions(),
                segment.fast_fields(),
                segment.fieldnorms(),
            ];
            for (part, usage) in parts.iter().enumerate() {
                for f in usage.fields() {
                    let entry =
                        by_name
                            .entry(f.field_name().to_owned())
                            .or_insert_with(|| FieldSpace {
                                field: f.field_name().to_owned(),
                                bytes: [0; 5],
                            });
                    entry.bytes[part] += f.total().get_bytes();
                }
            }
        }
        let mut fields: Vec<FieldSpace> = by_name.into_values().collect();
        fields.sort_by_key(|f| std::cmp::Reverse(f.bytes.iter().sum::<u64>()));
        Ok(fields)
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Searches titles.
    ///
    /// `q` is split on whitespace (after normalisation) and every term must match one of
    /// title, reading, author, publisher or aliases. A `q` that is exactly an ISBN (any
    /// spelling) looks the ISBN up instead. Hits come by relevance, ties newest first; an
    /// empty `q` lists every title that passes the filter, newest first. `limit` is capped at
    /// [`MAX_LIMIT`]. `total` is exact.
    ///
    /// CPU-bound (a few milliseconds on a large catalogue): call it from a blocking thread
    /// ([`crate::search_pool`]), not from an async worker.
    ///
    /// The plan (tantivy's `Weight`) is built once and walked once per segment: that one
    /// walk ranks and counts. Ranking by score must score every match anyway (no pruning
    /// applies to an intersection of phrases), so the exact count costs one increment per
    /// match; when no page is wanted, the count is tantivy's own (`Weight::count`: the
    /// document frequency of a term, the number of documents for "everything").
    #[tracing::instrument(level = "debug", skip(self, filter))]
    pub fn search(
        &self,
        q: &str,
        filter: &SearchFilter,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResult, IndexError> {
        self.search_with(q, filter, &SearchOptions::default(), offset, limit)
    }

    /// [`SearchIndex::search`] with a sort order, facets and editions grouped.
    #[tracing::instrument(level = "debug", skip(self, filter, options))]
    pub fn search_with(
        &self,
        q: &str,
        filter: &SearchFilter,
        options: &SearchOptions,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResult, IndexError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let has_query = self.add_query_clauses(q, &mut clauses);
        self.add_filter_clauses(filter, &mut clauses);
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        let order = options.sort;
        let by_score = has_query && order == SortOrder::Relevance;
        // Without a query, "relevance" is a browse of new arrivals: the record's age only.
        let by_year = order != SortOrder::Relevance || has_query;

        let searcher = self.reader.searcher();
        let limit = limit.min(MAX_LIMIT);
        let scoring = if by_score {
            EnableScoring::enabled_from_searcher(&searcher)
        } else {
            EnableScoring::disabled_from_searcher(&searcher)
        };
        let weight = query.weight(scoring)?;
        let walk_all = limit > 0 || options.facets || options.group_editions;
        // Past the last document there is nothing to rank; this also keeps offset + limit
        // from overflowing below.
        if !walk_all || offset as u64 >= searcher.num_docs() && !options.facets {
            let mut total = 0u64;
            for reader in searcher.segment_readers() {
                total += u64::from(weight.count(reader)?);
            }
            return Ok(SearchResult {
                total,
                ..SearchResult::default()
            });
        }

        let k = offset.saturating_add(limit);
        let mut per_segment: Vec<TopHits> = Vec::new();
        let mut tally = options.facets.then(facets::Tally::default);
        let mut works: HashMap<u64, Hit> = HashMap::new();
        let mut total = 0u64;
        for (segment, reader) in searcher.segment_readers().iter().enumerate() {
            let segment = segment as u32;
            let fast = reader.fast_fields();
            let created_at = fast.i64(field::CREATED_AT)?;
            let years = fast.i64(field::YEAR)?;
            let work = fast.u64(field::WORK)?;
            let reading = if order == SortOrder::Reading {
                fast.str(field::READING_SORT)?
            } else {
                None
            };
            let mut counts = match &tally {
                Some(t) => Some(t.segment(reader, &FACET_COLUMNS)?),
                None => None,
            };
            let mut top = TopHits::new(k, order, 4 * MAX_LIMIT);
            let alive = reader.alive_bitset();
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|bits| bits.is_alive(doc)) {
                    total += 1;
                    if let Some(counts) = counts.as_mut() {
                        counts.count(doc);
                    }
                    let score = if by_score { scorer.score() } else { 0.0 };
                    // Most matches fall below the page on their score alone: read their
                    // other keys only when they can decide.
                    if options.group_editions || top.may_enter(score) {
                        let hit = Hit {
                            score,
                            year: if by_year {
                                years.first(doc).unwrap_or(NO_YEAR)
                            } else {
                                NO_YEAR
                            },
                            created_micros: created_at.first(doc).unwrap_or(i64::MIN),
                            reading_ord: reading
                                .as_ref()
                                .and_then(|c| c.term_ords(doc).next())
                                .unwrap_or(u64::MAX),
                            segment,
                            doc,
                            editions: 1,
                        };
                        if options.group_editions {
                            let key = work.first(doc).unwrap_or(u64::from(doc));
                            works
                                .entry(key)
                                .and_modify(|best| {
                                    let editions = best.editions + 1;
                                    if hit.better_edition_than(best, order) {
                                        *best = hit;
                                    }
                                    best.editions = editions;
                                })
                                .or_insert(hit);
                        } else {
                            top.push(hit);
                        }
                    }
                }
                doc = scorer.advance();
            }
            if let (Some(t), Some(c)) = (tally.as_mut(), counts) {
                t.end_segment(c)?;
            }
            per_segment.push(top);
        }
        if options.group_editions {
            total = works.len() as u64;
            for hit in works.into_values() {
                per_segment[hit.segment as usize].push(hit);
            }
        }
        let mut reading_columns: Vec<Option<StrColumn>> = Vec::new();
        reading_columns.resize_with(searcher.segment_readers().len(), || None);
        let hits = ranking::merge(per_segment, order, offset, limit, |hit| {
            self.reading_key_of(&searcher, &mut reading_columns, hit)
        })?;
        let title_ids = self.title_ids(&searcher, &hits)?;
        Ok(SearchResult {
            total,
            editions: hits.iter().map(|h| h.editions).collect(),
            title_ids,
            facets: tally.map(facets::Tally::finish),
        })
    }

    /// A hit's reading sort key (the string behind its ordinal).
    fn reading_key_of(
        &self,
        searcher: &Searcher,
        columns: &mut [Option<StrColumn>],
        hit: &Hit,
    ) -> Result<String, IndexError> {
        let slot = &mut columns[hit.segment as usize];
        if slot.is_none() {
            *slot = searcher
                .segment_reader(hit.segment)
                .fast_fields()
                .str(field::READING_SORT)?;
        }
        let mut key = String::new();
        if let Some(column) = slot.as_ref()
            && let Some(ord) = column.term_ords(hit.doc).next()
        {
            column
                .ord_to_str(ord, &mut key)
                .map_err(tantivy::TantivyError::from)?;
        }
        Ok(key)
    }

    /// The ids of the editions of a work ([`work_key`]), newest first, at most `limit`:
    /// the titles of the same normalised title (one term of `title_key`) whose work
    /// column is the work's (the same author).
    pub fn editions_of(
        &self,
        title: &str,
        author: &str,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let wanted = work_key(title, author);
        let term = Term::from_field_text(self.fields.title_key, &normalize(title));
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let searcher = self.reader.searcher();
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let mut top = TopHits::new(limit.min(MAX_LIMIT), SortOrder::Newest, 4 * MAX_LIMIT);
        let mut per_segment = Vec::new();
        for (segment, reader) in searcher.segment_readers().iter().enumerate() {
            let fast = reader.fast_fields();
            let (years, created) = (fast.i64(field::YEAR)?, fast.i64(field::CREATED_AT)?);
            let works = fast.u64(field::WORK)?;
            let alive = reader.alive_bitset();
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|bits| bits.is_alive(doc)) && works.first(doc) == Some(wanted) {
                    top.push(Hit {
                        score: 0.0,
                        year: years.first(doc).unwrap_or(NO_YEAR),
                        created_micros: created.first(doc).unwrap_or(i64::MIN),
                        reading_ord: 0,
                        segment: segment as u32,
                        doc,
                        editions: 1,
                    });
                }
                doc = scorer.advance();
            }
        }
        per_segment.push(top);
        let hits = ranking::merge(per_segment, SortOrder::Newest, 0, limit, |_| {
            Ok::<_, IndexError>(String::new())
        })?;
        self.title_ids(&searcher, &hits)
    }

    /// The ids of hits, in their order, read from the `title_id` column (a fast field):
    /// no stored document is decompressed.
    fn title_ids(&self, searcher: &Searcher, hits: &[Hit]) -> Result<Vec<String>, IndexError> {
        let mut columns: Vec<Option<StrColumn>> = Vec::new();
        columns.resize_with(searcher.segment_readers().len(), || None);
        let mut title_ids = Vec::with_capacity(hits.len());
        let mut id = String::new();
        for hit in hits {
            let slot = &mut columns[hit.segment as usize];
            if slot.is_none() {
                let reader = searcher.segment_reader(hit.segment);
                *slot = reader.fast_fields().str(field::TITLE_ID)?;
            }
            let Some(column) = slot.as_ref() else {
                continue;
            };
            let Some(ord) = column.term_ords(hit.doc).next() else {
                continue;
            };
            id.clear();
            if column
                .ord_to_str(ord, &mut id)
                .map_err(tantivy::TantivyError::from)?
            {
                title_ids.push(id.clone());
            }
        }
        Ok(title_ids)
    }

    /// Adds the clauses for the query text; returns whether hits are ranked by relevance.
    fn add_query_clauses(&self, q: &str, clauses: &mut Vec<(Occur, Box<dyn Query>)>) -> bool {
        if let Ok(isbn) = Isbn::parse_exact(q) {
            let term = Term::from_field_text(self.fields.isbn, isbn.as_str());
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
            return true;
        }
        let normalized = normalize(q);
        if normalized.is_empty() {
            return false;
        }
        // Commas separate terms as spaces do: 夏目,漱石 is two names' parts, as 夏目 漱石.
        let terms: Vec<&str> = normalized
            .split([' ', ',', '、'])
            .filter(|t| !t.is_empty())
            .collect();
        for term in &terms {
            clauses.push((Occur::Must, self.text_term_query(term)));
        }
        let author = BooleanQuery::new(
            terms
                .iter()
                .map(|term| (Occur::Must, self.author_term_query(term)))
                .collect(),
        );
        clauses.extend(tiers::clauses(
            self.fields.title_key,
            self.fields.reading_key,
            &normalized,
            Some(Box::new(author)),
        ));
        true
    }

    /// One query term in the author alone (its words, its bigrams or its reading): the
    /// author tier asks every term of the query this.
    fn author_term_query(&self, term: &str) -> Box<dyn Query> {
        let f = &self.fields;
        let mut either: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if is_word(term) {
            either.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.author_words, term),
                    IndexRecordOption::Basic,
                )),
            ));
        } else {
            either.push((Occur::Should, grams_query(f.author, term)));
        }
        let kana = if is_kana_text(term) {
            Some(term.to_owned())
        } else {
            romaji_to_kana(term)
        };
        if let Some(key) = kana.map(|k| reading_key(&k)).filter(|k| !k.is_empty()) {
            either.push((Occur::Should, grams_query(f.author_readings, &key)));
        }
        Box::new(BooleanQuery::new(either))
    }

    /// One query term: the words it starts (Latin and other spaced scripts), or its bigrams
    /// in a row (or the character itself), in any text field.
    fn text_term_query(&self, term: &str) -> Box<dyn Query> {
        if is_word(term) {
            let words = self.word_prefix_query(term);
            // A term that spells Japanese in romaji also matches the readings.
            return match romaji_to_kana(term) {
                Some(kana) => Box::new(BooleanQuery::new(vec![
                    (Occur::Should, words),
                    (Occur::Should, self.reading_query(&kana)),
                ])),
                None => words,
            };
        }
        let mut per_field: Vec<(Occur, Box<dyn Query>)> = self
            .fields
            .text_with_boost()
            .map(|(field, _, boost)| {
                (
                    Occur::Should,
                    Box::new(BoostQuery::new(grams_query(field, term), boost)) as Box<dyn Query>,
                )
            })
            .collect();
        if is_kana_text(term) {
            per_field.push((Occur::Should, self.reading_query(term)));
        } else if let Some(kana) = romaji_to_kana(term) {
            // Romaji with an apostrophe (jusan'ya: ん before y) is no word, but a reading.
            per_field.push((Occur::Should, self.reading_query(&kana)));
        }
        Box::new(BooleanQuery::new(per_field))
    }

    /// A kana term (or romaji made kana) against the readings, compared as
    /// [`reading_key`]s, so long vowels and kana spelling do not matter.
    fn reading_query(&self, kana: &str) -> Box<dyn Query> {
        let key = reading_key(kana);
        if key.is_empty() {
            return Box::new(tantivy::query::EmptyQuery);
        }
        Box::new(BooleanQuery::new(vec![
            (
                Occur::Should,
                Box::new(BoostQuery::new(
                    grams_query(self.fields.readings, &key),
                    READING_BOOST,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Should,
                grams_query(self.fields.author_readings, &key),
            ),
        ]))
    }

    /// A word-script term: in each field, the word itself (BM25, boosted) or a word that
    /// starts with it (a constant below that).
    fn word_prefix_query(&self, term: &str) -> Box<dyn Query> {
        let short = term.chars().count() <= PREFIX_MAX_CHARS;
        let prefix = Arc::new(WordPrefix(term.as_bytes().to_vec()));
        let prefix_term = format!("{PREFIX_MARK}{term}");
        let clauses = self
            .fields
            .text_with_boost()
            .flat_map(|(_, field, boost)| {
                let exact = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                let starts: Box<dyn Query> = if short {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, &prefix_term),
                        IndexRecordOption::Basic,
                    ))
                } else {
                    Box::new(WordPrefixQuery {
                        field,
                        prefix: prefix.clone(),
                    })
                };
                [
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(exact), boost)) as Box<dyn Query>,
                    ),
                    (
                        Occur::Should,
                        Box::new(ConstScoreQuery::new(starts, PREFIX_SCORE * boost)),
                    ),
                ]
            })
            .collect();
        Box::new(BooleanQuery::new(clauses))
    }

    /// Filters restrict the hits but must not change their ranking: score 0.
    fn add_filter_clauses(
        &self,
        filter: &SearchFilter,
        clauses: &mut Vec<(Occur, Box<dyn Query>)>,
    ) {
        let mut must = |term: Term| {
            let query = TermQuery::new(term, IndexRecordOption::Basic);
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(query), 0.0)),
            ));
        };
        let f = &self.fields;
        if let Some(material_type) = &filter.material_type {
            must(Term::from_field_text(f.material_type, material_type));
        }
        match (&filter.branch, filter.available_only) {
            (Some(branch), true) => must(Term::from_field_text(f.available_branches, branch)),
            (Some(branch), false) => must(Term::from_field_text(f.branches, branch)),
            (None, true) => must(Term::from_field_bool(f.available_anywhere, true)),
            (None, false) => {}
        }
        if let Some(class) = filter.ndc_class {
            must(Term::from_field_u64(f.ndc_class, u64::from(class)));
        }
        if let Some(decade) = filter.decade {
            must(Term::from_field_i64(f.decade, decade));
        }
    }

    /// Checks one document and turns it into what tantivy stores; returns it with its id.
    fn to_document(&self, doc: &IndexDoc) -> Result<(String, TantivyDocument), IndexError> {
        let invalid = |reason| IndexError::InvalidDocument {
            title_id: doc.title_id.clone(),
            reason,
        };
        if doc.title_id.trim().is_empty() {
            return Err(invalid("title_id is empty"));
        }
        let created_at = OffsetDateTime::parse(&doc.created_at, &Rfc3339)
            .map_err(|_| invalid("created_at is not an RFC 3339 time"))?;
        // Microseconds since the epoch: an i64 sort key that orders instants whatever their
        // offset or number of fraction digits, which the RFC 3339 text does not.
        let created_micros = i64::try_from(created_at.unix_timestamp_nanos() / 1000)
            .map_err(|_| invalid("created_at is out of range"))?;

        let f = &self.fields;
        let mut out = TantivyDocument::default();
        out.add_text(f.title_id, &doc.title_id);
        // Each text normalised once: the normalisation is most of what indexing a title
        // costs on the CPU, and the keys below are made from the same normalised texts.
        let title = normalize(&doc.title);
        let author = join_name_parts(&normalize(&doc.author));
        let title_reading = normalize(&doc.title_reading);
        let texts = [
            (f.title, f.title_words, title.clone()),
            (
                f.title_reading,
                f.title_reading_words,
                title_reading.clone(),
            ),
            (f.author, f.author_words, author.clone()),
            (f.publisher, f.publisher_words, normalize(&doc.publisher)),
        ];
        let aliases: Vec<(String, String)> = doc
            .aliases
            .iter()
            .map(|a| (a.clone(), normalize(a)))
            .collect();
        for (field, words, normalized) in texts.into_iter().chain(
            aliases
                .iter()
                .map(|(_, n)| (f.aliases, f.aliases_words, n.clone())),
        ) {
            if !normalized.is_empty() {
                if normalized.chars().any(is_word_char) {
                    out.add_text(words, &normalized);
                }
                out.add_text(field, normalized);
            }
        }
        if !title.is_empty() {
            out.add_text(f.title_key, &title);
        }
        let own = key_of(&doc.title_reading, &title_reading);
        let mut keys: Vec<String> = own.iter().cloned().collect();
        for key in aliases.iter().filter_map(|(a, n)| key_of(a, n)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in keys {
            out.add_text(f.readings, key);
        }
        if let Some(key) = key_of(&doc.author_reading, &normalize(&doc.author_reading)) {
            out.add_text(f.author_readings, key);
        }
        if let Some(year) = doc.year {
            out.add_i64(f.year, year);
            out.add_i64(f.decade, decade_of(year));
        }
        if let Some(class) = crate::domain::ndc::main_class(doc.ndc.trim()) {
            out.add_u64(f.ndc_class, u64::from(class));
        }
        if let Some(key) = &own {
            out.add_text(f.reading_key, key);
        }
        out.add_text(f.reading_sort, reading_sort_key(&title, own.as_deref()));
        out.add_u64(f.work, work_key_of(&title, &author));
        if !doc.isbn.trim().is_empty() {
            match Isbn::parse(&doc.isbn) {
                Ok(isbn) => out.add_text(f.isbn, isbn.as_str()),
                // The title stays findable by its text; only the ISBN lookup misses it.
                Err(err) => tracing::warn!(title_id = %doc.title_id, %err, "isbn not indexed"),
            }
        }
        out.add_text(f.material_type, &doc.material_type);
        for branch in &doc.branches {
            out.add_text(f.branches, branch);
        }
        for branch in &doc.available_branches {
            out.add_text(f.available_branches, branch);
        }
        out.add_bool(f.available_anywhere, !doc.available_branches.is_empty());
        out.add_i64(f.created_at, created_micros);
        Ok((doc.title_id.clone(), out))
    }
}

/// A term's bigrams in a row in one field (the character itself for one character).
fn grams_query(field: Field, term: &str) -> Box<dyn Query> {
    let grams = if term.chars().count() == 1 {
        vec![(0, term.to_owned())]
    } else {
        covering_bigrams(term)
    };
    let mut terms: Vec<(usize, Term)> = grams
        .iter()
        .map(|(position, gram)| (*position, Term::from_field_text(field, gram)))
        .collect();
    match terms.len() {
        1 => Box::new(TermQuery::new(
            terms.remove(0).1,
            IndexRecordOption::WithFreqs,
        )),
        _ => Box::new(PhraseQuery::new_with_offset(terms)),
    }
}

/// Parts of a name written apart (`夏目, 漱石`, `夏目 漱石`) are one name to a searcher: the
/// spaces and commas between two kanji or kana are dropped from the indexed author, so that
/// `夏目漱石` finds it as a whole, and each part still finds it.
fn join_name_parts(normalized: &str) -> String {
    let chars: Vec<char> = normalized.chars().collect();
    let mut out = String::with_capacity(normalized.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, ' ' | ',' | '、') {
            let mut j = i;
            while j < chars.len() && matches!(chars[j], ' ' | ',' | '、') {
                j += 1;
            }
            let before = out.chars().last().is_some_and(is_cjk_letter);
            let after = chars.get(j).copied().is_some_and(is_cjk_letter);
            if before && after {
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Kanji or kana (a letter of a script written without spaces).
fn is_cjk_letter(c: char) -> bool {
    c.is_alphanumeric() && !is_word_char(c)
}

/// A text as a reading key, when it is kana or a romanisation that spells Japanese;
/// `normalized` is the text [`normalize`]d.
fn key_of(text: &str, normalized: &str) -> Option<String> {
    let reading = if is_kana_text(normalized) {
        Some(normalized.to_owned())
    } else {
        romanised_reading(text)
    };
    reading.map(|r| reading_key(&r)).filter(|k| !k.is_empty())
}

/// The key of 五十音順: `1` and the title's reading key for a title with a reading (or
/// written in kana), `2` and the normalised title for one without: kana order first, then
/// the rest in code point order (Latin letters, then kanji). Its first
/// [`SORT_KEY_CHARS`] characters only: an order needs no more (titles equal so far sort
/// by year, then age), and the column of whole titles was a third of the index's keys.
fn reading_sort_key(title: &str, reading: Option<&str>) -> String {
    let key = match reading
        .map(str::to_owned)
        .or_else(|| is_kana_text(title).then(|| reading_key(title)))
    {
        Some(key) => format!("1{key}"),
        None => format!("2{title}"),
    };
    key.chars().take(SORT_KEY_CHARS).collect()
}

/// How much of a title's 五十音順 key is kept ([`reading_sort_key`]).
const SORT_KEY_CHARS: usize = 32;

/// The work a title is an edition of: a hash (FNV-1a, stable across builds and runs, as
/// the index keeps it) of its normalised title and author, names joined as the index
/// joins them, so that `夏目, 漱石` and `夏目漱石` are one author.
pub fn work_key(title: &str, author: &str) -> u64 {
    work_key_of(&normalize(title), &join_name_parts(&normalize(author)))
}

/// [`work_key`] of the normalised title and the normalised, joined author.
fn work_key_of(title: &str, author: &str) -> u64 {
    [title.as_bytes(), b"\x01", author.as_bytes()]
        .into_iter()
        .flatten()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Splits segments (id, documents) into at most `groups` groups of about equal documents,
/// the largest first into the smallest group, each group to be merged into one segment:
/// groups of two or more only (a lone segment stays as it is).
fn merge_groups(
    sizes: &[(tantivy::index::SegmentId, u32)],
    groups: usize,
) -> Vec<Vec<tantivy::index::SegmentId>> {
    let mut sorted = sizes.to_vec();
    sorted.sort_by_key(|&(_, docs)| std::cmp::Reverse(docs));
    let mut out: Vec<(u64, Vec<tantivy::index::SegmentId>)> = vec![(0, Vec::new()); groups.max(1)];
    for (id, docs) in sorted {
        if let Some(smallest) = out.iter_mut().min_by_key(|(total, _)| *total) {
            smallest.0 += u64::from(docs);
            smallest.1.push(id);
        }
    }
    out.into_iter()
        .map(|(_, ids)| ids)
        .filter(|ids| ids.len() > 1)
        .collect()
}

/// The writer of an index, with [`merge_policy`].
fn new_writer(index: &Index) -> tantivy::Result<IndexWriter> {
    let writer = index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
    writer.set_merge_policy(Box::new(merge_policy()));
    Ok(writer)
}

/// Segments of a similar size are merged four at a time (tantivy's default waits for
/// eight): a bulk import that commits every 10,000 titles leaves a few segments, not a
/// dozen, and each segment costs every search a walk of its own. Measured on the 250,000
/// LoC titles (docs/ARCHITECTURE.md "Search"): eight left 11 segments and a mean search of
/// 1.08 ms; four leave 4 in 41 s of import and 285 MB, 0.55 ms; three leave 1 but the
/// import peaks at 306 MB.
fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_num_segments(4);
    policy
}

/// Commits with the payload that says the index holds every change up to `watermark`.
fn commit_with_payload(writer: &mut IndexWriter, watermark: u64) -> Result<(), IndexError> {
    let payload = serde_json::to_string(&Payload {
        format: FORMAT,
        change_seq: watermark,
    })
    .unwrap_or_default();
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}

/// The schema. Text fields hold normalised text tokenised by [`CharGramTokenizer`]; the
/// others are exact STRING terms, except `created_at` (a fast i64 for sorting). `title_id`
/// is also a fast field (a column), from which the hits' ids are read.
fn schema() -> Schema {
    let cjk = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(CJK_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let mut builder = Schema::builder();
    // FAST: a page's ids are read from the column, not from stored documents (which would
    // decompress a block of the document store per hit). Nothing else is stored.
    builder.add_text_field(field::TITLE_ID, STRING | FAST);
    for name in [
        field::TITLE,
        field::TITLE_READING,
        field::AUTHOR,
        field::PUBLISHER,
        field::ALIASES,
        field::READINGS,
        field::AUTHOR_READINGS,
    ] {
        builder.add_text_field(name, cjk.clone());
    }
    // Words are matched as terms, never as phrases: no positions (a third of the size).
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    for name in [
        field::TITLE_WORDS,
        field::TITLE_READING_WORDS,
        field::AUTHOR_WORDS,
        field::PUBLISHER_WORDS,
        field::ALIASES_WORDS,
    ] {
        builder.add_text_field(name, words.clone());
    }
    for name in [field::ISBN, field::BRANCHES] {
        builder.add_text_field(name, STRING);
    }
    // Columns too: facets are counted from them.
    for name in [field::MATERIAL_TYPE, field::AVAILABLE_BRANCHES] {
        builder.add_text_field(name, STRING | FAST);
    }
    builder.add_bool_field(field::AVAILABLE_ANYWHERE, INDEXED);
    builder.add_i64_field(field::CREATED_AT, FAST);
    builder.add_i64_field(field::YEAR, FAST);
    builder.add_i64_field(field::DECADE, INDEXED);
    builder.add_u64_field(field::NDC_CLASS, INDEXED | FAST);
    builder.add_text_field(field::READING_SORT, FAST);
    builder.add_text_field(field::READING_KEY, STRING);
    builder.add_text_field(field::TITLE_KEY, STRING);
    builder.add_u64_field(field::WORK, FAST);
    builder.build()
}

/// Field handles, looked up once.
struct Fields {
    title_id: Field,
    title: Field,
    title_reading: Field,
    author: Field,
    publisher: Field,
    aliases: Field,
    title_words: Field,
    title_reading_words: Field,
    author_words: Field,
    publisher_words: Field,
    aliases_words: Field,
    readings: Field,
    author_readings: Field,
    isbn: Field,
    material_type: Field,
    branches: Field,
    available_branches: Field,
    available_anywhere: Field,
    created_at: Field,
    year: Field,
    decade: Field,
    ndc_class: Field,
    reading_sort: Field,
    reading_key: Field,
    title_key: Field,
    work: Field,
}

impl Fields {
    fn new(schema: &Schema) -> Result<Self, IndexError> {
        let get = |name: &str| schema.get_field(name).map_err(IndexError::from);
        Ok(Fields {
            title_id: get(field::TITLE_ID)?,
            title: get(field::TITLE)?,
            title_reading: get(field::TITLE_READING)?,
            author: get(field::AUTHOR)?,
            publisher: get(field::PUBLISHER)?,
            aliases: get(field::ALIASES)?,
            title_words: get(field::TITLE_WORDS)?,
            title_reading_words: get(field::TITLE_READING_WORDS)?,
            author_words: get(field::AUTHOR_WORDS)?,
            publisher_words: get(field::PUBLISHER_WORDS)?,
            aliases_words: get(field::ALIASES_WORDS)?,
            readings: get(field::READINGS)?,
            author_readings: get(field::AUTHOR_READINGS)?,
            isbn: get(field::ISBN)?,
            material_type: get(field::MATERIAL_TYPE)?,
            branches: get(field::BRANCHES)?,
            available_branches: get(field::AVAILABLE_BRANCHES)?,
            available_anywhere: get(field::AVAILABLE_ANYWHERE)?,
            created_at: get(field::CREATED_AT)?,
            year: get(field::YEAR)?,
            decade: get(field::DECADE)?,
            ndc_class: get(field::NDC_CLASS)?,
            reading_sort: get(field::READING_SORT)?,
            reading_key: get(field::READING_KEY)?,
            title_key: get(field::TITLE_KEY)?,
            work: get(field::WORK)?,
        })
    }

    /// Text fields, their words fields, and how much a match in each counts: a hit in the
    /// title matters most.
    fn text_with_boost(&self) -> impl Iterator<Item = (Field, Field, f32)> {
        [
            (self.title, self.title_words, 2.0),
            (self.title_reading, self.title_reading_words, 1.5),
            (self.aliases, self.aliases_words, 1.5),
            (self.author, self.author_words, 1.0),
            (self.publisher, self.publisher_words, 0.5),
        ]
        .into_iter()
    }
}

/// Whether a character belongs to a script written with spaces between words: a letter or
/// digit that is not Han, kana or Hangul.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        && !matches!(c,
            '\u{1100}'..='\u{11FF}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{3130}'..='\u{318F}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7AF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3FFFF}')
}

/// Whether a (normalised, space-free) query term is searched as a word prefix: two
/// characters or more, all of a spaced script. One character stays a unigram, and a term
/// with kanji, kana or punctuation stays a bigram phrase (substring search).
fn is_word(term: &str) -> bool {
    term.chars().nth(1).is_some() && term.chars().all(is_word_char)
}

/// The automaton of the words that start with a prefix (bytes), for tantivy's
/// [`AutomatonWeight`]: the state is how many bytes matched so far, `None` once one differs.
#[derive(Debug)]
pub(crate) struct WordPrefix(pub(crate) Vec<u8>);

impl tantivy_fst::Automaton for WordPrefix {
    type State = Option<usize>;

    fn start(&self) -> Option<usize> {
        Some(0)
    }

    fn is_match(&self, state: &Option<usize>) -> bool {
        *state == Some(self.0.len())
    }

    fn can_match(&self, state: &Option<usize>) -> bool {
        state.is_some()
    }

    fn will_always_match(&self, state: &Option<usize>) -> bool {
        self.is_match(state)
    }

    fn accept(&self, state: &Option<usize>, byte: u8) -> Option<usize> {
        match *state {
            Some(n) if n == self.0.len() => Some(n),
            Some(n) if self.0[n] == byte => Some(n + 1),
            _ => None,
        }
    }
}

/// The documents with a word that starts with the prefix in one field, all scored alike
/// (the boost).
#[derive(Debug, Clone)]
pub(crate) struct WordPrefixQuery {
    pub(crate) field: Field,
    pub(crate) prefix: Arc<WordPrefix>,
}

impl Query for WordPrefixQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<WordPrefix>::new(
            self.field,
            self.prefix.clone(),
        )))
    }
}

/// Enough two-character grams of a whitespace-free query term (two characters or more)
/// to cover each of its characters, with their positions in the term: the grams at 0, 2,
/// 4, … and, for an odd length, the last one. A document has these grams at these relative
/// positions exactly when it has the term (each position fixes its two characters), so the
/// phrase matches what all the overlapping grams would match, with about half the posting
/// lists to intersect: `history` is `hi st or ry`, not `hi is st to or ry`.
pub(crate) fn covering_bigrams(term: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = term.chars().collect();
    let last = chars.len().saturating_sub(2);
    let mut starts: Vec<usize> = (0..=last).step_by(2).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
        .into_iter()
        .map(|start| (start, chars[start..start + 2].iter().collect()))
        .collect()
}

/// Emits, at the position of each non-space character, that character and the bigram it
/// starts (unless the next character is a space or the end). Unigrams let a one-character
/// query match; bigrams at consecutive positions let a longer one be a phrase query.
#[derive(Clone, Copy, Debug)]
struct CharGramTokenizer;

impl Tokenizer for CharGramTokenizer {
    type TokenStream<'a> = CharGramStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CharGramStream {
            text,
            chars: text.char_indices().collect(),
            next: 0,
            pending_bigram: false,
            token: Token::default(),
        }
    }
}

struct CharGramStream<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    /// Index in `chars` of the next character to emit a unigram for.
    next: usize,
    /// Whether the bigram starting at `next - 1` is still to be emitted.
    pending_bigram: bool,
    token: Token,
}

impl CharGramStream<'_> {
    fn end_of(&self, index: usize) -> usize {
        self.chars
            .get(index + 1)
            .map_or(self.text.len(), |&(offset, _)| offset)
    }

    fn emit(&mut self, first: usize, last: usize) {
        let from = self.chars[first].0;
        let to = self.end_of(last);
        self.token.position = first;
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position_length = 1;
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
    }
}

impl TokenStream for CharGramStream<'_> {
    fn advance(&mut self) -> bool {
        if self.pending_bigram {
            self.pending_bigram = false;
            let start = self.next - 1;
            self.emit(start, start + 1);
            return true;
        }
        while let Some(&(_, c)) = self.chars.get(self.next) {
            let index = self.next;
            self.next += 1;
            if c.is_whitespace() {
                continue;
            }
            self.pending_bigram = self
                .chars
                .get(index + 1)
                .is_some_and(|&(_, next)| !next.is_whitespace());
            self.emit(index, index);
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// Emits each word of a spaced script ([`is_word_char`], two characters or more) whole,
/// then its prefixes of 2 to [`PREFIX_MAX_CHARS`] characters after [`PREFIX_MARK`]: a
/// Latin query term is then one or two terms, not a phrase of bigrams.
#[derive(Clone, Copy, Debug)]
struct WordTokenizer;

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let mut tokens = Vec::new();
        let words = text
            .split(|c: char| !is_word_char(c))
            .filter(|w| w.chars().nth(1).is_some());
        for (position, word) in words.enumerate() {
            tokens.push((position, word.to_owned()));
            for (n, (end, c)) in word.char_indices().enumerate().skip(1) {
                if n >= PREFIX_MAX_CHARS {
                    break;
                }
                let mut prefix = String::with_capacity(end + c.len_utf8() + 1);
                prefix.push(PREFIX_MARK);
                prefix.push_str(&word[..end + c.len_utf8()]);
                tokens.push((position, prefix));
            }
        }
        WordStream {
            tokens: tokens.into_iter(),
            token: Token::default(),
        }
    }
}

struct WordStream {
    tokens: std::vec::IntoIter<(usize, String)>,
    token: Token,
}

impl TokenStream for WordStream {
    fn advance(&mut self) -> bool {
        let Some((position, text)) = self.tokens.next() else {
            return false;
        };
        self.token.position = position;
        self.token.text = text;
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str, created_at: &str) -> IndexDoc {
        IndexDoc {
            title_id: id.to_owned(),
            title: title.to_owned(),
            material_type: "book".to_owned(),
            created_at: created_at.to_owned(),
            ..IndexDoc::default()
        }
    }

    fn index_with(docs: &[IndexDoc]) -> SearchIndex {
        let index = SearchIndex::in_memory().unwrap();
        index.upsert_many(docs).unwrap();
        index
    }

    fn ids(index: &SearchIndex, q: &str) -> Vec<String> {
        ids_filtered(index, q, &SearchFilter::default())
    }

    fn ids_filtered(index: &SearchIndex, q: &str, filter: &SearchFilter) -> Vec<String> {
        let result = index.search(q, filter, 0, 100).unwrap();
        assert_eq!(result.total, result.title_ids.len() as u64, "query {q:?}");
        result.title_ids
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn tokens(text: &str) -> Vec<(String, usize)> {
        let mut tokenizer = CharGramTokenizer;
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push((token.text.clone(), token.position));
        }
        out
    }

    #[test]
    fn search_index_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SearchIndex>();
    }

    #[test]
    fn tantivy_ngram_tokenizer_puts_every_gram_at_position_zero() {
        // The reason for CharGramTokenizer: with these positions a phrase never matches.
        let mut ngram = tantivy::tokenizer::NgramTokenizer::new(2, 2, false).unwrap();
        let mut stream = ngram.token_stream("東京都");
        let mut positions = Vec::new();
        while let Some(token) = stream.next() {
            positions.push(token.position);
        }
        assert_eq!(positions, vec![0, 0]);
    }

    #[test]
    fn tokenizer_emits_unigrams_and_bigrams_at_character_positions() {
        let t = |s: &str, p| (s.to_owned(), p);
        assert_eq!(
            tokens("東京都"),
            vec![
                t("東", 0),
                t("東京", 0),
                t("京", 1),
                t("京都", 1),
                t("都", 2)
            ]
        );
        assert_eq!(tokens("a b"), vec![t("a", 0), t("b", 2)]);
        assert_eq!(tokens(""), vec![]);
        assert_eq!(tokens("ab 1q84年"), {
            let mut v = vec![t("a", 0), t("ab", 0), t("b", 1), t("1", 3), t("1q", 3)];
            v.extend([t("q", 4), t("q8", 4), t("8", 5), t("84", 5), t("4", 6)]);
            v.extend([t("4年", 6), t("年", 7)]);
            v
        });
    }

    #[test]
    fn words_are_emitted_whole_then_their_prefixes_up_to_the_longest() {
        let mut tokenizer = WordTokenizer;
        let mut stream = tokenizer.token_stream("a history, 1q84年 東京 école");
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push((token.text.clone(), token.position));
        }
        let p = |s: &str, n| (format!("{PREFIX_MARK}{s}"), n);
        let w = |s: &str, n| (s.to_owned(), n);
        assert_eq!(
            out,
            vec![
                w("history", 0),
                p("hi", 0),
                p("his", 0),
                p("hist", 0),
                p("histo", 0),
                p("histor", 0),
                p("history", 0),
                w("1q84", 1),
                p("1q", 1),
                p("1q8", 1),
                p("1q84", 1),
                w("école", 2),
                p("éc", 2),
                p("éco", 2),
                p("écol", 2),
                p("école", 2),
            ]
        );
        let mut long = tokenizer.token_stream("internationalization");
        let mut prefixes = Vec::new();
        while let Some(token) = long.next() {
            prefixes.push(token.text.clone());
        }
        assert_eq!(prefixes.len(), 1 + PREFIX_MAX_CHARS - 1);
        assert_eq!(prefixes.last().unwrap(), &format!("{PREFIX_MARK}internat"));
    }

    #[test]
    fn kana_script_and_width_do_not_matter() {
        let index = index_with(&[
            doc("hira", "こころ", "2024-01-01T00:00:00Z"),
            doc("kata", "ココロ", "2024-01-02T00:00:00Z"),
            doc("other", "ここに", "2024-01-03T00:00:00Z"),
        ]);
        for q in ["こころ", "ココロ", "ｺｺﾛ"] {
            assert_eq!(sorted(ids(&index, q)), vec!["hira", "kata"], "query {q}");
        }
    }

    #[test]
    fn two_kanji_query_finds_titles_containing_them() {
        let index = index_with(&[
            doc("a", "東京都の歴史", "2024-01-01T00:00:00Z"),
            doc("b", "京都案内", "2024-01-02T00:00:00Z"),
            doc("c", "都の京", "2024-01-03T00:00:00Z"),
        ]);
        assert_eq!(sorted(ids(&index, "京都")), vec!["a", "b"]);
        assert_eq!(ids(&index, "歴史"), vec!["a"]);
    }

    #[test]
    fn longer_terms_need_their_bigrams_in_a_row() {
        let index = index_with(&[
            doc("a", "吾輩は猫である", "2024-01-01T00:00:00Z"),
            // Has the bigrams 猫で and である, but not in a row.
            doc("b", "猫で遊ぶ日である", "2024-01-02T00:00:00Z"),
        ]);
        assert_eq!(ids(&index, "猫である"), vec!["a"]);
    }

    #[test]
    fn single_character_query_matches() {
        let index = index_with(&[
            doc("a", "猫", "2024-01-01T00:00:00Z"),
            doc("b", "子猫物語", "2024-01-02T00:00:00Z"),
            doc("c", "犬", "2024-01-03T00:00:00Z"),
        ]);
        assert_eq!(sorted(ids(&index, "猫")), vec!["a", "b"]);
    }

    #[test]
    fn author_reading_alias_and_publisher_are_searched() {
        let mut kokoro = doc("kokoro", "こゝろ", "2024-01-01T00:00:00Z");
        kokoro.author = "夏目, 漱石".to_owned();
        kokoro.title_reading = "ココロ".to_owned();
        kokoro.publisher = "新潮社".to_owned();
        kokoro.aliases = vec!["Kokoro".to_owned()];
        let index = index_with(&[kokoro, doc("other", "坊っちゃん", "2024-01-02T00:00:00Z")]);
        for q in ["漱石", "夏目", "こころ", "新潮", "kokoro", "KOKORO"] {
            assert_eq!(ids(&index, q), vec!["kokoro"], "query {q}");
        }
    }

    #[test]
    fn semantic_variants_find_each_other() {
        let mut a = doc("a", "評伝", "2024-01-01T00:00:00Z");
        a.author = "山\u{FA11}豊子".to_owned();
        let index = index_with(&[a]);
        assert_eq!(ids(&index, "山崎"), vec!["a"]);
    }

    #[test]
    fn old_and_new_kanji_find_each_other() {
        let old = doc("old", "國語學序說", "2024-01-01T00:00:00Z");
        let new = doc("new", "国語学序説", "2024-01-02T00:00:00Z");
        let mut other = doc("other", "埼玉の歴史", "2024-01-03T00:00:00Z");
        other.author = "髙橋 澤子".to_owned();
        let index = index_with(&[old, new, other]);
        for q in ["序説", "序說", "国語", "國語学"] {
            assert_eq!(ids(&index, q), vec!["new", "old"], "{q}");
        }
        assert_eq!(ids(&index, "高橋 沢子"), vec!["other"]);
        // A Jōyō kanji is its own: 崎 does not find 埼.
        assert!(ids(&index, "崎玉").is_empty());
    }

    #[test]
    fn kana_and_romaji_find_a_title_by_its_reading() {
        let mut anne = doc("anne", "アンの愛情", "2024-01-01T00:00:00Z");
        anne.title_reading = "アンノアイジョウ".to_owned();
        let mut soseki = doc("soseki", "漱石全集", "2024-01-02T00:00:00Z");
        soseki.aliases = vec!["Natsume Sōseki zenshū".to_owned()];
        soseki.author = "夏目, 漱石".to_owned();
        let index = index_with(&[anne, soseki]);
        for q in [
            "あんのあいじょう",
            "アンノアイジョー",
            "annoaijou",
            "annoaijo",
            "ｱﾝﾉｱｲｼﾞｮｳ",
        ] {
            assert_eq!(ids(&index, q), vec!["anne"], "{q}");
        }
        for q in [
            "なつめそうせき",
            "natsume soseki",
            "natsume souseki",
            "natume soseki",
            "soseki natsume",
            "そうせき",
        ] {
            assert_eq!(ids(&index, q), vec!["soseki"], "{q}");
        }
        // A Latin word that is no romaji is only a word.
        assert!(ids(&index, "annotated").is_empty());
        let mut ichiyo = doc("ichiyo", "十三夜", "2024-01-03T00:00:00Z");
        ichiyo.author_reading = "ひぐちいちよう".to_owned();
        let index = index_with(&[ichiyo]);
        for q in [
            "ひぐちいちよう",
            "higuchi",
            "ichiyo",
            "higuchi ichiyo",
            "higuchi ichiyou",
        ] {
            assert_eq!(ids(&index, q), vec!["ichiyo"], "{q}");
        }
    }

    #[test]
    fn a_name_is_found_however_its_parts_are_written() {
        let mut a = doc("a", "こころ", "2024-01-01T00:00:00Z");
        a.author = "夏目, 漱石".to_owned();
        let mut b = doc("b", "坊っちゃん", "2024-01-02T00:00:00Z");
        b.author = "夏目 漱石".to_owned();
        let mut c = doc("c", "三四郎", "2024-01-03T00:00:00Z");
        c.author = "夏目漱石".to_owned();
        let mut other = doc("other", "雑記", "2024-01-04T00:00:00Z");
        other.author = "夏目 花子 ; 漱石 研究会".to_owned();
        let index = index_with(&[a, b, c, other]);
        for q in [
            "夏目漱石",
            "夏目 漱石",
            "夏目,漱石",
            "夏目、漱石",
            "漱石 夏目",
        ] {
            let mut got = ids(&index, q);
            got.retain(|id| id != "other");
            assert_eq!(sorted(got), vec!["a", "b", "c"], "{q}");
        }
        assert_eq!(sorted(ids(&index, "夏目漱石")), vec!["a", "b", "c"]);
    }

    #[test]
    fn every_term_must_match() {
        let mut a = doc("a", "こころ", "2024-01-01T00:00:00Z");
        a.author = "夏目漱石".to_owned();
        let mut b = doc("b", "こころの病", "2024-01-02T00:00:00Z");
        b.author = "山田太郎".to_owned();
        let index = index_with(&[a, b]);
        assert_eq!(ids(&index, "こころ 漱石"), vec!["a"]);
        assert_eq!(ids(&index, "こころ　山田"), vec!["b"]);
        assert!(ids(&index, "漱石 山田").is_empty());
    }

    #[test]
    fn filters_restrict_by_material_branch_and_availability() {
        let mut book = doc("book", "海の本", "2024-01-01T00:00:00Z");
        book.branches = vec!["kitsuki".into(), "yamaga".into()];
        book.available_branches = vec!["yamaga".into()];
        let mut magazine = doc("magazine", "海の雑誌", "2024-01-02T00:00:00Z");
        magazine.material_type = "magazine".into();
        magazine.branches = vec!["kitsuki".into()];
        magazine.available_branches = vec!["kitsuki".into()];
        let mut out = doc("out", "海の歌", "2024-01-03T00:00:00Z");
        out.branches = vec!["ota".into()];
        let index = index_with(&[book, magazine, out]);

        let filter = |material: Option<&str>, branch: Option<&str>, available_only| SearchFilter {
            material_type: material.map(str::to_owned),
            branch: branch.map(str::to_owned),
            available_only,
            ..SearchFilter::default()
        };
        let search = |f: SearchFilter| sorted(ids_filtered(&index, "海", &f));
        assert_eq!(
            search(filter(Some("book"), None, false)),
            vec!["book", "out"]
        );
        assert_eq!(
            search(filter(Some("magazine"), None, false)),
            vec!["magazine"]
        );
        assert_eq!(
            search(filter(None, Some("kitsuki"), false)),
            vec!["book", "magazine"]
        );
        assert_eq!(
            search(filter(None, Some("kitsuki"), true)),
            vec!["magazine"]
        );
        assert_eq!(search(filter(None, Some("yamaga"), true)), vec!["book"]);
        assert_eq!(search(filter(None, None, true)), vec!["book", "magazine"]);
        assert_eq!(search(filter(Some("book"), None, true)), vec!["book"]);
        assert!(search(filter(Some("av"), None, false)).is_empty());
    }

    #[test]
    fn empty_query_lists_all_newest_first() {
        let index = index_with(&[
            doc("middle", "b", "2024-02-01T00:00:00Z"),
            doc("oldest", "a", "2023-12-31T23:59:59Z"),
            // Same instant as 2024-03-01T00:00:00.5Z; text order would put it elsewhere.
            doc("newest", "c", "2024-03-01T09:00:00.5+09:00"),
            doc("newer", "d", "2024-02-29T23:59:59Z"),
        ]);
        assert_eq!(ids(&index, ""), vec!["newest", "newer", "middle", "oldest"]);
        assert_eq!(
            ids(&index, "  \u{3000} "),
            vec!["newest", "newer", "middle", "oldest"]
        );
    }

    #[test]
    fn paging_returns_the_total_and_one_page() {
        let docs: Vec<IndexDoc> = (0..25)
            .map(|i| {
                doc(
                    &format!("t{i:02}"),
                    "本",
                    &format!("2024-01-{:02}T00:00:00Z", i + 1),
                )
            })
            .collect();
        let index = index_with(&docs);
        let page = index.search("", &SearchFilter::default(), 10, 10).unwrap();
        assert_eq!(page.total, 25);
        assert_eq!(page.title_ids.first().map(String::as_str), Some("t14"));
        assert_eq!(page.title_ids.len(), 10);
        let last = index
            .search("本", &SearchFilter::default(), 20, 10)
            .unwrap();
        assert_eq!((last.total, last.title_ids.len()), (25, 5));
        let past = index
            .search("本", &SearchFilter::default(), 1000, usize::MAX)
            .unwrap();
        assert_eq!((past.total, past.title_ids.len()), (25, 0));
        let none = index.search("本", &SearchFilter::default(), 0, 0).unwrap();
        assert_eq!((none.total, none.title_ids.len()), (25, 0));
    }

    #[test]
    fn relevance_ties_are_broken_newest_first() {
        let index = index_with(&[
            doc("old", "海辺", "2020-01-01T00:00:00Z"),
            doc("new", "海辺", "2024-01-01T00:00:00Z"),
            doc("mid", "海辺", "2022-01-01T00:00:00Z"),
        ]);
        assert_eq!(ids(&index, "海辺"), vec!["new", "mid", "old"]);
    }

    #[test]
    fn a_title_match_ranks_above_a_publisher_match() {
        let mut by_publisher = doc("publisher", "別の本", "2024-01-02T00:00:00Z");
        by_publisher.publisher = "海鳴社".into();
        let index = index_with(&[by_publisher, doc("title", "海鳴り", "2024-01-01T00:00:00Z")]);
        assert_eq!(ids(&index, "海鳴"), vec!["title", "publisher"]);
    }

    #[test]
    fn upsert_replaces_the_document_with_the_same_id() {
        let index = index_with(&[doc("a", "古い題名", "2024-01-01T00:00:00Z")]);
        index
            .upsert(&doc("a", "新しい題名", "2024-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(index.num_docs(), 1);
        assert!(ids(&index, "古い").is_empty());
        assert_eq!(ids(&index, "新しい"), vec!["a"]);
    }

    #[test]
    fn within_one_batch_the_last_document_for_an_id_wins() {
        let index = index_with(&[
            doc("a", "一つ目", "2024-01-01T00:00:00Z"),
            doc("a", "二つ目", "2024-01-01T00:00:00Z"),
        ]);
        assert_eq!(index.num_docs(), 1);
        assert_eq!(ids(&index, "二つ"), vec!["a"]);
    }

    #[test]
    fn an_invalid_document_rejects_the_whole_batch() {
        let index = index_with(&[doc("a", "海", "2024-01-01T00:00:00Z")]);
        let err = index
            .upsert_many(&[
                doc("a", "山", "2024-01-01T00:00:00Z"),
                doc("b", "川", "yesterday"),
            ])
            .unwrap_err();
        assert!(matches!(err, IndexError::InvalidDocument { ref title_id, .. } if title_id == "b"));
        let err = index
            .upsert(&doc(" ", "川", "2024-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(matches!(err, IndexError::InvalidDocument { .. }));
        // Nothing of the failed batch leaks into the next commit.
        index
            .upsert(&doc("c", "空", "2024-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(ids(&index, "海"), vec!["a"]);
        assert!(ids(&index, "山").is_empty());
        assert_eq!(index.num_docs(), 2);
    }

    #[test]
    fn clear_removes_everything() {
        let index = index_with(&[doc("a", "海", "2024-01-01T00:00:00Z")]);
        index.clear().unwrap();
        assert_eq!(index.num_docs(), 0);
        assert_eq!(
            index
                .search("", &SearchFilter::default(), 0, 10)
                .unwrap()
                .total,
            0
        );
    }

    #[test]
    fn isbn_query_matches_exactly_in_any_spelling() {
        let mut kokoro = doc("kokoro", "こころ", "2024-01-01T00:00:00Z");
        kokoro.isbn = "978-4-10-101013-7 : 1500円".into();
        let mut other = doc("other", "9784101010137 について", "2024-01-02T00:00:00Z");
        other.isbn = "4-00-310111-1".into();
        let index = index_with(&[kokoro, other]);
        for q in [
            "978-4-10-101013-7",
            "9784101010137",
            "4-10-101013-7",
            "ISBN ９７８４１０１０１０１３７",
        ] {
            assert_eq!(ids(&index, q), vec!["kokoro"], "query {q}");
        }
        assert_eq!(ids(&index, "978-4-00-310111-7"), vec!["other"]);
        // Not exactly an ISBN: searched as text.
        assert_eq!(ids(&index, "9784101010137 について"), vec!["other"]);
    }

    #[test]
    fn covering_bigrams_cover_every_character_once_or_twice() {
        let g = |term: &str| -> Vec<(usize, String)> { covering_bigrams(term) };
        let t = |p, s: &str| (p, s.to_owned());
        assert_eq!(g("ab"), vec![t(0, "ab")]);
        assert_eq!(g("abc"), vec![t(0, "ab"), t(1, "bc")]);
        assert_eq!(g("abcd"), vec![t(0, "ab"), t(2, "cd")]);
        assert_eq!(
            g("history"),
            vec![t(0, "hi"), t(2, "st"), t(4, "or"), t(5, "ry")]
        );
        assert_eq!(g("猫である"), vec![t(0, "猫で"), t(2, "ある")]);
    }

    #[test]
    fn a_long_term_matches_only_where_it_occurs_whole() {
        // Each of these has the covering grams of 図書館史 somewhere, but not at the
        // relative positions of the term.
        let index = index_with(&[
            doc("yes", "日本図書館史", "2024-01-01T00:00:00Z"),
            doc("inside", "近代図書館史研究", "2024-01-02T00:00:00Z"),
            doc("split", "図書 館史", "2024-01-03T00:00:00Z"),
            doc("shuffled", "館史図書", "2024-01-04T00:00:00Z"),
            doc("gapped", "図書x館x史", "2024-01-05T00:00:00Z"),
        ]);
        assert_eq!(sorted(ids(&index, "図書館史")), vec!["inside", "yes"]);
        assert_eq!(ids(&index, "図書館史 日本"), vec!["yes"]);
    }

    #[test]
    fn a_latin_term_finds_the_words_that_start_with_it_exact_words_first() {
        let index = index_with(&[
            // Neither title starts with the query (that would be the prefix tier).
            doc("longer", "modern japanese history", "2024-01-05T00:00:00Z"),
            doc("exact", "a history of japan", "2024-01-01T00:00:00Z"),
            doc("prehistory", "prehistory", "2024-01-02T00:00:00Z"),
            doc("split", "hi story", "2024-01-03T00:00:00Z"),
            doc("mixed", "history入門", "2024-01-04T00:00:00Z"),
            doc("long", "internationalization", "2024-01-04T00:00:00Z"),
        ]);
        // Past the longest indexed prefix, the term dictionary decides.
        assert_eq!(ids(&index, "internationali"), vec!["long"]);
        assert_eq!(ids(&index, "internationalization"), vec!["long"]);
        assert!(ids(&index, "internationalx").is_empty());
        assert!(ids(&index, "internationalizations").is_empty());
        assert_eq!(ids(&index, "interna"), vec!["long"]);
        // The exact word outranks a longer one, though the longer one is newer.
        assert_eq!(ids(&index, "japan"), vec!["exact", "longer"]);
        // A prefix of a word; inside a word is not a match.
        assert_eq!(
            sorted(ids(&index, "history")),
            vec!["exact", "longer", "mixed"]
        );
        assert_eq!(
            sorted(ids(&index, "histor")),
            vec!["exact", "longer", "mixed"]
        );
        assert_eq!(ids(&index, "story"), vec!["split"]);
        assert_eq!(ids(&index, "hist japan"), vec!["exact", "longer"]);
        // A term with kanji stays a substring search.
        assert_eq!(ids(&index, "y入門"), vec!["mixed"]);
    }

    #[test]
    fn ranking_paging_and_totals_hold_across_segments_and_replacements() {
        // Each upsert commits a segment of its own; replacements leave deleted documents
        // behind in older segments, which must not count.
        let index = SearchIndex::in_memory().unwrap();
        for batch in 0..3 {
            let docs: Vec<IndexDoc> = (0..10)
                .map(|i| {
                    let n = batch * 10 + i;
                    doc(
                        &format!("t{n:02}"),
                        "海の本",
                        &format!("2024-01-{:02}T00:00:00Z", n + 1),
                    )
                })
                .collect();
            index.upsert_many(&docs).unwrap();
        }
        index
            .upsert(&doc("t05", "山の本", "2024-01-06T00:00:00Z"))
            .unwrap();
        let all = |q: &str| {
            let mut ids = Vec::new();
            for page in 0..4 {
                let r = index
                    .search(q, &SearchFilter::default(), page * 8, 8)
                    .unwrap();
                assert_eq!(r.total, if q == "海" { 29 } else { 30 }, "query {q:?}");
                ids.extend(r.title_ids);
            }
            ids
        };
        let newest_first: Vec<String> = (0..30).rev().map(|n| format!("t{n:02}")).collect();
        assert_eq!(all(""), newest_first);
        let sea: Vec<String> = newest_first
            .iter()
            .filter(|id| *id != "t05")
            .cloned()
            .collect();
        // Equal scores: newest first, across the segments.
        assert_eq!(all("海"), sea);
        assert_eq!(ids(&index, "山"), vec!["t05"]);
        let count_only = index.search("海", &SearchFilter::default(), 0, 0).unwrap();
        assert_eq!((count_only.total, count_only.title_ids.len()), (29, 0));
    }

    #[test]
    fn documents_survive_reopening_a_directory_index() {
        let dir = std::env::temp_dir().join(format!("kitsuki-index-{}", uuid::Uuid::new_v4()));
        {
            let index = SearchIndex::open_or_create(&dir).unwrap();
            index
                .upsert(&doc("a", "こころ", "2024-01-01T00:00:00Z"))
                .unwrap();
        }
        let reopened = SearchIndex::open_or_create(&dir).unwrap();
        assert_eq!(ids(&reopened, "ココロ"), vec!["a"]);
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_watermark_is_the_last_commit_payload_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("kitsuki-index-{}", uuid::Uuid::new_v4()));
        {
            let index = SearchIndex::open_or_create(&dir).unwrap();
            assert_eq!(index.watermark(), Some(0), "empty: holds nothing");
            index
                .stage(&[doc("a", "海", "2024-01-01T00:00:00Z")])
                .unwrap();
            assert!(!index.contains("a"), "staged, not committed");
            index.commit_up_to(7).unwrap();
            assert!(index.contains("a"));
            // A plain upsert keeps the watermark (tantivy does not carry a payload over).
            index
                .upsert(&doc("b", "山", "2024-01-01T00:00:00Z"))
                .unwrap();
            assert_eq!(index.watermark(), Some(7));
        }
        let reopened = SearchIndex::open_or_create(&dir).unwrap();
        assert_eq!(reopened.watermark(), Some(7));
        reopened.clear().unwrap();
        assert_eq!(reopened.watermark(), Some(0));
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merging_segments_keeps_documents_ranking_and_watermark() {
        let dir = std::env::temp_dir().join(format!("kitsuki-merge-{}", uuid::Uuid::new_v4()));
        let index = SearchIndex::open_or_create(&dir).unwrap();
        // Two at a time, as a bulk write: seven segments for the end to fold into four.
        index.begin_bulk().unwrap();
        let mut n = 0;
        for i in 0..7u64 {
            let d = |k: u64| {
                doc(
                    &format!("t{k}"),
                    &format!("history {k} 図書館"),
                    &format!("2024-01-{:02}T00:00:00Z", k + 1),
                )
            };
            index.stage(&[d(2 * i), d(2 * i + 1)]).unwrap();
            index.commit_up_to(10 + i).unwrap();
            n += 2;
        }
        let before = ids(&index, "history 図書館");
        assert_eq!(before.len(), n);
        let segments = index.merge_segments().unwrap();
        assert!(segments >= 1, "{segments}");
        assert!(index.segments() <= MAX_SEGMENTS, "{}", index.segments());
        // No file of a merged-away segment is left on disk.
        let living: std::collections::HashSet<String> = index
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|r| r.segment_id().uuid_string())
            .collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if let Some((stem, _)) = name.split_once('.')
                && stem.len() == 32
            {
                assert!(living.contains(stem), "{name} left behind");
            }
        }
        assert_eq!(ids(&index, "history 図書館"), before);
        assert_eq!(index.watermark(), Some(16));
        // The writer works on after the merge, and the merge is on disk with its payload.
        index
            .upsert(&doc("t99", "history", "2024-02-01T00:00:00Z"))
            .unwrap();
        index.merge_segments().unwrap();
        drop(index);
        let reopened = SearchIndex::open_or_create(&dir).unwrap();
        assert_eq!(reopened.num_docs(), n as u64 + 1);
        assert!(reopened.segments() <= MAX_SEGMENTS);
        assert!(reopened.watermark().is_some());
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bulk_write_merges_nothing_until_its_end_folds_it_into_max_segments() {
        let index = SearchIndex::in_memory().unwrap();
        // A bulk write (an import): one segment per commit, none merged meanwhile.
        index.begin_bulk().unwrap();
        for i in 0..(MAX_SEGMENTS as u64 * 2 + 1) {
            index
                .stage(&[doc(&format!("t{i}"), "history", "2024-01-01T00:00:00Z")])
                .unwrap();
            index.commit_up_to(i + 1).unwrap();
        }
        let n = MAX_SEGMENTS * 2 + 1;
        assert_eq!(
            index.segments(),
            n,
            "the merge policy would have merged these"
        );
        assert_eq!(index.merge_segments().unwrap(), n);
        assert_eq!(index.segments(), MAX_SEGMENTS);
        assert_eq!(ids(&index, "history").len(), n);
    }

    #[test]
    fn a_bulk_write_ended_without_a_merge_keeps_its_segments_and_writes_on() {
        let index = SearchIndex::in_memory().unwrap();
        index.begin_bulk().unwrap();
        for i in 0..3u64 {
            index
                .stage(&[doc(&format!("t{i}"), "history", "2024-01-01T00:00:00Z")])
                .unwrap();
            index.commit_up_to(i + 1).unwrap();
        }
        index.end_bulk().unwrap();
        assert_eq!(index.segments(), 3);
        index
            .upsert(&doc("t9", "history", "2024-01-02T00:00:00Z"))
            .unwrap();
        assert_eq!(ids(&index, "history").len(), 4);
    }

    #[test]
    fn a_document_that_cannot_be_indexed_is_skipped_by_stage() {
        let index = SearchIndex::in_memory().unwrap();
        let n = index
            .stage(&[
                doc("a", "海", "2024-01-01T00:00:00Z"),
                doc("b", "川", "yesterday"),
            ])
            .unwrap();
        assert_eq!(n, 1);
        index.commit_up_to(2).unwrap();
        assert_eq!(index.num_docs(), 1);
        assert_eq!(index.watermark(), Some(2));
    }

    #[test]
    fn a_second_writer_is_told_the_index_is_busy() {
        let dir = std::env::temp_dir().join(format!("kitsuki-index-{}", uuid::Uuid::new_v4()));
        let first = SearchIndex::open_or_create(&dir).unwrap();
        let second = SearchIndex::open_or_create(&dir).unwrap_err();
        assert!(matches!(second, IndexError::Busy { .. }), "{second:?}");
        // Reading needs no writer.
        assert!(SearchIndex::open_read_only(&dir).is_ok());
        drop(first);
        assert!(SearchIndex::open_or_create(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
