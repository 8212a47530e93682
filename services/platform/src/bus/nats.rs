//! The event bus on NATS JetStream, for a deployment. One stream per prefix holds every
//! subject under `<prefix>.>` on file storage; the event id travels as `Nats-Msg-Id`, so
//! the server stores an id once within its duplicate window. Consumers are durable pull
//! consumers with explicit acknowledgement and one filter subject (the server of this
//! machine kind is 2.9, which has no multi-filter consumers). A per-process consumer
//! ([`ConsumerSpec::per_process`]) is a durable one with an `inactive_threshold`, so the
//! server deletes it once its process is gone.

use std::collections::HashMap;
use std::fmt;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, PublishAckFuture, PublishErrorKind,
};
use async_nats::jetstream::message::{Acker as NatsAcker, PublishMessage};
use async_nats::jetstream::{self, AckKind, ErrorCode, stream};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tracing::Instrument;

use super::{
    Acker, BatchOutcome, BusError, ConsumerSpec, Delivery, Event, EventBus, Outgoing,
    PublishOutcome, Subscription, sanitise_name, sorted_headers, validate_subject,
};

/// How long JetStream remembers event ids for de-duplication. The relay republishes an
/// unmarked row within seconds of a restart, well inside it; a later duplicate is caught by
/// the consumers' inbox.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How many messages one pull asks for. Small, because the ack_wait of a message starts
/// when the server hands it over, not when the consumer gets to it.
const PULL_BATCH: usize = 16;

/// How long `connect` keeps trying before giving up on a server that is not up yet.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// The event bus on a NATS server with JetStream.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: String,
    stream: String,
    /// Per-process consumers of this process: the last stream sequence each one has
    /// acknowledged (or started after), to go on from there should the server have dropped
    /// the consumer meanwhile.
    resume: Resume,
}

/// Stream sequences by consumer name, shared with the ackers.
type Resume = Arc<Mutex<HashMap<String, u64>>>;

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("prefix", &self.prefix)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Whether a failed attempt at setting up is worth another try.
enum Attempt {
    Again(BusError),
    GiveUp(BusError),
}

impl NatsBus {
    /// Hands the event to the client for the server; the returned future is its ack.
    async fn send(&self, event: &Event) -> Result<PublishAckFuture, BusError> {
        event.validate()?;
        let mut headers = HeaderMap::new();
        for (name, value) in &event.headers {
            // Validated above, so these conversions do not fail; checking keeps a panic of
            // the client's infallible constructors out of reach.
            let name: HeaderName = name
                .parse()
                .map_err(|_| BusError::Invalid(format!("header name {name:?}")))?;
            let value: HeaderValue = value
                .parse()
                .map_err(|_| BusError::Invalid("header value".into()))?;
            headers.append(name, value);
        }
        let message = PublishMessage::build()
            .payload(Bytes::copy_from_slice(&event.payload))
            .headers(headers)
            .message_id(&event.id);
        self.js
            .send_publish(self.wire_subject(&event.subject), message)
            .await
            .map_err(publish_error)
    }

