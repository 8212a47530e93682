//! The in-process event bus of the embedded one-process run: an append-only log in memory
//! with durable consumers by name, behaving like the JetStream setup of [`super::NatsBus`]
//! (the same contract tests run against both).
//!
//! Two kinds: [`MemoryBus::new`] lives as long as the process (tests, tools);
//! [`MemoryBus::open_journal`] also keeps the log and the consumers' acknowledgements in a
//! SQLite file (`journal.rs` says how), so that a restart, or a crash at any point, loses
//! nothing and doubles nothing: `publish` returns once the event is in the file (and only
//! then can a consumer see it), an `ack` once it is recorded there, and a durable consumer
//! subscribing again after a restart gets, in order, every event of its filter it had not
//! acknowledged, as a JetStream durable consumer would. Deliveries, nacks and redeliveries
//! stay in memory: the journal is written on publish, ack and give-up only. So delivery
//! counts start again after a restart (an event that was out comes with `delivered` 1, and
//! `max_deliver` counts from there), where JetStream would remember them.
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
    Acker, BusError, ConsumerSpec, Delivery, Event, EventBus, PublishOutcome, Subscription,
    sanitise_name, sorted_headers, subject_matches,
};

/// Publishes between two compactions of the journal (floors saved, old events trimmed),
/// besides the one at open.
const COMPACT_EVERY: u64 = 1024;

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
    /// The events of sequence `trimmed + 1` on, in order.
    log: VecDeque<Arc<Event>>,
    /// The last sequence trimmed from the log (a journaled bus only; else 0).
    trimmed: u64,
    /// The ids of the events in the log: the duplicate window is the life of the process,
    /// or for a journaled bus the life of the event in the journal.
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
        d.field("events", &state.log.len())
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
    /// with its folder if missing), with the default [`JournalOptions`]. What the file holds
    /// is loaded; each durable consumer gets what it had not acknowledged when it subscribes
    /// again. One process at a time: a file already open (here or elsewhere) is refused
    /// with [`BusError::Conflict`] until every clone, subscription and delivery of the bus
    /// that opened it is dropped.
    pub async fn open_journal(path: &Path) -> Result<MemoryBus, BusError> {
        MemoryBus::open_journal_with(path, JournalOptions::default()).await
    }

    /// As [`MemoryBus::open_journal`], with a retention and a clock of your choice.
    #[tracing::instrument(skip(options))]
    pub async fn open_journal_with(
        path: &Path,
        options: JournalOptions,
    ) -> Result<MemoryBus, BusError> {
        let file = Journal::open(path, options).await?;
        let loaded = file.load().await?;
        let mut state = State {
            trimmed: loaded.trimmed_through,
            restored: loaded.positions,
            journaled: true,
            ..State::default()
        };
        for event in loaded.events {
            state.ids.insert(event.id.clone());
            state.log.push_back(Arc::new(event));
        }
        let (events, consumers) = (state.log.len(), state.restored.len());
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
            state.log.push_back(Arc::new(event));
        }
        self.changed.notify_waiters();
        PublishOutcome { duplicate: false }
    }

    /// Stores the event in the file under the next sequence, then shows it to consumers.
    async fn publish_journaled(self: Arc<Self>, event: Event) -> Result<PublishOutcome, BusError> {
        let Some(journal) = &self.journal else {
            return Ok(self.publish_in_memory(event));
        };
        let mut turn = journal.turn.lock().await;
        let seq = {
            let state = self.lock();
            if state.ids.contains(&event.id) {
                return Ok(PublishOutcome { duplicate: true });
            }
            state.next_seq()
        };
        if let Err(err) = journal.file.insert(seq, &event).await {
            // The row may be in the file all the same (an error on the way back): take in
            // what the file holds beyond memory, so that sequences go on from there.
            match self.catch_up(journal).await {
                Ok(()) if self.lock().ids.contains(&event.id) => {
                    return Ok(PublishOutcome { duplicate: false });
                }
                Ok(()) => {}
                Err(again) => {
                    tracing::warn!(error = %again, "bus journal unreadable after a failed write")
                }
            }
            return Err(err);
        }
        {
            let mut state = self.lock();
            state.ids.insert(event.id.clone());
            state.log.push_back(Arc::new(event));
        }
        self.changed.notify_waiters();
        turn.publishes_since_compact += 1;
        if turn.publishes_since_compact >= COMPACT_EVERY {
            turn.publishes_since_compact = 0;
            // The event is stored; a compaction that fails is tried again later.
            if let Err(err) = self.compact_in_turn(journal).await {
                tracing::warn!(error = %err, "bus journal compaction failed");
            }
        }
        Ok(PublishOutcome { duplicate: false })
    }

    /// Appends to memory the events the file holds beyond it.
    async fn catch_up(&self, journal: &JournalWriter) -> Result<(), BusError> {
        let from = self.lock().next_seq();
        let rows = journal.file.events_from(from).await?;
        let found = !rows.is_empty();
        {
            let mut state = self.lock();
            for (seq, event) in rows {
                if seq != state.next_seq() {
                    break;
                }
                state.ids.insert(event.id.clone());
                state.log.push_back(Arc::new(event));
            }
        }
        if found {
            self.changed.notify_waiters();
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
        let mut trimmed = 0;
        while state.trimmed < through {
            let Some(event) = state.log.pop_front() else {
                break;
            };
            state.ids.remove(&event.id);
            state.trimmed += 1;
            trimmed += 1;
        }
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
            detached(self.shared.clone().publish_journaled(stored)).await
        } else {
            Ok(self.shared.publish_in_memory(stored))
        }
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

    /// Counted in memory: deliveries out or given back, and the events of the consumer's
    /// filter it has not looked at yet (only those past its position are scanned).
    async fn pending(&self, spec: &ConsumerSpec) -> Result<Option<u64>, BusError> {
        Ok(self.shared.lock().pending(&sanitise_name(&spec.durable)))
    }

    async fn last_sequence(&self) -> Result<Option<u64>, BusError> {
        Ok(Some(self.shared.lock().next_seq() - 1))
    }

    async fn caught_up(&self, spec: &ConsumerSpec, mark: u64) -> Result<Option<bool>, BusError> {
        Ok(Some(
            self.shared
                .lock()
                .caught_up(&sanitise_name(&spec.durable), mark),
        ))
    }
}

