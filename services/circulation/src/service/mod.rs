//! The circulation shell of one branch instance around the pure core (`domain`): the
//! operations of the desk and of the patron web, each one transaction that writes its change
//! and its events together (ARCHITECTURE.md "Nothing lost"), the consumers of catalog and
//! notification events, and this branch's hold-shelf expiry job.
//!
//! - [`change`]: the transaction of one change, its guards and the events it collects.
//! - [`desk`]: checkout, checkin with routing, renewal (L1–L5, H7, H8, V1).
//! - [`holds`]: placing, confirming, rejecting, cancelling and expiring holds (H1–H11).
//! - [`consume`]: the item projection and the ready mail's `MailSent`, and the loops that run
//!   in the background.
//! - [`views`]: what the patron and the desk lists see (H6, L2, S1).
//! - [`gauges`]: this branch's metrics for the dashboards and alerts, counted every 15 s.
//!
//! The three instances share one database: each may change any hold or item (a patron on the
//! web may be served by any of them), and every change of a title's queue or items takes that
//! title's guard first, so that two instances never allocate at once (H7).

mod change;
mod consume;
mod desk;
mod gauges;
mod holds;
mod views;

use std::sync::Arc;

use kitsuki_platform::bus::SharedBus;
use kitsuki_platform::clock::SharedClock;
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::outbox::{self, Relay};
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_proto::{Branch, CardNumber, ErrorCode, ServiceError, TitleId};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::CirculationConfig;
use crate::domain::holdability::HoldOrigin;
use crate::patrons::{PatronFacts, PatronRecord};

pub use consume::{Recorded, material};
pub use gauges::{BranchGauges, GAUGES_EVERY};

static MIGRATIONS_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Subject (relative) of the catalog's item events this service projects.
pub const ITEM_CREATED_FILTER: &str = "catalog.item.created.*";
/// Subject (relative) of the notification service's sent mails.
pub const MAIL_SENT_SUBJECT: &str = "notification.mail.sent";
/// The template name of the ready mail (H8), as notification writes it in `MailSent`.
pub const READY_MAIL_TEMPLATE: &str = "hold_ready";

/// One branch's circulation instance. Clones share one state.
#[derive(Debug, Clone)]
pub struct Circulation {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    branch: Branch,
    clock: SharedClock,
    config: CirculationConfig,
    patrons: Arc<dyn PatronFacts>,
    relay_wake: Arc<Notify>,
}

/// Who asks, for the operations a patron or staff may do (renewal L2, cancellation H10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// The patron, on the web (or by phone through staff acting as the patron).
    Patron(&'a CardNumber),
    /// A staff member at this branch's desk (S1, S3).
    Staff { actor: &'a str },
}

/// A hold to place (H4, S1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub card: CardNumber,
    pub title: TitleId,
    pub pickup: Branch,
    /// H4: the provisional-receipt mail; always false for a counter hold.
    pub receipt_mail: bool,
    /// `HoldOrigin::Counter` only with this instance's branch (S1).
    pub origin: HoldOrigin,
    /// The staff member placing a counter hold (S3); empty on the web.
    pub actor: String,
}

fn internal(context: &str, err: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %err, "circulation failure while {context}");
    ServiceError::internal()
}

/// A staff action needs its actor (S3: every staff action is recorded with who).
fn staff_actor(actor: &str) -> Result<&str, ServiceError> {
    let a = actor.trim();
    if a.is_empty() {
        Err(ServiceError::with_detail(ErrorCode::InvalidInput, "actor"))
    } else {
        Ok(a)
    }
}

impl Circulation {
    /// Migrates the shared database (safe when the three instances start together: the
    /// migrator and the outbox tables take turns under locks) and builds the instance of
    /// `branch`.
    pub async fn open(
        db: Db,
        branch: Branch,
        clock: SharedClock,
        config: CirculationConfig,
        patrons: Arc<dyn PatronFacts>,
    ) -> anyhow::Result<Circulation> {
        db::migrate(&db, &MIGRATIONS_PG, &MIGRATIONS_SQLITE).await?;
        outbox::ensure_tables(&db).await?;
        Ok(Circulation {
            inner: Arc::new(Inner {
                db,
                branch,
                clock,
                config,
                patrons,
                relay_wake: Arc::new(Notify::new()),
            }),
        })
    }