    /// Connects (retrying for up to 30 s while the server is not up yet) and creates or
    /// updates the stream of `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus, BusError> {
        NatsBus::connect_within(url, prefix, CONNECT_PATIENCE).await
    }

    /// As [`NatsBus::connect`], giving up after `patience`.
    #[tracing::instrument(skip(url))]
    pub async fn connect_within(
        url: &str,
        prefix: &str,
        patience: Duration,
    ) -> Result<NatsBus, BusError> {
        NatsBus::connect_replicated(url, prefix, 1, patience).await
    }

    /// As [`NatsBus::connect_within`], with the stream stored on `replicas` servers of a
    /// JetStream cluster (1, 3 or 5; a single server takes only 1). An existing stream is
    /// updated to that number, so raising it in a deployment's settings replicates the
    /// stream at the next start.
    pub async fn connect_replicated(
        url: &str,
        prefix: &str,
        replicas: usize,
        patience: Duration,
    ) -> Result<NatsBus, BusError> {
        if !(1..=5).contains(&replicas) {
            return Err(BusError::Invalid(format!(
                "{replicas} stream replicas: JetStream takes 1 to 5"
            )));
        }
        validate_subject(prefix)
            .map_err(|_| BusError::Invalid(format!("{prefix:?} is not a subject prefix")))?;
        let stream = stream_name(prefix);
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = Duration::from_millis(100);
        loop {
            match NatsBus::try_connect(url, prefix, &stream, replicas).await {
                Ok(bus) => return Ok(bus),
                Err(Attempt::GiveUp(err)) => return Err(err),
                Err(Attempt::Again(err)) => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(err);
                    }
                    tracing::warn!(error = %err, retry_in_ms = pause.as_millis() as u64, "nats not ready");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn try_connect(
        url: &str,
        prefix: &str,
        stream: &str,
        replicas: usize,
    ) -> Result<NatsBus, Attempt> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("kitsuki {prefix}"))
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| Attempt::Again(BusError::unavailable("connecting", e)))?;
        let js = jetstream::new(client.clone());
        ensure_stream(&js, prefix, stream, replicas).await?;
        Ok(NatsBus {
            client,
            js,
            prefix: prefix.to_string(),
            stream: stream.to_string(),
            resume: Resume::default(),
        })
    }

    /// The underlying client, e.g. for health checks.
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    /// The JetStream stream that holds this prefix's events.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// Connected, and the stream answers.
    pub async fn healthy(&self) -> bool {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return false;
        }
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.js.get_stream(&self.stream)).await,
            Ok(Ok(_))
        )
    }

    /// Deletes the stream with every event and consumer in it: for tests and tooling that
    /// clean up after themselves, never for a running deployment.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.js
            .delete_stream(&self.stream)
            .await
            .map_err(|e| BusError::unavailable("deleting the stream", e))?;
        Ok(())
    }

    fn wire_subject(&self, relative: &str) -> String {
        format!("{}.{relative}", self.prefix)
    }

    /// The consumer of one process ([`ConsumerSpec::per_process`]): bound again while the
    /// server still has it; else created to start after the last event this process
    /// acknowledged on it, or, the first time, after the last event in the stream (what
    /// `DeliverPolicy::New` does, but with a known sequence to go on from later).
    async fn per_process_consumer(
        &self,
        name: &str,
        spec: &ConsumerSpec,
        inactive_threshold: Duration,
    ) -> Result<PullConsumer, BusError> {
        match self
            .js
            .get_consumer_from_stream::<pull::Config, _, _>(name, &self.stream)
            .await
        {
            Ok(consumer) => return Ok(consumer),
            Err(e) if is_consumer_not_found(&e) => {}
            Err(e) => return Err(BusError::unavailable("looking up the consumer", e)),
        }
        let known = self.resume_lock().get(name).copied();
        let after = match known {
            Some(seq) => seq,
            None => {
                let stream = self
                    .js
                    .get_stream(&self.stream)
                    .await
                    .map_err(|e| BusError::unavailable("looking up the stream", e))?;
                stream.cached_info().state.last_sequence
            }
        };
        let config = pull::Config {
            durable_name: Some(name.to_string()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: spec.max_deliver.unwrap_or(-1),
            filter_subject: self.wire_subject(&spec.filter),
            inactive_threshold,
            ..Default::default()
        };
        let consumer = self
            .js
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|e| consumer_error(spec, e))?;
        self.resume_lock().entry(name.to_string()).or_insert(after);
        Ok(consumer)
    }

    fn resume_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Only plain inserts happen under the lock: a poisoned map is still whole.
        self.resume.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn consumer_name(&self, spec: &ConsumerSpec) -> String {
        sanitise_name(&format!("{}_{}", self.stream, spec.durable))
    }
}

