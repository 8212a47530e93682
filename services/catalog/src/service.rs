//! The catalog's operations: create titles and items (each with its event in the same
//! transaction, ARCHITECTURE.md "Nothing lost"), read and search them. The database is the
//! truth; the search index follows it by the catalogue change sequence each of these
//! writes takes (`catch_up.rs`).

use std::path::Path;
use std::sync::Arc;

use kitsuki_platform::clock::{SharedClock, format_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::{events, outbox};
use kitsuki_proto::events as ev;
use kitsuki_proto::{Barcode, Branch, ErrorCode, ServiceError};
use tokio::sync::Notify;

use crate::catch_up::{self, IndexSlot};
use crate::domain::isbn::Isbn;
use crate::index::SearchIndex;
use crate::model::{Item, MaterialType, Title};
use crate::store;

static MIGRATIONS_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Largest page of search results.
pub const MAX_PER_PAGE: u32 = 100;

/// A title to create, checked: a non-empty display title and a known type.
#[derive(Debug, Clone)]
pub struct NewTitle {
    pub title: String,
    pub title_reading: String,
    pub author: String,
    /// The statement of responsibility as recorded, or empty.
    pub responsibility: String,
    /// The NDC class number, or empty.
    pub ndc: String,
    pub publisher: String,
    pub year: Option<i64>,
    pub isbn: Option<Isbn>,
    pub material_type: MaterialType,
    pub aliases: Vec<String>,
    pub source_id: Option<String>,
}

impl NewTitle {
    /// The text fields' check (API.md "Text fields"), before anything is stored: a NUL
    /// would fail PostgreSQL's insert (a 500) and pass SQLite's, a megabyte title would be
    /// indexed. One home for the gRPC call and for `kitsuki import`, which stores records
    /// without going through gRPC.
    pub fn check_text(&self) -> Result<(), ServiceError> {
        use kitsuki_proto::text;
        text::check("title", &self.title, text::limits::TITLE)?;
        text::check("title_reading", &self.title_reading, text::limits::TITLE)?;
        text::check("author", &self.author, text::limits::AUTHOR)?;
        text::check("publisher", &self.publisher, text::limits::PUBLISHER)?;
        text::check(
            "responsibility",
            &self.responsibility,
            text::limits::RESPONSIBILITY,
        )?;
        text::check("ndc", &self.ndc, text::limits::NDC)?;
        if !self.ndc.trim().is_empty() && !crate::domain::ndc::is_class_number(self.ndc.trim()) {
            return Err(ServiceError::with_detail(
                ErrorCode::InvalidInput,
                "ndc must be an NDC class number such as 913.6",
            ));
        }
        text::check(
            "source_id",
            self.source_id.as_deref().unwrap_or(""),
            text::limits::SOURCE_ID,
        )?;
        text::check_each(
            "search_aliases",
            &self.aliases,
            text::limits::SEARCH_ALIAS,
            text::limits::SEARCH_ALIASES,
        )
    }
}

/// Subject of the one event of an import batch ([`Catalog::create_titles`]).
pub const TITLES_IMPORTED: &str = "catalog.titles.imported";

/// The catalog service's state.
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
    index: Arc<IndexSlot>,
    clock: SharedClock,
    relay_wake: Arc<Notify>,
    /// Titles changed by item status events, waiting to be re-indexed (`consumer.rs`).
    index_queue: Arc<crate::consumer::IndexQueue>,
    /// Generates the readings a new title lacks, once a dictionary is loaded
    /// ([`Catalog::use_readings`]); without one, titles keep the readings they were given.
    readings: Arc<std::sync::RwLock<Option<Arc<crate::readings::ReadingGenerator>>>>,
}

pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %err, "catalog failure while {context}");
    ServiceError::internal()
}

