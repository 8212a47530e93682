//! The event bus: facts that happened, published by one service and consumed by whoever
//! cares (ARCHITECTURE.md "Events"). One interface, [`EventBus`], with two implementations:
//! [`NatsBus`] (NATS JetStream, a deployment) and [`MemoryBus`] (in-process, the embedded
//! one-process run). Both pass the same contract suite (`tests/bus_contract.rs`), so a
//! service cannot tell them apart.
//!
//! [`MemoryBus::open_journal`] keeps the in-process log and the consumers' acknowledgements
//! in a SQLite file (`journal.rs`), so that the embedded run, too, keeps events and
//! positions across a crash, holding only its newest events in memory; it passes the contract suite as a third implementation, and
//! `tests/bus_journal.rs` restarts it.
//!
//! Guarantees both give ("Nothing lost"):
//! - `publish` returns only once the bus has stored the event; an event id published again
//!   is stored once and reported as a duplicate (the outbox relay relies on this after a
//!   crash between publishing and marking). [`EventBus::publish_many`] does the same for a
//!   batch, its round trips overlapped, and says how many of its first events are stored.
//! - Consumers are durable and named: a consumer acknowledges after its own commit; what it
//!   did not acknowledge comes again (after `ack_wait`, after `nack`, or to the next
//!   `subscribe` of the same durable name). Delivery is at least once: consumers skip ids
//!   they have already handled (see [`crate::inbox`]).
//! - Order within one subject is kept for one consumer, redeliveries aside (and on NATS a
//!   batch that failed part way, whose later events may be stored before the failed one
//!   is published again: see [`crate::outbox`]).
//!
//! Subjects are relative (`catalog.item.created`); each bus puts them under the prefix it
//! was built with (`library` in a deployment, a unique one per test), so that deployments
//! and tests sharing a server never see each other's events.

mod journal;
pub mod memory;
pub mod nats;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::Instrument;

pub use journal::JournalOptions;
pub use memory::MemoryBus;
pub use nats::NatsBus;

/// One event as it travels: an id for de-duplication, a relative subject, a protobuf
/// payload, and headers such as `traceparent` and `kitsuki-event-time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per event; publishing the same id again does not store it twice.
    pub id: String,
    /// Relative subject, e.g. `catalog.item.created` (no wildcards).
    pub subject: String,
    /// The encoded protobuf message.
    pub payload: Vec<u8>,
    /// Header names are ASCII without `:` and may not start with `Nats-` (reserved by the
    /// server); values may not contain line breaks nor start or end with whitespace (NATS
    /// trims it). On delivery they come sorted by name, as NATS keeps only the order of the
    /// values of one name.
    pub headers: Vec<(String, String)>,
}

impl Event {
    /// An event with a fresh time-ordered id (UUID v7) and no headers.
    pub fn new(subject: impl Into<String>, payload: Vec<u8>) -> Event {
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            subject: subject.into(),
            payload,
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Event {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks what both buses need of an event, so that they accept and refuse the same
    /// events, and a bad one is refused when it is written to the outbox rather than
    /// blocking the relay later.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.id.is_empty() || self.id.chars().any(|c| c.is_control()) {
            return Err(BusError::Invalid(format!(
                "event id {:?} is empty or has control characters",
                self.id
            )));
        }
        if self.id.trim() != self.id {
            return Err(BusError::Invalid(format!(
                "event id {:?} has surrounding whitespace",
                self.id
            )));
        }
        validate_subject(&self.subject)?;
        for (name, value) in &self.headers {
            if name.is_empty() || name.chars().any(|c| !c.is_ascii_graphic() || c == ':') {
                return Err(BusError::Invalid(format!(
                    "header name {name:?} is not a NATS header name"
                )));
            }
            if name.to_ascii_lowercase().starts_with("nats-") {
                return Err(BusError::Invalid(format!(
                    "header name {name:?} is reserved by NATS"
                )));
            }
            if value.contains(['\r', '\n']) || value.trim() != value {
                return Err(BusError::Invalid(format!(
                    "header {name:?} has a line break or surrounding whitespace in its value"
                )));
            }
        }
        Ok(())
    }
}

/// What `publish` learnt from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// True when an event of this id was already stored; nothing new was stored.
    pub duplicate: bool,
}

/// One event of a batch for [`EventBus::publish_many`], with the span its publishing is
/// recorded under (the relay's `outbox.publish`, joined to the trace of the request that
/// wrote the event).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event: Event,
    pub span: tracing::Span,
}

/// What [`EventBus::publish_many`] learnt: `outcomes[i]` for the batch's event `i`, for the
/// first `outcomes.len()` events, each stored; `error`, if any, is the failure of the next
/// one. Of the events after it nothing is known: they may have been stored (publishing
/// them again is safe, the bus reports them as duplicates).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub outcomes: Vec<PublishOutcome>,
    pub error: Option<BusError>,
}

