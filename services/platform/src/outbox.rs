//! The transactional outbox (ARCHITECTURE.md "Nothing lost"): a service writes its change
//! and the events of that change in one transaction ([`enqueue`]); a relay
//! ([`run_relay`]) publishes committed rows in insertion order and marks them published
//! once the bus has stored them. A process killed between publishing and marking publishes
//! the same event ids again on restart, which the bus stores once (and the consumers' inbox
//! skips should they come after the bus's duplicate window).
//!
//! The relay works in batches of 500 rows (`BATCH`) (a catalogue import writes hundreds of
//! thousands): one statement reads a batch, [`crate::bus::EventBus::publish_many`] hands it
//! to the bus at once (NATS: every publish sent, then the acks awaited in order; the
//! journaled in-process bus: one transaction of its file), and one statement marks the rows
//! the bus stored. Should the bus fail part way, the rows stored before the failure are
//! marked all the same and the rest go out in the next round; of those, any the bus had
//! stored (a lost ack, or a later event of the NATS batch that got through) is found as a
//! duplicate. Each event keeps its own `outbox.publish` span, in the trace of the request
//! that wrote it. At 250,000 rows this took the relay from 116 s to 15 s to the journaled
//! bus and from 175 s to 8 s to NATS (outbox on SQLite, `examples/relay_scale.rs`, figures
//! in ARCHITECTURE.md "Events at catalogue scale").
//!
//! Order is the order of the `seq` column. On PostgreSQL a sequence number is drawn at
//! insert, not at commit, so two concurrent transactions may commit out of `seq` order; the
//! relay then publishes the later `seq` first. Events of one aggregate are written under its
//! row lock and so keep their order, but for one case: on NATS, when an event of a batch
//! fails and a later one of the same batch is stored, the later one is in the stream
//! before the failed one comes again (the consumers of a copy's status apply versions, not
//! arrival order; ARCHITECTURE.md "Versions of a copy's events").
//!
//! Several relays on one PostgreSQL database (the circulation instances share theirs) take
//! turns through an advisory lock, so that only one publishes at a time and order holds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::{BatchOutcome, BusError, Event, Outgoing, SharedBus};
use crate::db::{Backend, Db};
use sqlx::AnyConnection;
use tokio::sync::Notify;

/// Rows read, published together and marked in one statement per round; on PostgreSQL
/// also the rows whose marks commit together (a crash republishes at most this many, which
/// the bus de-duplicates). 500 binds stay far below both databases' limits on one statement.
const BATCH: usize = 500;

/// How long a stopping relay may take to publish what is committed: the round it is in,
/// then rounds until nothing committed before the stop is left. Within the last phase of
/// the process's shutdown ([`crate::shutdown::LAST_PHASE`]), itself within
/// [`crate::server::SHUTDOWN_BUDGET`].
pub const LAST_DRAIN: Duration = Duration::from_secs(3);
const _: () = assert!(LAST_DRAIN.as_millis() < crate::shutdown::LAST_PHASE.as_millis());

/// How long a draining relay waits before it looks again while another relay on the same
/// PostgreSQL database holds the turn (and is publishing the rows it waits for).
const TURN_WAIT: Duration = Duration::from_millis(20);

/// Advisory lock keys (PostgreSQL): any constants, fixed for all kitsuki processes.
const TABLES_LOCK: i64 = 0x6b69_7473_756b_6901;
const RELAY_LOCK: i64 = 0x6b69_7473_756b_6902;

const POSTGRES_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (
        seq BIGSERIAL PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        payload BYTEA NOT NULL,
        headers TEXT NOT NULL,
        created_at TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published = 0",
    "CREATE TABLE IF NOT EXISTS inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        handled_at TEXT NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )",
    "CREATE INDEX IF NOT EXISTS inbox_handled_at ON inbox (handled_at)",
];

