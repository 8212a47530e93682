//! The in-process event bus of the embedded one-process run: an append-only log with
//! durable consumers by name, behaving like the JetStream setup of [`super::NatsBus`] (the
//! same contract tests run against both).
//!
//! Two kinds: [`MemoryBus::new`] lives as long as the process (tests, tools) and keeps its
//! whole log in memory; [`MemoryBus::open_journal`] keeps the log and the consumers'
//! acknowledgements in a SQLite file (`journal.rs` says how), so that a restart, or a crash
//! at any point, loses nothing and doubles nothing: `publish` returns once the event is in
//! the file (and only then can a consumer see it), an `ack` once it is recorded there, and
//! a durable consumer subscribing again after a restart gets, in order, every event of its
//! filter it had not acknowledged, as a JetStream durable consumer would. Deliveries, nacks
//! and redeliveries stay in memory: the journal is written on publish, ack and give-up
//! only. So delivery counts start again after a restart (an event that was out comes with
//! `delivered` 1, and `max_deliver` counts from there), where JetStream would remember them.
//!
//! A journaled bus does not hold its log in memory (a catalogue import publishes hundreds
//! of thousands of events): it keeps the newest events, at most
//! [`JournalOptions::memory_window`] (1,024) and `WINDOW_BYTES` (4 MiB), which consumers
//! that keep up are handed from memory, and reads older ones back from the file,
//! [`JournalOptions::page`] (512) at a time, into a page of the consumer that needs them
//! (one behind, one new, a redelivery of an old event). The duplicate check is the file's
//! unique index on the event id, not a set of ids in memory. What memory holds per consumer
//! is its deliveries out, those given back, and one page. A batch
//! ([`EventBus::publish_many`], the outbox relay's) is stored in one transaction.
//!
//! Consumers are woken by a [`Notify`] when something changes for them (a publish, a nack,
//! a dropped subscription) and by a timer only for the earliest `ack_wait` that runs out.
//!
//! A per-process consumer ([`ConsumerSpec::per_process`]) lives in memory only: it starts
//! after the last event of the log, never touches the journal (nor holds back its trimming:
//! it is the state of this one process), and goes with `remove_consumer` or the bus. One
//! process has no peers to leave it behind for, so there is no inactivity timer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use super::journal::JournalOptions;
use super::journal::{Journal, Position};
use super::{
    Acker, BatchOutcome, BusError, ConsumerSpec, Delivery, Event, EventBus, Outgoing,
    PublishOutcome, Subscription, sanitise_name, sorted_headers, subject_matches,
};

/// Publishes between two compactions of the journal (floors saved, old events trimmed),
/// besides the one at open.
const COMPACT_EVERY: u64 = 1024;

/// The bytes of the newest events (payload, headers, id and subject) a journaled bus keeps
/// in memory, at most, besides their number ([`JournalOptions::memory_window`]).
/// Consumers that keep up are handed them from memory; older ones are read back from the
/// file.
const WINDOW_BYTES: usize = 4 << 20;

/// The in-process bus. Clones share one log (and one journal file).
#[derive(Clone, Default)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken on every change a waiting subscription could care about.
    changed: Notify,
    next_subscription: AtomicU64,
    /// The file behind a journaled bus.
    journal: Option<JournalWriter>,
}

/// The journal and the turn to write to it: one write at a time, so that the file takes
/// the changes in the order memory does, and sequences are handed out without gaps.
struct JournalWriter {
    file: Journal,
    turn: tokio::sync::Mutex<Turn>,
}

#[derive(Default)]
struct Turn {
    publishes_since_compact: u64,
}

#[derive(Default)]
struct State {
    /// The events of sequence `trimmed + behind + 1` on, in order: the whole log for a bus
    /// in memory, the newest ones (`window`, `WINDOW_BYTES`) for a journaled bus.
    log: VecDeque<Arc<Event>>,
    /// The bytes of the events in `log` (a journaled bus only).
    log_bytes: usize,
    /// How many events `log` holds at most (a journaled bus only).
    window: usize,
    /// The last sequence trimmed from the log (a journaled bus only; else 0).
    trimmed: u64,
    /// How many events after `trimmed` are only in the file (a journaled bus only; else 0).
    behind: u64,
    /// The ids of the events in the log, for a bus in memory: its duplicate window is the
    /// life of the process. A journaled bus asks the file (the id is unique there), so its
    /// window is the life of the event in the journal.
    ids: HashSet<String>,
    consumers: HashMap<String, Consumer>,
    /// Positions read from the journal, of consumers not subscribed since it was opened.
    restored: HashMap<String, Position>,
    /// Given-up deliveries are written to a journal.
    journaled: bool,
}