/// A durable consumer: its name, what it listens to, and how redelivery behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// The name under which the bus remembers what was acknowledged. Characters other than
    /// ASCII letters, digits, `-` and `_` are replaced by `_` (so `a.b` and `a_b` are one
    /// consumer).
    pub durable: String,
    /// Relative subject with NATS wildcards: `*` one token, `>` the rest (last token only).
    pub filter: String,
    /// How long a delivery may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// After this many deliveries an unacknowledged event is given up; `None` never.
    pub max_deliver: Option<i64>,
    /// `None`: a consumer shared by every process that uses its name, kept until deleted,
    /// starting at the oldest event kept. `Some(t)`: a consumer of one process (see
    /// [`ConsumerSpec::per_process`]).
    pub inactive_threshold: Option<Duration>,
}

impl ConsumerSpec {
    /// A consumer with a 30 s `ack_wait` and unlimited deliveries.
    pub fn new(durable: impl Into<String>, filter: impl Into<String>) -> ConsumerSpec {
        ConsumerSpec {
            durable: durable.into(),
            filter: filter.into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            inactive_threshold: None,
        }
    }

    /// A consumer of one process, for state every process keeps for itself (a catalog
    /// replica's search index): give it a name no other process uses. It receives only the
    /// events published after it was first subscribed (the process rebuilds its state from
    /// its database at start, after subscribing), and it is not kept for later: the bus
    /// forgets it once no subscription has asked for events for `inactive_threshold`
    /// (NATS `inactive_threshold`; a crashed process leaves nothing behind), or at once
    /// through [`EventBus::remove_consumer`] at a clean stop. While the process lives, a
    /// new `subscribe` goes on after the last event it acknowledged, even if the server
    /// had dropped the consumer meanwhile (a long outage): nothing between is skipped.
    /// The journal of a [`MemoryBus`] does not keep it.
    pub fn per_process(
        name: impl Into<String>,
        filter: impl Into<String>,
        inactive_threshold: Duration,
    ) -> ConsumerSpec {
        ConsumerSpec {
            inactive_threshold: Some(inactive_threshold),
            ..ConsumerSpec::new(name, filter)
        }
    }

    /// Whether this is a consumer of one process ([`ConsumerSpec::per_process`]).
    pub fn is_per_process(&self) -> bool {
        self.inactive_threshold.is_some()
    }

    pub(crate) fn validate(&self) -> Result<(), BusError> {
        if self.durable.is_empty() {
            return Err(BusError::Invalid("durable consumer name is empty".into()));
        }
        validate_filter(&self.filter)?;
        if self.ack_wait.is_zero() {
            return Err(BusError::Invalid("ack_wait must be positive".into()));
        }
        if matches!(self.max_deliver, Some(n) if n < 1) {
            return Err(BusError::Invalid("max_deliver must be at least 1".into()));
        }
        if self
            .inactive_threshold
            .is_some_and(|t| t < Duration::from_secs(1))
        {
            return Err(BusError::Invalid(
                "inactive_threshold must be at least a second".into(),
            ));
        }
        Ok(())
    }
}

/// Why the bus failed. `Invalid` will fail again as it is; `Unavailable` may pass later.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid for the event bus: {0}")]
    Invalid(String),
    #[error("the event bus refused the setup: {0}")]
    Conflict(String),
    #[error("the event bus is unavailable while {during}")]
    Unavailable {
        during: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BusError {
    pub(crate) fn unavailable(
        during: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BusError {
        BusError::Unavailable {
            during,
            source: source.into(),
        }
    }
}

/// The event bus interface every service uses.
#[async_trait]
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Stores the event and returns once the bus has it (a JetStream ack for NATS).
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError>;

    /// Publishes a batch in order, so that the bus's round trips overlap (NATS sends the
    /// whole batch, then waits for the acks) or the batch is stored at once (a journaled
    /// [`MemoryBus`]: one transaction); returns once every event reported in the outcome is
    /// stored. The default publishes one at a time and stops at the first failure. Each
    /// event's work is done inside its [`Outgoing::span`].
    async fn publish_many(&self, batch: &[Outgoing]) -> BatchOutcome {
        let mut outcomes = Vec::with_capacity(batch.len());
        for item in batch {
            match self
                .publish(&item.event)
                .instrument(item.span.clone())
                .await
            {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    return BatchOutcome {
                        outcomes,
                        error: Some(error),
                    };
                }
            }
        }
        BatchOutcome {
            outcomes,
            error: None,
        }
    }

    /// Creates the durable consumer or binds to it again, and starts receiving.
    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError>;

    /// Deletes a consumer of one process ([`ConsumerSpec::per_process`]) when that process
    /// stops cleanly, so that it does not wait for its inactivity threshold. A consumer
    /// already gone is no error. Shared consumers are refused: their position is everyone's.
    async fn remove_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        if !spec.is_per_process() {
            return Err(BusError::Invalid(format!(
                "{} is a shared consumer; only a per-process one is removed",
                spec.durable
            )));
        }
        Ok(())
    }

    /// The lag of the durable consumer of `spec`: how many events of its filter it has not
    /// acknowledged yet (not delivered, or delivered and still out). `None` when the bus
    /// cannot tell, or the consumer does not exist (yet). For the consumer-lag gauge of
    /// [`crate::consumer::run`]; nothing else depends on it.
    async fn pending(&self, spec: &ConsumerSpec) -> Result<Option<u64>, BusError> {
        let _ = spec;
        Ok(None)
    }

    /// The sequence of the last event stored (0 when none), the mark a starting process
    /// catches up to ([`crate::catch_up`]); `None` when the bus cannot tell.
    async fn last_sequence(&self) -> Result<Option<u64>, BusError> {
        Ok(None)
    }

    /// Whether the durable consumer of `spec` has acknowledged every event of its filter
    /// stored up to sequence `mark` (false while it does not exist yet); `None` when the bus
    /// cannot tell. For readiness ([`crate::catch_up`]).
    async fn caught_up(&self, spec: &ConsumerSpec, mark: u64) -> Result<Option<bool>, BusError> {
        let _ = (spec, mark);
        Ok(None)
    }
}

