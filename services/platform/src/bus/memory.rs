//! The in-process event bus of the embedded one-process run: an append-only log in memory
//! with durable consumers by name, behaving like the JetStream setup of [`super::NatsBus`]
//! (the same contract tests run against both). It lives as long as the process: events and
//! consumer positions are not kept across restarts.
//!
//! Consumers are woken by a [`Notify`] when something changes for them (a publish, a nack,
//! a dropped subscription) and by a timer only for the earliest `ack_wait` that runs out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Acker, BusError, ConsumerSpec, Delivery, Event, EventBus, PublishOutcome, Subscription,
    sanitise_name, sorted_headers, subject_matches,
};

/// The in-process bus. Clones share one log.
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
}

#[derive(Default)]
struct State {
    /// Index `i` holds stream sequence `i + 1`.
    log: Vec<Arc<Event>>,
    /// Every id ever stored: the duplicate window is the life of the process.
    ids: HashSet<String>,
    consumers: HashMap<String, Consumer>,
}

struct Consumer {
    filter: String,
    ack_wait: Duration,
    max_deliver: Option<i64>,
    /// Log index of the next event never delivered to this consumer.
    next_new: usize,
    /// Delivered and neither acknowledged nor given back, by log index.
    in_flight: BTreeMap<usize, InFlight>,
    /// Given back (nack, or its subscription dropped): deliver again first, by log index,
    /// with the number of deliveries so far.
    returned: BTreeMap<usize, u64>,
}

struct InFlight {
    delivered: u64,
    deadline: Instant,
    subscription: u64,
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryBus")
            .field("events", &state.log.len())
            .field("consumers", &state.consumers.len())
            .finish()
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
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError> {
        event.validate()?;
        {
            let mut state = self.shared.lock();
            if !state.ids.insert(event.id.clone()) {
                return Ok(PublishOutcome { duplicate: true });
            }
            let mut stored = event.clone();
            stored.headers = sorted_headers(stored.headers);
            state.log.push(Arc::new(stored));
        }
        self.shared.changed.notify_waiters();
        Ok(PublishOutcome { duplicate: false })
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        spec.validate()?;
        let durable = sanitise_name(&spec.durable);
        {
            let mut state = self.shared.lock();
            match state.consumers.get_mut(&durable) {
                // Settings may change between runs, as JetStream allows; the position stays.
                Some(existing) => {
                    existing.filter = spec.filter.clone();
                    existing.ack_wait = spec.ack_wait;
                    existing.max_deliver = spec.max_deliver;
                }
                None => {
                    state.consumers.insert(
                        durable.clone(),
                        Consumer {
                            filter: spec.filter.clone(),
                            ack_wait: spec.ack_wait,
                            max_deliver: spec.max_deliver,
                            next_new: 0,
                            in_flight: BTreeMap::new(),
                            returned: BTreeMap::new(),
                        },
                    );
                }
            }
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
}

/// What a subscription should do next.
enum Step {
    Deliver(Arc<Event>, usize, u64),
    /// Nothing to deliver; wait for a change, or until this instant when an ack_wait ends.
    Wait(Option<Instant>),
    /// The consumer is gone (cannot happen while consumers are never deleted).
    End,
}

impl State {
    fn step(&mut self, durable: &str, subscription: u64, now: Instant) -> Step {
        let State { log, consumers, .. } = self;
        let Some(c) = consumers.get_mut(durable) else {
            return Step::End;
        };
        // Deliveries whose ack_wait ran out go back to the front, in log order.
        let expired: Vec<usize> = c
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(i, _)| *i)
            .collect();
        for i in expired {
            if let Some(f) = c.in_flight.remove(&i) {
                c.returned.insert(i, f.delivered);
            }
        }
        while let Some((index, delivered)) = c.returned.pop_first() {
            if c.max_deliver
                .is_some_and(|max| delivered >= u64::try_from(max).unwrap_or(u64::MAX))
            {
                // Given up after max_deliver attempts, like JetStream.
                continue;
            }
            return c.deliver(log, index, delivered + 1, subscription, now);
        }
        while c.next_new < log.len() {
            let index = c.next_new;
            c.next_new += 1;
            if subject_matches(&c.filter, &log[index].subject) {
                return c.deliver(log, index, 1, subscription, now);
            }
        }
        Step::Wait(c.in_flight.values().map(|f| f.deadline).min())
    }
}

impl Consumer {
    fn deliver(
        &mut self,
        log: &[Arc<Event>],
        index: usize,
        delivered: u64,
        subscription: u64,
        now: Instant,
    ) -> Step {
        self.in_flight.insert(
            index,
            InFlight {
                delivered,
                deadline: now + self.ack_wait,
                subscription,
            },
        );
        Step::Deliver(log[index].clone(), index, delivered)
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
                Step::Deliver(event, index, delivered) => {
                    let acker = MemoryAcker {
                        shared: self.shared.clone(),
                        durable: self.durable.clone(),
                        index,
                        delivered,
                    };
                    return Some(Ok(Delivery::new(
                        (*event).clone(),
                        delivered,
                        Box::new(acker),
                    )));
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
            let mine: Vec<usize> = c
                .in_flight
                .iter()
                .filter(|(_, f)| f.subscription == self.id)
                .map(|(i, _)| *i)
                .collect();
            for i in mine {
                if let Some(f) = c.in_flight.remove(&i) {
                    c.returned.insert(i, f.delivered);
                }
            }
        }
        self.shared.changed.notify_waiters();
    }
}

struct MemoryAcker {
    shared: Arc<Shared>,
    durable: String,
    index: usize,
    delivered: u64,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        let mut state = self.shared.lock();
        if let Some(c) = state.consumers.get_mut(&self.durable) {
            // Like JetStream, an ack settles the event even when it comes from an earlier
            // delivery of it.
            c.in_flight.remove(&self.index);
            c.returned.remove(&self.index);
        }
        Ok(())
    }

    async fn nack(self: Box<Self>) -> Result<(), BusError> {
        {
            let mut state = self.shared.lock();
            if let Some(c) = state.consumers.get_mut(&self.durable) {
                // Only this delivery can be given back: a nack of an older one, since
                // delivered again, must not take it from its new holder.
                if c.in_flight
                    .get(&self.index)
                    .is_some_and(|f| f.delivered == self.delivered)
                {
                    c.in_flight.remove(&self.index);
                    c.returned.insert(self.index, self.delivered);
                }
            }
        }
        self.shared.changed.notify_waiters();
        Ok(())
    }
}
