//! Retention (ARCHITECTURE.md "Retention"): rows that only record the past are deleted once
//! their period is over, so that no table grows without end. The periods live here (one
//! home); each purge is a small function beside its table's store (`inbox::forget_before`,
//! the patron service's `store::purge_*`, the notification service's delivery log); this
//! module runs a service's purges at its start, then every [`PURGE_EVERY`], and, with the
//! test clock, after every move of the clock (a due job), so that a test steps over the
//! periods instead of waiting for them.

use std::sync::Arc;

use futures::future::BoxFuture;
use time::{Duration, OffsetDateTime};
use tokio::task::JoinHandle;

use crate::clock::{SharedClock, format_instant};
use crate::db::Db;
use crate::shutdown::Shutdown;
use crate::testclock::DueJobs;

/// How often the purges run.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Email-verification and password-reset links (P9, P11), patron and staff sessions, kept
/// this long after they expired (for questions such as "did I get a link last week?").
pub const EXPIRED_KEPT: Duration = Duration::days(30);

/// Inbox ids, kept this long after their event was handled: far beyond any redelivery
/// (the bus redelivers within minutes; a consumer down for days replays from its stream
/// position, whose events are younger than this).
pub const INBOX_KEPT: Duration = Duration::days(30);

/// The notification service's delivery log of mails sent, failed or without an address,
/// kept this long after the mail was asked for (a patron's "I never got the ready mail"
/// half a year later). Pending deliveries are never purged.
pub const DELIVERY_LOG_KEPT: Duration = Duration::days(180);

/// One service's purges: deletes what is past its period at the given instant and answers
/// how many rows went.
pub type Purge =
    Arc<dyn Fn(OffsetDateTime) -> BoxFuture<'static, Result<u64, sqlx::Error>> + Send + Sync>;

/// Outbox rows already published, kept this long after they were written: the relay never
/// reads a published row again (the bus keeps the event), so this is only for an operator
/// asking "was it sent?" within the week.
pub const OUTBOX_KEPT: Duration = Duration::days(7);

/// The event bookkeeping every service database has: inbox ids handled more than
/// [`INBOX_KEPT`] before `now`, and outbox rows published and written more than
/// [`OUTBOX_KEPT`] before it. Unpublished outbox rows are never purged (nothing is lost).
pub async fn purge_event_rows(db: &Db, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
    let inbox = crate::inbox::forget_before(db, &format_instant(now - INBOX_KEPT)).await?;
    let outbox = crate::outbox::purge_published(db, &format_instant(now - OUTBOX_KEPT)).await?;
    Ok(inbox + outbox)
}

/// A purge of the event bookkeeping of `db` alone (services whose own tables keep nothing
/// past).
pub fn event_rows_purge(db: Db) -> Purge {
    Arc::new(move |now| {
        let db = db.clone();
        Box::pin(async move { purge_event_rows(&db, now).await })
    })
}

/// Runs `purge` at once, then every [`PURGE_EVERY`] until `shutdown`, and after every move
/// of the test clock (registered in `due_jobs`). Returns the periodic task, for
/// [`Shutdown::track`].
pub fn schedule(
    service: &'static str,
    clock: SharedClock,
    purge: Purge,
    due_jobs: &DueJobs,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let (job_clock, job_purge) = (clock.clone(), purge.clone());
    due_jobs.register(move || {
        let (clock, purge) = (job_clock.clone(), job_purge.clone());
        Box::pin(async move { run_once(service, &clock, &purge).await })
    });
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => run_once(service, &clock, &purge).await,
            }
        }
    })
}

async fn run_once(service: &'static str, clock: &SharedClock, purge: &Purge) {
    match purge(clock.now()).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(service, rows, "retention: purged rows past their period"),
        // Tried again at the next round; nothing depends on it in between.
        Err(e) => tracing::warn!(service, error = %e, "retention: purge failed"),
    }
}
