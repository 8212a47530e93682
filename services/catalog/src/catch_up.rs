//! The search index follows the database by the catalogue change sequence
//! (ARCHITECTURE.md "Search index"). Every write that changes what search shows of a title
//! numbers the change (`titles.change_seq`, from `catalog_state` in its transaction); the
//! index's commit payload says up to which number it holds every change (its watermark,
//! [`SearchIndex::watermark`]). Catching up is indexing the titles numbered above the
//! watermark in sequence order, a page at a time, and committing the new watermark:
//! idempotent, and one query when nothing is new, so every writer, follower and start
//! simply calls [`Catalog::catch_up_index`].
//!
//! Why no title is left behind: on PostgreSQL the `catalog_state` row lock is held from the
//! number's taking to the commit, so a number below one that is committed is committed too
//! (or rolled back, a gap); SQLite has one writer at a time. A page read after the
//! watermark therefore never misses a committed change below its last number; a title
//! changed again meanwhile has moved to a higher number and comes in a later page.
//!
//! An index that cannot say what it holds (no watermark of this format, built with another
//! schema, unreadable, or ahead of the database: another database) is rebuilt in the
//! background: the new one in a sibling directory while the old one serves (where its
//! schema allows; otherwise an empty one), then swapped in. `/readyz` says so meanwhile
//! ([`Catalog::index_gate`]), and writes are searchable only once the swap is done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kitsuki_platform::db::Db;
use kitsuki_platform::server::Gate;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::index::{IndexDoc, IndexError, SearchIndex};
use crate::model::{Item, Title};
use crate::service::Catalog;
use crate::store;

/// Titles read per query (their items in one more query, [`store::MAX_IN_LIST`] ids).
const PAGE: usize = 500;

/// A long catch-up (a first build, an import) commits every so many documents, so that
/// searches see its progress and a crash keeps most of it.
const COMMIT_EVERY: usize = 50_000;

/// After a failed background rebuild, the next try.
const RETRY_REBUILD: Duration = Duration::from_secs(30);

/// The index the catalog searches and writes, replaced whole by a rebuild.
#[derive(Debug)]
pub(crate) struct IndexSlot {
    serving: RwLock<Arc<SearchIndex>>,
    /// One catch-up, reindex or swap at a time: two would commit watermarks out of order.
    writing: tokio::sync::Mutex<()>,
    /// True while a background rebuild builds the replacement: catch-ups then leave the
    /// serving index (of unknown state) alone; the rebuild catches up before the swap.
    rebuilding: watch::Sender<bool>,
    gate: Gate,
    dir: Option<PathBuf>,
}

/// What opening the index found.
enum Opened {
    /// It knows what it holds: catch up from its watermark.
    Current(SearchIndex),
    /// It must be rebuilt; this one serves meanwhile.
    Rebuild { serving: SearchIndex, why: String },
}

impl IndexSlot {
    /// Opens the index in `dir` (or one in memory). `Err` only when another process holds
    /// it ([`IndexError::Busy`]) or no index can be made at all. With the rebuild's reason
    /// when it must be rebuilt.
    pub(crate) fn open(
        dir: Option<&Path>,
        last_change_seq: u64,
    ) -> Result<(IndexSlot, Option<String>), IndexError> {
        let opened = match dir {
            None => Opened::Current(SearchIndex::in_memory()?),
            Some(dir) => open_dir(dir, last_change_seq)?,
        };
        let (serving, why) = match opened {
            Opened::Current(index) => (index, None),
            Opened::Rebuild { serving, why } => (serving, Some(why)),
        };
        let gate = Gate::new();
        if let Some(why) = &why {
            gate.close(format!("rebuilding the search index ({why})"));
        }
        let slot = IndexSlot {
            serving: RwLock::new(Arc::new(serving)),
            writing: tokio::sync::Mutex::new(()),
            rebuilding: watch::Sender::new(why.is_some()),
            gate,
            dir: dir.map(Path::to_owned),
        };
        Ok((slot, why))
    }