fn is_consumer_not_found(e: &jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(err)
        if err.error_code() == ErrorCode::CONSUMER_NOT_FOUND)
}

fn consumer_error(spec: &ConsumerSpec, e: jetstream::stream::ConsumerError) -> BusError {
    match e.kind() {
        jetstream::stream::ConsumerErrorKind::JetStream(err) => BusError::Conflict(format!(
            "the server refused consumer {}: {err}",
            spec.durable
        )),
        _ => BusError::unavailable("creating the consumer", e),
    }
}

/// `test-1a2b.library` → `TEST-1A2B_LIBRARY_EVENTS`.
fn stream_name(prefix: &str) -> String {
    format!(
        "{}_EVENTS",
        sanitise_name(&prefix.replace('.', "_").to_uppercase())
    )
}

/// Creates the stream, or updates its settings when it exists. A stream of that name over
/// other subjects belongs to someone else (two prefixes that differ only in case or in `.`
/// versus `_`): updating it would take their subjects away, so this refuses instead.
async fn ensure_stream(
    js: &jetstream::Context,
    prefix: &str,
    name: &str,
    replicas: usize,
) -> Result<(), Attempt> {
    let subjects = vec![format!("{prefix}.>")];
    let config = stream::Config {
        name: name.to_string(),
        subjects: subjects.clone(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    };
    match js.get_stream(name).await {
        Ok(existing) => {
            if existing.cached_info().config.subjects != subjects {
                return Err(Attempt::GiveUp(BusError::Conflict(format!(
                    "stream {name} exists for other subjects {:?}",
                    existing.cached_info().config.subjects
                ))));
            }
            js.update_stream(config).await.map_err(stream_attempt)?;
            Ok(())
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err)
                if err.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                js.create_stream(config).await.map_err(stream_attempt)?;
                Ok(())
            }
            GetStreamErrorKind::JetStream(err)
                if err.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED
                    || err.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
            {
                Err(Attempt::GiveUp(BusError::Conflict(format!(
                    "JetStream is not enabled: {err}"
                ))))
            }
            // No JetStream answer yet (a server still starting), or no answer at all.
            _ => Err(Attempt::Again(BusError::unavailable(
                "looking up the stream",
                e,
            ))),
        },
    }
}

fn stream_attempt(e: jetstream::context::CreateStreamError) -> Attempt {
    match e.kind() {
        // nats-server 2.9 removes the account's storage folder when its last stream is
        // deleted; a stream created at that moment fails to make its folder. Seen with
        // tests that delete their streams while others create theirs: trying again works.
        CreateStreamErrorKind::JetStream(err)
            if err.error_code() == ErrorCode::STREAM_CREATE
                || err.error_code() == ErrorCode::STREAM_STORE_FAILED =>
        {
            Attempt::Again(BusError::unavailable("creating the stream's storage", e))
        }
        CreateStreamErrorKind::JetStream(err) => Attempt::GiveUp(BusError::Conflict(format!(
            "the server refused the stream: {err}"
        ))),
        CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => {
            Attempt::Again(BusError::unavailable("creating the stream", e))
        }
        _ => Attempt::GiveUp(BusError::unavailable("creating the stream", e)),
    }
}

#[async_trait]
impl EventBus for NatsBus {
    #[tracing::instrument(skip(self, event), fields(event_id = %event.id, subject = %event.subject))]
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError> {
        let ack = self.send(event).await?.await.map_err(publish_error)?;
        Ok(PublishOutcome {
            duplicate: ack.duplicate,
        })
    }