const SQLITE_TABLES: &[&str] = &[
    // AUTOINCREMENT: a seq is never reused after purging, so seq order stays insert order.
    "CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        payload BLOB NOT NULL,
        headers TEXT NOT NULL,
        created_at TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published = 0",
    "CREATE TABLE IF NOT EXISTS inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        handled_at TEXT NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )",
    "CREATE INDEX IF NOT EXISTS inbox_handled_at ON inbox (handled_at)",
];

/// Creates the `outbox` and `inbox` tables if missing. Every service calls it at start,
/// beside its own migrations.
pub async fn ensure_tables(db: &Db) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut tx = db
        .pool
        .begin()
        .await
        .context("while creating the outbox tables")?;
    let statements = match db.backend {
        Backend::Postgres => {
            // Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
            // catalog (instances starting together); the lock makes them take turns.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(TABLES_LOCK)
                .execute(&mut *tx)
                .await
                .context("while locking to create the outbox tables")?;
            POSTGRES_TABLES
        }
        Backend::Sqlite => SQLITE_TABLES,
    };
    for &statement in statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .context("while creating the outbox tables")?;
    }
    tx.commit()
        .await
        .context("while creating the outbox tables")?;
    Ok(())
}

/// Writes an event to the outbox in the caller's transaction (pass `&mut *tx`); it is
/// published after the commit, and never if the transaction rolls back. An event the bus
/// would refuse is refused here (as [`sqlx::Error::Encode`] with a [`BusError`] inside), so
/// that it fails the caller's change rather than blocking the relay later. An id already in
/// the outbox is a unique violation.
pub async fn enqueue(
    conn: &mut AnyConnection,
    event: &Event,
    now: &str,
) -> Result<(), sqlx::Error> {
    event
        .validate()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let headers =
        serde_json::to_string(&event.headers).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload, headers, created_at, published)
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(event.id.as_str())
    .bind(event.subject.as_str())
    .bind(event.payload.clone())
    .bind(headers)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the outbox database failed")]
    Database(#[from] sqlx::Error),
    #[error("publishing outbox row {seq} failed")]
    Bus {
        seq: i64,
        #[source]
        source: BusError,
    },
    #[error("outbox row {seq} is unreadable: {reason}")]
    Corrupt { seq: i64, reason: String },
}

type Row = (i64, String, String, Vec<u8>, String);

/// Publishes every committed, unpublished row in `seq` order, in batches, marking a batch's
/// rows (in one statement) once the bus stored them; returns how many it published. Returns 0 at once when another relay on the
/// same PostgreSQL database is at work. On an error the rows published so far stay marked.
// Debug level: a round runs every half second, and a span per empty round would bury the
// traces; each published event gets its own span in its own trace instead.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn publish_pending_once(db: &Db, bus: &SharedBus) -> Result<usize, RelayError> {
    let mut total = 0;
    loop {
        let (published, more) = match db.backend {
            Backend::Postgres => {
                let mut tx = db.pool.begin().await?;
                // Transaction-scoped, so a relay cancelled or killed mid-round lets go.
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(RELAY_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                if !locked {
                    tx.rollback().await?;
                    return Ok(total);
                }
                let round = publish_batch(&mut tx, bus).await;
                // The marks made before a failure are worth keeping: commit either way.
                tx.commit().await?;
                round?
            }
            Backend::Sqlite => {
                // No transaction: it would hold SQLite's one write lock while waiting for
                // the bus. A single process runs a single relay on its file.
                let mut conn = db.pool.acquire().await?;
                publish_batch(&mut conn, bus).await?
            }
        };
        total += published;
        if !more {
            return Ok(total);
        }
    }
}