    pub(crate) fn serving(&self) -> Arc<SearchIndex> {
        match self.serving.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn gate(&self) -> Gate {
        self.gate.clone()
    }
}

fn open_dir(dir: &Path, last_change_seq: u64) -> Result<Opened, IndexError> {
    match SearchIndex::open_or_create(dir) {
        Ok(index) => match index.watermark() {
            Some(w) if w <= last_change_seq => Ok(Opened::Current(index)),
            Some(w) => Ok(Opened::Rebuild {
                serving: SearchIndex::in_memory()?,
                why: format!(
                    "it holds changes up to {w}, the database only up to {last_change_seq}: another database"
                ),
            }),
            None => Ok(Opened::Rebuild {
                serving: index,
                why: "it does not record which catalogue state it holds".to_string(),
            }),
        },
        Err(e @ IndexError::Busy { .. }) => Err(e),
        Err(IndexError::SchemaMismatch { .. }) => {
            let serving = SearchIndex::open_read_only(dir).or_else(|e| {
                tracing::warn!(error = %e, "the old index cannot serve; searches find nothing until the rebuild is done");
                SearchIndex::in_memory()
            })?;
            Ok(Opened::Rebuild {
                serving,
                why: "it was built with another schema".to_string(),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "the search index is unreadable");
            Ok(Opened::Rebuild {
                serving: SearchIndex::in_memory()?,
                why: format!("it is unreadable: {e}"),
            })
        }
    }
}

/// `<dir>.<suffix>` beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

impl Catalog {
    /// Indexes every title changed since the index's watermark, in sequence order, and
    /// commits the new watermark; answers how many titles it indexed (0, after one query,
    /// when the index is current). While a background rebuild runs it does nothing: the
    /// rebuild catches up before it swaps the new index in.
    pub async fn catch_up_index(&self) -> anyhow::Result<u64> {
        let slot = self.index_slot();
        let _writing = slot.writing.lock().await;
        if *slot.rebuilding.borrow() {
            return Ok(0);
        }
        catch_up_into(&self.db().pool, &slot.serving(), &mut |_| {}).await
    }

    /// Rebuilds the search index from the database in place (after a background rebuild,
    /// if one runs): `kitsuki reindex`.
    pub async fn reindex(&self) -> anyhow::Result<u64> {
        let slot = self.index_slot();
        let mut rebuilding = slot.rebuilding.subscribe();
        let _ = rebuilding.wait_for(|r| !*r).await;
        let _writing = slot.writing.lock().await;
        let index = slot.serving();
        let i = index.clone();
        tokio::task::spawn_blocking(move || i.clear()).await??;
        catch_up_into(&self.db().pool, &index, &mut |_| {}).await
    }

    /// Begins a bulk write of the serving index (an import): no merge until
    /// [`Catalog::merge_index_segments`] or [`Catalog::end_bulk_index`]
    /// ([`SearchIndex::begin_bulk`]). Nothing during a background rebuild, which is a bulk
    /// write of its own.
    pub async fn begin_bulk_index(&self) -> anyhow::Result<()> {
        let slot = self.index_slot();
        let _writing = slot.writing.lock().await;
        if !*slot.rebuilding.borrow() {
            slot.serving().begin_bulk()?;
        }
        Ok(())
    }

    /// Ends a bulk write without merging ([`SearchIndex::end_bulk`]).
    pub async fn end_bulk_index(&self) -> anyhow::Result<()> {
        let slot = self.index_slot();
        let _writing = slot.writing.lock().await;
        if !*slot.rebuilding.borrow() {
            slot.serving().end_bulk()?;
        }
        Ok(())
    }

    /// Folds the serving index into one segment ([`SearchIndex::merge_segments`]), after
    /// a bulk write (an import): answers how many segments there were. Nothing during a
    /// background rebuild, which merges its own index before the swap.
    pub async fn merge_index_segments(&self) -> anyhow::Result<usize> {
        let slot = self.index_slot();
        let _writing = slot.writing.lock().await;
        if *slot.rebuilding.borrow() {
            return Ok(0);
        }
        let index = slot.serving();
        Ok(tokio::task::spawn_blocking(move || index.merge_segments()).await??)
    }

    /// Waits until no background rebuild runs (tools that need the whole index).
    pub async fn index_rebuilt(&self) {
        let mut rebuilding = self.index_slot().rebuilding.subscribe();
        let _ = rebuilding.wait_for(|r| !*r).await;
    }

    /// The index's watermark: every change numbered up to it is searchable (`None` while
    /// the serving index is one of unknown state, during a rebuild).
    pub fn index_watermark(&self) -> Option<u64> {
        self.index_slot().serving().watermark()
    }

    /// Closed, with what it does, while the index is being rebuilt: for `/readyz`.
    pub fn index_gate(&self) -> Gate {
        self.index_slot().gate()
    }

    /// Builds a new index beside the old one, which serves meanwhile, then swaps it in.
    /// Tries again after a failure (the gate says why), until it succeeds.
    pub(crate) fn spawn_rebuild(&self, why: String) {
        let catalog = self.clone();
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                match catalog.rebuild_beside(&why).await {
                    Ok(n) => {
                        tracing::info!(
                            titles = n,
                            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                            "search index rebuilt"
                        );
                        catalog.index_slot().gate.open();
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the search index could not be rebuilt; trying again");
                        catalog
                            .index_slot()
                            .gate
                            .close(format!("the search index could not be rebuilt: {e}"));
                        tokio::time::sleep(RETRY_REBUILD).await;
                    }
                }
            }
        });
    }

    async fn rebuild_beside(&self, why: &str) -> anyhow::Result<u64> {
        let slot = self.index_slot();
        let Some(dir) = slot.dir.clone() else {
            anyhow::bail!("an index in memory is never rebuilt");
        };
        tracing::info!(dir = %dir.display(), why, "rebuilding the search index in the background");
        let building = sibling(&dir, "rebuild");
        let old = sibling(&dir, "old");
        // What a rebuild cut short left.
        for leftover in [&building, &old] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover)?;
            }
        }
        let fresh = Arc::new(SearchIndex::open_or_create(&building)?);
        // Merged once, below, before it serves.
        fresh.begin_bulk()?;
        let (total, _) = store::counts(&self.db().pool).await?;
        let gate = slot.gate.clone();
        let mut n = catch_up_into(&self.db().pool, &fresh, &mut |done| {
            gate.close(format!(
                "rebuilding the search index: {done} of {total} titles ({why})"
            ));
        })
        .await?;
        // One segment, before it serves (the old index serves meanwhile).
        gate.close(format!(
            "rebuilding the search index: merging its segments ({why})"
        ));
        let i = fresh.clone();
        tokio::task::spawn_blocking(move || i.merge_segments()).await??;
        // The swap: nothing else writes meanwhile, and what was committed since is in.
        let _writing = slot.writing.lock().await;
        n += catch_up_into(&self.db().pool, &fresh, &mut |_| {}).await?;
        // Releases its writer lock; it is reopened under its final name.
        drop(fresh);
        if dir.exists() {
            std::fs::rename(&dir, &old)?;
        }
        std::fs::rename(&building, &dir)?;
        let index = Arc::new(SearchIndex::open_or_create(&dir)?);
        let previous = {
            let mut serving = match slot.serving.write() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *serving, index)
        };
        slot.rebuilding.send_replace(false);
        drop(_writing);
        // Searches still running on the old index keep their open files (mapped) until
        // they end.
        drop(previous);
        if old.exists()
            && let Err(e) = std::fs::remove_dir_all(&old)
        {
            tracing::warn!(error = %e, dir = %old.display(), "the old index not removed");
        }
        Ok(n)
    }
}