struct Consumer {
    filter: String,
    ack_wait: Duration,
    max_deliver: Option<i64>,
    /// The next sequence this consumer has never looked at.
    next_new: u64,
    /// Delivered and neither acknowledged nor given back, by sequence.
    in_flight: BTreeMap<u64, InFlight>,
    /// Given back (nack, or its subscription dropped): deliver again first, by sequence,
    /// with the number of deliveries so far.
    returned: BTreeMap<u64, u64>,
    /// Acknowledged before the journal was opened, above its floor: passed over.
    acked_ahead: BTreeSet<u64>,
    /// The floor the journal holds for this consumer (a journaled bus only).
    saved_floor: u64,
    /// A consumer of this process only: kept out of the journal.
    per_process: bool,
    /// Events read back from the file for this consumer, behind the window in memory.
    page: Page,
}

/// Events of sequences `from..to` read from the journal file (without those trimmed since).
#[derive(Default)]
struct Page {
    from: u64,
    to: u64,
    events: Vec<(u64, Arc<Event>)>,
}

/// Where the event of a sequence is.
enum Found {
    Here(Arc<Event>),
    /// Trimmed, or never stored.
    Missing,
    /// In the file only: to be read back.
    InFile,
}

/// Looks an event up in memory: the window, then the consumer's page.
fn find(log: &VecDeque<Arc<Event>>, trimmed: u64, behind: u64, page: &Page, seq: u64) -> Found {
    if seq <= trimmed {
        return Found::Missing;
    }
    let first_in_memory = trimmed + behind + 1;
    if seq >= first_in_memory {
        return usize::try_from(seq - first_in_memory)
            .ok()
            .and_then(|i| log.get(i))
            .map_or(Found::Missing, |e| Found::Here(e.clone()));
    }
    if (page.from..page.to).contains(&seq) {
        return page
            .events
            .binary_search_by_key(&seq, |(s, _)| *s)
            .map_or(Found::Missing, |i| Found::Here(page.events[i].1.clone()));
    }
    Found::InFile
}

/// What an event weighs in the window.
fn weight(event: &Event) -> usize {
    event.payload.len()
        + event.id.len()
        + event.subject.len()
        + event
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
}

struct InFlight {
    delivered: u64,
    deadline: Instant,
    subscription: u64,
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        let mut d = f.debug_struct("MemoryBus");
        d.field("events", &(state.next_seq() - 1 - state.trimmed))
            .field("in_memory", &state.log.len())
            .field("consumers", &state.consumers.len());
        if let Some(journal) = &self.shared.journal {
            d.field("journal", &journal.file.path());
        }
        d.finish()
    }
}

impl Shared {
    /// A panic while holding the lock leaves the state consistent (every change is a
    /// single step), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryBus {
    /// A bus in memory only: everything is gone when the process ends.
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// A bus whose log and acknowledgements are kept in the SQLite file at `path` (created
    /// with its folder if missing), with the default [`JournalOptions`]. The file's newest
    /// events (its memory window) and the consumers' positions are loaded, the rest is read
    /// when needed; each durable consumer gets what it had not acknowledged when it
    /// subscribes again. One process at a time: a file already open (here or elsewhere) is
    /// refused with [`BusError::Conflict`] until every clone, subscription and delivery of
    /// the bus that opened it is dropped.
    pub async fn open_journal(path: &Path) -> Result<MemoryBus, BusError> {
        MemoryBus::open_journal_with(path, JournalOptions::default()).await
    }