/// One batch: returns how many were published and whether a full batch was read (there
/// may be more). The batch goes to the bus at once ([`crate::bus::EventBus::publish_many`]:
/// the round trips overlap), and the rows it stored are marked in one statement, also when
/// it failed part way.
async fn publish_batch(
    conn: &mut AnyConnection,
    bus: &SharedBus,
) -> Result<(usize, bool), RelayError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, event_id, subject, payload, headers FROM outbox
         WHERE published = 0 ORDER BY seq LIMIT $1",
    )
    .bind(BATCH as i64)
    .fetch_all(&mut *conn)
    .await?;
    let full = rows.len() >= BATCH;
    let mut seqs = Vec::with_capacity(rows.len());
    let mut batch = Vec::with_capacity(rows.len());
    // A row that cannot be read stops the batch there; those before it still go out.
    let mut corrupt = None;
    for (seq, id, subject, payload, headers) in rows {
        let headers: Vec<(String, String)> = match serde_json::from_str(&headers) {
            Ok(headers) => headers,
            Err(e) => {
                corrupt = Some(RelayError::Corrupt {
                    seq,
                    reason: e.to_string(),
                });
                break;
            }
        };
        let event = Event {
            id,
            subject,
            payload,
            headers,
        };
        // The relay's hop joins the trace of the request that wrote the event; the
        // headers themselves go out as stored, so consumers continue that request too.
        let span =
            tracing::info_span!("outbox.publish", event_id = %event.id, subject = %event.subject);
        crate::events::set_parent_from_headers(&span, &event.headers);
        seqs.push(seq);
        batch.push(Outgoing { event, span });
    }
    let outcome = if batch.is_empty() {
        BatchOutcome::default()
    } else {
        bus.publish_many(&batch).await
    };
    let stored = outcome.outcomes.len().min(seqs.len());
    let duplicates = outcome.outcomes.iter().filter(|o| o.duplicate).count();
    if duplicates > 0 {
        // Published before, their marks lost to a crash: the bus kept one copy.
        metrics::counter!("kitsuki_outbox_duplicates_total").increment(duplicates as u64);
    }
    mark_published(conn, &seqs[..stored]).await?;
    metrics::counter!("kitsuki_outbox_published_total").increment(stored as u64);
    if let Some(source) = outcome.error {
        metrics::counter!("kitsuki_outbox_publish_failures_total").increment(1);
        return Err(RelayError::Bus {
            seq: seqs.get(stored).copied().unwrap_or_default(),
            source,
        });
    }
    if let Some(corrupt) = corrupt {
        return Err(corrupt);
    }
    Ok((stored, full))
}

/// Marks the rows of these `seq`s published, in one statement. By their list, not by the
/// range from the first to the last: on PostgreSQL a row inside that range may have been
/// committed after the batch was read (sequence numbers are drawn at insert), and is not
/// published yet.
async fn mark_published(conn: &mut AnyConnection, seqs: &[i64]) -> Result<(), sqlx::Error> {
    if seqs.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "UPDATE outbox SET published = 1 WHERE seq IN ({})",
        placeholders.join(", ")
    );
    // Only numbered placeholders are formatted in; the values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for &seq in seqs {
        query = query.bind(seq);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// How many committed events wait to be published (for a gauge or a readiness check).
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published = 0")
        .fetch_one(&db.pool)
        .await
}

/// The highest `seq` committed so far (`None`: the outbox is empty).
async fn last_seq(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(seq) FROM outbox")
        .fetch_one(&db.pool)
        .await
}

/// How many committed events up to `seq` wait to be published.
async fn pending_through(db: &Db, seq: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published = 0 AND seq <= $1")
        .bind(seq)
        .fetch_one(&db.pool)
        .await
}

/// Deletes published rows created before `before` (an instant as stored by
/// [`crate::clock::format_instant`]); returns how many.
pub async fn purge_published(db: &Db, before: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM outbox WHERE published = 1 AND created_at < $1")
        .bind(before)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}

/// The relay loop of one service: publishes after every [`Notify::notify_one`] on its
/// `wake` (services call it after committing outbox rows) and otherwise every
/// `poll_every`; backs off while the bus or the database fails.
#[derive(Debug)]
pub struct Relay {
    db: Db,
    bus: SharedBus,
    wake: Arc<Notify>,
    poll_every: Duration,
    max_backoff: Duration,
}

