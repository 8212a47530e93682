//! One change of circulation: a transaction that takes its guards first, writes holds and
//! items through the core's transitions, and collects the events of what it changed, which
//! are written to the outbox in the same transaction (ARCHITECTURE.md "Nothing lost").
//!
//! Events: a hold event for each transition that calls for one (see `events.proto`), and at
//! commit an `ItemStatusChanged` for every item whose status or due date changed and for
//! every item of a title whose number of active holds changed. Each carries the item's next
//! version and its title's holds version, both incremented here under the rows' locks, so
//! that a consumer can tell the newer of two events however they arrive (ARCHITECTURE.md
//! "Versions of a copy's events").

use std::collections::{BTreeMap, BTreeSet};

use kitsuki_platform::clock::{format_date, format_instant};
use kitsuki_platform::db::Backend;
use kitsuki_platform::{events, outbox};
use kitsuki_proto::events as ev;
use kitsuki_proto::{Barcode, Branch, CardNumber, ServiceError, TitleId};
use sqlx::{Any, AnyConnection, Transaction};
use time::OffsetDateTime;

use super::{Circulation, internal};
use crate::domain::holds::{self, HoldEvent, HoldStatus};
use crate::domain::queue::TitleQueue;
use crate::domain::routing::{CheckinDecision, ItemFacts, Release, Routing, route_release};
use crate::domain::shelf::shelf_last_day;
use crate::store::{self, HoldRow, ItemRow, ItemStatus};

/// The hold event kinds of `events.proto`.
pub(super) mod kind {
    pub const PLACED: &str = "placed";
    pub const CONFIRMED: &str = "confirmed";
    pub const READY_TO_NOTIFY: &str = "ready_to_notify";
    pub const EXPIRED: &str = "expired";
    pub const REJECTED: &str = "rejected";
    pub const CANCELLED: &str = "cancelled";
}

/// A transaction of one change and the effects it collects.
pub(super) struct Change {
    tx: Transaction<'static, Any>,
    pub(super) now: OffsetDateTime,
    pub(super) at: String,
    branch: Branch,
    /// Items whose status or due date changed, as they are now.
    items: BTreeMap<Barcode, ItemRow>,
    /// Titles whose number of active holds changed.
    titles: BTreeSet<TitleId>,
    /// Rule S3: (actor, action, subject).
    staff: Vec<(String, &'static str, String)>,
    wrote_events: bool,
}

/// What a hold event carries beside the hold.
#[derive(Debug, Default)]
struct EventExtra {
    by_library: bool,
    ready_until: Option<String>,
}

impl Circulation {
    /// Begins a change. On SQLite the write lock is taken at once (`BEGIN IMMEDIATE`), so
    /// that a change never reads and then fails to upgrade to writing; writers take turns
    /// within the driver's busy timeout.
    pub(super) async fn begin(&self) -> Result<Change, ServiceError> {
        let pool = &self.inner.db.pool;
        let tx = match self.inner.db.backend {
            Backend::Postgres => pool.begin().await,
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        }
        .map_err(|e| internal("beginning", e))?;
        let now = self.inner.clock.now();
        Ok(Change {
            tx,
            now,
            at: format_instant(now),
            branch: self.inner.branch,
            items: BTreeMap::new(),
            titles: BTreeSet::new(),
            staff: Vec::new(),
            wrote_events: false,
        })
    }

    /// Writes `after` over the hold `before` and the hold event its transition calls for
    /// (`events.proto`): confirmed, ready_to_notify (whose id the ready mail's `MailSent`
    /// will name), expired, rejected, cancelled.
    pub(super) async fn write_hold(
        &self,
        ch: &mut Change,
        before: &HoldRow,
        mut after: HoldRow,
    ) -> Result<HoldRow, ServiceError> {
        let (from, to) = (before.hold.status(), after.hold.status());
        if from != to {
            match to {
                HoldStatus::Confirmed => {
                    ch.hold_event(kind::CONFIRMED, &after, EventExtra::default())
                        .await?;
                }
                HoldStatus::AwaitingNotice => {
                    // rule H9 with B2: the date the mail can promise if it goes out today
                    let ready_until =
                        shelf_last_day(&self.inner.config.calendars, after.hold.pickup, ch.now)
                            .map_err(ServiceError::new)?;
                    let id = ch
                        .hold_event(
                            kind::READY_TO_NOTIFY,
                            &after,
                            EventExtra {
                                ready_until: Some(format_date(ready_until)),
                                ..EventExtra::default()
                            },
                        )
                        .await?;
                    after.notice_event_id = Some(id);
                }
                HoldStatus::Expired => {
                    ch.hold_event(kind::EXPIRED, &after, EventExtra::default())
                        .await?;
                }
                HoldStatus::Rejected => {
                    ch.hold_event(kind::REJECTED, &after, EventExtra::default())
                        .await?;
                }
                HoldStatus::Cancelled => {
                    let by_library = after.reason.is_some();
                    ch.hold_event(
                        kind::CANCELLED,
                        &after,
                        EventExtra {
                            by_library,
                            ..EventExtra::default()
                        },
                    )
                    .await?;
                }
                HoldStatus::Provisional
                | HoldStatus::InTransit
                | HoldStatus::Ready
                | HoldStatus::Fulfilled => {}
            }
            if from.is_active() != to.is_active() {
                ch.titles.insert(after.hold.title.clone());
            }
        }
        {
            let (conn, at) = ch.conn_at();
            store::update_hold(conn, &after, at)
        }
        .await
        .map_err(|e| internal("writing a hold", e))?;
        Ok(after)
    }

