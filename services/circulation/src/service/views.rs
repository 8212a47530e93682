//! What the patron and the desk see: a patron's loans with overdue and renewability (L2),
//! their holds with queue positions (H6), a title's holdability (H1), and the desk lists of
//! a branch (S1): hold shelf, expired holds to take off the shelf, pull list, transits in and
//! out, provisional holds to review. No list shows what a patron has read (V1): returned
//! loans appear nowhere here.

use std::collections::BTreeMap;

use kitsuki_platform::clock::{format_date, format_instant};
use kitsuki_proto::circulation as pb;
use kitsuki_proto::{CardNumber, ErrorCode, ServiceError, TitleId};
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::change::Change;
use super::{Circulation, internal};
use crate::domain::holdability::{HoldOrigin, TitleFacts, title_hold_block};
use crate::domain::holds::{Hold, HoldState, HoldStatus};
use crate::domain::loans::{Loan, loan_standing};
use crate::domain::queue::TitleQueue;
use crate::domain::shelf::{hold_shelf, pull_list};
use crate::domain::{HoldId, MaterialType};
use crate::store::{self, HoldRow, ItemRow, ItemStatus, LoanRow};

fn block(code: ErrorCode) -> pb::Block {
    pb::Block {
        code: code.as_str().to_string(),
        message: code.message_ja().to_string(),
        rule: code.rule().unwrap_or_default().to_string(),
    }
}

/// A hold as the patron and the desk see it; `position` from its title's queue (H6).
pub(super) fn hold_view(row: &HoldRow, position: Option<u32>) -> pb::Hold {
    let h = &row.hold;
    let (mail_sent_at, ready_until) = match &h.state {
        HoldState::Ready {
            mail_sent_at,
            ready_until,
            ..
        } => (format_instant(*mail_sent_at), format_date(*ready_until)),
        _ => (String::new(), String::new()),
    };
    pb::Hold {
        hold_id: h.id.as_str().to_string(),
        title_id: h.title.as_str().to_string(),
        pickup_branch: h.pickup.code().to_string(),
        status: h.status().code().to_string(),
        queue_position: position.unwrap_or(0),
        placed_at: format_instant(h.placed_at),
        ready_until,
        card_number: h.patron.as_str().to_string(),
        barcode: item_of(&h.state),
        receipt_mail: row.receipt_mail,
        origin: row.origin.code().to_string(),
        reason: row.reason.clone().unwrap_or_default(),
        mail_sent_at,
        cancellable: h.status().is_active(),
    }
}

fn item_of(state: &HoldState) -> String {
    match state {
        HoldState::InTransit { item }
        | HoldState::AwaitingNotice { item }
        | HoldState::Ready { item, .. }
        | HoldState::Fulfilled { item }
        | HoldState::Expired { item } => item.as_str().to_string(),
        HoldState::Cancelled { item, .. } => item
            .as_ref()
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        HoldState::Provisional | HoldState::Confirmed | HoldState::Rejected { .. } => String::new(),
    }
}

/// A loan with what its listing says (API.md `overdue`, `renewable`, `renew_block`, L2).
fn loan_view(
    row: &LoanRow,
    patron_loans: &[Loan],
    holds_on_title: &[HoldStatus],
    now: OffsetDateTime,
) -> pb::Loan {
    let l = &row.loan;
    let standing = loan_standing(l, patron_loans, holds_on_title, now);
    pb::Loan {
        loan_id: row.loan_id.clone(),
        barcode: l.barcode.as_str().to_string(),
        title_id: l.title.as_str().to_string(),
        branch: l.branch.code().to_string(),
        checked_out_at: format_instant(l.checked_out_at),
        due_date: format_date(l.due_date),
        renewed: l.renewed,
        overdue: standing.overdue,
        renewable: standing.renewable,
        renew_block: standing.renew_block.map(block),
        card_number: l.patron.as_str().to_string(),
    }
}

