//! Per-process consumers (`ConsumerSpec::per_process`), on `NatsBus` (the real server, a
//! unique prefix per test), `MemoryBus` and a journaled `MemoryBus`: only events published
//! after the first subscribe, the position kept across subscriptions of the process, gone
//! with `remove_consumer`; on NATS, a consumer the server dropped meanwhile goes on after
//! the last event acknowledged; in a journal, nothing of it is kept.
//!
//! Waits are deadlines around `next()`; absence is shown with a sentinel published last.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kitsuki_platform::bus::{
    BusError, ConsumerSpec, Delivery, Event, MemoryBus, NatsBus, SharedBus, Subscription,
};
use kitsuki_platform::testing;

const DEADLINE: Duration = Duration::from_secs(10);

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

/// Publishes a sentinel, then acknowledges until it; returns the ids seen before it.
async fn ids_before_sentinel(bus: &SharedBus, sub: &mut Box<dyn Subscription>) -> Vec<String> {
    let sentinel = Event::new("catalog.sentinel", b"s".to_vec());
    bus.publish(&sentinel).await.expect("publish");
    let mut ids = Vec::new();
    loop {
        let d = next(sub).await;
        let id = d.event.id.clone();
        d.ack().await.expect("ack");
        if id == sentinel.id {
            return ids;
        }
        ids.push(id);
    }
}

fn spec(name: &str) -> ConsumerSpec {
    ConsumerSpec::per_process(name, "catalog.>", Duration::from_secs(30))
}

async fn event(bus: &SharedBus, subject: &str) -> String {
    let e = Event::new(subject, b"x".to_vec());
    bus.publish(&e).await.expect("publish");
    e.id
}

/// The behaviour every bus shares.
async fn only_new_events_then_removed(bus: SharedBus) {
    let old = event(&bus, "catalog.title.created").await;
    let mut sub = bus.subscribe(&spec("replica-a")).await.expect("subscribe");
    let new = event(&bus, "catalog.title.created").await;
    let _other = event(&bus, "patron.registered").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub).await,
        vec![new],
        "not {old}: only what came after the consumer"
    );
    // A new subscription of the same process goes on where the last one stopped.
    drop(sub);
    let between = event(&bus, "catalog.item.created.ota").await;
    let mut sub = bus.subscribe(&spec("replica-a")).await.expect("again");
    assert_eq!(ids_before_sentinel(&bus, &mut sub).await, vec![between]);
    drop(sub);
    bus.remove_consumer(&spec("replica-a"))
        .await
        .expect("removed");
    bus.remove_consumer(&spec("replica-a"))
        .await
        .expect("removing what is gone is no error");
    // A shared consumer is never removed this way.
    assert!(matches!(
        bus.remove_consumer(&ConsumerSpec::new("shared", "catalog.>"))
            .await,
        Err(BusError::Invalid(_))
    ));
}

#[tokio::test]
async fn nats_per_process_consumers() {
    let prefix = testing::unique_prefix();
    let nats = Arc::new(
        NatsBus::connect(&testing::nats_url(), &prefix)
            .await
            .expect("test NATS"),
    );
    only_new_events_then_removed(nats.clone()).await;
    let js = async_nats::jetstream::new(nats.client());
    let names: Vec<String> = js
        .get_stream(nats.stream_name())
        .await
        .unwrap()
        .consumer_names()
        .map(|n| n.unwrap())
        .collect()
        .await;
    assert!(names.is_empty(), "removed on the server: {names:?}");

    // The server drops the consumer (say its threshold passed during an outage) while
    // events keep coming: the next subscribe goes on after the last acknowledged one.
    let bus: SharedBus = nats.clone();
    let mut sub = bus.subscribe(&spec("replica-b")).await.unwrap();
    let seen = event(&bus, "catalog.title.created").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event.id, seen);
    d.ack().await.unwrap();
    drop(sub);
    js.delete_consumer_from_stream(
        format!("{}_replica-b", nats.stream_name()),
        nats.stream_name(),
    )
    .await
    .expect("deleted behind the bus's back");
    let missed = event(&bus, "catalog.title.created").await;
    let mut sub = bus.subscribe(&spec("replica-b")).await.unwrap();
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub).await,
        vec![missed],
        "nothing skipped, nothing acknowledged again"
    );
    drop(sub);
    bus.remove_consumer(&spec("replica-b")).await.unwrap();
    nats.delete_stream().await.unwrap();
}

#[tokio::test]
async fn memory_per_process_consumers() {
    only_new_events_then_removed(Arc::new(MemoryBus::new())).await;
}

#[tokio::test]
async fn journaled_per_process_consumers_are_not_kept() {
    let dir = std::env::temp_dir().join(format!("kitsuki-bus-{}", testing::unique_id()));
    let path = dir.join("bus.db");
    {
        let bus: SharedBus = Arc::new(MemoryBus::open_journal(&path).await.unwrap());
        only_new_events_then_removed(bus.clone()).await;
        // Left behind at a crash: subscribed, one event not acknowledged.
        let mut sub = bus.subscribe(&spec("replica-c")).await.unwrap();
        let _unacked = event(&bus, "catalog.title.created").await;
        let _d = next(&mut sub).await;
    }
    // Reopened: the consumer is not there to resume; a new one of that name starts at
    // the end, as any per-process consumer.
    let bus: SharedBus = Arc::new(MemoryBus::open_journal(&path).await.unwrap());
    let mut sub = bus.subscribe(&spec("replica-c")).await.unwrap();
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub).await,
        Vec::<String>::new()
    );
    drop(sub);
    drop(bus);
    let _ = std::fs::remove_dir_all(&dir);
}
