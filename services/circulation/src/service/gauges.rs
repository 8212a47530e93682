//! The metrics of this branch instance that the branch dashboard and the alerts read
//! (k8s/base/dashboards/branch.json, k8s/base/monitoring.yaml), every one labelled with
//! `branch`:
//!
//! - gauges, counted by [`Circulation::run_gauge_job`] from this branch's own rows at start
//!   and every [`GAUGES_EVERY`]: the hold shelf, the holds about to expire or ended and not
//!   yet taken off, the transits in and out, and the holds whose ready mail is not sent yet
//!   with the age of the oldest (the "ready holds whose mail is not sent" alert);
//! - the counters the desk and the hold operations increase, registered at 0 for this branch
//!   by [`register_counters`], so that a quiet branch shows 0 rather than "no data" and the
//!   dashboards' names exist before the first checkout (tests/metrics_exported.rs).
//!
//! The gauges are read from the shared database, so any instance could count any branch;
//! each counts its own, so that a branch whose instance is down shows as such.

use std::future::Future;
use std::time::Duration;

use kitsuki_platform::clock::{format_date, parse_instant};
use kitsuki_proto::Branch;
use sqlx::Row;

use super::Circulation;
use crate::domain::calendar::library_date;

/// How often the gauges are counted: about one Prometheus scrape interval. Five small
/// indexed counts per round.
pub const GAUGES_EVERY: Duration = Duration::from_secs(15);

/// The desk's and the holds' counters at 0 for `branch` (the label sets the code uses).
pub(super) fn register_counters(branch: Branch) {
    let b = branch.code();
    metrics::counter!("kitsuki_circulation_checkouts_total", "branch" => b).increment(0);
    // The values of `Routing::code` (a unit test below holds them together).
    for routing in ROUTINGS {
        metrics::counter!("kitsuki_circulation_checkins_total", "branch" => b, "routing" => routing)
            .increment(0);
    }
    metrics::counter!("kitsuki_circulation_holds_placed_total", "branch" => b).increment(0);
    metrics::counter!("kitsuki_circulation_holds_expired_total", "branch" => b).increment(0);
}

/// The `routing` label values of checkins.
const ROUTINGS: [&str; 3] = ["shelve", "hold_shelf", "transit"];

/// What one round counts for a branch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BranchGauges {
    /// Holds whose item is on this branch's hold shelf (awaiting their mail, or ready; H7, H8).
    pub shelf: i64,
    /// Ready holds whose last day on the shelf (H9) is today or tomorrow (or already past,
    /// not yet expired by the job).
    pub expiring: i64,
    /// Ended holds whose item still sits on this hold shelf, to be taken off (S1).
    pub ended_on_shelf: i64,
    /// Items in transit to this branch (pickup routing, H7).
    pub transit_in: i64,
    /// Items in transit sent from this branch.
    pub transit_out: i64,
    /// Holds of this pickup branch whose ready mail is not sent yet (H8).
    pub awaiting_notice: i64,
    /// Seconds since the oldest of them began waiting (0 when none).
    pub oldest_awaiting_seconds: f64,
}

impl Circulation {
    /// Counts this branch's gauges now and every [`GAUGES_EVERY`] until `shutdown`. A
    /// database that fails leaves the last figures and is asked again next round.
    pub(super) async fn run_gauge_job(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(GAUGES_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            match self.branch_gauges().await {
                Ok(g) => self.record_gauges(&g),
                Err(err) => tracing::warn!(error = %err, "counting the branch gauges failed"),
            }
        }
    }

    fn record_gauges(&self, g: &BranchGauges) {
        let b = self.inner.branch.code();
        metrics::gauge!("kitsuki_circulation_hold_shelf_holds", "branch" => b).set(g.shelf as f64);
        metrics::gauge!("kitsuki_circulation_hold_shelf_expiring", "branch" => b, "state" => "expiring")
            .set(g.expiring as f64);
        metrics::gauge!("kitsuki_circulation_hold_shelf_expiring", "branch" => b, "state" => "ended")
            .set(g.ended_on_shelf as f64);
        metrics::gauge!("kitsuki_circulation_transits", "branch" => b, "direction" => "in")
            .set(g.transit_in as f64);
        metrics::gauge!("kitsuki_circulation_transits", "branch" => b, "direction" => "out")
            .set(g.transit_out as f64);
        metrics::gauge!("kitsuki_circulation_holds_awaiting_notice", "branch" => b)
            .set(g.awaiting_notice as f64);
        metrics::gauge!("kitsuki_circulation_holds_awaiting_notice_oldest_seconds", "branch" => b)
            .set(g.oldest_awaiting_seconds);
    }

    /// This branch's figures, read now (on the instance's clock, so the test clock too).
    pub async fn branch_gauges(&self) -> Result<BranchGauges, sqlx::Error> {
        let branch = self.inner.branch.code();
        let now = self.inner.clock.now();
        let tomorrow = library_date(now)
            .next_day()
            .map(format_date)
            .unwrap_or_default();
        let mut conn = self.inner.db.pool.acquire().await?;
        // Statuses as store.rs writes them; each count is covered by an index
        // (holds_pickup, items_transit_to, items_location).
        let count = |sql: &'static str| sqlx::query(sql).bind(branch);
        let shelf: i64 = count(
            "SELECT COUNT(*) FROM holds WHERE pickup_branch = $1
             AND status IN ('awaiting_notice', 'ready')",
        )
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
        let expiring: i64 = count(
            "SELECT COUNT(*) FROM holds WHERE pickup_branch = $1 AND status = 'ready'
             AND ready_until <= $2",
        )
        .bind(tomorrow)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
        let ended_on_shelf: i64 =
            count("SELECT COUNT(*) FROM holds WHERE pickup_branch = $1 AND off_shelf_pending = 1")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        let transit_in: i64 =
            count("SELECT COUNT(*) FROM items WHERE status = 'in_transit' AND transit_to = $1")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        let transit_out: i64 =
            count("SELECT COUNT(*) FROM items WHERE status = 'in_transit' AND location = $1")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        // A hold's `updated_at` is when it last changed: for one awaiting its mail, when
        // its item reached the hold shelf (nothing else changes it while it waits).
        let row = count(
            "SELECT COUNT(*), MIN(updated_at) FROM holds WHERE pickup_branch = $1
             AND status = 'awaiting_notice'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let awaiting_notice: i64 = row.try_get(0)?;
        let oldest: Option<String> = row.try_get(1)?;
        let oldest_awaiting_seconds = oldest
            .as_deref()
            .and_then(parse_instant)
            .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
        Ok(BranchGauges {
            shelf,
            expiring,
            ended_on_shelf,
            transit_in,
            transit_out,
            awaiting_notice,
            oldest_awaiting_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HoldId;
    use crate::domain::routing::Routing;

    #[test]
    fn every_routing_code_is_registered() {
        for r in [
            Routing::Shelve,
            Routing::HoldShelf {
                hold_id: HoldId::new("h".to_string()),
            },
            Routing::Transit {
                to: Branch::Ota,
                hold_id: None,
            },
        ] {
            assert!(ROUTINGS.contains(&r.code()), "{}", r.code());
        }
    }
}