async fn active_statuses(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Vec<HoldStatus>, ServiceError> {
    Ok(store::active_holds_of_title(conn, title)
        .await
        .map_err(|e| internal("reading a queue", e))?
        .iter()
        .map(|r| r.hold.status())
        .collect())
}

async fn queue_of(conn: &mut AnyConnection, title: &TitleId) -> Result<TitleQueue, ServiceError> {
    let rows = store::active_holds_of_title(conn, title)
        .await
        .map_err(|e| internal("reading a queue", e))?;
    Ok(TitleQueue::new(rows.into_iter().map(|r| r.hold)))
}

impl Circulation {
    /// A loan's view as it stands inside a change (after a checkout or a renewal).
    pub(super) async fn loan_view_in(
        &self,
        ch: &mut Change,
        row: &LoanRow,
    ) -> Result<pb::Loan, ServiceError> {
        let now = ch.now;
        let mut loans: Vec<Loan> = store::loans_of(ch.conn(), &row.loan.patron)
            .await
            .map_err(|e| internal("reading loans", e))?
            .into_iter()
            .filter(|r| r.loan_id != row.loan_id)
            .map(|r| r.loan)
            .collect();
        loans.push(row.loan.clone());
        let statuses = active_statuses(ch.conn(), &row.loan.title).await?;
        Ok(loan_view(row, &loans, &statuses, now))
    }

    /// The patron's current loans, soonest due first, each with overdue and whether it can
    /// be renewed now or why not (L2).
    pub async fn list_loans(&self, card: &CardNumber) -> Result<Vec<pb::Loan>, ServiceError> {
        let now = self.inner.clock.now();
        let mut conn = self.conn().await?;
        let rows = store::loans_of(&mut conn, card)
            .await
            .map_err(|e| internal("reading loans", e))?;
        let loans: Vec<Loan> = rows.iter().map(|r| r.loan.clone()).collect();
        let mut statuses: BTreeMap<TitleId, Vec<HoldStatus>> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if !statuses.contains_key(&row.loan.title) {
                let s = active_statuses(&mut conn, &row.loan.title).await?;
                statuses.insert(row.loan.title.clone(), s);
            }
            let s = statuses.get(&row.loan.title).map_or(&[][..], |v| v);
            out.push(loan_view(row, &loans, s, now));
        }
        Ok(out)
    }

    /// The patron's active holds in order of placement with their positions (H6), then
    /// the holds that ended recently (cancelled, expired, rejected; see
    /// [`crate::CirculationConfig::ended_holds_shown`]).
    pub async fn list_holds(&self, card: &CardNumber) -> Result<Vec<pb::Hold>, ServiceError> {
        let now = self.inner.clock.now();
        let since = format_instant(now - self.inner.config.ended_holds_shown);
        let mut conn = self.conn().await?;
        let rows = store::holds_of(&mut conn, card, Some(&since))
            .await
            .map_err(|e| internal("reading holds", e))?;
        let mut queues: BTreeMap<TitleId, TitleQueue> = BTreeMap::new();
        let (mut active, mut ended) = (Vec::new(), Vec::new());
        for row in &rows {
            if row.hold.status().is_active() {
                if !queues.contains_key(&row.hold.title) {
                    let q = queue_of(&mut conn, &row.hold.title).await?;
                    queues.insert(row.hold.title.clone(), q);
                }
                let position = queues
                    .get(&row.hold.title)
                    .and_then(|q| q.position(&row.hold.id));
                active.push(hold_view(row, position));
            } else {
                ended.push(hold_view(row, None));
            }
        }
        active.extend(ended);
        Ok(active)
    }

    /// Rule H1 for title listings (a web hold, no patron): holdable or why not, and the holds
    /// waiting (H6). An unknown title is `hold_not_held_here`.
    pub async fn title_holdability(
        &self,
        titles: &[TitleId],
    ) -> Result<Vec<pb::TitleHoldability>, ServiceError> {
        let mut conn = self.conn().await?;
        let mut out = Vec::with_capacity(titles.len());
        for title in titles {
            let counts = store::title_counts(&mut conn, title)
                .await
                .map_err(|e| internal("counting copies", e))?;
            let facts = match counts {
                Some(c) => TitleFacts {
                    title: title.clone(),
                    material: c.material,
                    copies: c.copies,
                    copies_on_shelf: c.copies_on_shelf,
                },
                None => TitleFacts {
                    title: title.clone(),
                    material: MaterialType::Book,
                    copies: 0,
                    copies_on_shelf: 0,
                },
            };
            let hold_block = title_hold_block(HoldOrigin::Web, &facts);
            let waiting = store::holds_waiting(&mut conn, title)
                .await
                .map_err(|e| internal("counting holds", e))?;
            out.push(pb::TitleHoldability {
                title_id: title.as_str().to_string(),
                holdable: hold_block.is_none(),
                hold_block: hold_block.map(block),
                holds_waiting: waiting,
                copies: u32::try_from(facts.copies).unwrap_or(u32::MAX),
                copies_on_shelf: u32::try_from(facts.copies_on_shelf).unwrap_or(u32::MAX),
            });
        }
        Ok(out)
    }

    /// Rule S1: this branch's hold shelf, items waiting for their patrons (ready mail sent
    /// or not yet), the soonest to expire first.
    pub async fn hold_shelf(&self) -> Result<Vec<pb::DeskHold>, ServiceError> {
        let mut conn = self.conn().await?;
        let rows = store::holds_at(
            &mut conn,
            self.inner.branch,
            &[HoldStatus::AwaitingNotice, HoldStatus::Ready],
        )
        .await
        .map_err(|e| internal("reading the hold shelf", e))?;
        let holds: Vec<Hold> = rows.iter().map(|r| r.hold.clone()).collect();
        let shelf = hold_shelf(self.inner.branch, &holds);
        Ok(shelf
            .into_iter()
            .filter_map(|h| rows.iter().find(|r| r.hold.id == h.id))
            .map(|r| desk_hold(r, None))
            .collect())
    }

    /// Rules H9, H10, S1: holds that ended (expired, or cancelled) while their item was on
    /// this branch's hold shelf, until the item is scanned here again; each with where the
    /// item goes now.
    pub async fn expired_holds(&self) -> Result<Vec<pb::DeskHold>, ServiceError> {
        let mut conn = self.conn().await?;
        let rows = store::off_shelf_pending(&mut conn, self.inner.branch)
            .await
            .map_err(|e| internal("reading the shelf list", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut line = desk_hold(row, None);
            let item = match row.hold.state.held_item().or(ended_item(&row.hold.state)) {
                Some(b) => store::get_item(&mut conn, b)
                    .await
                    .map_err(|e| internal("reading an item", e))?,
                None => None,
            };
            if let Some(item) = item {
                describe_item(&mut line, &item);
            }
            out.push(line);
        }
        Ok(out)
    }

    /// Rule S1: the pull list, confirmed holds for which a copy should be taken from this
    /// branch's open shelf (counter holds on available titles; holds confirmed after a copy
    /// was shelved), each with the copy to pull and where its checkin will send it.
    pub async fn pull_list(&self) -> Result<Vec<pb::DeskHold>, ServiceError> {
        let here = self.inner.branch;
        let mut conn = self.conn().await?;
        let items = store::pullable_items(&mut conn, here)
            .await
            .map_err(|e| internal("reading the shelves", e))?;
        let mut by_title: BTreeMap<TitleId, Vec<ItemRow>> = BTreeMap::new();
        for item in items {
            by_title.entry(item.title.clone()).or_default().push(item);
        }
        let mut lines: Vec<(Hold, pb::DeskHold)> = Vec::new();
        for (title, copies) in &by_title {
            let rows = store::active_holds_of_title(&mut conn, title)
                .await
                .map_err(|e| internal("reading a queue", e))?;
            let queue = TitleQueue::new(rows.iter().map(|r| r.hold.clone()));
            for (hold, item) in pull_list(&[(&queue, copies.len())]).into_iter().zip(copies) {
                let Some(row) = rows.iter().find(|r| r.hold.id == hold.id) else {
                    continue;
                };
                let mut line = desk_hold(row, queue.position(&hold.id));
                line.barcode = item.barcode.as_str().to_string();
                line.item_status = item.status.code().to_string();
                if hold.pickup == here {
                    line.routing = "hold_shelf".into();
                } else {
                    line.routing = "transit".into();
                    line.to_branch = hold.pickup.code().to_string();
                }
                lines.push((hold.clone(), line));
            }
        }
        lines.sort_by(|a, b| a.0.queue_cmp(&b.0));
        Ok(lines.into_iter().map(|(_, l)| l).collect())
    }

    /// Rule S1: items in transit to this branch and from it, oldest first.
    pub async fn transits(&self) -> Result<pb::Transits, ServiceError> {
        let mut conn = self.conn().await?;
        let mut lists = Vec::with_capacity(2);
        for incoming in [true, false] {
            let items = store::transits(&mut conn, self.inner.branch, incoming)
                .await
                .map_err(|e| internal("reading transits", e))?;
            lists.push(
                items
                    .iter()
                    .map(|i| pb::Transit {
                        barcode: i.barcode.as_str().to_string(),
                        title_id: i.title.as_str().to_string(),
                        from_branch: i.location.map(|b| b.code().to_string()).unwrap_or_default(),
                        to_branch: i
                            .transit_to
                            .map(|b| b.code().to_string())
                            .unwrap_or_default(),
                        hold_id: i
                            .hold_id
                            .as_ref()
                            .map(|h| h.as_str().to_string())
                            .unwrap_or_default(),
                        since: i.updated_at.clone(),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let outgoing = lists.pop().unwrap_or_default();
        let incoming = lists.pop().unwrap_or_default();
        Ok(pb::Transits { incoming, outgoing })
    }

    /// Rule H5, S1: provisional holds picking up at this branch, to confirm or reject, in
    /// order of placement.
    pub async fn provisional_holds(&self) -> Result<Vec<pb::DeskHold>, ServiceError> {
        let mut conn = self.conn().await?;
        let rows = store::holds_at(&mut conn, self.inner.branch, &[HoldStatus::Provisional])
            .await
            .map_err(|e| internal("reading provisional holds", e))?;
        let mut queues: BTreeMap<TitleId, TitleQueue> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if !queues.contains_key(&row.hold.title) {
                let q = queue_of(&mut conn, &row.hold.title).await?;
                queues.insert(row.hold.title.clone(), q);
            }
            let position = queues
                .get(&row.hold.title)
                .and_then(|q| q.position(&row.hold.id));
            out.push(desk_hold(row, position));
        }
        Ok(out)
    }

    /// The hold as the desk sees it, for tests and tools.
    pub async fn hold(&self, hold_id: &HoldId) -> Result<pb::Hold, ServiceError> {
        let row = self
            .hold_for(hold_id.as_str(), super::Requester::Staff { actor: "" })
            .await?;
        let mut conn = self.conn().await?;
        let queue = queue_of(&mut conn, &row.hold.title).await?;
        Ok(hold_view(&row, queue.position(&row.hold.id)))
    }
}

fn ended_item(state: &HoldState) -> Option<&kitsuki_proto::Barcode> {
    match state {
        HoldState::Expired { item } => Some(item),
        HoldState::Cancelled { item, .. } => item.as_ref(),
        _ => None,
    }
}

/// Where an item is now, in a desk line: what to do with it.
fn describe_item(line: &mut pb::DeskHold, item: &ItemRow) {
    line.item_status = item.status.code().to_string();
    line.next_hold_id = item
        .hold_id
        .as_ref()
        .map(|h| h.as_str().to_string())
        .unwrap_or_default();
    match item.status {
        ItemStatus::Available => line.routing = "shelve".into(),
        ItemStatus::OnHoldShelf => line.routing = "hold_shelf".into(),
        ItemStatus::InTransit => {
            line.routing = "transit".into();
            line.to_branch = item
                .transit_to
                .map(|b| b.code().to_string())
                .unwrap_or_default();
        }
        ItemStatus::OnLoan => {}
    }
}

fn desk_hold(row: &HoldRow, position: Option<u32>) -> pb::DeskHold {
    let v = hold_view(row, position);
    pb::DeskHold {
        hold_id: v.hold_id,
        title_id: v.title_id,
        card_number: v.card_number,
        pickup_branch: v.pickup_branch,
        status: v.status,
        barcode: v.barcode,
        placed_at: v.placed_at,
        ready_until: v.ready_until,
        mail_sent_at: v.mail_sent_at,
        queue_position: v.queue_position,
        reason: v.reason,
        routing: String::new(),
        to_branch: String::new(),
        next_hold_id: String::new(),
        item_status: String::new(),
    }
}