    /// As [`MemoryBus::open_journal`], with a retention, a clock and a memory window of your
    /// choice.
    #[tracing::instrument(skip(options))]
    pub async fn open_journal_with(
        path: &Path,
        options: JournalOptions,
    ) -> Result<MemoryBus, BusError> {
        let window = options.memory_window.max(1);
        let file = Journal::open(path, options).await?;
        let loaded = file.load(window as u64).await?;
        let mut state = State {
            window,
            trimmed: loaded.trimmed_through,
            restored: loaded.positions,
            journaled: true,
            ..State::default()
        };
        state.behind =
            loaded.tail.first().map_or(loaded.last, |(seq, _)| seq - 1) - loaded.trimmed_through;
        for (_, event) in loaded.tail {
            state.push(event);
        }
        let (events, consumers) = (loaded.last - loaded.trimmed_through, state.restored.len());
        let bus = MemoryBus {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                journal: Some(JournalWriter {
                    file,
                    turn: tokio::sync::Mutex::new(Turn::default()),
                }),
                ..Shared::default()
            }),
        };
        let trimmed = bus.compact().await?;
        tracing::info!(events, consumers, trimmed, "bus journal opened");
        Ok(bus)
    }

    /// Saves the consumers' floors and trims the events every known consumer has settled
    /// and that are older than the retention; returns how many were trimmed. A journaled
    /// bus does this when opened and every 1024 publishes; a bus in memory trims nothing.
    pub async fn compact(&self) -> Result<u64, BusError> {
        if self.shared.journal.is_none() {
            return Ok(0);
        }
        let shared = self.shared.clone();
        detached(async move {
            let Some(journal) = &shared.journal else {
                return Ok(0);
            };
            let _turn = journal.turn.lock().await;
            shared.compact_in_turn(journal).await
        })
        .await
    }
}

/// Runs a journal write as a task of its own, so that a write whose caller stops waiting
/// (a cancelled relay round, a shutdown) still ends with memory matching the file.
async fn detached_batch(
    write: impl Future<Output = BatchOutcome> + Send + 'static,
) -> BatchOutcome {
    tokio::spawn(write).await.unwrap_or_else(|e| BatchOutcome {
        outcomes: Vec::new(),
        error: Some(BusError::unavailable("writing the bus journal", e)),
    })
}

/// As [`detached_batch`], for a write that either happens or fails.
async fn detached<T: Send + 'static>(
    write: impl Future<Output = Result<T, BusError>> + Send + 'static,
) -> Result<T, BusError> {
    tokio::spawn(write)
        .await
        .map_err(|e| BusError::unavailable("writing the bus journal", e))?
}

impl Shared {
    fn publish_in_memory(&self, event: Event) -> PublishOutcome {
        {
            let mut state = self.lock();
            if !state.ids.insert(event.id.clone()) {
                return PublishOutcome { duplicate: true };
            }
            state.push(event);
        }
        self.changed.notify_waiters();
        PublishOutcome { duplicate: false }
    }

    /// Stores the batch in the file in one transaction, the new events under the next
    /// sequences (an id the file holds already is a duplicate), then shows them to
    /// consumers. All or nothing: on an error no event of the batch is stored.
    async fn publish_journaled(self: Arc<Self>, batch: Vec<Outgoing>) -> BatchOutcome {
        let Some(journal) = &self.journal else {
            let outcomes = batch
                .into_iter()
                .map(|item| self.publish_in_memory(item.event))
                .collect();
            return BatchOutcome {
                outcomes,
                error: None,
            };
        };
        let mut turn = journal.turn.lock().await;
        let first = self.lock().next_seq();
        let stored = match journal.file.insert_batch(first, &batch).await {
            Ok(stored) => stored,
            Err(err) => {
                // The batch may be in the file all the same (an error on the way back): take
                // in what the file holds beyond memory, so that sequences go on from there.
                match self.catch_up(journal).await {
                    Ok(found) if !found.is_empty() => {
                        // The transaction did commit: what it added is found, the rest of
                        // the batch was there before.
                        let outcomes = batch
                            .iter()
                            .map(|item| PublishOutcome {
                                duplicate: !found.contains(&item.event.id),
                            })
                            .collect();
                        return BatchOutcome {
                            outcomes,
                            error: None,
                        };
                    }
                    Ok(_) => {}
                    Err(again) => {
                        tracing::warn!(error = %again, "bus journal unreadable after a failed write")
                    }
                }
                return BatchOutcome {
                    outcomes: Vec::new(),
                    error: Some(err),
                };
            }
        };
        let outcomes = stored
            .iter()
            .map(|&new| PublishOutcome { duplicate: !new })
            .collect();
        let added = stored.iter().filter(|&&new| new).count() as u64;
        {
            let mut state = self.lock();
            for (item, new) in batch.into_iter().zip(stored) {
                if new {
                    state.push(item.event);
                }
            }
        }
        if added > 0 {
            self.changed.notify_waiters();
        }
        turn.publishes_since_compact += added;
        if turn.publishes_since_compact >= COMPACT_EVERY {
            turn.publishes_since_compact = 0;
            // The events are stored; a compaction that fails is tried again later.
            if let Err(err) = self.compact_in_turn(journal).await {
                tracing::warn!(error = %err, "bus journal compaction failed");
            }
        }
        BatchOutcome {
            outcomes,
            error: None,
        }
    }