impl State {
    /// See [`EventBus::pending`].
    fn pending(&self, durable: &str) -> Option<u64> {
        let c = self.consumers.get(durable)?;
        let first = c.next_new.max(self.trimmed + 1);
        let skip = usize::try_from(first - self.trimmed - 1).unwrap_or(usize::MAX);
        let unseen = self
            .log
            .iter()
            .skip(skip)
            .zip(first..)
            .filter(|(event, seq)| {
                !c.acked_ahead.contains(seq) && subject_matches(&c.filter, &event.subject)
            })
            .count();
        Some((c.in_flight.len() + c.returned.len() + unseen) as u64)
    }

    /// See [`EventBus::caught_up`]: nothing of sequence `mark` or lower is out or given
    /// back, and every event of its filter up to `mark` past its position was acknowledged.
    fn caught_up(&self, durable: &str, mark: u64) -> bool {
        let Some(c) = self.consumers.get(durable) else {
            return false;
        };
        if c.in_flight.range(..=mark).next().is_some() || c.returned.range(..=mark).next().is_some()
        {
            return false;
        }
        let first = c.next_new.max(self.trimmed + 1);
        if first > mark {
            return true;
        }
        let skip = usize::try_from(first - self.trimmed - 1).unwrap_or(usize::MAX);
        let upto = usize::try_from(mark - first + 1).unwrap_or(usize::MAX);
        !self
            .log
            .iter()
            .skip(skip)
            .take(upto)
            .zip(first..)
            .any(|(event, seq)| {
                !c.acked_ahead.contains(&seq) && subject_matches(&c.filter, &event.subject)
            })
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
}

impl State {
    /// The sequence the next stored event gets.
    fn next_seq(&self) -> u64 {
        self.trimmed + self.log.len() as u64 + 1
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
            consumers,
            journaled,
            ..
        } = self;
        let event_at = |seq: u64| {
            seq.checked_sub(*trimmed + 1)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| log.get(i))
        };
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
            c.returned.remove(&seq);
            // Only settled events are trimmed, so a returned one is always there.
            if let Some(event) = event_at(seq) {
                return c.deliver(event.clone(), seq, delivered + 1, subscription, now);
            }
        }
        if !gave_up.is_empty() {
            return Step::GaveUp(gave_up);
        }
        c.next_new = c.next_new.max(*trimmed + 1);
        while c.next_new < next_seq {
            let seq = c.next_new;
            c.next_new += 1;
            if c.acked_ahead.remove(&seq) {
                continue;
            }
            if let Some(event) = event_at(seq)
                && subject_matches(&c.filter, &event.subject)
            {
                return c.deliver(event.clone(), seq, 1, subscription, now);
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
