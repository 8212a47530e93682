//! The catalog's consumer of circulation's item status events: live availability per
//! branch in search results, and the holds waiting on a title (rule H1's 「予約申込」 button
//! appears only when no copy is on a shelf). Each event is recorded with its inbox row in
//! one transaction, so a redelivered event changes nothing twice. The same transaction
//! writes `catalog.title.changed` to the outbox: this consumer is shared, so only the
//! replica that got the event sees the change; the event tells the other replicas to
//! catch their index up (`replica.rs`). The change is numbered in the catalogue change
//! sequence (`store::apply_item_status`), which is how a catch-up finds it.
//!
//! The three branch instances publish through separate relays, so a copy's events can come
//! in any order: each part of an event applies only if its version is newer than the one
//! stored (ARCHITECTURE.md "Versions of a copy's events", `store::apply_item_status`); an
//! older or equal one is acknowledged, counted in `kitsuki_catalog_item_status_stale_total`
//! and otherwise ignored.
//!
//! The search index is not committed per event: the titles an event changed are queued and
//! re-indexed together a moment later ([`INDEX_DEBOUNCE`]), one tantivy commit for all the
//! events of that moment. A commit per event under the desk load made a one-document
//! segment per event, which the next change of the same title emptied again while tantivy's
//! merge of it ran ("couldn't find segment in SegmentManager", the merge thrown away), and
//! held the consumer back by a commit's fsync per event. The race remains, rarer: under a
//! steady desk load (`benches/catalogue_scale`, 20 transactions/s on 120 copies) tantivy
//! still logs that warning about twice a second, for a merge of the consumer's small
//! segments that ended after the next commit had emptied one of them; nothing is lost (the
//! documents are in the newer segment), the merge of a few documents is redone later, and
//! memory levels off (ARCHITECTURE.md "Versions of a copy's events").

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use kitsuki_platform::bus::{ConsumerSpec, Event, SharedBus};
use kitsuki_platform::clock::format_instant;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::{consumer, events, inbox, outbox};
use kitsuki_proto::catalog::ItemStatus;
use kitsuki_proto::events as ev;
use prost::Message;
use tokio::sync::Notify;
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
/// How long titles changed by item status events wait to be re-indexed together: the
/// delay search availability may show beside the database (GetTitle reads the database),
/// and at most one index commit per this interval under any load.
pub const INDEX_DEBOUNCE: Duration = Duration::from_millis(100);
/// Writes [`TITLE_CHANGED`] for a title into the outbox of the transaction that changed its
/// search document: how the other replicas learn to catch their index up (`replica.rs`).
/// The one builder of that event (item status, staff's reading corrections, the
/// regeneration of readings).
pub(crate) async fn enqueue_title_changed(
    conn: &mut sqlx::AnyConnection,
    title_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let event_id = events::new_event_id();
    let event = events::build(
        TITLE_CHANGED,
        event_id.clone(),
        now,
        &ev::TitleChanged {
            meta: Some(ev::EventMeta {
                event_id,
                occurred_at: now.to_string(),
            }),
            title_id: title_id.to_string(),
        },
    );
    outbox::enqueue(conn, &event, now).await
}

/// Titles re-indexed in one commit at most (one bounded `IN (...)` of ids).
const INDEX_BATCH: usize = 500;

/// The titles waiting to be re-indexed after item status events, and whether a task is
/// re-indexing them.
#[derive(Debug, Default)]
pub(crate) struct IndexQueue {
    state: Mutex<QueueState>,
    /// Told when the queue became empty with no task running.
    settled: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    titles: BTreeSet<String>,
    running: bool,
}

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

    /// Records one item status event (idempotent by event id; an event older than what is
    /// stored changes nothing). Unreadable events and unknown items are logged and skipped:
    /// they cannot become readable by retrying. The title's search document follows within
    /// [`INDEX_DEBOUNCE`] ([`Catalog::index_settled`] waits for it).
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
            let update = store::ItemStatusUpdate {
                barcode: &msg.barcode,
                status,
                due_date: (!msg.due_date.is_empty()).then_some(msg.due_date.as_str()),
                holds_waiting: i64::from(msg.holds_waiting),
                item_version: msg.item_version,
                holds_version: msg.holds_version,
            };
            let mut tx = self.db().pool.begin().await?;
            if !inbox::first_time(&mut tx, DURABLE, &event.id, &now).await? {
                return Ok(());
            }
            let applied = store::apply_item_status(&mut tx, &update).await?;
            let changed = applied.as_ref().filter(|a| a.changed()).map(|a| a.title_id.clone());
            if let Some(title_id) = &changed {
                enqueue_title_changed(&mut tx, title_id, &now).await?;
            }
            tx.commit().await?;
            match (&applied, changed) {
                (None, _) => tracing::warn!(barcode = %msg.barcode, "status of an unknown item skipped"),
                (Some(_), None) => {
                    tracing::debug!(barcode = %msg.barcode, item_version = msg.item_version, holds_version = msg.holds_version, "older item status event ignored");
                    metrics::counter!("kitsuki_catalog_item_status_stale_total").increment(1);
                }
                (Some(_), Some(title_id)) => {
                    self.relay_wake().notify_one();
                    self.index_later(title_id);
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The one place the item status consumer hands the index a changed title: queued, and
    /// re-indexed with the others of the moment by one task, one commit per batch. (When the
    /// index follows the catalogue's change sequence, `Catalog::catch_up_index`, this is
    /// where the consumer nudges it instead.) The database is the truth; a failed re-index
    /// is logged and repaired by the title's next change, this replica's follower, or
    /// `kitsuki reindex`.
    pub(crate) fn index_later(&self, title_id: String) {
        let queue = self.index_queue();
        let mut state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
        state.titles.insert(title_id);
        if !state.running {
            state.running = true;
            let catalog = self.clone();
            tokio::spawn(async move { catalog.drain_index_queue().await });
        }
    }

    /// Re-indexes the queued titles, a batch per [`INDEX_DEBOUNCE`], until none is left.
    async fn drain_index_queue(self) {
        loop {
            tokio::time::sleep(INDEX_DEBOUNCE).await;
            let batch: Vec<String> = {
                let queue = self.index_queue();
                let mut state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.titles.is_empty() {
                    state.running = false;
                    queue.settled.notify_waiters();
                    return;
                }
                let keep = state
                    .titles
                    .iter()
                    .nth(INDEX_BATCH)
                    .cloned()
                    .map(|first_kept| state.titles.split_off(&first_kept))
                    .unwrap_or_default();
                std::mem::replace(&mut state.titles, keep)
                    .into_iter()
                    .collect()
            };
            if let Err(e) = self.refresh_index(&batch).await {
                tracing::error!(error = %e, titles = batch.len(), "index not refreshed after item status changes");
            }
        }
    }

    /// Waits until every title queued by item status events so far is re-indexed (tests,
    /// and a caller that must read search right after recording events).
    pub async fn index_settled(&self) {
        let queue = self.index_queue();
        loop {
            let settled = queue.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
                if !state.running && state.titles.is_empty() {
                    return;
                }
            }
            settled.await;
        }
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