    /// Appends to memory the events the file holds beyond it; returns their ids.
    async fn catch_up(&self, journal: &JournalWriter) -> Result<HashSet<String>, BusError> {
        let from = self.lock().next_seq();
        let rows = journal.file.events_between(from, u64::MAX).await?;
        let mut found = HashSet::new();
        {
            let mut state = self.lock();
            for (seq, event) in rows {
                if seq != state.next_seq() {
                    break;
                }
                found.insert(event.id.clone());
                state.push(event);
            }
        }
        if !found.is_empty() {
            self.changed.notify_waiters();
        }
        Ok(found)
    }

    /// Reads back from the file, for a consumer behind the window, the page of events from
    /// sequence `from` on.
    async fn load_page(&self, durable: &str, from: u64) -> Result<(), BusError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let to = {
            let state = self.lock();
            let page = journal.file.options().page.max(1);
            (state.trimmed + state.behind + 1).min(from.saturating_add(page))
        };
        let rows = journal.file.events_between(from, to).await?;
        if let Some(c) = self.lock().consumers.get_mut(durable) {
            c.page = Page {
                from,
                to,
                events: rows.into_iter().map(|(s, e)| (s, Arc::new(e))).collect(),
            };
        }
        Ok(())
    }

    /// Records an acknowledgement in the file, then in memory. An event already settled
    /// (acknowledged before, or given up) needs no write.
    async fn ack_journaled(self: Arc<Self>, durable: String, seq: u64) -> Result<(), BusError> {
        let Some(journal) = &self.journal else {
            self.ack_in_memory(&durable, seq);
            return Ok(());
        };
        let per_process = self
            .lock()
            .consumers
            .get(&durable)
            .is_some_and(|c| c.per_process);
        if per_process {
            self.ack_in_memory(&durable, seq);
            return Ok(());
        }
        let _turn = journal.turn.lock().await;
        let floor = {
            let state = self.lock();
            match state.consumers.get(&durable) {
                Some(c) if c.in_flight.contains_key(&seq) || c.returned.contains_key(&seq) => {
                    c.floor_without(seq)
                }
                _ => return Ok(()),
            }
        };
        journal.file.settle(&durable, floor, &[seq]).await?;
        self.ack_in_memory(&durable, seq);
        if let Some(c) = self.lock().consumers.get_mut(&durable) {
            c.saved_floor = c.saved_floor.max(floor);
        }
        Ok(())
    }

    fn ack_in_memory(&self, durable: &str, seq: u64) {
        let mut state = self.lock();
        if let Some(c) = state.consumers.get_mut(durable) {
            // Like JetStream, an ack settles the event even when it comes from an earlier
            // delivery of it.
            c.in_flight.remove(&seq);
            c.returned.remove(&seq);
        }
    }

    /// Records in the file that deliveries were given up after `max_deliver`, so that they
    /// do not come again after a restart (JetStream keeps that state too). Memory has
    /// already let them go.
    async fn save_given_up(
        self: Arc<Self>,
        durable: String,
        seqs: Vec<u64>,
    ) -> Result<(), BusError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let _turn = journal.turn.lock().await;
        let Some(floor) = self
            .lock()
            .consumers
            .get(&durable)
            .filter(|c| !c.per_process)
            .map(Consumer::floor)
        else {
            return Ok(());
        };
        journal.file.settle(&durable, floor, &seqs).await?;
        if let Some(c) = self.lock().consumers.get_mut(&durable) {
            c.saved_floor = c.saved_floor.max(floor);
        }
        Ok(())
    }

    /// Creates the consumer or updates its settings, with a row in the file first so that
    /// trimming waits for it from now on.
    async fn subscribe_journaled(
        self: Arc<Self>,
        durable: String,
        spec: ConsumerSpec,
    ) -> Result<(), BusError> {
        let Some(journal) = &self.journal else {
            self.lock().configure(&durable, &spec);
            return Ok(());
        };
        let _turn = journal.turn.lock().await;
        let new_floor = {
            let state = self.lock();
            (!state.consumers.contains_key(&durable)).then(|| {
                state
                    .restored
                    .get(&durable)
                    .map_or(state.trimmed, |p| p.floor)
            })
        };
        if let Some(floor) = new_floor {
            journal.file.ensure_consumer(&durable, floor).await?;
        }
        self.lock().configure(&durable, &spec);
        Ok(())
    }

    /// Saves the floors that rose in memory (events passed over by a filter, given up, or
    /// acknowledged), then trims; the caller holds the turn.
    async fn compact_in_turn(&self, journal: &JournalWriter) -> Result<u64, BusError> {
        let floors: Vec<(String, u64)> = self
            .lock()
            .consumers
            .iter()
            .filter(|(_, c)| !c.per_process && c.floor() > c.saved_floor)
            .map(|(name, c)| (name.clone(), c.floor()))
            .collect();
        journal.file.raise_floors(&floors).await?;
        {
            let mut state = self.lock();
            for (name, floor) in &floors {
                if let Some(c) = state.consumers.get_mut(name) {
                    c.saved_floor = c.saved_floor.max(*floor);
                }
            }
        }
        let Some(through) = journal.file.trim().await? else {
            return Ok(0);
        };
        let mut state = self.lock();
        let trimmed = through.saturating_sub(state.trimmed);
        // The oldest go first: those in the file only, then those still in the window.
        let from_file = trimmed.min(state.behind);
        state.behind -= from_file;
        for _ in from_file..trimmed {
            let Some(event) = state.log.pop_front() else {
                break;
            };
            state.log_bytes = state.log_bytes.saturating_sub(weight(&event));
            state.ids.remove(&event.id);
        }
        state.trimmed = state.trimmed.max(through);
        Ok(trimmed)
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError> {
        event.validate()?;
        let mut stored = event.clone();
        stored.headers = sorted_headers(stored.headers);
        if self.shared.journal.is_some() {
            let batch = vec![Outgoing {
                event: stored,
                span: tracing::Span::current(),
            }];
            let mut outcome = detached_batch(self.shared.clone().publish_journaled(batch)).await;
            match (outcome.error.take(), outcome.outcomes.first()) {
                (_, Some(&first)) => Ok(first),
                (Some(err), None) => Err(err),
                (None, None) => Err(BusError::Invalid("nothing was published".into())),
            }
        } else {
            Ok(self.shared.publish_in_memory(stored))
        }
    }

    /// A journaled bus stores the batch in one transaction of its file (one sync instead
    /// of one per event).
    async fn publish_many(&self, batch: &[Outgoing]) -> BatchOutcome {
        // Checked before anything is stored: the events before a refused one go, as they
        // would one at a time.
        let mut ready = Vec::with_capacity(batch.len());
        let mut refused = None;
        for item in batch {
            if let Err(err) = item.event.validate() {
                refused = Some(err);
                break;
            }
            let mut event = item.event.clone();
            event.headers = sorted_headers(event.headers);
            ready.push(Outgoing {
                event,
                span: item.span.clone(),
            });
        }
        let mut outcome = if ready.is_empty() {
            BatchOutcome::default()
        } else if self.shared.journal.is_some() {
            detached_batch(self.shared.clone().publish_journaled(ready)).await
        } else {
            BatchOutcome {
                outcomes: ready
                    .into_iter()
                    .map(|item| self.shared.publish_in_memory(item.event))
                    .collect(),
                error: None,
            }
        };
        if outcome.error.is_none() {
            outcome.error = refused;
        }
        outcome
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        spec.validate()?;
        let durable = sanitise_name(&spec.durable);
        if self.shared.journal.is_some() && !spec.is_per_process() {
            detached(
                self.shared
                    .clone()
                    .subscribe_journaled(durable.clone(), spec.clone()),
            )
            .await?;
        } else {
            self.shared.lock().configure(&durable, spec);
        }
        Ok(Box::new(MemorySubscription {
            shared: self.shared.clone(),
            durable,
            id: self
                .shared
                .next_subscription
                .fetch_add(1, Ordering::Relaxed),
        }))
    }

    async fn remove_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        if !spec.is_per_process() {
            return Err(BusError::Invalid(format!(
                "{} is a shared consumer; only a per-process one is removed",
                spec.durable
            )));
        }
        let durable = sanitise_name(&spec.durable);
        let removed = {
            let mut state = self.shared.lock();
            let per_process = state.consumers.get(&durable).is_some_and(|c| c.per_process);
            per_process && state.consumers.remove(&durable).is_some()
        };
        if removed {
            // Its subscriptions end (`Step::End`).
            self.shared.changed.notify_waiters();
        }
        Ok(())
    }

    /// Deliveries out or given back, and the events of the consumer's filter it has not
    /// looked at yet (only those past its position are scanned: in memory, and for a
    /// journaled bus those behind the window in the file).
    async fn pending(&self, spec: &ConsumerSpec) -> Result<Option<u64>, BusError> {
        let durable = sanitise_name(&spec.durable);
        let Some(count) = self.shared.lock().unseen(&durable, u64::MAX) else {
            return Ok(None);
        };
        let in_file = self.shared.count_in_file(&count).await?;
        Ok(Some(count.out + count.in_memory + in_file))
    }

    async fn last_sequence(&self) -> Result<Option<u64>, BusError> {
        Ok(Some(self.shared.lock().next_seq() - 1))
    }

    /// Nothing of sequence `mark` or lower is out or given back, and every event of its
    /// filter up to `mark` past its position was acknowledged.
    async fn caught_up(&self, spec: &ConsumerSpec, mark: u64) -> Result<Option<bool>, BusError> {
        let durable = sanitise_name(&spec.durable);
        let Some(count) = self.shared.lock().unseen(&durable, mark) else {
            return Ok(Some(false));
        };
        if count.out > 0 || count.in_memory > 0 {
            return Ok(Some(false));
        }
        Ok(Some(self.shared.count_in_file(&count).await? == 0))
    }
}

