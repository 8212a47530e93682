//! Holds: placing them on the web (H1–H5, H11) or at a counter (S1), one queue per title
//! (H6), staff review (H5), cancellation (H10) and this branch's hold-shelf expiry (H9).
//! Every change takes the title's guard first, so that positions stay distinct and an item
//! is never allocated twice.

use kitsuki_proto::circulation as pb;
use kitsuki_proto::{ErrorCode, ServiceError};

use super::{Circulation, HoldRequest, Requester, internal, staff_actor};
use crate::domain::HoldId;
use crate::domain::calendar::library_date;
use crate::domain::holdability::{self, HoldOrigin, PatronFacts, TitleFacts};
use crate::domain::holds::{CancelledBy, ConfirmedBy, Hold, HoldEvent, HoldStatus};
use crate::domain::loans::Loan;
use crate::domain::shelf::due_for_expiry;
use crate::store::{self, HoldRow, Origin};

impl Circulation {
    /// Places a hold: a web hold (provisional, then confirmed at once unless staff review
    /// them, H5) or a counter hold at this branch (confirmed, S1). The first refusal of the
    /// core in the order of `holdability::hold_block`; before it, `patron_not_found`, and for
    /// a web hold `web_service_not_enabled` (P3).
    #[tracing::instrument(skip(self, req), fields(branch = %self.inner.branch, title = %req.title))]
    pub async fn place_hold(&self, req: &HoldRequest) -> Result<pb::Hold, ServiceError> {
        let origin = match req.origin {
            HoldOrigin::Web => Origin::Web,
            HoldOrigin::Counter { branch } => {
                self.check_desk_branch(branch.code())?;
                staff_actor(&req.actor)?;
                Origin::Counter(branch)
            }
        };
        let patron = self.patron(&req.card).await?;
        if origin == Origin::Web && !patron.web_enabled {
            // rules P3, H3: web holds are for patrons registered for the web service
            return Err(ServiceError::new(ErrorCode::WebServiceNotEnabled));
        }
        let mut ch = self.begin().await?;
        if !ch.lock_title(&req.title).await? {
            // rule H1: no branch has a copy that circulation knows of
            return Err(ServiceError::new(ErrorCode::HoldNotHeldHere));
        }
        ch.lock_patron(&req.card).await?;
        let counts = store::title_counts(ch.conn(), &req.title)
            .await
            .map_err(|e| internal("counting copies", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::HoldNotHeldHere))?;
        let loans: Vec<Loan> = store::loans_of(ch.conn(), &req.card)
            .await
            .map_err(|e| internal("reading loans", e))?
            .into_iter()
            .map(|r| r.loan)
            .collect();
        let holds: Vec<Hold> = store::holds_of(ch.conn(), &req.card, None)
            .await
            .map_err(|e| internal("reading holds", e))?
            .into_iter()
            .map(|r| r.hold)
            .collect();
        let policy = &self.inner.config.holds;
        holdability::check_hold(
            policy,
            req.origin,
            &TitleFacts {
                title: req.title.clone(),
                material: counts.material,
                copies: counts.copies,
                copies_on_shelf: counts.copies_on_shelf,
            },
            &PatronFacts {
                email_verified: patron.email_verified,
                loans: &loans,
                holds: &holds,
            },
            ch.now,
        )
        .map_err(ServiceError::new)?;
        let seq = store::next_hold_seq(ch.conn(), &req.title)
            .await
            .map_err(|e| internal("numbering a hold", e))?;
        // Rule H6: queue order is placement order. Under the title's guard the sequence is
        // that order; the instant is kept from going backwards against it (three processes'
        // clocks may differ slightly), so that (placed_at, seq) never reorders a queue.
        let latest = store::latest_placement(ch.conn(), &req.title)
            .await
            .map_err(|e| internal("reading a queue", e))?;
        let placed_at = latest.map_or(ch.now, |l| l.max(ch.now));
        let row = HoldRow {
            hold: Hold {
                id: HoldId::new(uuid::Uuid::now_v7().to_string()),
                patron: req.card.clone(),
                title: req.title.clone(),
                pickup: req.pickup,
                placed_at,
                seq: u64::try_from(seq).unwrap_or(u64::MAX),
                state: holdability::initial_state(req.origin),
            },
            receipt_mail: req.receipt_mail && origin == Origin::Web,
            origin,
            notice_event_id: None,
            reason: None,
            off_shelf_pending: false,
            updated_at: ch.at.clone(),
        };
        {
            let (conn, at) = ch.conn_at();
            store::insert_hold(conn, &row, at)
        }
        .await
        .map_err(|e| {
            if kitsuki_platform::db::is_unique_violation(&e) {
                // The partial unique index of H11 (the guard makes this unreachable).
                ServiceError::new(ErrorCode::HoldDuplicate)
            } else {
                internal("writing a hold", e)
            }
        })?;
        ch.placed(&row).await?;
        let row = match holdability::auto_confirmation(policy, req.origin) {
            Some(event) => self.transition(&mut ch, &row, &event, |_| {}).await?,
            None => {
                if row.hold.status() == HoldStatus::Confirmed {
                    ch.confirmed(&row).await?;
                }
                row
            }
        };
        ch.queue_changed(&req.title);
        ch.staff_action(&req.actor, "place_hold", row.hold.id.as_str());
        let queue = self.queue(&mut ch, &req.title).await?;
        let view = super::views::hold_view(&row, queue.position(&row.hold.id));
        self.commit(ch).await?;
        metrics::counter!("kitsuki_circulation_holds_placed_total", "branch" => req.pickup.code())
            .increment(1);
        Ok(view)
    }

