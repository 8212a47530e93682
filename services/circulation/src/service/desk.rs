//! The desk's loan operations (S1): checkout (L1, L3, L4, H8, B2), checkin at any branch with
//! the routing of H7 (L5, V1), and renewal once (L2), on the web or by staff.

use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Barcode, CardNumber, ErrorCode, ServiceError};

use super::{Circulation, Requester, internal, staff_actor};
use crate::domain::holds::{HoldEvent, HoldStatus};
use crate::domain::loans::{self, CheckoutRequest, HeldFor, Loan};
use crate::domain::privacy::{self, ReadingHistory};
use crate::domain::routing::{Allocation, ItemFacts, route_checkin};
use crate::store::{self, ItemRow, ItemStatus, LoanRow};

impl Circulation {
    /// Lends `barcode` to `card` at this branch's desk. The first refusal of the core
    /// (`item_held_for_other` L4, `hold_not_ready` H8, `loan_limit` L3); `item_on_loan` when
    /// the item was not checked in first. A ready hold of the patron on the item is
    /// fulfilled.
    #[tracing::instrument(skip(self, card), fields(branch = %self.inner.branch))]
    pub async fn checkout(
        &self,
        card: &CardNumber,
        barcode: &Barcode,
        actor: &str,
    ) -> Result<pb::Loan, ServiceError> {
        // Asked before the change, so that no call to another service waits under a lock.
        self.patron(card).await?;
        let pre = self.item(barcode).await?;
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.title).await?;
        ch.lock_patron(card).await?;
        let item = store::get_item(ch.conn(), barcode)
            .await
            .map_err(|e| internal("reading an item", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::ItemNotFound))?;
        if item.status == ItemStatus::OnLoan {
            return Err(ServiceError::new(ErrorCode::ItemOnLoan));
        }
        let held = match &item.hold_id {
            Some(id) => store::get_hold(ch.conn(), id.as_str())
                .await
                .map_err(|e| internal("reading a hold", e))?,
            None => None,
        };
        let held_for = held.as_ref().map(|r| HeldFor {
            hold_id: r.hold.id.clone(),
            patron: r.hold.patron.clone(),
            status: r.hold.status(),
        });
        let current_loans = store::loans_of(ch.conn(), card)
            .await
            .map_err(|e| internal("reading loans", e))?
            .len();
        let material = store::title_material(ch.conn(), &item.title)
            .await
            .map_err(|e| internal("reading a title", e))?
            .ok_or_else(|| internal("checking out", "an item of an unknown title"))?;
        let config = &self.inner.config;
        let decision = loans::checkout(
            &config.loans,
            &config.calendars,
            &CheckoutRequest {
                lending: self.inner.branch,
                material,
                patron: card,
                current_loans,
                held_for: held_for.as_ref(),
                at: ch.now,
            },
        )
        .map_err(ServiceError::new)?;
        if let Some(hold_id) = &decision.fulfils {
            let row = held
                .as_ref()
                .filter(|r| &r.hold.id == hold_id)
                .ok_or_else(|| internal("checking out", "the fulfilled hold vanished"))?;
            self.transition(&mut ch, row, &HoldEvent::CheckOut, |_| {})
                .await?;
        }
        let loan = LoanRow {
            loan_id: uuid::Uuid::now_v7().to_string(),
            loan: Loan {
                barcode: item.barcode.clone(),
                title: item.title.clone(),
                material,
                patron: card.clone(),
                branch: self.inner.branch,
                checked_out_at: ch.now,
                due_date: decision.due_date,
                renewed: false,
            },
        };
        store::insert_loan(ch.conn(), &loan).await.map_err(|e| {
            if kitsuki_platform::db::is_unique_violation(&e) {
                ServiceError::new(ErrorCode::ItemOnLoan)
            } else {
                internal("writing a loan", e)
            }
        })?;
        let mut next = item.clone();
        next.status = ItemStatus::OnLoan;
        next.location = None;
        next.transit_to = None;
        next.hold_id = None;
        next.due_date = Some(decision.due_date);
        self.write_item(&mut ch, &item, next).await?;
        // rule S3; the subject is the item, not the patron (V1)
        ch.staff_action(actor, "checkout", barcode.as_str());
        let view = self.loan_view_in(&mut ch, &loan).await?;
        self.commit(ch).await?;
        metrics::counter!("kitsuki_circulation_checkouts_total", "branch" => self.inner.branch.code())
            .increment(1);
        Ok(view)
    }

    /// Checks `barcode` in at this branch (L5: any branch) and tells the desk where it goes
    /// (H7). An item on loan is returned first (V1: the returned record forgets the patron
    /// unless they keep a reading history). Any item can be scanned: a copy pulled from the
    /// shelf for a hold, an item arriving from transit (onto this hold shelf when this is its
    /// pickup branch), an item on its way elsewhere.
    #[tracing::instrument(skip(self), fields(branch = %self.inner.branch))]
    pub async fn checkin(
        &self,
        barcode: &Barcode,
        actor: &str,
    ) -> Result<pb::CheckinResponse, ServiceError> {
        let pre = self.item(barcode).await?;
        let pre_loan = {
            let mut conn = self.conn().await?;
            store::loan_of_item(&mut conn, barcode)
                .await
                .map_err(|e| internal("reading a loan", e))?
        };
        // Asked before the change (no call out under a lock). If patron-account cannot
        // answer, the item is still taken back, and the record keeps no reader (V1's default).
        let history = match &pre_loan {
            Some(l) => self.reading_history(&l.loan.patron).await,
            None => ReadingHistory::NotKept,
        };
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.title).await?;
        let item = store::get_item(ch.conn(), barcode)
            .await
            .map_err(|e| internal("reading an item", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::ItemNotFound))?;
        let mut returned = false;
        if let Some(loan) = store::loan_of_item(ch.conn(), barcode)
            .await
            .map_err(|e| internal("reading a loan", e))?
        {
            // The patron asked about is the one of this very loan, or their choice does not
            // apply (returned and lent again meanwhile).
            let history = if pre_loan.as_ref().map(|l| &l.loan_id) == Some(&loan.loan_id) {
                history
            } else {
                ReadingHistory::NotKept
            };
            let record = privacy::returned_loan(&loan.loan, ch.now, self.inner.branch, history);
            store::end_loan(ch.conn(), &loan.loan_id, &record)
                .await
                .map_err(|e| internal("ending a loan", e))?;
            if record.reader.is_none() {
                store::forget_fulfilled_holds(ch.conn(), barcode, &loan.loan.patron)
                    .await
                    .map_err(|e| internal("forgetting a reader", e))?;
            }
            returned = true;
        }
        // The item is in staff's hands: whatever waited to be taken off a hold shelf has
        // been (S1 list of expired holds).
        store::clear_off_shelf(ch.conn(), barcode)
            .await
            .map_err(|e| internal("clearing the shelf list", e))?;
        let allocation = match &item.hold_id {
            Some(id) => store::get_hold(ch.conn(), id.as_str())
                .await
                .map_err(|e| internal("reading a hold", e))?
                .map(|r| Allocation {
                    hold_id: r.hold.id.clone(),
                    pickup: r.hold.pickup,
                    status: r.hold.status(),
                }),
            None => None,
        };
        let queue = self.queue(&mut ch, &item.title).await?;
        let facts = ItemFacts {
            barcode: item.barcode.clone(),
            home: item.home,
        };
        let decision = route_checkin(&facts, self.inner.branch, allocation.as_ref(), &queue);
        let after = self
            .carry_out(&mut ch, &item, self.inner.branch, &decision)
            .await?;
        ch.staff_action(actor, "checkin", barcode.as_str());
        self.commit(ch).await?;
        metrics::counter!("kitsuki_circulation_checkins_total", "branch" => self.inner.branch.code(), "routing" => decision.routing.code())
            .increment(1);
        Ok(pb::CheckinResponse {
            routing: decision.routing.code().to_string(),
            to_branch: match &decision.routing {
                crate::domain::routing::Routing::Transit { to, .. } => to.code().to_string(),
                _ => String::new(),
            },
            hold_id: after
                .hold_id
                .map(|h| h.as_str().to_string())
                .unwrap_or_default(),
            barcode: after.barcode.as_str().to_string(),
            title_id: after.title.as_str().to_string(),
            returned,
        })
    }

    /// Rule L2: renews a loan once, from the renewal date for the loan period, if it is not
    /// overdue, the patron has no overdue loan and no hold waits on the title. A patron may
    /// renew only their own loan (another's is `loan_not_found`); staff any loan.
    #[tracing::instrument(skip(self, by), fields(branch = %self.inner.branch))]
    pub async fn renew(&self, loan_id: &str, by: Requester<'_>) -> Result<pb::Loan, ServiceError> {
        let actor = match by {
            Requester::Staff { actor } => staff_actor(actor)?,
            Requester::Patron(_) => "",
        };
        let mine = |row: &LoanRow| match by {
            Requester::Patron(card) => &row.loan.patron == card,
            Requester::Staff { .. } => true,
        };
        let not_found = || ServiceError::new(ErrorCode::LoanNotFound);
        let pre = {
            let mut conn = self.conn().await?;
            store::get_loan(&mut conn, loan_id)
                .await
                .map_err(|e| internal("reading a loan", e))?
        }
        .filter(|r| mine(r))
        .ok_or_else(not_found)?;
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.loan.title).await?;
        ch.lock_patron(&pre.loan.patron).await?;
        let row = store::get_loan(ch.conn(), loan_id)
            .await
            .map_err(|e| internal("reading a loan", e))?
            .filter(|r| mine(r) && r.loan.patron == pre.loan.patron)
            .ok_or_else(not_found)?;
        let patron_loans: Vec<Loan> = store::loans_of(ch.conn(), &row.loan.patron)
            .await
            .map_err(|e| internal("reading loans", e))?
            .into_iter()
            .map(|r| r.loan)
            .collect();
        let waiting: Vec<HoldStatus> = self
            .queue(&mut ch, &row.loan.title)
            .await?
            .holds()
            .iter()
            .map(|h| h.status())
            .collect();
        let config = &self.inner.config;
        let due = loans::renew(
            &config.loans,
            &config.calendars,
            &row.loan,
            &patron_loans,
            &waiting,
            ch.now,
        )
        .map_err(ServiceError::new)?;
        store::renew_loan(ch.conn(), loan_id, due)
            .await
            .map_err(|e| internal("renewing", e))?;
        let item = store::get_item(ch.conn(), &row.loan.barcode)
            .await
            .map_err(|e| internal("reading an item", e))?
            .ok_or_else(|| internal("renewing", "the loan's item vanished"))?;
        let mut next = item.clone();
        next.due_date = Some(due);
        self.write_item(&mut ch, &item, next).await?;
        ch.staff_action(actor, "renew", row.loan.barcode.as_str());
        let renewed = LoanRow {
            loan_id: row.loan_id.clone(),
            loan: Loan {
                due_date: due,
                renewed: true,
                ..row.loan.clone()
            },
        };
        let view = self.loan_view_in(&mut ch, &renewed).await?;
        self.commit(ch).await?;
        Ok(view)
    }

    /// An item of the projection, read outside a change; `item_not_found` if unknown.
    async fn item(&self, barcode: &Barcode) -> Result<ItemRow, ServiceError> {
        let mut conn = self.conn().await?;
        store::get_item(&mut conn, barcode)
            .await
            .map_err(|e| internal("reading an item", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::ItemNotFound))
    }

    /// Rule V1: whether the patron keeps a reading history. When patron-account cannot say,
    /// nothing is kept (the default of V1).
    async fn reading_history(&self, card: &CardNumber) -> ReadingHistory {
        match self.inner.patrons.facts(card).await {
            Ok(Some(p)) if p.reading_history => ReadingHistory::Kept,
            Ok(_) => ReadingHistory::NotKept,
            Err(err) => {
                tracing::warn!(error = %err, "reading-history choice unknown; keeping no reader");
                ReadingHistory::NotKept
            }
        }
    }
}
