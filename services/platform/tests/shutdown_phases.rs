//! The two phases of a shutdown with a real outbox relay, on PostgreSQL (a fresh database
//! per test) and SQLite (a fresh file per test), publishing to `MemoryBus` and to the real
//! NATS server (a unique prefix per test):
//!
//! - a background task of the first phase that commits an outbox row after the signal (a
//!   consumer's last event, the mail sender's last `MailSent`) has it published before
//!   [`Shutdown::finish`] returns: the relay stops last;
//! - a relay whose bus is gone (its own `nats-server`, killed) gives up within the last
//!   phase, so `finish` returns within the shutdown budget, and the row stays in the
//!   outbox for the next start.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kitsuki_platform::bus::{
    ConsumerSpec, Delivery, Event, MemoryBus, NatsBus, SharedBus, Subscription,
};
use kitsuki_platform::clock::{Clock, SystemClock, format_instant};
use kitsuki_platform::db::Db;
use kitsuki_platform::on_both_backends;
use kitsuki_platform::outbox::{self, Relay};
use kitsuki_platform::server::SHUTDOWN_BUDGET;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testing;
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_secs(10);

async fn ready(db: Db) -> Db {
    outbox::ensure_tables(&db).await.expect("tables");
    db
}

fn event(n: u8) -> Event {
    Event::new("notification.mail.sent", vec![n])
        .with_header("kitsuki-event-time", format_instant(SystemClock.now()))
}

async fn commit(db: &Db, e: &Event) {
    let mut tx = db.pool.begin().await.expect("begin");
    outbox::enqueue(&mut tx, e, &format_instant(SystemClock.now()))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
}

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

/// A role's relay: tracked for the last phase, stopping on it.
fn spawn_relay(db: &Db, bus: &SharedBus, wake: Arc<Notify>, shutdown: &Shutdown) {
    let s = shutdown.clone();
    shutdown.track_last([tokio::spawn(
        Relay::new(db.clone(), bus.clone(), wake).run(async move { s.wait_last_phase().await }),
    )]);
}

/// A row committed before the signal goes out as usual; a first-phase task that commits a
/// row after the signal, while it ends its step, has that row published before `finish`
/// returns.
async fn a_row_written_while_stopping_is_published_before_finish_returns(db: Db, bus: SharedBus) {
    let mut sub = bus
        .subscribe(&ConsumerSpec::new("test", "notification.>"))
        .await
        .expect("subscribe");
    let shutdown = Shutdown::new();
    let wake = Arc::new(Notify::new());
    spawn_relay(&db, &bus, wake.clone(), &shutdown);

    let before = event(1);
    commit(&db, &before).await;
    wake.notify_one();
    let d = next(&mut sub).await;
    assert_eq!(d.event, before);
    d.ack().await.expect("ack");

    // The mail sender's last mail: it was being sent when the signal came.
    let during = event(2);
    let (s, task_db, task_wake, e) = (shutdown.clone(), db.clone(), wake.clone(), during.clone());
    shutdown.track([tokio::spawn(async move {
        s.wait().await;
        // The rest of its step (the mail server answering) before the commit.
        tokio::time::sleep(Duration::from_millis(200)).await;
        commit(&task_db, &e).await;
        task_wake.notify_one();
    })]);

    shutdown.trigger();
    assert!(
        shutdown.finish(SHUTDOWN_BUDGET).await,
        "every task ended within the budget"
    );
    assert_eq!(
        outbox::pending_count(&db).await.expect("count"),
        0,
        "nothing left in the outbox when finish returns"
    );
    assert_eq!(next(&mut sub).await.event, during);
}

async fn on_memory_bus(db: Db) {
    let db = ready(db).await;
    a_row_written_while_stopping_is_published_before_finish_returns(db, Arc::new(MemoryBus::new()))
        .await;
}

async fn on_nats(db: Db) {
    let db = ready(db).await;
    let nats = NatsBus::connect_within(&testing::nats_url(), &testing::unique_prefix(), DEADLINE)
        .await
        .expect("the test NATS server");
    a_row_written_while_stopping_is_published_before_finish_returns(db, Arc::new(nats.clone()))
        .await;
    nats.delete_stream().await.expect("delete the test stream");
}

/// One `nats-server` of this test alone, so that it can be taken away; killed when dropped.
struct OwnNats {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl OwnNats {
    fn start() -> OwnNats {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("kitsuki-nats-{}", testing::unique_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nats-server installed (scripts/test installs it)");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
            .arg("-sd")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        OwnNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bus is gone when the process stops: the relay's last phase gives up on it in time,
/// `finish` returns within the budget with every task ended, and the row written while
/// stopping is still in the outbox (published by the next start), not marked.
async fn a_relay_whose_bus_is_down_does_not_hold_the_process(db: Db) {
    let db = ready(db).await;
    let mut server = OwnNats::start();
    // connect_within waits for the server to listen.
    let nats = NatsBus::connect_within(&server.url, &testing::unique_prefix(), DEADLINE)
        .await
        .expect("the test's own NATS server");
    let bus: SharedBus = Arc::new(nats);
    let shutdown = Shutdown::new();
    let wake = Arc::new(Notify::new());
    spawn_relay(&db, &bus, wake.clone(), &shutdown);
    server.kill();

    let (s, task_db, e) = (shutdown.clone(), db.clone(), event(3));
    shutdown.track([tokio::spawn(async move {
        s.wait().await;
        commit(&task_db, &e).await;
        wake.notify_one();
    })]);
    shutdown.trigger();
    // The budget is what the process has; the margin only keeps a hang from blocking the
    // test run.
    let ended = tokio::time::timeout(
        SHUTDOWN_BUDGET + Duration::from_secs(5),
        shutdown.finish(SHUTDOWN_BUDGET),
    )
    .await
    .expect("finish returns");
    assert!(ended, "the relay gave up within the last phase");
    assert_eq!(
        outbox::pending_count(&db).await.expect("count"),
        1,
        "the row waits for the next start"
    );
}

on_both_backends!(
    on_memory_bus,
    on_nats,
    a_relay_whose_bus_is_down_does_not_hold_the_process,
);