    /// Rule H10: cancels a hold until it is checked out. The patron cancels their own (another
    /// patron's is `hold_not_found`); staff cancel for the patron (no `reason`) or as the
    /// library (`reason`, which the cancellation mail carries, N1). A held item is released
    /// as on expiry (H9): to the next confirmed hold, or home.
    #[tracing::instrument(skip(self, by, reason), fields(branch = %self.inner.branch))]
    pub async fn cancel_hold(
        &self,
        hold_id: &str,
        by: Requester<'_>,
        reason: Option<&str>,
    ) -> Result<pb::Hold, ServiceError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let (actor, cancelled_by) = match by {
            Requester::Staff { actor } => (
                staff_actor(actor)?,
                if reason.is_some() {
                    CancelledBy::Staff
                } else {
                    CancelledBy::Patron
                },
            ),
            Requester::Patron(_) => {
                if reason.is_some() {
                    return Err(ServiceError::with_detail(ErrorCode::InvalidInput, "reason"));
                }
                ("", CancelledBy::Patron)
            }
        };
        let pre = self.hold_for(hold_id, by).await?;
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.hold.title).await?;
        let before = store::get_hold(ch.conn(), hold_id)
            .await
            .map_err(|e| internal("reading a hold", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::HoldNotFound))?;
        let reason = reason.map(str::to_string);
        let mut ended = self
            .transition(
                &mut ch,
                &before,
                &HoldEvent::Cancel { by: cancelled_by },
                |h| h.reason = reason,
            )
            .await?;
        if self.release(&mut ch, &before).await? {
            ended.off_shelf_pending = true;
            {
                let (conn, at) = ch.conn_at();
                store::update_hold(conn, &ended, at)
            }
            .await
            .map_err(|e| internal("writing a hold", e))?;
        }
        ch.staff_action(actor, "cancel_hold", hold_id);
        self.commit(ch).await?;
        Ok(super::views::hold_view(&ended, None))
    }

    /// Rule H5 (staff review mode): confirms a provisional hold.
    #[tracing::instrument(skip(self), fields(branch = %self.inner.branch))]
    pub async fn confirm_hold(&self, hold_id: &str, actor: &str) -> Result<pb::Hold, ServiceError> {
        let actor = staff_actor(actor)?;
        self.review(
            hold_id,
            actor,
            "confirm_hold",
            HoldEvent::Confirm {
                by: ConfirmedBy::Staff,
            },
            None,
        )
        .await
    }

    /// Rule H5: rejects a provisional hold with a reason for the patron (the rejection mail).
    #[tracing::instrument(skip(self, reason), fields(branch = %self.inner.branch))]
    pub async fn reject_hold(
        &self,
        hold_id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<pb::Hold, ServiceError> {
        let actor = staff_actor(actor)?;
        let reason = Some(reason.trim().to_string()).filter(|r| !r.is_empty());
        self.review(
            hold_id,
            actor,
            "reject_hold",
            HoldEvent::Reject {
                reason: reason.clone(),
            },
            reason,
        )
        .await
    }

    async fn review(
        &self,
        hold_id: &str,
        actor: &str,
        action: &'static str,
        event: HoldEvent,
        reason: Option<String>,
    ) -> Result<pb::Hold, ServiceError> {
        let pre = self.hold_for(hold_id, Requester::Staff { actor }).await?;
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.hold.title).await?;
        let before = store::get_hold(ch.conn(), hold_id)
            .await
            .map_err(|e| internal("reading a hold", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::HoldNotFound))?;
        let after = self
            .transition(&mut ch, &before, &event, |h| {
                if reason.is_some() {
                    h.reason = reason;
                }
            })
            .await?;
        ch.staff_action(actor, action, hold_id);
        let queue = self.queue(&mut ch, &after.hold.title).await?;
        let view = super::views::hold_view(&after, queue.position(&after.hold.id));
        self.commit(ch).await?;
        Ok(view)
    }

    /// Rule H9: expires the ready holds of this pickup branch whose shelf period is over,
    /// each in its own change, and passes each item to the next hold or sends it home.
    /// What the minute timer runs; returns how many expired.
    #[tracing::instrument(skip(self), fields(branch = %self.inner.branch))]
    pub async fn run_due_jobs(&self) -> Result<usize, ServiceError> {
        let now = self.inner.clock.now();
        let ready: Vec<Hold> = {
            let mut conn = self.conn().await?;
            store::holds_at(&mut conn, self.inner.branch, &[HoldStatus::Ready])
                .await
                .map_err(|e| internal("reading the hold shelf", e))?
                .into_iter()
                .map(|r| r.hold)
                .collect()
        };
        let due: Vec<HoldId> = due_for_expiry(self.inner.branch, &ready, now)
            .into_iter()
            .map(|h| h.id.clone())
            .collect();
        let mut expired = 0;
        for id in due {
            if self.expire(&id).await? {
                expired += 1;
            }
        }
        if expired > 0 {
            tracing::info!(expired, today = %library_date(now), "hold-shelf expiry");
            metrics::counter!("kitsuki_circulation_holds_expired_total", "branch" => self.inner.branch.code())
                .increment(expired as u64);
        }
        Ok(expired)
    }

    /// Expires one hold if it is still ready and its period is over; false otherwise (it was
    /// collected or cancelled meanwhile).
    async fn expire(&self, hold_id: &HoldId) -> Result<bool, ServiceError> {
        let pre = self
            .hold_for(hold_id.as_str(), Requester::Staff { actor: "" })
            .await;
        let Ok(pre) = pre else { return Ok(false) };
        let mut ch = self.begin().await?;
        ch.lock_title(&pre.hold.title).await?;
        let Some(before) = store::get_hold(ch.conn(), hold_id.as_str())
            .await
            .map_err(|e| internal("reading a hold", e))?
        else {
            return Ok(false);
        };
        if before.hold.status() != HoldStatus::Ready {
            return Ok(false);
        }
        let now = ch.now;
        let mut ended = match self
            .transition(&mut ch, &before, &HoldEvent::Expire { now }, |_| {})
            .await
        {
            Ok(h) => h,
            // Not over after all (a clock moved back): leave it for a later run.
            Err(e) if e.code == ErrorCode::HoldStateConflict => return Ok(false),
            Err(e) => return Err(e),
        };
        if self.release(&mut ch, &before).await? {
            ended.off_shelf_pending = true;
            {
                let (conn, at) = ch.conn_at();
                store::update_hold(conn, &ended, at)
            }
            .await
            .map_err(|e| internal("writing a hold", e))?;
        }
        self.commit(ch).await?;
        Ok(true)
    }

    /// A hold read outside a change, if the requester may act on it: the patron on their
    /// own, staff on any. `hold_not_found` otherwise (another's hold is not told apart).
    pub(super) async fn hold_for(
        &self,
        hold_id: &str,
        by: Requester<'_>,
    ) -> Result<HoldRow, ServiceError> {
        let mut conn = self.conn().await?;
        store::get_hold(&mut conn, hold_id)
            .await
            .map_err(|e| internal("reading a hold", e))?
            .filter(|r| match by {
                Requester::Patron(card) => &r.hold.patron == card,
                Requester::Staff { .. } => true,
            })
            .ok_or_else(|| ServiceError::new(ErrorCode::HoldNotFound))
    }
}
