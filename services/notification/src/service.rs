//! The notification service's state and its two loops.
//!
//! - The consumer ([`Notifier::run_consumer`]) turns events into pending deliveries: in
//!   one transaction the inbox records the event id and one row per mail is inserted, then
//!   the event is acknowledged (ARCHITECTURE.md "Nothing lost"). Killed before the ack,
//!   the event comes again and the inbox skips it; nothing is doubled.
//! - The sender ([`Notifier::run_sender`]) sends due deliveries: it asks for the address
//!   (and, for a hold mail, the title) at send time, renders the mail, hands it to the
//!   mail server (or writes it to the outbox folder) and, in one transaction, marks it
//!   sent and writes `MailSent` to the service's outbox (N2: the ready mail's sending
//!   time starts the hold-shelf clock). A failed attempt is retried with back-off; see
//!   [`crate::domain::delivery`].
//!
//! The sending time of a mail is one instant, taken when the attempt that succeeds hands
//! the mail over: the mail's `Date`, the ready mail's keep-until date (H9, B2), the row's
//! `sent_at` and `MailSent.sent_at` all come from it, so that the date the patron reads is
//! the date circulation computes from `MailSent`.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::FutureExt;
use futures::StreamExt;
use kitsuki_circulation::domain::shelf::shelf_last_day;
use kitsuki_platform::bus::{ConsumerSpec, Event, SharedBus};
use kitsuki_platform::clock::{SharedClock, format_date, format_instant, parse_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::outbox::Relay;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::{events, inbox, outbox, retention};
use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, ServiceError};
use time::{Date, OffsetDateTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::NotifierConfig;
use crate::contacts::ContactDirectory;
use crate::domain::delivery::{AfterFailure, FailureKind, Status};
use crate::domain::plan::{self, Params, Plan, SOURCES, Template};
use crate::mail::{Context, Texts};
use crate::store::{self, DeliveryRow, NewDelivery};
use crate::titles::{NoTitles, TitleDirectory, TitleInfo};
use crate::transport::{Mailer, Outgoing, SendFailure, build_message};

static MIGRATIONS_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Subject of the event written when a mail has been sent.
pub const MAIL_SENT_SUBJECT: &str = "notification.mail.sent";

/// Largest page of the delivery log.
pub const MAX_LIST: u32 = 500;

/// What became of one consumed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Not an event that calls for mail.
    Ignored,
    /// Handled before (a redelivery): nothing was written.
    Duplicate,
    /// Unusable (undecodable payload, missing token or id): logged, nothing written.
    Rejected,
    /// This many deliveries were queued.
    Queued(usize),
}

/// The notification service. Clones share one state.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    config: NotifierConfig,
    clock: SharedClock,
    contacts: Arc<dyn ContactDirectory>,
    /// Set after opening by [`Notifier::with_titles`]; shared by every clone.
    titles: RwLock<Arc<dyn TitleDirectory>>,
    mailer: Mailer,
    texts: Texts,
    /// Wakes the sender after the consumer committed new deliveries.
    sender_wake: Notify,
    /// Wakes the outbox relay after `MailSent` rows were committed.
    relay_wake: Arc<Notify>,
}

fn internal(context: &str, err: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %err, "notification failure while {context}");
    ServiceError::internal()
}

/// An instant `d` after `t`, as stored.
fn later(t: OffsetDateTime, d: Duration) -> String {
    format_instant(t + time::Duration::try_from(d).unwrap_or(time::Duration::DAY))
}