/// What a consumer has not settled, up to a sequence: counted in memory, and what remains
/// to count in the file.
struct Unseen {
    /// Deliveries out or given back.
    out: u64,
    /// Events of its filter in the window it has not looked at.
    in_memory: u64,
    /// Sequences behind the window to count in the file (inclusive), its filter, and the
    /// sequences there it acknowledged ahead (passed over).
    in_file: Option<(u64, u64, String, Vec<u64>)>,
}

impl State {
    /// See [`Unseen`]; `None` when there is no such consumer.
    fn unseen(&self, durable: &str, upto: u64) -> Option<Unseen> {
        let c = self.consumers.get(durable)?;
        let out = (c.in_flight.range(..=upto).count() + c.returned.range(..=upto).count()) as u64;
        let first = c.next_new.max(self.trimmed + 1);
        let first_in_memory = self.trimmed + self.behind + 1;
        let in_file = (first < first_in_memory && first <= upto).then(|| {
            let to = upto.min(first_in_memory - 1);
            let ahead = c.acked_ahead.range(first..=to).copied().collect();
            (first, to, c.filter.clone(), ahead)
        });
        let from = first.max(first_in_memory);
        let skip = usize::try_from(from - first_in_memory).unwrap_or(usize::MAX);
        let take =
            usize::try_from(upto.saturating_sub(from).saturating_add(1)).unwrap_or(usize::MAX);
        let in_memory = if from > upto {
            0
        } else {
            self.log
                .iter()
                .skip(skip)
                .take(take)
                .zip(from..)
                .filter(|(event, seq)| {
                    !c.acked_ahead.contains(seq) && subject_matches(&c.filter, &event.subject)
                })
                .count() as u64
        };
        Some(Unseen {
            out,
            in_memory,
            in_file,
        })
    }
}