    /// Applies an event of the core's state machine to a hold and writes the result;
    /// `adjust` sets the shell's columns (a reason, the off-shelf mark). A transition the
    /// machine refuses is its code (`hold_state_conflict`, `hold_not_ready`).
    pub(super) async fn transition(
        &self,
        ch: &mut Change,
        before: &HoldRow,
        event: &HoldEvent,
        adjust: impl FnOnce(&mut HoldRow),
    ) -> Result<HoldRow, ServiceError> {
        let next = holds::apply(&before.hold, event, &self.inner.config.calendars)
            .map_err(|e| ServiceError::with_detail(e.code(), e.to_string()))?;
        let mut after = before.clone();
        after.hold.state = next;
        adjust(&mut after);
        self.write_hold(ch, before, after).await
    }

    /// Writes an item's new place; an item whose status or due date changed is announced.
    pub(super) async fn write_item(
        &self,
        ch: &mut Change,
        before: &ItemRow,
        mut after: ItemRow,
    ) -> Result<ItemRow, ServiceError> {
        after.updated_at = before.updated_at.clone();
        if after == *before {
            return Ok(after);
        }
        after.updated_at = ch.at.clone();
        {
            let (conn, at) = ch.conn_at();
            store::update_item(conn, &after, at)
        }
        .await
        .map_err(|e| internal("writing an item", e))?;
        if after.status != before.status || after.due_date != before.due_date {
            ch.items.insert(after.barcode.clone(), after.clone());
        }
        Ok(after)
    }

    /// Carries out the core's routing of `item` at branch `here` (a checkin there, or a
    /// release from its hold shelf, H7, H9, H10): the hold event it brings, then the item's
    /// new place.
    pub(super) async fn carry_out(
        &self,
        ch: &mut Change,
        item: &ItemRow,
        here: Branch,
        decision: &CheckinDecision,
    ) -> Result<ItemRow, ServiceError> {
        if let Some((hold_id, event)) = &decision.hold_event {
            let before = store::get_hold(ch.conn(), hold_id.as_str())
                .await
                .map_err(|e| internal("reading a hold", e))?
                .ok_or_else(|| internal("routing", "the queue's hold vanished"))?;
            self.transition(ch, &before, event, |_| {}).await?;
        }
        let mut next = item.clone();
        next.due_date = None;
        next.location = Some(here);
        match &decision.routing {
            Routing::Shelve => {
                next.status = ItemStatus::Available;
                next.transit_to = None;
                next.hold_id = None;
            }
            Routing::HoldShelf { hold_id } => {
                next.status = ItemStatus::OnHoldShelf;
                next.transit_to = None;
                next.hold_id = Some(hold_id.clone());
            }
            Routing::Transit { to, hold_id } => {
                next.status = ItemStatus::InTransit;
                next.transit_to = Some(*to);
                next.hold_id = hold_id.clone();
            }
        }
        self.write_item(ch, item, next).await
    }

