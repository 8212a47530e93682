//! The outbox and the inbox against both databases: PostgreSQL (a fresh database per test)
//! and SQLite (a fresh file per test), publishing to `MemoryBus` and to the real NATS
//! server (a unique prefix per test). Waits are deadlines around `next()`, never sleeps.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_platform::bus::{
    BatchOutcome, BusError, ConsumerSpec, Delivery, Event, EventBus, MemoryBus, NatsBus, Outgoing,
    PublishOutcome, SharedBus, Subscription,
};
use kitsuki_platform::clock::{Clock, SystemClock, format_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::on_both_backends;
use kitsuki_platform::testing::Backend;
use kitsuki_platform::{inbox, outbox, testing};
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_secs(10);

fn now() -> String {
    format_instant(SystemClock.now())
}

async fn postgres() -> Db {
    ready(testing::fresh_db(Backend::Postgres).await).await
}

async fn ready(db: Db) -> Db {
    outbox::ensure_tables(&db).await.expect("tables");
    // Every service calls it at each start: a second call must be harmless.
    outbox::ensure_tables(&db).await.expect("tables again");
    db
}

async fn nats_bus() -> NatsBus {
    NatsBus::connect_within(
        &testing::nats_url(),
        &testing::unique_prefix(),
        Duration::from_secs(10),
    )
    .await
    .expect("the test NATS server")
}

fn event(n: u8) -> Event {
    Event::new("circulation.kitsuki.loan.created", vec![n]).with_header("kitsuki-event-time", now())
}

/// Enqueues the events in one transaction and commits it.
async fn commit(db: &Db, events: &[Event]) {
    let mut tx = db.pool.begin().await.expect("begin");
    for e in events {
        outbox::enqueue(&mut tx, e, &now()).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
}

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

async fn subscribe(bus: &SharedBus) -> Box<dyn Subscription> {
    bus.subscribe(&ConsumerSpec::new("test", "circulation.>"))
        .await
        .expect("subscribe")
}

async fn rolled_back_events_are_never_published(db: Db) {
    let db = ready(db).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let lost = event(1);
    let kept = event(2);
    let mut tx = db.pool.begin().await.expect("begin");
    outbox::enqueue(&mut tx, &lost, &now())
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    commit(&db, std::slice::from_ref(&kept)).await;

    assert_eq!(
        outbox::publish_pending_once(&db, &bus)
            .await
            .expect("relay"),
        1
    );
    assert_eq!(outbox::pending_count(&db).await.expect("count"), 0);
    // The bus stores synchronously and the relay published one event: it is the kept one.
    let mut sub = subscribe(&bus).await;
    assert_eq!(next(&mut sub).await.event, kept);
}

/// Committed events go out once each, in order; a relay that runs again, or that crashed
/// after publishing but before marking (the marks reset here), adds no second delivery.
async fn committed_events_are_published_once_in_order(db: &Db, bus: &SharedBus) {
    let first: Vec<Event> = (0..5).map(event).collect();
    let second: Vec<Event> = (5..8).map(event).collect();
    commit(db, &first).await;
    commit(db, &second).await;
    let all: Vec<Event> = first.iter().chain(&second).cloned().collect();

    assert_eq!(
        outbox::publish_pending_once(db, bus).await.expect("relay"),
        8
    );
    assert_eq!(
        outbox::publish_pending_once(db, bus)
            .await
            .expect("relay again"),
        0
    );

    sqlx::query("UPDATE outbox SET published = 0")
        .execute(&db.pool)
        .await
        .expect("simulate a crash");
    assert_eq!(
        outbox::publish_pending_once(db, bus)
            .await
            .expect("relay after the crash"),
        8
    );

    let sentinel = event(99);
    commit(db, std::slice::from_ref(&sentinel)).await;
    assert_eq!(
        outbox::publish_pending_once(db, bus)
            .await
            .expect("relay the sentinel"),
        1
    );

    let mut sub = subscribe(bus).await;
    let mut received = Vec::new();
    loop {
        let d = next(&mut sub).await;
        let e = d.event.clone();
        d.ack().await.expect("ack");
        let done = e.id == sentinel.id;
        received.push(e);
        if done {
            break;
        }
    }
    let expected: Vec<Event> = all.iter().chain([&sentinel]).cloned().collect();
    assert_eq!(
        received, expected,
        "each once, in order, headers and payload intact"
    );
    assert_eq!(outbox::pending_count(db).await.expect("count"), 0);
}

async fn committed_events_reach_memory_bus_once_in_order(db: Db) {
    let db = ready(db).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    committed_events_are_published_once_in_order(&db, &bus).await;
}

async fn committed_events_reach_nats_once_in_order(db: Db) {
    let db = ready(db).await;
    let nats = nats_bus().await;
    let bus: SharedBus = Arc::new(nats.clone());
    committed_events_are_published_once_in_order(&db, &bus).await;
    nats.delete_stream().await.expect("delete the test stream");
}

async fn relay_loop_publishes_when_woken_and_stops_on_shutdown(db: Db) {
    let db = ready(db).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(outbox::run_relay(
        db.clone(),
        bus.clone(),
        wake.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut sub = subscribe(&bus).await;
    for n in 0..3 {
        let e = event(n);
        commit(&db, std::slice::from_ref(&e)).await;
        wake.notify_one();
        let d = next(&mut sub).await;
        assert_eq!(d.event, e);
        d.ack().await.expect("ack");
    }
    stop.send(()).expect("the relay is running");
    tokio::time::timeout(DEADLINE, relay)
        .await
        .expect("the relay stops")
        .expect("no panic");
}

/// A relay told to stop still publishes what was committed before: it finishes the round
/// it is in, or makes one last round, so that a process stopped by SIGTERM leaves no event
/// waiting in its outbox for the next start.
async fn relay_stopping_publishes_what_is_committed(db: Db) {
    let db = ready(db).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let mut sub = subscribe(&bus).await;
    let events: Vec<Event> = (0..5).map(event).collect();
    commit(&db, &events).await;
    // Told to stop before it starts: the signal comes while its first round is under way.
    tokio::time::timeout(
        DEADLINE,
        outbox::Relay::new(db.clone(), bus.clone(), Arc::new(Notify::new())).run(async {}),
    )
    .await
    .expect("the relay stops");
    assert_eq!(outbox::pending_count(&db).await.expect("count"), 0);
    for e in &events {
        assert_eq!(&next(&mut sub).await.event, e);
    }
}

async fn enqueue_refuses_an_event_the_bus_would_refuse(db: Db) {
    let db = ready(db).await;
    let bad = Event::new("catalog.item.created", Vec::new()).with_header("Nats-Msg-Id", "mine");
    let mut tx = db.pool.begin().await.expect("begin");
    let err = outbox::enqueue(&mut tx, &bad, &now())
        .await
        .expect_err("refused");
    assert!(matches!(err, sqlx::Error::Encode(_)), "{err:?}");
    tx.rollback().await.expect("rollback");
    let twice = event(1);
    commit(&db, std::slice::from_ref(&twice)).await;
    let mut tx = db.pool.begin().await.expect("begin");
    let err = outbox::enqueue(&mut tx, &twice, &now())
        .await
        .expect_err("one id, one row");
    assert!(db::is_unique_violation(&err), "{err:?}");
}

async fn inbox_first_time_is_true_once_per_consumer(db: Db) {
    let db = ready(db).await;
    let first_time = |consumer: &'static str, id: &'static str| {
        let db = db.clone();
        async move {
            let mut tx = db.pool.begin().await.expect("begin");
            let first = inbox::first_time(&mut tx, consumer, id, &now())
                .await
                .expect("inbox");
            (tx, first)
        }
    };
    let (tx, first) = first_time("notification.hold-ready", "e1").await;
    assert!(first);
    tx.commit().await.expect("commit");
    let (tx, first) = first_time("notification.hold-ready", "e1").await;
    assert!(!first, "handled before");
    tx.rollback().await.expect("rollback");
    let (tx, first) = first_time("catalog.availability", "e1").await;
    assert!(first, "another consumer handles it for itself");
    tx.commit().await.expect("commit");
    // A consumer whose transaction rolled back did not handle the event.
    let (tx, first) = first_time("notification.hold-ready", "e2").await;
    assert!(first);
    tx.rollback().await.expect("rollback");
    let (tx, first) = first_time("notification.hold-ready", "e2").await;
    assert!(first, "the rolled-back handling does not count");
    tx.commit().await.expect("commit");

    assert_eq!(inbox::forget_before(&db, "0000").await.expect("forget"), 0);
    assert_eq!(inbox::forget_before(&db, "9999").await.expect("forget"), 3);
}

async fn published_rows_can_be_purged(db: Db) {
    let db = ready(db).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    commit(&db, &[event(1), event(2)]).await;
    assert_eq!(
        outbox::purge_published(&db, "9999").await.expect("purge"),
        0,
        "unpublished rows stay"
    );
    outbox::publish_pending_once(&db, &bus)
        .await
        .expect("relay");
    assert_eq!(
        outbox::purge_published(&db, "0000").await.expect("purge"),
        0,
        "newer rows stay"
    );
    assert_eq!(
        outbox::purge_published(&db, "9999").await.expect("purge"),
        2
    );
    // seq keeps growing after a purge, so new rows still follow the old ones.
    let later = event(3);
    commit(&db, std::slice::from_ref(&later)).await;
    assert_eq!(
        outbox::publish_pending_once(&db, &bus)
            .await
            .expect("relay"),
        1
    );
}

/// Retention (ARCHITECTURE.md "Retention"): the scheduled purge of a service database takes
/// published outbox rows older than their week, never an unpublished one, however old.
async fn retention_purges_published_outbox_rows_after_their_week(db: Db) {
    let db = ready(db).await;
    use kitsuki_platform::retention::{OUTBOX_KEPT, purge_event_rows};
    let bus: SharedBus = Arc::new(MemoryBus::new());
    commit(&db, &[event(1), event(2)]).await;
    outbox::publish_pending_once(&db, &bus)
        .await
        .expect("relay");
    commit(&db, &[event(3)]).await; // stays unpublished
    let written = SystemClock.now();
    let within = written + OUTBOX_KEPT - time::Duration::hours(1);
    assert_eq!(purge_event_rows(&db, within).await.expect("purge"), 0);
    let after = written + OUTBOX_KEPT + time::Duration::hours(1);
    assert_eq!(purge_event_rows(&db, after).await.expect("purge"), 2);
    assert_eq!(
        outbox::publish_pending_once(&db, &bus)
            .await
            .expect("relay"),
        1,
        "the unpublished row is still there to publish"
    );
}

/// A bus that fails the batch at its event `fail_at` (counted over every batch it is
/// given), once. With `stored`, that event is stored all the same, as when the ack is what
/// got lost.
#[derive(Debug)]
struct FailingOnce {
    inner: SharedBus,
    fail_at: std::sync::Mutex<Option<usize>>,
    stored: bool,
}

#[async_trait]
impl EventBus for FailingOnce {
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError> {
        self.inner.publish(event).await
    }

    async fn publish_many(&self, batch: &[Outgoing]) -> BatchOutcome {
        let fail_at = self.fail_at.lock().unwrap().take();
        let Some(at) = fail_at.filter(|&at| at < batch.len()) else {
            if let Some(at) = fail_at {
                *self.fail_at.lock().unwrap() = Some(at - batch.len());
            }
            return self.inner.publish_many(batch).await;
        };
        let mut outcome = self.inner.publish_many(&batch[..at]).await;
        assert!(outcome.error.is_none());
        if self.stored {
            self.inner
                .publish(&batch[at].event)
                .await
                .expect("store the one whose ack is lost");
        }
        outcome.error = Some(BusError::Unavailable {
            during: "publishing (a test's failure)",
            source: "ack lost".into(),
        });
        outcome
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe(spec).await
    }
}

/// A bus failing in the middle of the second batch: the rows it stored before the failure
/// are marked (one statement), the rest stay; the next round publishes the rest, the one
/// stored but not acknowledged found as a duplicate, and the consumer gets each once, in
/// order.
async fn a_failure_mid_batch_keeps_the_marks_before_it(db: Db, stored: bool) {
    let dir = std::env::temp_dir().join(format!("kitsuki-test-{}", testing::unique_id()));
    let journal: SharedBus = Arc::new(
        MemoryBus::open_journal(&dir.join("bus.db"))
            .await
            .expect("journal"),
    );
    let bus: SharedBus = Arc::new(FailingOnce {
        inner: journal.clone(),
        fail_at: std::sync::Mutex::new(Some(700)),
        stored,
    });
    let events: Vec<Event> = (0..1200u32)
        .map(|i| Event::new("circulation.kitsuki.loan.created", i.to_be_bytes().to_vec()))
        .collect();
    commit(&db, &events).await;
    let err = outbox::publish_pending_once(&db, &bus)
        .await
        .expect_err("the bus fails mid-batch");
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM outbox WHERE event_id = $1")
        .bind(events[700].id.as_str())
        .fetch_one(&db.pool)
        .await
        .expect("the failed row");
    assert!(
        matches!(err, outbox::RelayError::Bus { seq: s, .. } if s == seq),
        "{err:?}"
    );
    assert_eq!(
        outbox::pending_count(&db).await.expect("count"),
        500,
        "the 700 stored before the failure are marked, the failed one is not"
    );
    let unpublished: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM outbox WHERE published = 0 ORDER BY seq")
            .fetch_all(&db.pool)
            .await
            .expect("unpublished");
    assert_eq!(unpublished, ids(&events[700..]));

    assert_eq!(
        outbox::publish_pending_once(&db, &bus)
            .await
            .expect("relay again"),
        500
    );
    assert_eq!(outbox::pending_count(&db).await.expect("count"), 0);
    let mut sub = subscribe(&journal).await;
    for e in &events {
        let d = next(&mut sub).await;
        assert_eq!(&d.event.id, &e.id, "each once, in order");
        d.ack().await.expect("ack");
    }
    let sentinel = event(99);
    journal.publish(&sentinel).await.expect("sentinel");
    assert_eq!(
        next(&mut sub).await.event.id,
        sentinel.id,
        "nothing doubled"
    );
    drop(sub);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn a_failed_publish_keeps_the_marks_before_it(db: Db) {
    let db = ready(db).await;
    a_failure_mid_batch_keeps_the_marks_before_it(db, false).await;
}

async fn a_lost_ack_keeps_the_marks_before_it(db: Db) {
    let db = ready(db).await;
    a_failure_mid_batch_keeps_the_marks_before_it(db, true).await;
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// More rows than a batch, to NATS: batches of sends and acks, each event once, in order.
async fn many_rows_reach_nats_once_in_order(db: Db) {
    let db = ready(db).await;
    let nats = nats_bus().await;
    let bus: SharedBus = Arc::new(nats.clone());
    let events: Vec<Event> = (0..1234u32)
        .map(|i| Event::new("circulation.kitsuki.loan.created", i.to_be_bytes().to_vec()))
        .collect();
    commit(&db, &events).await;
    assert_eq!(
        outbox::publish_pending_once(&db, &bus)
            .await
            .expect("relay"),
        1234
    );
    assert_eq!(outbox::pending_count(&db).await.expect("count"), 0);
    let mut sub = subscribe(&bus).await;
    for e in &events {
        let d = next(&mut sub).await;
        assert_eq!(&d.event.id, &e.id, "each once, in order");
        d.ack().await.expect("ack");
    }
    drop(sub);
    nats.delete_stream().await.expect("delete the test stream");
}

on_both_backends!(
    rolled_back_events_are_never_published,
    committed_events_reach_memory_bus_once_in_order,
    committed_events_reach_nats_once_in_order,
    relay_loop_publishes_when_woken_and_stops_on_shutdown,
    relay_stopping_publishes_what_is_committed,
    enqueue_refuses_an_event_the_bus_would_refuse,
    inbox_first_time_is_true_once_per_consumer,
    published_rows_can_be_purged,
    retention_purges_published_outbox_rows_after_their_week,
    a_failed_publish_keeps_the_marks_before_it,
    a_lost_ack_keeps_the_marks_before_it,
    many_rows_reach_nats_once_in_order,
);

/// Two relays on one PostgreSQL database (the circulation instances share theirs) take
/// turns: together they publish every event once, in order.
#[tokio::test]
async fn relays_sharing_a_postgres_database_keep_order() {
    let db = postgres().await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let events: Vec<Event> = (0..250u8).map(event).collect();
    commit(&db, &events).await;
    let (a, b) = tokio::join!(
        outbox::publish_pending_once(&db, &bus),
        outbox::publish_pending_once(&db, &bus)
    );
    let (a, b) = (a.expect("relay a"), b.expect("relay b"));
    // Whoever lost the lock returned early; the winner may not have seen the last batch
    // free yet, so run once more.
    let rest = outbox::publish_pending_once(&db, &bus)
        .await
        .expect("relay");
    assert_eq!(a + b + rest, 250);
    let mut sub = subscribe(&bus).await;
    for e in &events {
        let d = next(&mut sub).await;
        assert_eq!(d.event.id, e.id);
        d.ack().await.expect("ack");
    }
}