/// Indexes into `index` the titles changed after its watermark, in sequence order, a page
/// at a time, committing every [`COMMIT_EVERY`] documents and at the end with the new
/// watermark; `progress` hears the titles done so far after each page.
async fn catch_up_into(
    pool: &AnyPool,
    index: &Arc<SearchIndex>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<u64> {
    let Some(start) = index.watermark() else {
        anyhow::bail!("the index does not record which catalogue state it holds");
    };
    let mut mark = start;
    let (mut n, mut staged) = (0u64, 0usize);
    loop {
        let page = store::titles_changed_after(pool, i64::try_from(mark)?, PAGE as i64).await?;
        let Some(&(last, _)) = page.last() else { break };
        let full = page.len() == PAGE;
        let titles: Vec<Title> = page.into_iter().map(|(_, t)| t).collect();
        let docs = docs_for(pool, &titles).await?;
        let i = index.clone();
        staged += tokio::task::spawn_blocking(move || i.stage(&docs)).await??;
        n += titles.len() as u64;
        mark = u64::try_from(last)?;
        if staged >= COMMIT_EVERY {
            let i = index.clone();
            tokio::task::spawn_blocking(move || i.commit_up_to(mark)).await??;
            staged = 0;
        }
        progress(n);
        if !full {
            break;
        }
    }
    if index.watermark() != Some(mark) || staged > 0 {
        let i = index.clone();
        tokio::task::spawn_blocking(move || i.commit_up_to(mark)).await??;
    }
    if n > 0 {
        tracing::debug!(
            titles = n,
            from = start,
            to = mark,
            "search index caught up"
        );
    }
    Ok(n)
}

/// The search documents of these titles, with their items read in one query.
pub(crate) async fn docs_for(
    pool: &AnyPool,
    titles: &[Title],
) -> Result<Vec<IndexDoc>, sqlx::Error> {
    let ids: Vec<String> = titles.iter().map(|t| t.title_id.clone()).collect();
    let mut items: HashMap<String, Vec<Item>> = HashMap::new();
    for item in store::items_of(pool, &ids).await? {
        items.entry(item.title_id.clone()).or_default().push(item);
    }
    Ok(titles
        .iter()
        .map(|t| {
            let mine = items.get(&t.title_id).map(Vec::as_slice).unwrap_or(&[]);
            let mut branches: Vec<String> = mine.iter().map(|i| i.branch.clone()).collect();
            branches.sort();
            branches.dedup();
            let mut available: Vec<String> = mine
                .iter()
                .filter(|i| i.status == "available")
                .map(|i| i.branch.clone())
                .collect();
            available.sort();
            available.dedup();
            IndexDoc {
                title_id: t.title_id.clone(),
                title: t.title.clone(),
                title_reading: t.title_reading.clone(),
                author: t.author.clone(),
                author_reading: t.author_reading.clone(),
                publisher: t.publisher.clone(),
                isbn: t.isbn.clone(),
                aliases: t.aliases.clone(),
                material_type: t.material_type.code().to_string(),
                branches,
                available_branches: available,
                created_at: t.created_at.clone(),
                year: t.year,
                ndc: t.ndc.clone(),
            }
        })
        .collect())
}

/// The database's last change sequence number (what a current index's watermark may be).
pub(crate) async fn last_change_seq(db: &Db) -> anyhow::Result<u64> {
    Ok(u64::try_from(store::last_change_seq(&db.pool).await?)?)
}