    /// Rules H9, H10: what becomes of the item of a hold that ended (expired or cancelled)
    /// without being checked out. `before` is the hold as it was before it ended; the ended
    /// hold must already be written, so that the queue read here no longer has it. Returns
    /// whether the item was on the hold shelf (staff must take it off, S1).
    pub(super) async fn release(
        &self,
        ch: &mut Change,
        before: &HoldRow,
    ) -> Result<bool, ServiceError> {
        let Some(barcode) = before.hold.state.held_item() else {
            return Ok(false);
        };
        let item = store::get_item(ch.conn(), barcode)
            .await
            .map_err(|e| internal("reading an item", e))?
            .ok_or_else(|| internal("releasing", "the held item vanished"))?;
        if item.hold_id.as_ref() != Some(&before.hold.id) {
            // Already moved on (a checkout or another release got there first).
            return Ok(false);
        }
        let queue = self.queue(ch, &before.hold.title).await?;
        let facts = ItemFacts {
            barcode: item.barcode.clone(),
            home: item.home,
        };
        match route_release(&facts, &before.hold, &queue) {
            Release::NoItem => Ok(false),
            Release::RouteOnArrival { .. } => {
                // The van is not turned round: the item travels on, for no hold now, and its
                // checkin at the branch it reaches routes it (H7).
                let mut next = item.clone();
                next.hold_id = None;
                self.write_item(ch, &item, next).await?;
                Ok(false)
            }
            Release::Route(decision) => {
                self.carry_out(ch, &item, before.hold.pickup, &decision)
                    .await?;
                Ok(true)
            }
        }
    }

    /// The title's queue as it is in this change (H6).
    pub(super) async fn queue(
        &self,
        ch: &mut Change,
        title: &TitleId,
    ) -> Result<TitleQueue, ServiceError> {
        let rows = store::active_holds_of_title(ch.conn(), title)
            .await
            .map_err(|e| internal("reading a queue", e))?;
        Ok(TitleQueue::new(rows.into_iter().map(|r| r.hold)))
    }

    /// Writes the collected item events and staff actions, commits, and wakes the relay.
    pub(super) async fn commit(&self, mut ch: Change) -> Result<(), ServiceError> {
        let titles: Vec<TitleId> = ch.titles.iter().cloned().collect();
        for title in &titles {
            for item in store::items_of_title(ch.conn(), title)
                .await
                .map_err(|e| internal("reading items", e))?
            {
                ch.items.entry(item.barcode.clone()).or_insert(item);
            }
        }
        let barcodes: Vec<(Barcode, TitleId)> = ch
            .items
            .values()
            .map(|i| (i.barcode.clone(), i.title.clone()))
            .collect();
        // Per title: its holds version, then the count it stands for (read after the
        // version's increment, under the title's lock).
        let mut waiting: BTreeMap<TitleId, (u32, u64)> = BTreeMap::new();
        for (barcode, title) in &barcodes {
            let holds = match waiting.get(title) {
                Some(h) => *h,
                None => {
                    let version = store::next_holds_version(ch.conn(), title)
                        .await
                        .map_err(|e| internal("versioning holds", e))?
                        .ok_or_else(|| internal("versioning holds", "the title vanished"))?;
                    let n = store::holds_waiting(ch.conn(), title)
                        .await
                        .map_err(|e| internal("counting holds", e))?;
                    waiting.insert(title.clone(), (n, version));
                    (n, version)
                }
            };
            ch.item_event(barcode, holds).await?;
        }
        let staff = std::mem::take(&mut ch.staff);
        for (actor, action, subject) in staff {
            {
                let branch = ch.branch;
                let (conn, at) = ch.conn_at();
                store::record_staff_action(conn, &actor, action, branch, &subject, at)
            }
            .await
            .map_err(|e| internal("recording a staff action", e))?;
        }
        let wrote = ch.wrote_events;
        ch.tx
            .commit()
            .await
            .map_err(|e| internal("committing", e))?;
        if wrote {
            self.inner.relay_wake.notify_one();
        }
        Ok(())
    }
}

impl Change {
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The connection and the change's instant as stored, borrowed together.
    pub(super) fn conn_at(&mut self) -> (&mut AnyConnection, &str) {
        (&mut *self.tx, &self.at)
    }

    /// The title guard; `false` when the title is unknown.
    pub(super) async fn lock_title(&mut self, title: &TitleId) -> Result<bool, ServiceError> {
        store::lock_title(self.conn(), title)
            .await
            .map_err(|e| internal("locking a title", e))
    }

    /// The patron guard, taken after the title's.
    pub(super) async fn lock_patron(&mut self, card: &CardNumber) -> Result<(), ServiceError> {
        store::lock_patron(self.conn(), card)
            .await
            .map_err(|e| internal("locking a patron", e))
    }