impl Catalog {
    /// Migrates the database, opens the index (in `index_dir`, or in memory) and catches
    /// it up from its watermark: at a start with a current index, one query. An index that
    /// cannot say what it holds is rebuilt in the background while it serves
    /// (`catch_up.rs`; [`Catalog::index_rebuilt`] waits for that).
    pub async fn open(
        db: Db,
        index_dir: Option<&Path>,
        clock: SharedClock,
    ) -> anyhow::Result<Catalog> {
        let catalog = Catalog::open_unindexed(db, index_dir, clock).await?;
        let n = catalog.catch_up_index().await?;
        if n > 0 {
            tracing::info!(titles = n, "search index caught up");
        }
        Ok(catalog)
    }

    /// Migrates the database and writes to it without a search index of its own: a
    /// separate `kitsuki import` into the embedded run's database, whose index belongs to
    /// the running all-in-one (tantivy allows one writer). The all-in-one indexes what such
    /// a process commits when the events reach its follower (`replica.rs`), or at its next
    /// start (catching up from its watermark).
    pub async fn open_without_index(db: Db, clock: SharedClock) -> anyhow::Result<Catalog> {
        Catalog::open_unindexed(db, None, clock).await
    }

    /// Whether the search index holds this title.
    pub fn is_indexed(&self, title_id: &str) -> bool {
        self.search_index().contains(title_id)
    }

    /// The index searches use now (a rebuild replaces it whole).
    pub fn search_index(&self) -> Arc<SearchIndex> {
        self.index.serving()
    }

    pub(crate) fn index_slot(&self) -> &IndexSlot {
        &self.index
    }

