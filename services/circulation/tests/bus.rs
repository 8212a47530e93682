//! The background work of the three instances over a real event bus: the in-process bus (on
//! PostgreSQL and on SQLite) and NATS JetStream (on PostgreSQL). Catalog item events reach
//! the projection once although three instances consume them under one durable name; hold
//! events leave through the outbox relay on their subjects; the ready mail's `MailSent`
//! comes back over the bus and makes the hold ready; the expiry job of the pickup branch runs
//! by itself when the shelf week is over.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use kitsuki_circulation::CirculationConfig;
use kitsuki_platform::bus::{ConsumerSpec, MemoryBus, NatsBus, SharedBus};
use kitsuki_platform::clock::Clock;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testing;
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};
use kitsuki_proto::catalog::MaterialType;
use kitsuki_proto::events as ev;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_bus_on_postgres() {
    over_the_bus(Backend::Postgres, Arc::new(MemoryBus::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_bus_on_sqlite() {
    over_the_bus(Backend::Sqlite, Arc::new(MemoryBus::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_on_postgres() {
    let nats = NatsBus::connect(&testing::nats_url(), &testing::unique_prefix())
        .await
        .expect("the test NATS server (see scripts/test)");
    over_the_bus(Backend::Postgres, Arc::new(nats.clone())).await;
    nats.delete_stream().await.unwrap();
}

async fn over_the_bus(backend: Backend, bus: SharedBus) {
    let config = CirculationConfig {
        expiry_every: Duration::from_millis(100),
        ack_wait: Duration::from_secs(5),
        ..config()
    };
    let lib = Library::open_with(backend, config).await;
    let shutdown = Shutdown::new();
    let mut handles = Vec::new();
    for c in [&lib.kitsuki, &lib.yamaga, &lib.ota] {
        handles.extend(c.spawn(bus.clone(), &shutdown));
    }
    // What a notification service would see of the hold events.
    let mut holds = bus
        .subscribe(&ConsumerSpec::new(
            format!("test-holds-{}", testing::unique_id()),
            "circulation.*.hold.*",
        ))
        .await
        .unwrap();

    // The catalog publishes two copies; one event twice (a relay retry), one under a second
    // id (a replay): one item each.
    let title = kitsuki_proto::TitleId::parse(&uuid::Uuid::now_v7().to_string()).unwrap();
    let kt = item_created(&title, "KT-1", Kitsuki, MaterialType::Book);
    let ym = item_created(&title, "YM-1", Yamaga, MaterialType::Book);
    let mut replay = ym.clone();
    replay.id = kitsuki_platform::events::new_event_id();
    for e in [&kt, &kt, &ym, &replay] {
        bus.publish(e).await.unwrap();
    }
    eventually("the projection", || async {
        let t = lib
            .ota
            .title_holdability(std::slice::from_ref(&title))
            .await
            .unwrap();
        t[0].copies == 2
    })
    .await;

    lib.lend_away("KT-1", Kitsuki, 90).await;
    lib.lend_away("YM-1", Yamaga, 91).await;
    let p = lib.patron(1);
    let hold = lib.web_hold(Ota, &p, &title, Ota).await;
    lib.yamaga.checkin(&bc("YM-1"), "y").await.unwrap();
    lib.ota.checkin(&bc("YM-1"), "o").await.unwrap();

    // The relay publishes placed, confirmed, ready_to_notify, in order.
    let mut seen = Vec::new();
    let notice = loop {
        let d = tokio::time::timeout(DEADLINE, holds.next())
            .await
            .expect("hold events on the bus")
            .unwrap()
            .unwrap();
        let e = ev::HoldEvent::decode(d.event.payload.as_slice()).unwrap();
        seen.push(d.event.subject.clone());
        let id = d.event.id.clone();
        d.ack().await.unwrap();
        if e.kind == "ready_to_notify" {
            assert_eq!(e.hold_id, hold.hold_id);
            break id;
        }
    };
    assert_eq!(
        seen,
        [
            "circulation.ota.hold.placed",
            "circulation.ota.hold.confirmed",
            "circulation.ota.hold.ready_to_notify"
        ]
    );

    // Notification sends the ready mail and says so.
    bus.publish(&mail_sent(
        &notice,
        &hold.hold_id,
        "hold_ready",
        lib.clock.now(),
    ))
    .await
    .unwrap();
    let id = kitsuki_circulation::domain::HoldId::new(&hold.hold_id);
    eventually("the hold ready", || async {
        lib.ota.hold(&id).await.unwrap().status == "ready"
    })
    .await;

    // Nobody comes: a week and a day later Ōta's own job expires it, and the item goes home.
    lib.advance_days(8);
    eventually("the expiry job", || async {
        lib.ota.hold(&id).await.unwrap().status == "expired"
    })
    .await;
    let d = tokio::time::timeout(DEADLINE, holds.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(d.event.subject, "circulation.ota.hold.expired");
    eventually("everything relayed", || async {
        kitsuki_platform::outbox::pending_count(&lib.db)
            .await
            .unwrap()
            == 0
    })
    .await;

    shutdown.trigger();
    for h in handles {
        tokio::time::timeout(DEADLINE, h)
            .await
            .expect("background tasks stop on shutdown")
            .unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&lib.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