    /// Sends the whole batch, then waits for the acks in order: one round trip for the
    /// batch instead of one per event. The acks are the server's word that an event is
    /// stored; a failure ends the outcome there (the events sent after it may be stored
    /// all the same, which a later publish of them finds as duplicates).
    async fn publish_many(&self, batch: &[Outgoing]) -> BatchOutcome {
        let mut acks = Vec::with_capacity(batch.len());
        let mut error = None;
        for item in batch {
            match self.send(&item.event).instrument(item.span.clone()).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let mut outcomes = Vec::with_capacity(acks.len());
        for (ack, item) in acks.into_iter().zip(batch) {
            match ack.into_future().instrument(item.span.clone()).await {
                Ok(ack) => outcomes.push(PublishOutcome {
                    duplicate: ack.duplicate,
                }),
                Err(e) => {
                    // The later acks are dropped unread; their events are published again.
                    return BatchOutcome {
                        outcomes,
                        error: Some(publish_error(e)),
                    };
                }
            }
        }
        BatchOutcome { outcomes, error }
    }

    #[tracing::instrument(skip(self, spec), fields(durable = %spec.durable, filter = %spec.filter))]
    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        spec.validate()?;
        let name = self.consumer_name(spec);
        if let Some(threshold) = spec.inactive_threshold {
            let consumer = self.per_process_consumer(&name, spec, threshold).await?;
            let messages = consumer
                .stream()
                .max_messages_per_batch(PULL_BATCH)
                .heartbeat(Duration::from_secs(5))
                .messages()
                .await
                .map_err(|e| BusError::unavailable("starting to pull", e))?;
            return Ok(Box::new(NatsSubscription {
                messages,
                strip: format!("{}.", self.prefix),
                resume: Some((self.resume.clone(), name)),
            }));
        }
        let config = pull::Config {
            durable_name: Some(name),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: spec.max_deliver.unwrap_or(-1),
            filter_subject: self.wire_subject(&spec.filter),
            ..Default::default()
        };
        let consumer: PullConsumer = self
            .js
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|e| match e.kind() {
                jetstream::stream::ConsumerErrorKind::JetStream(err) => BusError::Conflict(
                    format!("the server refused consumer {}: {err}", spec.durable),
                ),
                _ => BusError::unavailable("creating the consumer", e),
            })?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| BusError::unavailable("starting to pull", e))?;
        Ok(Box::new(NatsSubscription {
            messages,
            strip: format!("{}.", self.prefix),
            resume: None,
        }))
    }

    async fn remove_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        if !spec.is_per_process() {
            return Err(BusError::Invalid(format!(
                "{} is a shared consumer; only a per-process one is removed",
                spec.durable
            )));
        }
        let name = self.consumer_name(spec);
        self.resume_lock().remove(&name);
        match self
            .js
            .delete_consumer_from_stream(&name, &self.stream)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_consumer_not_found(&e) => Ok(()),
            Err(e) => Err(BusError::unavailable("deleting the consumer", e)),
        }
    }

    /// From the consumer's info: `num_pending` (not delivered yet) and `num_ack_pending`
    /// (delivered, not acknowledged). One request to the server.
    async fn pending(&self, spec: &ConsumerSpec) -> Result<Option<u64>, BusError> {
        let name = sanitise_name(&format!("{}_{}", self.stream, spec.durable));
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| BusError::unavailable("looking up the stream", e))?;
        match stream.consumer_info(&name).await {
            Ok(info) => Ok(Some(info.num_pending.saturating_add(
                u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX),
            ))),
            Err(e) => match e.kind() {
                jetstream::context::ConsumerInfoErrorKind::NotFound
                | jetstream::context::ConsumerInfoErrorKind::StreamNotFound => Ok(None),
                _ => Err(BusError::unavailable("reading the consumer's info", e)),
            },
        }
    }

    /// The stream's `last_sequence` (one request to the server).
    async fn last_sequence(&self) -> Result<Option<u64>, BusError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| BusError::unavailable("reading the stream's info", e))?;
        Ok(Some(stream.cached_info().state.last_sequence))
    }

    /// From the consumer's info: its acknowledgement floor has reached `mark`, or it has
    /// nothing pending nor out (the last events of the stream may be of other subjects,
    /// which a filtered consumer's floor never reaches).
    async fn caught_up(&self, spec: &ConsumerSpec, mark: u64) -> Result<Option<bool>, BusError> {
        let name = sanitise_name(&format!("{}_{}", self.stream, spec.durable));
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| BusError::unavailable("looking up the stream", e))?;
        match stream.consumer_info(&name).await {
            Ok(info) => Ok(Some(
                info.ack_floor.stream_sequence >= mark
                    || (info.num_pending == 0 && info.num_ack_pending == 0),
            )),
            Err(e) => match e.kind() {
                jetstream::context::ConsumerInfoErrorKind::NotFound => Ok(Some(false)),
                _ => Err(BusError::unavailable("reading the consumer's info", e)),
            },
        }
    }
}