pub type SharedBus = Arc<dyn EventBus>;

/// Deliveries of one durable consumer. An `Err` item is a passing trouble (the subscription
/// goes on); `None` means it has ended and a new `subscribe` is needed.
#[async_trait]
pub trait Subscription: Send {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;
}

/// One delivery of an event to a consumer; acknowledge it after the consumer's own commit.
pub struct Delivery {
    pub event: Event,
    /// 1 on the first delivery, more on redeliveries.
    pub delivered: u64,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub(crate) fn new(event: Event, delivered: u64, acker: Box<dyn Acker>) -> Delivery {
        Delivery {
            event,
            delivered,
            acker,
        }
    }

    /// Done with it: it will not come again to this consumer.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Not done: deliver it again soon.
    pub async fn nack(self) -> Result<(), BusError> {
        self.acker.nack().await
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

/// How a delivery is settled; each bus brings its own.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn nack(self: Box<Self>) -> Result<(), BusError>;
}

/// A subject to publish on, or a prefix: dot-separated non-empty tokens, no wildcards,
/// no whitespace.
pub(crate) fn validate_subject(subject: &str) -> Result<(), BusError> {
    let ok = !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty()
                && !t.contains(['*', '>'])
                && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if ok {
        Ok(())
    } else {
        Err(BusError::Invalid(format!("{subject:?} is not a subject")))
    }
}

/// A subject filter: tokens as in a subject, or `*`, or `>` as the last token.
pub(crate) fn validate_filter(filter: &str) -> Result<(), BusError> {
    let tokens: Vec<&str> = filter.split('.').collect();
    let ok = !filter.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| match *t {
            "*" => true,
            ">" => i == tokens.len() - 1,
            t => {
                !t.is_empty()
                    && !t.contains(['*', '>'])
                    && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            }
        });
    if ok {
        Ok(())
    } else {
        Err(BusError::Invalid(format!(
            "{filter:?} is not a subject filter"
        )))
    }
}

/// Whether a subject matches a filter, with the wildcards of NATS.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(ft), Some(st)) if ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A name fit for JetStream (stream and consumer names): letters, digits, `-`, `_`.
pub(crate) fn sanitise_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Sorts headers by name, keeping the order of the values of one name, which is all NATS
/// keeps; both buses deliver headers this way.
pub(crate) fn sorted_headers(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches("catalog.>", "catalog.item.created"));
        assert!(subject_matches("catalog.>", "catalog.item"));
        assert!(!subject_matches("catalog.>", "catalog"));
        assert!(subject_matches(
            "circulation.*.hold.ready",
            "circulation.yamaga.hold.ready"
        ));
        assert!(!subject_matches(
            "circulation.*.hold.ready",
            "circulation.yamaga.hold.placed"
        ));
        assert!(!subject_matches(
            "circulation.*.hold.ready",
            "circulation.a.b.hold.ready"
        ));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(!subject_matches("a.b.c", "a.b"));
        assert!(subject_matches(">", "x"));
    }

    #[test]
    fn filters_and_subjects_are_checked() {
        assert!(validate_filter("catalog.>").is_ok());
        assert!(validate_filter("a.*.c").is_ok());
        assert!(validate_filter("a.>.c").is_err());
        assert!(validate_filter("a..c").is_err());
        assert!(validate_filter("a.b*").is_err());
        assert!(validate_subject("a.*").is_err());
        assert!(validate_subject("a b").is_err());
        assert!(validate_subject("catalog.item.created").is_ok());
    }

    #[test]
    fn reserved_and_untransportable_headers_are_refused() {
        let e = Event::new("a.b", vec![]);
        assert!(
            e.clone()
                .with_header("traceparent", "00-x")
                .validate()
                .is_ok()
        );
        assert!(
            e.clone()
                .with_header("Nats-Msg-Id", "x")
                .validate()
                .is_err()
        );
        assert!(e.clone().with_header("bad name", "x").validate().is_err());
        assert!(e.clone().with_header("k", " padded").validate().is_err());
        assert!(e.with_header("k", "two\nlines").validate().is_err());
    }

    #[test]
    fn names_are_sanitised_for_jetstream() {
        assert_eq!(sanitise_name("TEST-1A.LIBRARY"), "TEST-1A_LIBRARY");
        assert_eq!(sanitise_name("notify hold>ready"), "notify_hold_ready");
    }
}
