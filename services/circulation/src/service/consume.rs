//! What circulation consumes, and its background loops.
//!
//! - The item projection from `catalog.item.created.*` (each service owns its data,
//!   ARCHITECTURE.md): the item and its title's material type.
//! - `notification.mail.sent`: the ready mail went out, so the hold is ready from its
//!   sending time (H8, H9, N2).
//!
//! Both consumers are durable and named the same in the three instances, so that the bus
//! spreads their events among them and each is handled once; the inbox, written in the same
//! transaction as the change, skips an event handled before, and the consumer acknowledges
//! only after its commit (ARCHITECTURE.md "Nothing lost"). A consumer of a new name starts
//! from the beginning of the stream and rebuilds the projection (items already there stay
//! as they are).

use std::future::Future;

use futures::FutureExt;
use kitsuki_platform::bus::{ConsumerSpec, Event, SharedBus};
use kitsuki_platform::clock::parse_instant;
use kitsuki_platform::{consumer, events, inbox};
use kitsuki_proto::catalog::MaterialType as PbMaterial;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Barcode, Branch, ServiceError, TitleId};
use prost::Message;
use tracing::Instrument;

use super::{Circulation, ITEM_CREATED_FILTER, MAIL_SENT_SUBJECT, READY_MAIL_TEMPLATE, internal};
use crate::domain::MaterialType;
use crate::domain::holds::{HoldEvent, HoldStatus};
use crate::store;

/// What became of one consumed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Handled: the change (possibly none) and the inbox row are committed.
    Applied,
    /// Handled before (a redelivery): nothing was written.
    Duplicate,
    /// Not for circulation (a mail without a hold, a mail other than the ready mail, a hold
    /// that moved on): acknowledged.
    Ignored,
    /// Unusable (undecodable, missing ids): logged and acknowledged, since retrying cannot
    /// mend it.
    Rejected,
}

/// The material type of a catalogue message (M1); `None` when unspecified.
pub fn material(t: i32) -> Option<MaterialType> {
    match PbMaterial::try_from(t).ok()? {
        PbMaterial::Book => Some(MaterialType::Book),
        PbMaterial::Magazine => Some(MaterialType::Magazine),
        PbMaterial::Av => Some(MaterialType::Av),
        PbMaterial::Unspecified => None,
    }
}

fn rejected(event: &Event, what: &str) -> Recorded {
    metrics::counter!("kitsuki_circulation_events_rejected_total").increment(1);
    tracing::error!(event_id = %event.id, subject = %event.subject, what, "event rejected");
    Recorded::Rejected
}

/// The item projection within a change: the title's material type and the item, available
/// on its home shelf, under the title's guard. An item already there is kept as it is
/// (idempotent by barcode); true when it was new.
async fn project_item(
    ch: &mut super::change::Change,
    barcode: &Barcode,
    title: &TitleId,
    home: Branch,
    material: MaterialType,
) -> Result<bool, ServiceError> {
    store::upsert_title(ch.conn(), title, material)
        .await
        .map_err(|e| internal("projecting a title", e))?;
    ch.lock_title(title).await?;
    let at = ch.at.clone();
    store::insert_item(ch.conn(), barcode, title, home, &at)
        .await
        .map_err(|e| internal("projecting an item", e))
}

impl Circulation {
    /// The durable consumer of the item projection.
    pub fn item_consumer_spec(&self) -> ConsumerSpec {
        let mut spec = ConsumerSpec::new(
            format!("{}-catalog-items", self.inner.config.consumer_prefix),
            ITEM_CREATED_FILTER,
        );
        spec.ack_wait = self.inner.config.ack_wait;
        spec
    }

    /// The durable consumers this instance runs (for readiness: `kitsuki_platform::catch_up`).
    pub fn consumer_specs(&self) -> Vec<ConsumerSpec> {
        vec![self.item_consumer_spec(), self.mail_consumer_spec()]
    }

    /// The durable consumer of sent mails.
    pub fn mail_consumer_spec(&self) -> ConsumerSpec {
        let mut spec = ConsumerSpec::new(
            format!("{}-mail-sent", self.inner.config.consumer_prefix),
            MAIL_SENT_SUBJECT,
        );
        spec.ack_wait = self.inner.config.ack_wait;
        spec
    }

    /// Projects one `ItemCreated` as consumer `consumer`: the title's material type and the
    /// item, available on its home shelf. Idempotent twice over: the inbox skips an event
    /// handled before, and an item already projected (by another consumer name) is kept.
    pub async fn record_item_created(
        &self,
        consumer: &str,
        event: &Event,
    ) -> Result<Recorded, ServiceError> {
        let span = tracing::info_span!("circulation.item_created", event_id = %event.id);
        events::set_parent_from_headers(&span, &event.headers);
        self.item_created(consumer, event).instrument(span).await
    }

