//! The file under a journaled [`super::MemoryBus`]: a SQLite database that keeps the log
//! and what each durable consumer has acknowledged, so that the embedded run loses nothing
//! and doubles nothing across a crash (ARCHITECTURE.md "Nothing lost"). This module is the
//! storage only; `memory.rs` decides what to write and when, keeps the deliveries and the
//! newest events in memory, and reads older events back from here (a consumer behind or
//! new, a redelivery of an old event).
//!
//! Tables (SQLite, portable SQL as in [`crate::db`]):
//! - `bus_event`: the log, `seq` the stream sequence (1, 2, …, never reused), the event id
//!   unique so that duplicates are caught across restarts.
//! - `bus_consumer`: one row per durable consumer ever subscribed, with its ack floor:
//!   every sequence at or below it is settled for that consumer (acknowledged, given up
//!   after `max_deliver`, or not matching its filter).
//! - `bus_ack`: the sparse acknowledgements above a consumer's floor (acked while an
//!   earlier event was still out). Rows at or below the floor are deleted as it rises, so
//!   the table holds only what is acknowledged out of order.
//! - `bus_meta`: the format `version` and `trimmed_through`, the last sequence trimmed from
//!   the log, so that sequences go on after the whole log was trimmed.
//!
//! Trimming: an event leaves the log once every consumer the journal knows has it below
//! its floor *and* it was stored longer ago than [`JournalOptions::retention`] (seven days
//! by default). Until then it stays, for the duplicate check of its id and for a consumer
//! that is new. With no consumer known, nothing is trimmed. SQLite reuses the freed pages;
//! the file does not shrink, but stops growing.
//!
//! One process at a time: a lock on `<file>.lock` is held while the bus lives, so that a
//! second process (or a second open in this one) is refused instead of writing the same
//! sequences. The lock file is a separate file because closing any descriptor of the
//! database file would drop SQLite's own locks on it.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{SharedClock, SystemClock, format_instant};
use crate::db::{self, Db};

use tracing::Instrument;

use super::{BusError, Event, Outgoing, subject_matches};

/// The version of the tables above; a file of another version is refused.
const FORMAT_VERSION: i64 = 1;

const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS bus_event (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        payload BLOB NOT NULL,
        headers TEXT NOT NULL,
        stored_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS bus_consumer (
        name TEXT PRIMARY KEY,
        floor INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS bus_ack (
        consumer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (consumer, seq)
    )",
    "CREATE TABLE IF NOT EXISTS bus_meta (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )",
];

/// How a journaled bus keeps its file.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// How long an event stays in the log after it was stored, at least; it is trimmed
    /// after that only once every known consumer has settled it.
    pub retention: Duration,
    /// The clock that stamps stored events and measures the retention.
    pub clock: SharedClock,
    /// How many of the newest events the bus keeps in memory, at most (also at most 4 MiB
    /// of them); older ones are read back from the file when a consumer needs them.
    pub memory_window: usize,
    /// How many events are read back from the file at once for a consumer behind the
    /// window.
    pub page: u64,
}

impl Default for JournalOptions {
    /// Seven days (the consumers' inbox keeps days too), on the system clock; 1,024 events
    /// in memory, pages of 512.
    fn default() -> JournalOptions {
        JournalOptions {
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            clock: Arc::new(SystemClock),
            memory_window: 1024,
            page: 512,
        }
    }
}

/// What a consumer had settled when the journal was opened.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub floor: u64,
    /// Acknowledged above the floor.
    pub acked: BTreeSet<u64>,
}

/// What a bus needs of the journal when it opens it.
pub(crate) struct Loaded {
    /// The last sequence trimmed away; the log goes on from the next one.
    pub trimmed_through: u64,
    /// The last sequence stored (`trimmed_through` when the log is empty).
    pub last: u64,
    /// The newest events, in sequence order, without gaps, ending at `last`; the ones
    /// before them stay in the file.
    pub tail: Vec<(u64, Event)>,
    pub positions: HashMap<String, Position>,
}

/// The open journal file.
pub(crate) struct Journal {
    db: Db,
    path: PathBuf,
    options: JournalOptions,
    /// Held for the life of the journal; the OS lets go when it is closed (or the
    /// process dies).
    _lock: File,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("retention", &self.options.retention)
            .finish_non_exhaustive()
    }
}