    pub fn branch(&self) -> Branch {
        self.inner.branch
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn config(&self) -> &CirculationConfig {
        &self.inner.config
    }

    /// Notified after every commit that wrote to the outbox.
    pub fn relay_wake(&self) -> Arc<Notify> {
        self.inner.relay_wake.clone()
    }

    /// Starts what the instance runs in the background until `shutdown`: the outbox relay
    /// (woken by every commit), the consumer of catalog items (the projection), the consumer
    /// of sent mails (H8, H9), this branch's expiry job every
    /// [`CirculationConfig::expiry_every`] (H9), and its metrics' gauges (`gauges`).
    ///
    /// Returns the tasks that end on the signal, for [`Shutdown::track`]. The relay is
    /// handed to [`Shutdown::track_last`] here: it stops in the shutdown's last phase,
    /// after publishing what the requests and the other tasks committed while stopping.
    pub fn spawn(&self, bus: SharedBus, shutdown: &Shutdown) -> Vec<JoinHandle<()>> {
        let stop = |s: &Shutdown| {
            let s = s.clone();
            async move { s.wait().await }
        };
        let relay = Relay::new(self.inner.db.clone(), bus.clone(), self.relay_wake());
        let last = shutdown.clone();
        shutdown.track_last([tokio::spawn(
            relay.run(async move { last.wait_last_phase().await }),
        )]);
        let (items, mails, jobs) = (self.clone(), self.clone(), self.clone());
        let (items_bus, mails_bus) = (bus.clone(), bus);
        let (i_stop, m_stop, j_stop) = (stop(shutdown), stop(shutdown), stop(shutdown));
        gauges::register_counters(self.inner.branch);
        let (gauges, g_stop) = (self.clone(), stop(shutdown));
        vec![
            tokio::spawn(async move { items.run_item_consumer(items_bus, i_stop).await }),
            tokio::spawn(async move { mails.run_mail_consumer(mails_bus, m_stop).await }),
            tokio::spawn(async move { jobs.run_expiry_job(j_stop).await }),
            tokio::spawn(async move { gauges.run_gauge_job(g_stop).await }),
        ]
    }

    /// Registers this branch's due jobs (the hold-shelf expiry of H9) with the test clock,
    /// which runs them after it moves (API.md `POST /api/v1/test/clock`).
    pub fn register_due_jobs(&self, jobs: &kitsuki_platform::testclock::DueJobs) {
        let this = self.clone();
        jobs.register(move || {
            let this = this.clone();
            Box::pin(async move {
                if let Err(err) = this.run_due_jobs().await {
                    tracing::warn!(error = %err, "hold-shelf expiry after a clock move failed");
                }
            })
        });
    }

    /// Rule S1: a desk request names the desk's branch, which must be this instance's
    /// (empty: this one).
    pub fn check_desk_branch(&self, branch: &str) -> Result<(), ServiceError> {
        if branch.trim().is_empty() {
            return Ok(());
        }
        let b = Branch::parse(branch)?;
        if b == self.inner.branch {
            Ok(())
        } else {
            Err(ServiceError::with_detail(
                ErrorCode::InvalidBranch,
                format!("this is the {} instance", self.inner.branch.code()),
            ))
        }
    }

    /// The patron as patron-account knows them; `patron_not_found` for an unknown card.
    async fn patron(&self, card: &CardNumber) -> Result<PatronRecord, ServiceError> {
        self.inner
            .patrons
            .facts(card)
            .await?
            .ok_or_else(|| ServiceError::new(ErrorCode::PatronNotFound))
    }

    /// A connection for reads outside a change.
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ServiceError> {
        self.inner
            .db
            .pool
            .acquire()
            .await
            .map_err(|e| internal("connecting", e))
    }
}