impl Notifier {
    /// Migrates the database (its tables and the outbox/inbox tables), reads the
    /// templates and sets up the way mail goes out. Hold mails name their title only once
    /// [`Notifier::with_titles`] gave the notifier the catalog.
    pub async fn open(
        db: Db,
        config: NotifierConfig,
        clock: SharedClock,
        contacts: Arc<dyn ContactDirectory>,
    ) -> anyhow::Result<Notifier> {
        db::migrate(&db, &MIGRATIONS_PG, &MIGRATIONS_SQLITE).await?;
        outbox::ensure_tables(&db).await?;
        let texts = Texts::new().map_err(|e| anyhow::anyhow!("a mail template is broken: {e}"))?;
        let mailer = Mailer::new(&config.transport, config.smtp_timeout)?;
        anyhow::ensure!(
            config.sender_address.contains('@'),
            "the sender address is not a mail address"
        );
        Ok(Notifier {
            inner: Arc::new(Inner {
                db,
                config,
                clock,
                contacts,
                titles: RwLock::new(Arc::new(NoTitles)),
                mailer,
                texts,
                sender_wake: Notify::new(),
                relay_wake: Arc::new(Notify::new()),
            }),
        })
    }

    /// Where hold mails look up the title they name (the catalog's `GetTitle`, see
    /// [`crate::GrpcTitles`]). Applies to this notifier and every clone of it.
    pub fn with_titles(self, titles: Arc<dyn TitleDirectory>) -> Notifier {
        *self.inner.titles.write().unwrap_or_else(|e| e.into_inner()) = titles;
        self
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.inner.config
    }

    /// Notified after every commit that wrote `MailSent` to the outbox: hand it to the
    /// outbox `Relay` of this service's database.
    pub fn relay_wake(&self) -> Arc<Notify> {
        self.inner.relay_wake.clone()
    }

    /// The durable consumers [`Notifier::run_consumer`] runs, one per event source.
    pub fn consumer_specs(&self) -> Vec<ConsumerSpec> {
        SOURCES
            .iter()
            .map(|(name, filter)| {
                ConsumerSpec::new(
                    format!("{}-{name}", self.inner.config.consumer_prefix),
                    *filter,
                )
            })
            .collect()
    }

    /// Starts everything the service runs in the background until `shutdown`: the
    /// consumers, the sender, and the outbox relay that publishes `MailSent` on `bus`.
    ///
    /// Returns the consumers and the sender, which end on the signal, for
    /// [`Shutdown::track`]. The relay is handed to [`Shutdown::track_last`] here: it stops
    /// in the shutdown's last phase, so the `MailSent` of the mails the sender finishes
    /// after the signal is published before the process exits (the ready hold's shelf
    /// clock starts then, not at the next start of this service).
    pub fn spawn(&self, bus: SharedBus, shutdown: &Shutdown) -> Vec<JoinHandle<()>> {
        let wait = |s: &Shutdown| {
            let s = s.clone();
            async move { s.wait().await }
        };
        let (consumer, sender) = (self.clone(), self.clone());
        let consumer_bus = bus.clone();
        let (c_stop, s_stop) = (wait(shutdown), wait(shutdown));
        let last = shutdown.clone();
        shutdown.track_last([tokio::spawn(
            Relay::new(self.inner.db.clone(), bus, self.relay_wake())
                .run(async move { last.wait_last_phase().await }),
        )]);
        register_mail_counters();
        vec![
            tokio::spawn(async move { consumer.run_consumer(consumer_bus, c_stop).await }),
            tokio::spawn(async move { sender.run_sender(s_stop).await }),
        ]
    }

    // ---- consuming -------------------------------------------------------------------

    /// Consumes the events that call for mail until `shutdown` completes: one durable
    /// consumer per source (a NATS 2.9 consumer has one filter subject), each
    /// re-subscribing after the bus failed.
    pub async fn run_consumer(&self, bus: SharedBus, shutdown: impl Future<Output = ()> + Send) {
        let shutdown = shutdown.boxed().shared();
        let loops = self
            .consumer_specs()
            .into_iter()
            .map(|spec| self.consume(bus.clone(), spec, shutdown.clone()));
        futures::future::join_all(loops).await;
    }

    /// One consumer through the platform's loop: the inbox row and the deliveries are
    /// committed before the ack; a database failure gives the event back (nack) and backs
    /// off.
    async fn consume(
        &self,
        bus: SharedBus,
        spec: ConsumerSpec,
        shutdown: impl Future<Output = ()> + Clone,
    ) {
        let durable = spec.durable.clone();
        kitsuki_platform::consumer::run(bus, spec, shutdown, |event| {
            let durable = durable.clone();
            async move { self.record_event(&durable, &event).await.map(|_| ()) }
        })
        .await
    }