fn reading(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BusError {
    BusError::unavailable("reading the bus journal", e)
}

fn writing(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BusError {
    BusError::unavailable("writing the bus journal", e)
}

/// Sequences are positive and far below `i64::MAX`; the conversions only guard the types.
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Journal {
    /// Locks, opens (creating it if missing) and prepares the file at `path`.
    pub(crate) async fn open(path: &Path, options: JournalOptions) -> Result<Journal, BusError> {
        let text = path
            .to_str()
            .ok_or_else(|| BusError::Invalid(format!("bus journal path {path:?} is not UTF-8")))?;
        // The URL form would read these as query, fragment or escape.
        if text.is_empty() || text.contains(['?', '#', '%']) {
            return Err(BusError::Invalid(format!(
                "bus journal path {text:?} is empty or has ?, # or %"
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| BusError::unavailable("creating the bus journal folder", e))?;
        }
        let lock = lock_beside(path)?;
        let db = db::connect(&format!("sqlite://{text}"))
            .await
            .map_err(|e| BusError::unavailable("opening the bus journal", e))?;
        // WAL: a commit is one append to the log. `db::connect` sets `synchronous=NORMAL`
        // on every connection, so the log is synced at checkpoints, not at each commit: a
        // commit that returned survives the process being killed (the OS has it), a power
        // cut may lose the last ones, as JetStream's file store (synced every two minutes
        // by default) may. The mode stays with the file.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&db.pool)
            .await
            .map_err(|e| BusError::unavailable("opening the bus journal", e))?;
        let mut tx = db.pool.begin().await.map_err(writing)?;
        for &statement in TABLES {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(writing)?;
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT value FROM bus_meta WHERE name = 'version'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(reading)?;
        match version {
            None => {
                sqlx::query("INSERT INTO bus_meta (name, value) VALUES ('version', $1)")
                    .bind(FORMAT_VERSION)
                    .execute(&mut *tx)
                    .await
                    .map_err(writing)?;
            }
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(BusError::Conflict(format!(
                    "bus journal {text} has format {other}, this build reads {FORMAT_VERSION}"
                )));
            }
        }
        tx.commit().await.map_err(writing)?;
        Ok(Journal {
            db,
            path: path.to_path_buf(),
            options,
            _lock: lock,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The stamp of an event stored now.
    pub(crate) fn now(&self) -> String {
        format_instant(self.options.clock.now())
    }

    /// Events stored before this instant are old enough to trim.
    pub(crate) fn cutoff(&self) -> String {
        format_instant(self.options.clock.now() - self.options.retention)
    }

    /// Checks that the log has no gap and reads its newest `tail` events and every
    /// consumer's position; the older events stay in the file.
    pub(crate) async fn load(&self, tail: u64) -> Result<Loaded, BusError> {
        let pool = &self.db.pool;
        let trimmed: Option<i64> =
            sqlx::query_scalar("SELECT value FROM bus_meta WHERE name = 'trimmed_through'")
                .fetch_optional(pool)
                .await
                .map_err(reading)?;
        let trimmed_through = trimmed.map(from_db).unwrap_or(0);
        let (first, last, count): (Option<i64>, Option<i64>, i64) =
            sqlx::query_as("SELECT MIN(seq), MAX(seq), COUNT(*) FROM bus_event")
                .fetch_one(pool)
                .await
                .map_err(reading)?;
        let last = match (first.map(from_db), last.map(from_db)) {
            (Some(first), _) if first != trimmed_through + 1 => {
                return Err(BusError::Conflict(format!(
                    "bus journal {} starts at sequence {first}, after {trimmed_through} was \
                     trimmed: events are missing",
                    self.path.display()
                )));
            }
            // Sequences are unique, so as many rows as the span from first to last means
            // none is missing between.
            (Some(first), Some(last)) if last - first + 1 != from_db(count) => {
                return Err(BusError::Conflict(format!(
                    "bus journal {} has {count} events from sequence {first} to {last}: \
                     events are missing",
                    self.path.display()
                )));
            }
            (_, Some(last)) => last,
            _ => trimmed_through,
        };
        let tail = self
            .events_between(
                (last + 1).saturating_sub(tail).max(trimmed_through + 1),
                last + 1,
            )
            .await?;
        let mut positions: HashMap<String, Position> = HashMap::new();
        let floors: Vec<(String, i64)> = sqlx::query_as("SELECT name, floor FROM bus_consumer")
            .fetch_all(pool)
            .await
            .map_err(reading)?;
        for (name, floor) in floors {
            positions.insert(
                name,
                Position {
                    floor: from_db(floor).min(last),
                    acked: BTreeSet::new(),
                },
            );
        }
        let acks: Vec<(String, i64)> = sqlx::query_as("SELECT consumer, seq FROM bus_ack")
            .fetch_all(pool)
            .await
            .map_err(reading)?;
        for (name, seq) in acks {
            let position = positions.entry(name).or_default();
            let seq = from_db(seq);
            if seq > position.floor {
                position.acked.insert(seq);
            }
        }
        Ok(Loaded {
            trimmed_through,
            last,
            tail,
            positions,
        })
    }

    /// The events of sequences `from..to`, in order.
    pub(crate) async fn events_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Event)>, BusError> {
        type Row = (i64, String, String, Vec<u8>, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, event_id, subject, payload, headers FROM bus_event
             WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(to_db(from))
        .bind(to_db(to))
        .fetch_all(&self.db.pool)
        .await
        .map_err(reading)?;
        rows.into_iter()
            .map(|(seq, id, subject, payload, headers)| {
                let headers = serde_json::from_str(&headers).map_err(|e| {
                    BusError::Conflict(format!("bus journal event {seq} is unreadable: {e}"))
                })?;
                Ok((
                    from_db(seq),
                    Event {
                        id,
                        subject,
                        payload,
                        headers,
                    },
                ))
            })
            .collect()
    }

    /// How many events of sequences `from..=to` match `filter`, leaving out the sequences
    /// of `skip`. Reads subjects only.
    pub(crate) async fn count_matching(
        &self,
        from: u64,
        to: u64,
        filter: &str,
        skip: &[u64],
    ) -> Result<u64, BusError> {
        let pool = &self.db.pool;
        let subjects: Vec<(String, i64)> = sqlx::query_as(
            "SELECT subject, COUNT(*) FROM bus_event WHERE seq >= $1 AND seq <= $2
             GROUP BY subject",
        )
        .bind(to_db(from))
        .bind(to_db(to))
        .fetch_all(pool)
        .await
        .map_err(reading)?;
        let mut count: u64 = subjects
            .iter()
            .filter(|(subject, _)| subject_matches(filter, subject))
            .map(|(_, n)| from_db(*n))
            .sum();
        for &seq in skip {
            let subject: Option<String> =
                sqlx::query_scalar("SELECT subject FROM bus_event WHERE seq = $1")
                    .bind(to_db(seq))
                    .fetch_optional(pool)
                    .await
                    .map_err(reading)?;
            if subject.is_some_and(|s| subject_matches(filter, &s)) {
                count = count.saturating_sub(1);
            }
        }
        Ok(count)
    }

    /// Stores the batch in one transaction, the events whose id is new under `first`,
    /// `first + 1`, …; returns for each event whether it was stored (false: its id is in
    /// the file already). All are on disk, or none, when this returns.
    pub(crate) async fn insert_batch(
        &self,
        first: u64,
        batch: &[Outgoing],
    ) -> Result<Vec<bool>, BusError> {
        let stored_at = self.now();
        let mut tx = self.db.pool.begin().await.map_err(writing)?;
        let mut seq = first;
        let mut stored = Vec::with_capacity(batch.len());
        for item in batch {
            let event = &item.event;
            let headers = serde_json::to_string(&event.headers).map_err(writing)?;
            // The id's unique index is the duplicate check; a taken `seq` stays an error.
            let done = sqlx::query(
                "INSERT INTO bus_event (seq, event_id, subject, payload, headers, stored_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(to_db(seq))
            .bind(event.id.as_str())
            .bind(event.subject.as_str())
            .bind(event.payload.clone())
            .bind(headers)
            .bind(stored_at.as_str())
            .execute(&mut *tx)
            .instrument(item.span.clone())
            .await
            .map_err(writing)?;
            let new = done.rows_affected() > 0;
            if new {
                seq += 1;
            }
            stored.push(new);
        }
        tx.commit().await.map_err(writing)?;
        Ok(stored)
    }

    /// Makes sure a consumer has a row, so that trimming waits for it from now on.
    pub(crate) async fn ensure_consumer(&self, name: &str, floor: u64) -> Result<(), BusError> {
        sqlx::query(
            "INSERT INTO bus_consumer (name, floor) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(to_db(floor))
        .execute(&self.db.pool)
        .await
        .map_err(writing)?;
        Ok(())
    }

    /// Records, in one transaction, that `settled` are settled for `consumer` and that
    /// everything at or below `floor` is: the floor only rises, the sparse rows it covers
    /// go, and settled sequences above it become sparse rows.
    pub(crate) async fn settle(
        &self,
        consumer: &str,
        floor: u64,
        settled: &[u64],
    ) -> Result<(), BusError> {
        let mut tx = self.db.pool.begin().await.map_err(writing)?;
        raise_floor(&mut tx, consumer, floor).await?;
        for &seq in settled.iter().filter(|&&seq| seq > floor) {
            sqlx::query(
                "INSERT INTO bus_ack (consumer, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(consumer)
            .bind(to_db(seq))
            .execute(&mut *tx)
            .await
            .map_err(writing)?;
        }
        tx.commit().await.map_err(writing)?;
        Ok(())
    }

    /// Raises the floors of several consumers in one transaction.
    pub(crate) async fn raise_floors(&self, floors: &[(String, u64)]) -> Result<(), BusError> {
        if floors.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await.map_err(writing)?;
        for (consumer, floor) in floors {
            raise_floor(&mut tx, consumer, *floor).await?;
        }
        tx.commit().await.map_err(writing)?;
        Ok(())
    }

    /// Deletes the events every known consumer has settled and that were stored before the
    /// retention; returns the last sequence trimmed, if any was.
    pub(crate) async fn trim(&self) -> Result<Option<u64>, BusError> {
        let mut tx = self.db.pool.begin().await.map_err(writing)?;
        let lowest: Option<i64> = sqlx::query_scalar("SELECT MIN(floor) FROM bus_consumer")
            .fetch_one(&mut *tx)
            .await
            .map_err(reading)?;
        let Some(lowest) = lowest else {
            return Ok(None);
        };
        // Stamps rise with sequences unless the clock went back; then a younger event may
        // go with the older ones before it, which only shortens its stay.
        let through: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM bus_event WHERE seq <= $1 AND stored_at < $2")
                .bind(lowest)
                .bind(self.cutoff())
                .fetch_one(&mut *tx)
                .await
                .map_err(reading)?;
        let Some(through) = through else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM bus_event WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await
            .map_err(writing)?;
        sqlx::query(
            "INSERT INTO bus_meta (name, value) VALUES ('trimmed_through', $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(through)
        .execute(&mut *tx)
        .await
        .map_err(writing)?;
        tx.commit().await.map_err(writing)?;
        Ok(Some(from_db(through)))
    }
}

async fn raise_floor(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    consumer: &str,
    floor: u64,
) -> Result<(), BusError> {
    sqlx::query(
        "INSERT INTO bus_consumer (name, floor) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET floor = excluded.floor
         WHERE bus_consumer.floor < excluded.floor",
    )
    .bind(consumer)
    .bind(to_db(floor))
    .execute(&mut **tx)
    .await
    .map_err(writing)?;
    sqlx::query("DELETE FROM bus_ack WHERE consumer = $1 AND seq <= $2")
        .bind(consumer)
        .bind(to_db(floor))
        .execute(&mut **tx)
        .await
        .map_err(writing)?;
    Ok(())
}

/// Takes the lock file beside the journal, or says who holds it.
fn lock_beside(path: &Path) -> Result<File, BusError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| BusError::unavailable("opening the bus journal lock", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(BusError::Conflict(format!(
            "bus journal {} is open elsewhere (this process or another)",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(BusError::unavailable("locking the bus journal", e)),
    }
}