impl Shared {
    /// The events of [`Unseen::in_file`], counted in the file.
    async fn count_in_file(&self, count: &Unseen) -> Result<u64, BusError> {
        match (&self.journal, &count.in_file) {
            (Some(journal), Some((from, to, filter, ahead))) => {
                journal.file.count_matching(*from, *to, filter, ahead).await
            }
            _ => Ok(0),
        }
    }
}

/// What a subscription should do next.
enum Step {
    Deliver(Arc<Event>, u64, u64),
    /// These deliveries (sequences) were given up after `max_deliver`; a journaled bus
    /// records that before going on.
    GaveUp(Vec<u64>),
    /// Nothing to deliver; wait for a change, or until this instant when an ack_wait ends.
    Wait(Option<Instant>),
    /// The consumer is gone (a per-process one, removed).
    End,
    /// The next event to look at is behind the window: read back the page from this
    /// sequence, then look again.
    Load(u64),
}

impl State {
    /// The sequence the next stored event gets.
    fn next_seq(&self) -> u64 {
        self.trimmed + self.behind + self.log.len() as u64 + 1
    }

    /// Appends the event of [`State::next_seq`] to memory; a journaled bus lets the oldest
    /// of its window go to the file only.
    fn push(&mut self, event: Event) {
        if self.journaled {
            self.log_bytes += weight(&event);
        }
        self.log.push_back(Arc::new(event));
        while self.journaled
            && self.log.len() > 1
            && (self.log.len() > self.window || self.log_bytes > WINDOW_BYTES)
        {
            if let Some(old) = self.log.pop_front() {
                self.log_bytes = self.log_bytes.saturating_sub(weight(&old));
                self.behind += 1;
            }
        }
    }