    /// Records what one event calls for, as consumer `consumer`: the inbox row and the
    /// pending deliveries in one transaction. The caller acknowledges the event after
    /// `Ok`; an `Err` (the database failed) leaves it to be delivered again.
    pub async fn record_event(
        &self,
        consumer: &str,
        event: &Event,
    ) -> Result<Recorded, ServiceError> {
        let span = tracing::info_span!("notification.consume", event_id = %event.id, subject = %event.subject);
        events::set_parent_from_headers(&span, &event.headers);
        self.record(consumer, event).instrument(span).await
    }

    async fn record(&self, consumer: &str, event: &Event) -> Result<Recorded, ServiceError> {
        let mails = match plan::mails_for(&event.subject, &event.payload) {
            Ok(Plan::Ignore) => return Ok(Recorded::Ignored),
            Ok(Plan::Mails(m)) => m,
            Err(err) => {
                metrics::counter!("kitsuki_notification_events_rejected_total").increment(1);
                tracing::error!(event_id = %event.id, error = %err, "event rejected");
                return Ok(Recorded::Rejected);
            }
        };
        if event.id.is_empty() {
            // Without an id neither the inbox nor the unique key can keep it single.
            metrics::counter!("kitsuki_notification_events_rejected_total").increment(1);
            tracing::error!(subject = %event.subject, "event without an id rejected");
            return Ok(Recorded::Rejected);
        }
        let now = format_instant(self.inner.clock.now());
        let db = &self.inner.db;
        let mut tx = db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        if !inbox::first_time(&mut tx, consumer, &event.id, &now)
            .await
            .map_err(|e| internal("recording the event", e))?
        {
            tx.rollback()
                .await
                .map_err(|e| internal("rolling back", e))?;
            return Ok(Recorded::Duplicate);
        }
        // The trace context goes with each delivery, so that the send joins the trace of
        // the click that caused it (ARCHITECTURE.md "Operations").
        let trace = serde_json::to_string(
            &event
                .headers
                .iter()
                .filter(|(n, _)| n == "traceparent" || n == "tracestate")
                .collect::<Vec<_>>(),
        )
        .map_err(|e| internal("encoding", e))?;
        let mut queued = 0;
        for mail in &mails {
            let params =
                serde_json::to_string(&mail.params).map_err(|e| internal("encoding", e))?;
            let subject = self
                .inner
                .texts
                .subject(mail.template, &mail.params)
                .map_err(|e| internal("rendering a subject", e))?;
            let delivery_id = uuid::Uuid::now_v7().to_string();
            let inserted = store::insert(
                &mut tx,
                &NewDelivery {
                    delivery_id: &delivery_id,
                    event_id: &event.id,
                    template: mail.template.name(),
                    card_number: &mail.card_number,
                    params: &params,
                    subject: &subject,
                    trace: &trace,
                    now: &now,
                },
            )
            .await
            .map_err(|e| internal("queueing a delivery", e))?;
            if inserted {
                queued += 1;
            }
        }
        tx.commit().await.map_err(|e| internal("committing", e))?;
        if queued > 0 {
            tracing::info!(event_id = %event.id, queued, "deliveries queued");
            self.inner.sender_wake.notify_one();
        }
        Ok(Recorded::Queued(queued))
    }

    // ---- sending ---------------------------------------------------------------------