    /// Rule S3: records the staff action at commit; nothing for a patron's own action.
    pub(super) fn staff_action(&mut self, actor: &str, action: &'static str, subject: &str) {
        let actor = actor.trim();
        if !actor.is_empty() {
            self.staff
                .push((actor.to_string(), action, subject.to_string()));
        }
    }

    /// Announces that the title's number of active holds changed.
    pub(super) fn queue_changed(&mut self, title: &TitleId) {
        self.titles.insert(title.clone());
    }

    /// Writes the `placed` event of a new hold (its mail: the provisional receipt only if
    /// `receipt_mail`, H4, H5).
    pub(super) async fn placed(&mut self, row: &HoldRow) -> Result<(), ServiceError> {
        self.hold_event(kind::PLACED, row, EventExtra::default())
            .await
            .map(|_| ())
    }

    /// Writes the `confirmed` event of a hold that starts confirmed (a counter hold, S1).
    pub(super) async fn confirmed(&mut self, row: &HoldRow) -> Result<(), ServiceError> {
        self.hold_event(kind::CONFIRMED, row, EventExtra::default())
            .await
            .map(|_| ())
    }

    /// Writes the hold event `kind` of `row` to the outbox; returns its id.
    async fn hold_event(
        &mut self,
        kind: &str,
        row: &HoldRow,
        extra: EventExtra,
    ) -> Result<String, ServiceError> {
        let h = &row.hold;
        let id = events::new_event_id();
        let msg = ev::HoldEvent {
            meta: Some(ev::EventMeta {
                event_id: id.clone(),
                occurred_at: self.at.clone(),
            }),
            hold_id: h.id.as_str().to_string(),
            card_number: h.patron.as_str().to_string(),
            title_id: h.title.as_str().to_string(),
            pickup_branch: h.pickup.code().to_string(),
            kind: kind.to_string(),
            receipt_mail: row.receipt_mail,
            reason: row.reason.clone().unwrap_or_default(),
            barcode: held_or_ended_item(&h.state)
                .map(|b| b.as_str().to_string())
                .unwrap_or_default(),
            by_library: extra.by_library,
            ready_until: extra.ready_until.unwrap_or_default(),
        };
        let subject = format!("circulation.{}.hold.{kind}", self.branch.code());
        self.enqueue(events::build(subject, id.clone(), &self.at.clone(), &msg))
            .await?;
        metrics::counter!("kitsuki_circulation_hold_events_total", "branch" => self.branch.code(), "kind" => kind.to_string())
            .increment(1);
        Ok(id)
    }

    /// Writes `ItemStatusChanged` of an item to the outbox, with the item's next version
    /// and the state that version stands for (read by the same statement), and the title's
    /// `(holds_waiting, holds_version)`.
    async fn item_event(
        &mut self,
        barcode: &Barcode,
        (holds_waiting, holds_version): (u32, u64),
    ) -> Result<(), ServiceError> {
        let (item, item_version) = store::next_item_version(self.conn(), barcode)
            .await
            .map_err(|e| internal("versioning an item", e))?
            .ok_or_else(|| internal("versioning an item", "the item vanished"))?;
        let id = events::new_event_id();
        let msg = ev::ItemStatusChanged {
            meta: Some(ev::EventMeta {
                event_id: id.clone(),
                occurred_at: self.at.clone(),
            }),
            barcode: item.barcode.as_str().to_string(),
            title_id: item.title.as_str().to_string(),
            status: item.status.to_proto() as i32,
            due_date: item.due_date.map(format_date).unwrap_or_default(),
            holds_waiting,
            item_version,
            holds_version,
        };
        let subject = format!("circulation.{}.item.status", self.branch.code());
        self.enqueue(events::build(subject, id, &self.at.clone(), &msg))
            .await
    }

    async fn enqueue(&mut self, event: kitsuki_platform::bus::Event) -> Result<(), ServiceError> {
        let at = self.at.clone();
        outbox::enqueue(self.conn(), &event, &at)
            .await
            .map_err(|e| internal("queueing an event", e))?;
        self.wrote_events = true;
        Ok(())
    }
}

/// The item a hold holds, or the item of an ended hold (for the event's `barcode`).
fn held_or_ended_item(state: &holds::HoldState) -> Option<&Barcode> {
    use holds::HoldState as S;
    match state {
        S::InTransit { item }
        | S::AwaitingNotice { item }
        | S::Ready { item, .. }
        | S::Fulfilled { item }
        | S::Expired { item } => Some(item),
        S::Cancelled { item, .. } => item.as_ref(),
        S::Provisional | S::Confirmed | S::Rejected { .. } => None,
    }
}