    fn configure(&mut self, durable: &str, spec: &ConsumerSpec) {
        if spec.is_per_process() && !self.consumers.contains_key(durable) {
            // Only what is published from now on, like `DeliverPolicy::New`.
            let next_new = self.next_seq();
            self.consumers.insert(
                durable.to_string(),
                Consumer {
                    filter: spec.filter.clone(),
                    ack_wait: spec.ack_wait,
                    max_deliver: spec.max_deliver,
                    next_new,
                    in_flight: BTreeMap::new(),
                    returned: BTreeMap::new(),
                    acked_ahead: BTreeSet::new(),
                    saved_floor: next_new - 1,
                    per_process: true,
                    page: Page::default(),
                },
            );
            return;
        }
        match self.consumers.get_mut(durable) {
            // Settings may change between runs, as JetStream allows; the position stays.
            Some(existing) => {
                existing.filter = spec.filter.clone();
                existing.ack_wait = spec.ack_wait;
                existing.max_deliver = spec.max_deliver;
            }
            None => {
                // A new consumer starts at the oldest event kept, one known to the journal
                // just after what it had settled.
                let position = self.restored.remove(durable).unwrap_or(Position {
                    floor: self.trimmed,
                    acked: BTreeSet::new(),
                });
                self.consumers.insert(
                    durable.to_string(),
                    Consumer {
                        filter: spec.filter.clone(),
                        ack_wait: spec.ack_wait,
                        max_deliver: spec.max_deliver,
                        next_new: position.floor.max(self.trimmed) + 1,
                        in_flight: BTreeMap::new(),
                        returned: BTreeMap::new(),
                        acked_ahead: position.acked,
                        saved_floor: position.floor,
                        per_process: false,
                        page: Page::default(),
                    },
                );
            }
        }
    }

    fn step(&mut self, durable: &str, subscription: u64, now: Instant) -> Step {
        let next_seq = self.next_seq();
        let State {
            log,
            trimmed,
            behind,
            consumers,
            journaled,
            ..
        } = self;
        let (trimmed, behind) = (*trimmed, *behind);
        let Some(c) = consumers.get_mut(durable) else {
            return Step::End;
        };
        // Deliveries whose ack_wait ran out go back to the front, in log order.
        let expired: Vec<u64> = c
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some(f) = c.in_flight.remove(&seq) {
                c.returned.insert(seq, f.delivered);
            }
        }
        let mut gave_up = Vec::new();
        while let Some((&seq, &delivered)) = c.returned.first_key_value() {
            if c.max_deliver
                .is_some_and(|max| delivered >= u64::try_from(max).unwrap_or(u64::MAX))
            {
                // Given up after max_deliver attempts, like JetStream.
                c.returned.remove(&seq);
                if *journaled {
                    gave_up.push(seq);
                }
                continue;
            }
            if !gave_up.is_empty() {
                break;
            }
            // Only settled events are trimmed, so a returned one is always there.
            match find(log, trimmed, behind, &c.page, seq) {
                Found::Here(event) => {
                    c.returned.remove(&seq);
                    return c.deliver(event, seq, delivered + 1, subscription, now);
                }
                Found::Missing => {
                    c.returned.remove(&seq);
                }
                Found::InFile => return Step::Load(seq),
            }
        }
        if !gave_up.is_empty() {
            return Step::GaveUp(gave_up);
        }
        c.next_new = c.next_new.max(trimmed + 1);
        while c.next_new < next_seq {
            let seq = c.next_new;
            if c.acked_ahead.remove(&seq) {
                c.next_new += 1;
                continue;
            }
            match find(log, trimmed, behind, &c.page, seq) {
                Found::Here(event) => {
                    c.next_new += 1;
                    if subject_matches(&c.filter, &event.subject) {
                        return c.deliver(event, seq, 1, subscription, now);
                    }
                }
                Found::Missing => c.next_new += 1,
                Found::InFile => return Step::Load(seq),
            }
        }
        Step::Wait(c.in_flight.values().map(|f| f.deadline).min())
    }
}

impl Consumer {
    fn deliver(
        &mut self,
        event: Arc<Event>,
        seq: u64,
        delivered: u64,
        subscription: u64,
        now: Instant,
    ) -> Step {
        self.in_flight.insert(
            seq,
            InFlight {
                delivered,
                deadline: now + self.ack_wait,
                subscription,
            },
        );
        Step::Deliver(event, seq, delivered)
    }

    /// Every sequence at or below it is settled for this consumer: acknowledged, given up,
    /// or passed over by its filter.
    fn floor(&self) -> u64 {
        self.floor_without(0)
    }