    async fn item_created(&self, consumer: &str, event: &Event) -> Result<Recorded, ServiceError> {
        let Ok(e) = ev::ItemCreated::decode(event.payload.as_slice()) else {
            return Ok(rejected(event, "undecodable ItemCreated"));
        };
        let (Ok(barcode), Ok(title), Ok(home), Some(material)) = (
            Barcode::parse(&e.barcode),
            TitleId::parse(&e.title_id),
            Branch::parse(&e.branch),
            material(e.r#type),
        ) else {
            return Ok(rejected(event, "ItemCreated without a usable id or type"));
        };
        let mut ch = self.begin().await?;
        if !{
            let (conn, at) = ch.conn_at();
            inbox::first_time(conn, consumer, &event.id, at)
        }
        .await
        .map_err(|e| internal("recording an event", e))?
        {
            return Ok(Recorded::Duplicate);
        }
        project_item(&mut ch, &barcode, &title, home, material).await?;
        self.commit(ch).await?;
        Ok(Recorded::Applied)
    }

    /// Read-your-writes of a new item (ARCHITECTURE.md "Data"): the gateway's call after
    /// the catalogue registered it, so that it can be lent and held before its
    /// `ItemCreated` event arrives. The same projection as [`Circulation::record_item_created`];
    /// false when the item was known already (the event came first, or a second call).
    pub async fn record_item(
        &self,
        barcode: &Barcode,
        title: &TitleId,
        home: Branch,
        material: MaterialType,
    ) -> Result<bool, ServiceError> {
        let mut ch = self.begin().await?;
        let created = project_item(&mut ch, barcode, title, home, material).await?;
        self.commit(ch).await?;
        Ok(created)
    }

    /// Rules H8, H9, N2: one `MailSent` as consumer `consumer`. The ready mail of a hold
    /// awaiting notice (named by its `cause_event_id`, the hold's `ready_to_notify` event, or
    /// by the ready template) makes it ready, with the shelf's last day counted from the
    /// mail's sending time at the pickup branch (B2). Other mails, and mails of holds that
    /// moved on (cancelled meanwhile, or a second mail), change nothing.
    pub async fn record_mail_sent(
        &self,
        consumer: &str,
        event: &Event,
    ) -> Result<Recorded, ServiceError> {
        let span = tracing::info_span!("circulation.mail_sent", event_id = %event.id);
        events::set_parent_from_headers(&span, &event.headers);
        self.mail_sent(consumer, event).instrument(span).await
    }

    async fn mail_sent(&self, consumer: &str, event: &Event) -> Result<Recorded, ServiceError> {
        let Ok(m) = ev::MailSent::decode(event.payload.as_slice()) else {
            return Ok(rejected(event, "undecodable MailSent"));
        };
        let hold_id = m.hold_id.trim();
        if hold_id.is_empty() {
            return Ok(Recorded::Ignored);
        }
        let pre = {
            let mut conn = self.conn().await?;
            store::get_hold(&mut conn, hold_id)
                .await
                .map_err(|e| internal("reading a hold", e))?
        };
        let Some(pre) = pre else {
            return Ok(Recorded::Ignored);
        };
        // N2: the mail's own sending time starts the clock; failing that, the event's time.
        let sent_at = parse_instant(&m.sent_at)
            .or_else(|| {
                m.meta
                    .as_ref()
                    .and_then(|meta| parse_instant(&meta.occurred_at))
            })
            .or_else(|| {
                event
                    .header(events::EVENT_TIME_HEADER)
                    .and_then(parse_instant)
            });
        let mut ch = self.begin().await?;
        if !{
            let (conn, at) = ch.conn_at();
            inbox::first_time(conn, consumer, &event.id, at)
        }
        .await
        .map_err(|e| internal("recording an event", e))?
        {
            return Ok(Recorded::Duplicate);
        }
        ch.lock_title(&pre.hold.title).await?;
        let Some(before) = store::get_hold(ch.conn(), hold_id)
            .await
            .map_err(|e| internal("reading a hold", e))?
        else {
            self.commit(ch).await?;
            return Ok(Recorded::Ignored);
        };
        let is_ready_mail = (before.notice_event_id.is_some()
            && before.notice_event_id.as_deref() == Some(m.cause_event_id.as_str()))
            || m.template == READY_MAIL_TEMPLATE;
        if before.hold.status() != HoldStatus::AwaitingNotice || !is_ready_mail {
            // Another mail of the hold (receipt, confirmation), or a hold that moved on.
            self.commit(ch).await?;
            return Ok(Recorded::Ignored);
        }
        let at = sent_at.unwrap_or(ch.now);
        self.transition(&mut ch, &before, &HoldEvent::MailSent { at }, |_| {})
            .await?;
        self.commit(ch).await?;
        Ok(Recorded::Applied)
    }

    pub(super) async fn run_item_consumer(
        &self,
        bus: SharedBus,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let spec = self.item_consumer_spec();
        let durable = spec.durable.clone();
        let shutdown = shutdown.boxed().shared();
        consumer::run(bus, spec, shutdown, |event| {
            let durable = durable.clone();
            async move { self.record_item_created(&durable, &event).await.map(|_| ()) }
        })
        .await
    }

    pub(super) async fn run_mail_consumer(
        &self,
        bus: SharedBus,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let spec = self.mail_consumer_spec();
        let durable = spec.durable.clone();
        let shutdown = shutdown.boxed().shared();
        consumer::run(bus, spec, shutdown, |event| {
            let durable = durable.clone();
            async move { self.record_mail_sent(&durable, &event).await.map(|_| ()) }
        })
        .await
    }

    /// Rule H9: this branch's expiry job, every `expiry_every` until `shutdown`.
    pub(super) async fn run_expiry_job(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.inner.config.expiry_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = self.run_due_jobs().await {
                tracing::warn!(error = %err, "hold-shelf expiry failed; trying again next round");
            }
        }
    }
}
