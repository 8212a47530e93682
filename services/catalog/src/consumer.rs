//! The catalog's consumer of circulation's item status events: live availability per
//! branch in search results, and the holds waiting on a title (rule H1's 「予約申込」 button
//! appears only when no copy is on a shelf). Each event is recorded with its inbox row in
//! one transaction, so a redelivered event changes nothing twice. The same transaction
//! writes `catalog.title.changed` to the outbox: this consumer is shared, so only the
//! replica that got the event sees the change; the event tells the other replicas to
//! catch their index up (`replica.rs`). The change is numbered in the catalogue change
//! sequence (`store::apply_item_status`), which is how a catch-up finds it.

use kitsuki_platform::bus::{ConsumerSpec, Event, SharedBus};
use kitsuki_platform::clock::format_instant;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::{consumer, events, inbox, outbox};
use kitsuki_proto::catalog::ItemStatus;
use kitsuki_proto::events as ev;
use prost::Message;
use tracing::Instrument;

use crate::service::Catalog;
use crate::store;

/// The durable consumer name: shared by every catalog replica, so each event is handled
/// once.
pub const DURABLE: &str = "catalog-item-status";
/// Subjects of item status events from every branch instance.
pub const FILTER: &str = "circulation.*.item.status";
/// Subject of the event that a title's search document changed (availability, holds).
pub const TITLE_CHANGED: &str = "catalog.title.changed";

fn status_code(s: i32) -> Option<&'static str> {
    match ItemStatus::try_from(s).ok()? {
        ItemStatus::Available => Some("available"),
        ItemStatus::OnLoan => Some("on_loan"),
        ItemStatus::InTransit => Some("in_transit"),
        ItemStatus::OnHoldShelf => Some("on_hold_shelf"),
        ItemStatus::Unspecified => None,
    }
}

impl Catalog {
    /// The durable consumer of item status events (shared by every replica).
    pub fn consumer_spec(&self) -> ConsumerSpec {
        ConsumerSpec::new(DURABLE, FILTER)
    }

    /// Records one item status event (idempotent by event id). Unreadable events and
    /// unknown items are logged and skipped: they cannot become readable by retrying.
    pub async fn record_item_status(&self, event: &Event) -> Result<(), sqlx::Error> {
        let span = tracing::info_span!("catalog.item_status", event_id = %event.id);
        events::set_parent_from_headers(&span, &event.headers);
        async {
            let Ok(msg) = ev::ItemStatusChanged::decode(event.payload.as_slice()) else {
                tracing::warn!(subject = %event.subject, "unreadable item status event skipped");
                return Ok(());
            };
            let Some(status) = status_code(msg.status) else {
                tracing::warn!(barcode = %msg.barcode, "item status event without a status skipped");
                return Ok(());
            };
            let now = format_instant(self.clock().now());
            let due = (!msg.due_date.is_empty()).then_some(msg.due_date.as_str());
            let mut tx = self.db().pool.begin().await?;
            if !inbox::first_time(&mut tx, DURABLE, &event.id, &now).await? {
                return Ok(());
            }
            let title = store::apply_item_status(&mut tx, &msg.barcode, status, due, i64::from(msg.holds_waiting)).await?;
            if let Some(title_id) = &title {
                let event_id = events::new_event_id();
                let changed = events::build(
                    TITLE_CHANGED,
                    event_id.clone(),
                    &now,
                    &ev::TitleChanged {
                        meta: Some(ev::EventMeta { event_id, occurred_at: now.clone() }),
                        title_id: title_id.clone(),
                    },
                );
                outbox::enqueue(&mut tx, &changed, &now).await?;
            }
            tx.commit().await?;
            if title.is_some() {
                self.relay_wake().notify_one();
            }
            match title {
                Some(title_id) => {
                    // The database is the truth; the index follows it (a failure here is
                    // repaired by the next catch-up: this replica's follower gets
                    // `catalog.title.changed`, and any later change catches up too).
                    if let Err(e) = self.catch_up_index().await {
                        tracing::error!(error = %e, %title_id, "index not caught up after an item status change");
                    }
                }
                None => tracing::warn!(barcode = %msg.barcode, "status of an unknown item skipped"),
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Consumes item status events until shutdown.
    pub fn spawn_consumer(
        &self,
        bus: SharedBus,
        shutdown: &Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = self.clone();
        let s = shutdown.clone();
        tokio::spawn(async move {
            let spec = catalog.consumer_spec();
            let stop = async move { s.wait().await };
            let stop = futures::FutureExt::shared(Box::pin(stop));
            consumer::run(bus, spec, stop, |event| {
                let catalog = catalog.clone();
                async move { catalog.record_item_status(&event).await }
            })
            .await
        })
    }
}