impl Relay {
    pub fn new(db: Db, bus: SharedBus, wake: Arc<Notify>) -> Relay {
        Relay {
            db,
            bus,
            wake,
            poll_every: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// How often to look for rows without a wake-up (other processes may write them).
    pub fn poll_every(mut self, every: Duration) -> Relay {
        self.poll_every = every;
        self
    }

    /// Runs until `shutdown` completes, then publishes what is committed by then: the round
    /// in progress is finished, and rounds follow until no row committed before the stop
    /// is left, within [`LAST_DRAIN`]; a failing bus or database ends it at once. Stopping
    /// with rows left is safe (unmarked rows are published again by the next run, which
    /// the bus de-duplicates), but they wait until a relay runs again on this database.
    ///
    /// In a role, `shutdown` is the last phase of the process's shutdown
    /// ([`crate::shutdown::Shutdown::wait_last_phase`], the task handed to
    /// [`crate::shutdown::Shutdown::track_last`]): the relay goes on publishing while the
    /// requests drain and the other tasks end their step, and then publishes what they
    /// committed on their way out.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let first_backoff = Duration::from_millis(200);
        let mut backoff = first_backoff;
        loop {
            let round = publish_pending_once(&self.db, &self.bus);
            tokio::pin!(round);
            let round = tokio::select! {
                biased;
                round = &mut round => round,
                _ = &mut shutdown => {
                    self.drain(round).await;
                    return;
                }
            };
            match round {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(published = n, "outbox relayed");
                    }
                    backoff = first_backoff;
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => {
                            self.drain(publish_pending_once(&self.db, &self.bus)).await;
                            return;
                        }
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.poll_every) => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, source = ?std::error::Error::source(&err), retry_in_ms = backoff.as_millis() as u64, "outbox relay failed");
                    tokio::select! {
                        biased;
                        // The bus or the database failed last time; it may be back (a
                        // NATS reconnect): one bounded try, which ends at the first failure.
                        _ = &mut shutdown => {
                            self.drain(publish_pending_once(&self.db, &self.bus)).await;
                            return;
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    /// A stopping relay: [`Relay::drain_rounds`] within [`LAST_DRAIN`].
    async fn drain(&self, round: impl Future<Output = Result<usize, RelayError>>) {
        match tokio::time::timeout(LAST_DRAIN, self.drain_rounds(round)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(published = n, "outbox relayed at shutdown"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                "the outbox relay's last rounds failed; the rest goes out at the next start"
            ),
            Err(_) => tracing::warn!(
                within_ms = LAST_DRAIN.as_millis() as u64,
                "the outbox relay did not publish everything in time at shutdown; the rest goes out at the next start"
            ),
        }
    }

    /// Lets `round` finish, then publishes until no row committed before now is left
    /// unpublished; returns how many it published.
    async fn drain_rounds(
        &self,
        round: impl Future<Output = Result<usize, RelayError>>,
    ) -> Result<usize, RelayError> {
        let mut published = round.await?;
        // The process's other writers have stopped (the last phase): this is the last row
        // it wrote. Rows other processes commit later are their own relays' to publish.
        let Some(mark) = last_seq(&self.db).await? else {
            return Ok(published);
        };
        while pending_through(&self.db, mark).await? > 0 {
            let n = publish_pending_once(&self.db, &self.bus).await?;
            published += n;
            if n == 0 {
                // Another relay on this PostgreSQL database has the turn and publishes
                // these rows: look again shortly.
                tokio::time::sleep(TURN_WAIT).await;
            }
        }
        Ok(published)
    }
}

/// Runs a [`Relay`] with the default poll interval until `shutdown` completes.
pub async fn run_relay(
    db: Db,
    bus: SharedBus,
    wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    Relay::new(db, bus, wake).run(shutdown).await
}