    /// Sends due deliveries until `shutdown` completes: after every consumer commit, when
    /// the next retry comes due, and otherwise every `poll_every`. Mails in flight when
    /// it stops get `drain` to finish; one cut off is sent again after its lease.
    pub async fn run_sender(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        loop {
            let round = self.send_due_once();
            tokio::pin!(round);
            let outcome = tokio::select! {
                r = &mut round => r,
                _ = &mut shutdown => {
                    let _ = tokio::time::timeout(self.inner.config.drain, round).await;
                    return;
                }
            };
            let next_due = match outcome {
                Ok(_) => Some(self.time_to_next_due().await),
                Err(_) => None,
            };
            let wait = match (outcome, next_due) {
                // Due rows that none of this round could take (the database failed at the
                // claim): back off instead of spinning on them.
                (Ok(0), Some(w)) if w.is_zero() => {
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    w
                }
                (Ok(_), Some(w)) => {
                    backoff = Duration::from_millis(200);
                    w
                }
                _ => {
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    w
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = self.inner.sender_wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long the sender may sleep: until the next retry is due, at most `poll_every`.
    async fn time_to_next_due(&self) -> Duration {
        let poll = self.inner.config.poll_every;
        match store::next_due_at(&self.inner.db.pool).await {
            Ok(Some(at)) => match parse_instant(&at) {
                Some(at) => {
                    let now = self.inner.clock.now();
                    if at <= now {
                        Duration::ZERO
                    } else {
                        Duration::try_from(at - now).unwrap_or(poll).min(poll)
                    }
                }
                None => poll,
            },
            _ => poll,
        }
    }

    /// One round: every delivery due now (up to `batch`) gets one attempt. Returns how
    /// many attempts were made. Also updates the gauge of pending deliveries.
    pub async fn send_due_once(&self) -> Result<usize, ServiceError> {
        let cfg = &self.inner.config;
        let now = format_instant(self.inner.clock.now());
        let due = store::due(&self.inner.db.pool, &now, i64::from(cfg.batch))
            .await
            .map_err(|e| internal("reading due deliveries", e))?;
        let attempts = futures::stream::iter(due)
            .map(|row| {
                let span = tracing::info_span!("notification.send", delivery_id = %row.delivery_id, template = %row.template);
                let headers: Vec<(String, String)> =
                    serde_json::from_str(&row.trace).unwrap_or_default();
                events::set_parent_from_headers(&span, &headers);
                self.attempt(row).instrument(span)
            })
            .buffer_unordered(cfg.concurrency.max(1))
            .filter(|made| futures::future::ready(*made))
            .count()
            .await;
        if let Ok(n) = store::pending_count(&self.inner.db.pool).await {
            metrics::gauge!("kitsuki_mail_pending").set(n as f64);
        }
        Ok(attempts)
    }

    /// One attempt at one delivery; false when another sender had it first or the
    /// database failed before the attempt began.
    async fn attempt(&self, row: DeliveryRow) -> bool {
        let inner = &self.inner;
        let started = inner.clock.now();
        let lease_until = later(started, inner.config.claim_lease);
        match store::claim(
            &inner.db.pool,
            &row.delivery_id,
            row.attempts,
            &format_instant(started),
            &lease_until,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                internal("claiming a delivery", e);
                return false;
            }
        }
        let attempts = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);

        let Some(template) = Template::parse(&row.template) else {
            // Written by a newer version of this service; this one cannot render it.
            self.give_up(&row, Status::Failed, "unknown template", &row.params)
                .await;
            return true;
        };
        let params: Params = match serde_json::from_str(&row.params) {
            Ok(p) => p,
            Err(_) => {
                self.give_up(&row, Status::Failed, "unreadable parameters", &row.params)
                    .await;
                return true;
            }
        };
        let settled = serde_json::to_string(&params.settled()).unwrap_or_default();
        let verification = Some(params.verification_id.as_str()).filter(|v| !v.is_empty());

        let contact = match inner.contacts.contact(&row.card_number, verification).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                metrics::counter!("kitsuki_mail_no_address_total", "template" => template.name())
                    .increment(1);
                self.give_up(
                    &row,
                    Status::NoAddress,
                    "patron-account has no address for this mail",
                    &settled,
                )
                .await;
                return true;
            }
            Err(e) => {
                let failure = SendFailure {
                    kind: FailureKind::Transient,
                    reason: format!("patron-account did not answer ({})", e.code.as_str()),
                };
                self.failed(&row, template, attempts, failure, &settled)
                    .await;
                return true;
            }
        };
        let title = match self.title_for(template, &params, attempts).await {
            Ok(t) => t,
            Err(failure) => {
                self.failed(&row, template, attempts, failure, &settled)
                    .await;
                return true;
            }
        };

        // The sending time (see the module's comment): one instant for everything.
        let sent_at = inner.clock.now();
        let ready_until = if template == Template::HoldReady {
            match self.ready_until(&params, sent_at) {
                Ok(d) => Some(d),
                Err(failure) => {
                    self.failed(&row, template, attempts, failure, &settled)
                        .await;
                    return true;
                }
            }
        } else {
            None
        };
        let cx = Context {
            title: title.as_ref(),
            ready_until,
            ..Context::new(
                &contact.name,
                &inner.config.public_base_url,
                &inner.config.sender_address,
            )
        };
        let rendered = match inner.texts.render(template, &params, &cx) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "rendering failed");
                let failure = SendFailure {
                    kind: FailureKind::Refused,
                    reason: "the template did not render".to_string(),
                };
                self.failed(&row, template, attempts, failure, &settled)
                    .await;
                return true;
            }
        };
        let message = build_message(&Outgoing {
            delivery_id: &row.delivery_id,
            from_name: &inner.config.sender_name,
            from_address: &inner.config.sender_address,
            to: &contact.email,
            subject: &rendered.subject,
            body: &rendered.body,
            date: sent_at,
        });
        let sent = match message {
            Ok(m) => inner.mailer.send(&row.delivery_id, m).await,
            Err(f) => Err(f),
        };
        match sent {
            Ok(()) => {
                // The delivery log keeps the keep-until date the mail gave.
                let settled = match ready_until {
                    Some(d) => serde_json::to_string(&Params {
                        ready_until: format_date(d),
                        ..params.settled()
                    })
                    .unwrap_or(settled),
                    None => settled,
                };
                self.sent(
                    &row,
                    template,
                    &params,
                    &contact.email,
                    &rendered.subject,
                    &settled,
                    sent_at,
                )
                .await
            }
            Err(failure) => {
                self.failed(&row, template, attempts, failure, &settled)
                    .await;
            }
        }
        true
    }

    /// The title a hold mail names (N1), asked of the catalog now. A title the catalog does
    /// not know leaves the mail without it; a catalog that does not answer delays the mail
    /// until the attempt `title_lookup_attempts`, which goes without it (N2).
    async fn title_for(
        &self,
        template: Template,
        params: &Params,
        attempts: u32,
    ) -> Result<Option<TitleInfo>, SendFailure> {
        if !template.is_hold() {
            return Ok(None);
        }
        if params.title_id.is_empty() {
            tracing::warn!(hold_id = %params.hold_id, "a hold mail without a title id goes without the title");
            return Ok(None);
        }
        let titles = self
            .inner
            .titles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match titles.title(&params.title_id).await {
            Ok(Some(t)) => Ok(Some(t)),
            Ok(None) => {
                tracing::warn!(title_id = %params.title_id, "the title is unknown: the mail goes without it");
                Ok(None)
            }
            Err(e) if attempts < self.inner.config.title_lookup_attempts => Err(SendFailure {
                kind: FailureKind::Transient,
                reason: format!("the catalog did not answer ({})", e.code.as_str()),
            }),
            Err(e) => {
                tracing::warn!(title_id = %params.title_id, code = e.code.as_str(), attempts, "the catalog did not answer: the mail goes without the title");
                Ok(None)
            }
        }
    }

    /// Rules H9 and B2: the last day on the pickup branch's hold shelf for a ready mail
    /// sent at `sent_at`, by the same function and calendars as circulation's.
    fn ready_until(&self, params: &Params, sent_at: OffsetDateTime) -> Result<Date, SendFailure> {
        let pickup = Branch::parse(&params.pickup_branch).map_err(|_| SendFailure {
            kind: FailureKind::Refused,
            reason: "the pickup branch is not a branch".to_string(),
        })?;
        // Only a calendar without an open day for a year fails: a configuration to mend,
        // so the mail waits for it rather than going without its date.
        let computed =
            shelf_last_day(&self.inner.config.calendars, pickup, sent_at).map_err(|_| {
                SendFailure {
                    kind: FailureKind::Transient,
                    reason: format!(
                        "the calendar of {pickup} has no open day to keep the item until"
                    ),
                }
            })?;
        let (date, floor_won) = plan::keep_until(computed, &params.ready_until_floor);
        if floor_won {
            tracing::warn!(
                hold_id = %params.hold_id,
                computed = %format_date(computed),
                circulation = %params.ready_until_floor,
                "circulation keeps the item longer than this service's calendar says: are both given the same closed days?"
            );
        }
        Ok(date)
    }

    /// Marks the delivery sent and writes `MailSent`, in one transaction. The mail is out:
    /// a database that fails now is tried a few times, as a lost mark means the mail is
    /// sent again when its lease runs out (recognisable by its Message-ID).
    #[allow(clippy::too_many_arguments)]
    async fn sent(
        &self,
        row: &DeliveryRow,
        template: Template,
        params: &Params,
        recipient: &str,
        subject: &str,
        settled: &str,
        sent_at: OffsetDateTime,
    ) {
        let inner = &self.inner;
        let sent_at = format_instant(sent_at);
        let event_id = events::new_event_id();
        let event = events::build(
            MAIL_SENT_SUBJECT,
            event_id.clone(),
            &sent_at,
            &ev::MailSent {
                meta: Some(ev::EventMeta {
                    event_id,
                    occurred_at: sent_at.clone(),
                }),
                cause_event_id: row.event_id.clone(),
                template: template.name().to_string(),
                sent_at: sent_at.clone(),
                hold_id: params.hold_id.clone(),
            },
        );
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=5 {
            let result: Result<bool, sqlx::Error> = async {
                let mut tx = inner.db.pool.begin().await?;
                let marked = store::mark_sent(
                    &mut tx,
                    &row.delivery_id,
                    recipient,
                    subject,
                    settled,
                    &sent_at,
                )
                .await?;
                if marked {
                    outbox::enqueue(&mut tx, &event, &sent_at).await?;
                }
                tx.commit().await?;
                Ok(marked)
            }
            .await;
            match result {
                Ok(marked) => {
                    if marked {
                        inner.relay_wake.notify_one();
                        metrics::counter!(
                            "kitsuki_mail_sent_total",
                            mail_labels(template, &params.pickup_branch)
                        )
                        .increment(1);
                        tracing::info!("mail sent");
                    } else {
                        tracing::warn!("mail sent, but the delivery was settled meanwhile");
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, "marking a sent mail failed");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }

    /// Records a failed attempt: back to pending with back-off, or given up.
    async fn failed(
        &self,
        row: &DeliveryRow,
        template: Template,
        attempts: u32,
        failure: SendFailure,
        settled: &str,
    ) {
        // The pickup branch of a hold mail, from the parameters the row keeps.
        let pickup = serde_json::from_str::<Params>(settled)
            .map(|p| p.pickup_branch)
            .unwrap_or_default();
        metrics::counter!("kitsuki_mail_failed_total", mail_labels(template, &pickup)).increment(1);
        match self
            .inner
            .config
            .retry
            .after_failure(attempts, failure.kind)
        {
            AfterFailure::RetryIn(delay) => {
                tracing::warn!(reason = %failure.reason, retry_in_ms = delay.as_millis() as u64, "mail attempt failed");
                let next = later(self.inner.clock.now(), delay);
                if let Err(e) = store::mark_retry(
                    &self.inner.db.pool,
                    &row.delivery_id,
                    &next,
                    &failure.reason,
                )
                .await
                {
                    // The lease stands in: the delivery comes due when it runs out.
                    internal("recording a failed attempt", e);
                }
            }
            AfterFailure::GiveUp => {
                metrics::counter!("kitsuki_mail_given_up_total", "template" => template.name())
                    .increment(1);
                let reason = format!("given up after {attempts} attempts: {}", failure.reason);
                self.give_up(row, Status::Failed, &reason, settled).await;
            }
        }
    }

    async fn give_up(&self, row: &DeliveryRow, status: Status, reason: &str, settled: &str) {
        tracing::warn!(status = status.as_str(), reason, "delivery ended unsent");
        if let Err(e) = store::mark_final(
            &self.inner.db.pool,
            &row.delivery_id,
            status,
            reason,
            settled,
        )
        .await
        {
            internal("ending a delivery", e);
        }
    }

    // ---- reading ---------------------------------------------------------------------

    /// The delivery log, newest first (`limit` 0 means 50, at most [`MAX_LIST`]).
    pub async fn list_deliveries(&self, limit: u32) -> Result<Vec<DeliveryRow>, ServiceError> {
        let limit = if limit == 0 { 50 } else { limit.min(MAX_LIST) };
        store::newest(&self.inner.db.pool, i64::from(limit))
            .await
            .map_err(|e| internal("listing deliveries", e))
    }

    pub async fn delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRow>, ServiceError> {
        store::get(&self.inner.db.pool, delivery_id)
            .await
            .map_err(|e| internal("reading a delivery", e))
    }

    /// The deliveries that an event called for.
    pub async fn deliveries_of_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<DeliveryRow>, ServiceError> {
        store::of_event(&self.inner.db.pool, event_id)
            .await
            .map_err(|e| internal("reading deliveries", e))
    }

    /// Retention (ARCHITECTURE.md "Retention"): the delivery log of mails done more than
    /// `retention::DELIVERY_LOG_KEPT` ago, and old inbox ids. Returns how many rows went.
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
        let before = format_instant(now - retention::DELIVERY_LOG_KEPT);
        let rows = store::purge_done(&self.inner.db.pool, &before).await?;
        Ok(rows + retention::purge_event_rows(&self.inner.db, now).await?)
    }

    /// The purge of [`Notifier::purge_expired`], for `retention::schedule`.
    pub fn retention(&self) -> retention::Purge {
        let this = self.clone();
        Arc::new(move |now| {
            let this = this.clone();
            Box::pin(async move { this.purge_expired(now).await })
        })
    }

    pub async fn pending_count(&self) -> Result<i64, ServiceError> {
        store::pending_count(&self.inner.db.pool)
            .await
            .map_err(|e| internal("counting deliveries", e))
    }
}

/// The labels of a mail's counters: its template, and for a hold mail its pickup branch
/// (the branch dashboard's mails sent and failed; account mails have no branch).
fn mail_labels(template: Template, pickup_branch: &str) -> Vec<metrics::Label> {
    let mut labels = vec![metrics::Label::from_static_parts(
        "template",
        template.name(),
    )];
    if template.is_hold()
        && let Ok(b) = Branch::parse(pickup_branch)
    {
        labels.push(metrics::Label::from_static_parts("branch", b.code()));
    }
    labels
}

/// Every mail counter at 0, so that dashboards show 0 rather than "no data" before the
/// first mail (and the metric names exist for tests/metrics_exported.rs).
fn register_mail_counters() {
    for template in Template::ALL {
        let branches: Vec<&str> = if template.is_hold() {
            Branch::ALL.iter().map(|b| b.code()).collect()
        } else {
            vec![""]
        };
        for branch in branches {
            metrics::counter!("kitsuki_mail_sent_total", mail_labels(template, branch))
                .increment(0);
            metrics::counter!("kitsuki_mail_failed_total", mail_labels(template, branch))
                .increment(0);
        }
        metrics::counter!("kitsuki_mail_given_up_total", "template" => template.name())
            .increment(0);
        metrics::counter!("kitsuki_mail_no_address_total", "template" => template.name())
            .increment(0);
    }
}