    /// The floor once `seq` is settled too (0 is no sequence).
    fn floor_without(&self, seq: u64) -> u64 {
        let out = |keys: &mut dyn Iterator<Item = &u64>| keys.copied().find(|&s| s != seq);
        let lowest_open = [
            out(&mut self.in_flight.keys()),
            out(&mut self.returned.keys()),
            Some(self.next_new),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_new);
        lowest_open.saturating_sub(1)
    }
}

struct MemorySubscription {
    shared: Arc<Shared>,
    durable: String,
    id: u64,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            // Registered before looking, so a change between the look and the wait wakes us.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let step = self
                .shared
                .lock()
                .step(&self.durable, self.id, Instant::now());
            match step {
                Step::Deliver(event, seq, delivered) => {
                    let acker = MemoryAcker {
                        shared: self.shared.clone(),
                        durable: self.durable.clone(),
                        seq,
                        delivered,
                    };
                    return Some(Ok(Delivery::new(
                        (*event).clone(),
                        delivered,
                        Box::new(acker),
                    )));
                }
                Step::GaveUp(seqs) => {
                    let save = self
                        .shared
                        .clone()
                        .save_given_up(self.durable.clone(), seqs);
                    // Not a trouble of this subscription: at worst the event comes again
                    // after a restart, which the consumer's inbox handles.
                    if let Err(err) = detached(save).await {
                        tracing::warn!(error = %err, durable = %self.durable, "given-up events not recorded in the bus journal");
                    }
                }
                Step::End => return None,
                Step::Load(from) => {
                    // Read while the lock is free: publishers and other consumers go on.
                    if let Err(err) = self.shared.load_page(&self.durable, from).await {
                        return Some(Err(err));
                    }
                }
                Step::Wait(Some(deadline)) => {
                    tokio::select! {
                        _ = &mut changed => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                Step::Wait(None) => changed.await,
            }
        }
    }
}

impl Drop for MemorySubscription {
    /// A consumer that stops (or is killed) before acknowledging gives its deliveries back
    /// at once, so the next subscriber of the durable gets them without waiting ack_wait.
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            let Some(c) = state.consumers.get_mut(&self.durable) else {
                return;
            };
            let mine: Vec<u64> = c
                .in_flight
                .iter()
                .filter(|(_, f)| f.subscription == self.id)
                .map(|(seq, _)| *seq)
                .collect();
            for seq in mine {
                if let Some(f) = c.in_flight.remove(&seq) {
                    c.returned.insert(seq, f.delivered);
                }
            }
        }
        self.shared.changed.notify_waiters();
    }
}

struct MemoryAcker {
    shared: Arc<Shared>,
    durable: String,
    seq: u64,
    delivered: u64,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        if self.shared.journal.is_some() {
            detached(self.shared.clone().ack_journaled(self.durable, self.seq)).await
        } else {
            self.shared.ack_in_memory(&self.durable, self.seq);
            Ok(())
        }
    }

    async fn nack(self: Box<Self>) -> Result<(), BusError> {
        {
            let mut state = self.shared.lock();
            if let Some(c) = state.consumers.get_mut(&self.durable) {
                // Only this delivery can be given back: a nack of an older one, since
                // delivered again, must not take it from its new holder.
                if c.in_flight
                    .get(&self.seq)
                    .is_some_and(|f| f.delivered == self.delivered)
                {
                    c.in_flight.remove(&self.seq);
                    c.returned.insert(self.seq, self.delivered);
                }
            }
        }
        self.shared.changed.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(next_new: u64) -> Consumer {
        Consumer {
            filter: ">".into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            next_new,
            in_flight: BTreeMap::new(),
            returned: BTreeMap::new(),
            acked_ahead: BTreeSet::new(),
            saved_floor: 0,
            per_process: false,
            page: Page::default(),
        }
    }

    fn in_flight() -> InFlight {
        InFlight {
            delivered: 1,
            deadline: Instant::now(),
            subscription: 0,
        }
    }

    #[test]
    fn the_floor_stops_below_the_lowest_event_still_out() {
        let mut c = consumer(10);
        assert_eq!(c.floor(), 9, "all looked at and settled");
        c.in_flight.insert(4, in_flight());
        c.in_flight.insert(7, in_flight());
        c.returned.insert(6, 2);
        assert_eq!(c.floor(), 3);
        assert_eq!(c.floor_without(4), 5, "acking 4 leaves 6 returned");
        assert_eq!(c.floor_without(7), 3);
        assert_eq!(consumer(1).floor(), 0, "nothing looked at yet");
    }
}