fn publish_error(e: jetstream::context::PublishError) -> BusError {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => BusError::Invalid(format!("event too large: {e}")),
        _ => BusError::unavailable("publishing", e),
    }
}

struct NatsSubscription {
    messages: pull::Stream,
    strip: String,
    /// For a per-process consumer: where its acknowledged sequences are kept, and its name.
    resume: Option<(Resume, String)>,
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let message = match self.messages.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(BusError::unavailable("receiving", e))),
        };
        let (delivered, stream_sequence) = match message.info() {
            Ok(info) => (
                u64::try_from(info.delivered).unwrap_or(1),
                info.stream_sequence,
            ),
            Err(e) => return Some(Err(BusError::unavailable("reading the delivery info", e))),
        };
        let (message, acker) = message.split();
        let mut id = None;
        let mut headers = Vec::new();
        if let Some(map) = &message.headers {
            for (name, values) in map.iter() {
                let name = name.to_string();
                if name.eq_ignore_ascii_case("Nats-Msg-Id") {
                    id = values.first().map(|v| v.as_str().to_string());
                } else if !name.to_ascii_lowercase().starts_with("nats-") {
                    headers.extend(
                        values
                            .iter()
                            .map(|v| (name.clone(), v.as_str().to_string())),
                    );
                }
            }
        }
        let subject = message.subject.as_str();
        let subject = subject
            .strip_prefix(&self.strip)
            .unwrap_or(subject)
            .to_string();
        let event = Event {
            // Every event published through NatsBus has an id; a message put there by other
            // means gets none, and the consumer's inbox then treats it as new each time.
            id: id.unwrap_or_default(),
            subject,
            payload: message.payload.to_vec(),
            headers: sorted_headers(headers),
        };
        Some(Ok(Delivery::new(
            event,
            delivered,
            Box::new(NatsDeliveryAcker(
                acker,
                self.resume
                    .as_ref()
                    .map(|(map, name)| (map.clone(), name.clone(), stream_sequence)),
            )),
        )))
    }
}

/// The client's acker, and for a per-process consumer where to note the acknowledged
/// stream sequence. Events are handled one after the other, so the highest sequence
/// acknowledged is where to go on from (an event given back comes again at once, before
/// any later one is acknowledged).
struct NatsDeliveryAcker(NatsAcker, Option<(Resume, String, u64)>);

#[async_trait]
impl Acker for NatsDeliveryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        // Waits for the server to confirm, so a consumer knows its ack was not lost.
        self.0
            .double_ack()
            .await
            .map_err(|e| BusError::unavailable("acknowledging", e))?;
        if let Some((resume, name, seq)) = self.1 {
            let mut map = resume.lock().unwrap_or_else(|e| e.into_inner());
            // Only while the process still follows it: a removed consumer stays removed.
            if let Some(last) = map.get_mut(&name) {
                *last = (*last).max(seq);
            }
        }
        Ok(())
    }

    async fn nack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Nak(None))
            .await
            .map_err(|e| BusError::unavailable("refusing a delivery", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_prefix() {
        assert_eq!(stream_name("library"), "LIBRARY_EVENTS");
        assert_eq!(
            stream_name("test-1a2b3c.library"),
            "TEST-1A2B3C_LIBRARY_EVENTS"
        );
    }
}