    /// Migrates the database and opens the index as it is, without catching it up (a
    /// replica subscribes its follower first, `replica.rs`); starts the background rebuild
    /// of an index that cannot say what it holds.
    pub(crate) async fn open_unindexed(
        db: Db,
        index_dir: Option<&Path>,
        clock: SharedClock,
    ) -> anyhow::Result<Catalog> {
        db::migrate(&db, &MIGRATIONS_PG, &MIGRATIONS_SQLITE).await?;
        outbox::ensure_tables(&db).await?;
        let last = catch_up::last_change_seq(&db).await?;
        let (slot, rebuild) = IndexSlot::open(index_dir, last)?;
        let catalog = Catalog {
            db,
            index: Arc::new(slot),
            clock,
            relay_wake: Arc::new(Notify::new()),
            index_queue: Arc::default(),
            readings: Arc::default(),
        };
        if let Some(why) = rebuild {
            catalog.spawn_rebuild(why);
        }
        Ok(catalog)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Generates with `generator` the readings of the titles created from now on that lack
    /// them. Set once; a second call is ignored.
    pub fn use_readings(&self, generator: Arc<crate::readings::ReadingGenerator>) {
        *self.readings.write().unwrap_or_else(|p| p.into_inner()) = Some(generator);
    }

    /// Drops the dictionary (~44 MB): titles created from now on keep the readings they
    /// were given. For a `kitsuki import` that has stored its titles and only merges its
    /// index before it exits.
    pub fn release_readings(&self) {
        *self.readings.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Staff correct a title's readings: stored as given (a regeneration keeps them), the
    /// title numbered and announced so every index catches up. The readings must be kana
    /// (spaces allowed); an empty author reading keeps the stored one. Answers the stored
    /// title reading, author reading and source.
    pub async fn set_readings(
        &self,
        title_id: &str,
        title_reading: &str,
        author_reading: &str,
    ) -> Result<(String, String, String), ServiceError> {
        use kitsuki_proto::text;
        let (title_reading, author_reading) = (title_reading.trim(), author_reading.trim());
        text::check("title_reading", title_reading, text::limits::TITLE)?;
        text::check("author_reading", author_reading, text::limits::AUTHOR)?;
        let kana = crate::domain::reading::is_kana_text;
        if !kana(title_reading) {
            return Err(ServiceError::with_detail(
                ErrorCode::InvalidInput,
                "title_reading must be kana",
            ));
        }
        if !author_reading.is_empty() && !kana(author_reading) {
            return Err(ServiceError::with_detail(
                ErrorCode::InvalidInput,
                "author_reading must be kana",
            ));
        }
        let now = kitsuki_platform::clock::format_instant(self.clock.now());
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("correcting readings", e))?;
        let seq = store::take_change_seqs(&mut tx, 1)
            .await
            .map_err(|e| internal("correcting readings", e))?;
        let row = store::set_readings(&mut tx, title_id, title_reading, author_reading, seq)
            .await
            .map_err(|e| internal("correcting readings", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::TitleNotFound))?;
        crate::consumer::enqueue_title_changed(&mut tx, title_id, &now)
            .await
            .map_err(|e| internal("correcting readings", e))?;
        tx.commit()
            .await
            .map_err(|e| internal("correcting readings", e))?;
        self.relay_wake.notify_one();
        self.refresh_index(&[title_id.to_string()]).await?;
        Ok(row)
    }

    /// The reading generator in use, if a dictionary was loaded (the regeneration tool).
    pub fn reading_generator(&self) -> Option<Arc<crate::readings::ReadingGenerator>> {
        self.readings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Notified after every commit that wrote to the outbox.
    pub(crate) fn index_queue(&self) -> &crate::consumer::IndexQueue {
        &self.index_queue
    }

    pub fn relay_wake(&self) -> Arc<Notify> {
        self.relay_wake.clone()
    }

    /// Makes the index hold the titles' current state, for a caller that changed them:
    /// their changes are numbered, so this is [`Catalog::catch_up_index`].
    pub async fn refresh_index(&self, _title_ids: &[String]) -> Result<(), ServiceError> {
        self.catch_up_index()
            .await
            .map(drop)
            .map_err(|e| internal("indexing", e))
    }

    /// The title row and its `catalog.title.created` event, or the refusal of an empty
    /// display title.
    fn prepare_title(
        &self,
        new: NewTitle,
        now: &str,
    ) -> Result<(Title, kitsuki_platform::bus::Event), ServiceError> {
        if new.title.trim().is_empty() {
            return Err(ServiceError::with_detail(ErrorCode::InvalidInput, "title"));
        }
        let title_text = new.title.trim().to_string();
        let author = new.author.trim().to_string();
        let given = new.title_reading.trim().to_string();
        let generator = self.reading_generator();
        let (title_reading, author_reading, reading_source) =
            match (given.is_empty(), generator.as_deref()) {
                (false, g) => (
                    given,
                    g.and_then(|g| g.name_reading(&author)).unwrap_or_default(),
                    crate::model::READING_GIVEN,
                ),
                (true, Some(g)) => crate::readings::generated_readings(g, &title_text, &author),
                (true, None) => (String::new(), String::new(), ""),
            };
        let title = Title {
            title_id: uuid::Uuid::now_v7().to_string(),
            title: title_text,
            title_reading,
            author,
            author_reading,
            reading_source: reading_source.to_string(),
            responsibility: new.responsibility.trim().to_string(),
            ndc: new.ndc.trim().to_string(),
            publisher: new.publisher.trim().to_string(),
            year: new.year,
            isbn: new.isbn.map(|i| i.as_str().to_string()).unwrap_or_default(),
            material_type: new.material_type,
            aliases: new
                .aliases
                .into_iter()
                .filter(|a| !a.trim().is_empty())
                .collect(),
            source_id: new.source_id.filter(|s| !s.is_empty()),
            created_at: now.to_string(),
            holds_waiting: 0,
        };
        let event_id = events::new_event_id();
        let event = events::build(
            "catalog.title.created",
            event_id.clone(),
            now,
            &ev::TitleCreated {
                meta: Some(ev::EventMeta {
                    event_id: event_id.clone(),
                    occurred_at: now.to_string(),
                }),
                title_id: title.title_id.clone(),
                r#type: title.material_type.to_proto() as i32,
            },
        );
        Ok((title, event))
    }

    /// The title already imported from this source (a title not created because its
    /// `source_id` was there).
    async fn existing_title(&self, title: &Title) -> Result<(String, bool), ServiceError> {
        let existing = match &title.source_id {
            Some(s) => store::title_id_by_source(&self.db.pool, s)
                .await
                .map_err(|e| internal("finding a title", e))?,
            None => None,
        };
        existing
            .map(|id| (id, false))
            .ok_or_else(ServiceError::internal)
    }

    /// Creates a title (or finds the one already imported from the same source). With
    /// `index_now` false the caller indexes in bulk afterwards (import).
    pub async fn create_title(
        &self,
        new: NewTitle,
        index_now: bool,
    ) -> Result<(String, bool), ServiceError> {
        let now = format_instant(self.clock.now());
        let (title, event) = self.prepare_title(new, &now)?;
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        let seq = store::take_change_seqs(&mut tx, 1)
            .await
            .map_err(|e| internal("numbering a change", e))?;
        let created = store::insert_titles(&mut tx, &[(&title, seq)])
            .await
            .map_err(|e| internal("inserting a title", e))?
            .contains(&title.title_id);
        if !created {
            drop(tx);
            return self.existing_title(&title).await;
        }
        outbox::enqueue(&mut tx, &event, &now)
            .await
            .map_err(|e| internal("queueing an event", e))?;
        tx.commit()
            .await
            .map_err(|e| internal("committing a title", e))?;
        self.relay_wake.notify_one();
        if index_now {
            self.refresh_index(std::slice::from_ref(&title.title_id))
                .await?;
        }
        Ok((title.title_id, true))
    }

    /// Creates many titles in one transaction, each as [`Catalog::create_title`] would
    /// without indexing, for an import: one commit per batch instead of one per title, one
    /// change sequence statement for the batch, and one event for the batch,
    /// `catalog.titles.imported` with the range of its numbers (not one
    /// `catalog.title.created` per title: consumers catch up from the range).
    /// Gives each title's outcome (an empty title is refused alone), or `Err` when the
    /// database failed the batch, which then changed nothing (the caller may retry the
    /// titles one by one to find the one it refused).
    pub async fn create_titles(
        &self,
        news: Vec<NewTitle>,
    ) -> Result<Vec<Result<(String, bool), ServiceError>>, ServiceError> {
        let now = format_instant(self.clock.now());
        let prepared: Vec<_> = news
            .into_iter()
            .map(|n| self.prepare_title(n, &now))
            .collect();
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        let valid = prepared.iter().filter(|p| p.is_ok()).count();
        let mut created = Vec::with_capacity(prepared.len());
        let mut numbers = (0i64, 0i64, 0u32);
        if valid > 0 {
            // Numbers for every valid title; those already present leave gaps.
            let first = store::take_change_seqs(&mut tx, valid as i64)
                .await
                .map_err(|e| internal("numbering changes", e))?;
            let numbered: Vec<(&Title, i64)> = prepared
                .iter()
                .filter_map(|p| p.as_ref().ok().map(|(title, _)| title))
                .zip(first..)
                .collect();
            let inserted = store::insert_titles(&mut tx, &numbered)
                .await
                .map_err(|e| internal("inserting titles", e))?;
            for (title, seq) in &numbered {
                if inserted.contains(&title.title_id) {
                    if numbers.2 == 0 {
                        numbers.0 = *seq;
                    }
                    numbers = (numbers.0, *seq, numbers.2 + 1);
                }
            }
            created.extend(prepared.iter().map(|p| {
                p.as_ref()
                    .is_ok_and(|(title, _)| inserted.contains(&title.title_id))
            }));
        } else {
            created.resize(prepared.len(), false);
        }
        if numbers.2 > 0 {
            let event = imported_event(numbers, &now);
            outbox::enqueue(&mut tx, &event, &now)
                .await
                .map_err(|e| internal("queueing an event", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| internal("committing titles", e))?;
        if numbers.2 > 0 {
            self.relay_wake.notify_one();
        }
        let mut out = Vec::with_capacity(prepared.len());
        for (p, c) in prepared.into_iter().zip(created) {
            out.push(match p {
                Err(e) => Err(e),
                Ok((title, _)) if c => Ok((title.title_id, true)),
                Ok((title, _)) => self.existing_title(&title).await,
            });
        }
        Ok(out)
    }

    /// Adds an item (copy) of a title at a branch (rule M1: barcodes unique across branches).
    pub async fn create_item(
        &self,
        title_id: &str,
        barcode: &Barcode,
        branch: Branch,
        call_number: &str,
        index_now: bool,
    ) -> Result<Item, ServiceError> {
        self.create_item_of_type(title_id, barcode, branch, call_number, index_now)
            .await
            .map(|(item, _)| item)
    }

    /// [`Catalog::create_item`], with the title's material type (M1), which the gateway
    /// passes on to circulation so that the new item can be lent at once.
    pub async fn create_item_of_type(
        &self,
        title_id: &str,
        barcode: &Barcode,
        branch: Branch,
        call_number: &str,
        index_now: bool,
    ) -> Result<(Item, MaterialType), ServiceError> {
        let title = store::get_title(&self.db.pool, title_id)
            .await
            .map_err(|e| internal("reading a title", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::TitleNotFound))?;
        let now = format_instant(self.clock.now());
        let item = Item {
            barcode: barcode.as_str().to_string(),
            title_id: title.title_id.clone(),
            branch: branch.code().to_string(),
            call_number: call_number.trim().to_string(),
            status: "available".to_string(),
            due_date: None,
        };
        let event_id = events::new_event_id();
        let event = events::build(
            format!("catalog.item.created.{}", branch.code()),
            event_id.clone(),
            &now,
            &ev::ItemCreated {
                meta: Some(ev::EventMeta {
                    event_id: event_id.clone(),
                    occurred_at: now.clone(),
                }),
                barcode: item.barcode.clone(),
                title_id: item.title_id.clone(),
                branch: item.branch.clone(),
                r#type: title.material_type.to_proto() as i32,
            },
        );
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        // First, before the item's row (store::take_change_seqs): the title's document
        // changes with its new branch.
        let seq = store::take_change_seqs(&mut tx, 1)
            .await
            .map_err(|e| internal("numbering a change", e))?;
        if let Err(e) = store::insert_item(&mut tx, &item, &now).await {
            return Err(if db::is_unique_violation(&e) {
                ServiceError::new(ErrorCode::BarcodeTaken)
            } else {
                internal("inserting an item", e)
            });
        }
        store::set_change_seq(&mut tx, &item.title_id, seq)
            .await
            .map_err(|e| internal("numbering a change", e))?;
        outbox::enqueue(&mut tx, &event, &now)
            .await
            .map_err(|e| internal("queueing an event", e))?;
        tx.commit()
            .await
            .map_err(|e| internal("committing an item", e))?;
        self.relay_wake.notify_one();
        if index_now {
            self.refresh_index(std::slice::from_ref(&item.title_id))
                .await?;
        }
        Ok((item, title.material_type))
    }

    pub async fn counts(&self) -> Result<(u64, u64), ServiceError> {
        store::counts(&self.db.pool)
            .await
            .map_err(|e| internal("counting", e))
    }
}

/// The `catalog.titles.imported` event of a batch: its first and last change sequence
/// numbers and how many titles it created.
fn imported_event(
    (first, last, count): (i64, i64, u32),
    now: &str,
) -> kitsuki_platform::bus::Event {
    let event_id = events::new_event_id();
    events::build(
        TITLES_IMPORTED,
        event_id.clone(),
        now,
        &ev::TitlesImported {
            meta: Some(ev::EventMeta {
                event_id,
                occurred_at: now.to_string(),
            }),
            first_change_seq: first,
            last_change_seq: last,
            count,
        },
    )
}
