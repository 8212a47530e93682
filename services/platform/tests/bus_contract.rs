//! The event bus contract: one suite of properties, each a generic async fn taking a bus
//! factory, run against `NatsBus` (the real server, a unique prefix and stream per test),
//! `MemoryBus` and `MemoryBus` with a journal (a fresh SQLite file per test). The factory
//! stands for "a process connecting": for NATS each call is a new connection to the same
//! stream; for memory and the journal it hands out the one in-process bus.
//!
//! Waits are deadlines around `next()`, never sleeps. Absence is shown with a sentinel: an
//! event published last, so that whatever comes before it has been seen.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kitsuki_platform::bus::{
    ConsumerSpec, Delivery, Event, MemoryBus, NatsBus, SharedBus, Subscription,
};
use kitsuki_platform::testing;

/// Generous, as deliveries normally take milliseconds; only a failure waits this long.
const DEADLINE: Duration = Duration::from_secs(10);

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

/// Receives and acknowledges until the event with id `last`; returns the ids seen.
async fn ids_until(sub: &mut Box<dyn Subscription>, last: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let d = next(sub).await;
        let id = d.event.id.clone();
        d.ack().await.expect("ack");
        ids.push(id.clone());
        if id == last {
            return ids;
        }
    }
}

fn spec(durable: &str, filter: &str) -> ConsumerSpec {
    ConsumerSpec::new(durable, filter)
}

async fn publish(bus: &SharedBus, event: &Event) {
    let outcome = bus.publish(event).await.expect("publish");
    assert!(!outcome.duplicate, "a new id is not a duplicate");
}

async fn publish_then_consume<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let event = Event::new("catalog.item.created", b"\x08\x96\x01".to_vec());
    // Published before anyone subscribes: a durable consumer starts from the beginning.
    publish(&bus, &event).await;
    let mut sub = bus
        .subscribe(&spec("reader", "catalog.>"))
        .await
        .expect("subscribe");
    let d = next(&mut sub).await;
    assert_eq!(d.event, event);
    assert_eq!(d.delivered, 1);
    d.ack().await.expect("ack");
}

async fn unacked_delivery_comes_again_to_the_next_subscriber<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let mut worker = spec("worker", "circulation.>");
    // NATS gives an unacknowledged message back only after ack_wait.
    worker.ack_wait = Duration::from_secs(1);
    let event = Event::new("circulation.yamaga.item.checked-in", b"1".to_vec());
    {
        let bus = new_bus().await;
        publish(&bus, &event).await;
        let mut sub = bus.subscribe(&worker).await.expect("subscribe");
        let d = next(&mut sub).await;
        assert_eq!(d.event.id, event.id);
        assert_eq!(d.delivered, 1);
        // Killed before acknowledging: delivery, subscription and connection all go.
    }
    let bus = new_bus().await;
    let mut sub = bus.subscribe(&worker).await.expect("subscribe again");
    let d = next(&mut sub).await;
    assert_eq!(d.event.id, event.id);
    assert_eq!(d.delivered, 2);
    d.ack().await.expect("ack");
    let sentinel = Event::new("circulation.yamaga.item.checked-in", b"2".to_vec());
    publish(&bus, &sentinel).await;
    assert_eq!(
        ids_until(&mut sub, &sentinel.id).await,
        vec![sentinel.id.clone()],
        "an acked event stays acked"
    );
}

async fn nacked_delivery_comes_again<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let event = Event::new("notification.mail.failed", b"x".to_vec());
    publish(&bus, &event).await;
    let mut sub = bus
        .subscribe(&spec("mailer", "notification.>"))
        .await
        .expect("subscribe");
    let d = next(&mut sub).await;
    assert_eq!(d.delivered, 1);
    d.nack().await.expect("nack");
    // Within the deadline, far inside the default 30 s ack_wait: nack does not wait for it.
    let d = next(&mut sub).await;
    assert_eq!(d.event.id, event.id);
    assert_eq!(d.delivered, 2);
    d.ack().await.expect("ack");
}

async fn delivery_stops_after_max_deliver<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let poison = Event::new("catalog.item.created", b"poison".to_vec());
    publish(&bus, &poison).await;
    let mut limited = spec("limited", "catalog.>");
    limited.max_deliver = Some(2);
    let mut sub = bus.subscribe(&limited).await.expect("subscribe");
    for attempt in 1..=2 {
        let d = next(&mut sub).await;
        assert_eq!(
            (d.event.id.as_str(), d.delivered),
            (poison.id.as_str(), attempt)
        );
        d.nack().await.expect("nack");
    }
    // Redeliveries go before new events on both buses, so a third delivery of the poison
    // would come before this sentinel.
    let sentinel = Event::new("catalog.item.created", b"fine".to_vec());
    publish(&bus, &sentinel).await;
    assert_eq!(
        ids_until(&mut sub, &sentinel.id).await,
        vec![sentinel.id.clone()],
        "given up after two"
    );
}

async fn same_id_published_twice_is_delivered_once<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let event = Event::new("circulation.kitsuki.hold.placed", b"h".to_vec());
    publish(&bus, &event).await;
    let again = bus.publish(&event).await.expect("publish again");
    assert!(
        again.duplicate,
        "the second publish of an id reports a duplicate"
    );
    let sentinel = Event::new("circulation.kitsuki.hold.placed", b"s".to_vec());
    publish(&bus, &sentinel).await;
    let mut sub = bus
        .subscribe(&spec("holds", "circulation.>"))
        .await
        .expect("subscribe");
    assert_eq!(
        ids_until(&mut sub, &sentinel.id).await,
        vec![event.id.clone(), sentinel.id.clone()]
    );
}

async fn order_within_a_subject_is_kept<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let events: Vec<Event> = (0..50u8)
        .map(|i| Event::new("circulation.ota.loan.created", vec![i]))
        .collect();
    for e in &events {
        publish(&bus, e).await;
    }
    let mut sub = bus
        .subscribe(&spec("loans", "circulation.ota.loan.created"))
        .await
        .expect("subscribe");
    let mut payloads = Vec::new();
    for _ in 0..50 {
        let d = next(&mut sub).await;
        payloads.push(d.event.payload[0]);
        d.ack().await.expect("ack");
    }
    assert_eq!(payloads, (0..50u8).collect::<Vec<_>>());
}

async fn headers_travel<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let event = Event::new("patron.account.created", Vec::new())
        .with_header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .with_header("x-tag", "first")
        .with_header("kitsuki-event-time", "2026-04-01T09:00:00.000000Z")
        .with_header("x-tag", "second");
    publish(&bus, &event).await;
    let mut sub = bus
        .subscribe(&spec("audit", "patron.>"))
        .await
        .expect("subscribe");
    let d = next(&mut sub).await;
    // Sorted by name; the values of one name keep their order.
    let expected = vec![
        (
            "kitsuki-event-time".to_string(),
            "2026-04-01T09:00:00.000000Z".to_string(),
        ),
        (
            "traceparent".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
        ),
        ("x-tag".to_string(), "first".to_string()),
        ("x-tag".to_string(), "second".to_string()),
    ];
    assert_eq!(d.event.headers, expected);
    assert_eq!(
        d.event.header("traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert!(d.event.payload.is_empty());
    d.ack().await.expect("ack");
}

async fn two_durables_each_get_every_message<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let mut a = bus
        .subscribe(&spec("search-index", "catalog.>"))
        .await
        .expect("subscribe a");
    let mut b = bus
        .subscribe(&spec("circulation-items", "catalog.>"))
        .await
        .expect("subscribe b");
    // Published after subscribing this time: live delivery, not only history.
    let events: Vec<Event> = [
        "catalog.title.created",
        "catalog.item.created",
        "catalog.item.withdrawn",
    ]
    .iter()
    .map(|s| Event::new(*s, s.as_bytes().to_vec()))
    .collect();
    for e in &events {
        publish(&bus, e).await;
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let last = &ids[2];
    assert_eq!(ids_until(&mut a, last).await, ids);
    assert_eq!(ids_until(&mut b, last).await, ids);
}

async fn wildcard_filters_select_subjects<F, Fut>(new_bus: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedBus>,
{
    let bus = new_bus().await;
    let mut catalog = bus
        .subscribe(&spec("catalog-all", "catalog.>"))
        .await
        .expect("subscribe");
    let mut ready = bus
        .subscribe(&spec("hold-ready", "circulation.*.hold.ready"))
        .await
        .expect("subscribe");
    let subjects = [
        "catalog.item.created",
        "circulation.yamaga.hold.ready",
        "circulation.yamaga.hold.placed",
        "circulation.a.b.hold.ready",
        "catalogue.item.created",
        "catalog.title.updated",
        "circulation.kitsuki.hold.ready.late",
        // Sentinels, one per filter, published last.
        "catalog.sentinel",
        "circulation.ota.hold.ready",
    ];
    let events: Vec<Event> = subjects
        .iter()
        .map(|s| Event::new(*s, Vec::new()))
        .collect();
    for e in &events {
        publish(&bus, e).await;
    }
    let id = |i: usize| events[i].id.clone();
    assert_eq!(
        ids_until(&mut catalog, &id(7)).await,
        vec![id(0), id(5), id(7)]
    );
    assert_eq!(ids_until(&mut ready, &id(8)).await, vec![id(1), id(8)]);
}

macro_rules! contract {
    ($($property:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $property() {
                    let bus: SharedBus = Arc::new(MemoryBus::new());
                    super::$property(move || {
                        let bus = bus.clone();
                        async move { bus }
                    })
                    .await;
                }
            )*
        }

        mod journal {
            use super::*;
            $(
                #[tokio::test]
                async fn $property() {
                    let bus: SharedBus = Arc::new(journal_bus().await);
                    super::$property(move || {
                        let bus = bus.clone();
                        async move { bus }
                    })
                    .await;
                }
            )*
        }

        mod nats {
            use super::*;
            $(
                #[tokio::test]
                async fn $property() {
                    let prefix = testing::unique_prefix();
                    let p = prefix.clone();
                    super::$property(move || {
                        let p = p.clone();
                        async move { Arc::new(nats_bus(&p).await) as SharedBus }
                    })
                    .await;
                    // Only after a pass: a failed test leaves its stream to look at.
                    nats_bus(&prefix).await.delete_stream().await.expect("delete the test stream");
                }
            )*
        }
    };
}

/// A journaled in-process bus on a file of its own (restarts are tested in
/// `tests/bus_journal.rs`; here the factory hands out the one bus, as for memory).
async fn journal_bus() -> MemoryBus {
    let path = std::env::temp_dir()
        .join(format!("kitsuki-test-{}", testing::unique_id()))
        .join("bus.db");
    MemoryBus::open_journal(&path)
        .await
        .expect("open a fresh bus journal")
}

async fn nats_bus(prefix: &str) -> NatsBus {
    NatsBus::connect_within(&testing::nats_url(), prefix, Duration::from_secs(10))
        .await
        .expect("the test NATS server at KITSUKI_TEST_NATS_URL (default nats://127.0.0.1:4222)")
}

contract!(
    publish_then_consume,
    unacked_delivery_comes_again_to_the_next_subscriber,
    nacked_delivery_comes_again,
    delivery_stops_after_max_deliver,
    same_id_published_twice_is_delivered_once,
    order_within_a_subject_is_kept,
    headers_travel,
    two_durables_each_get_every_message,
    wildcard_filters_select_subjects,
);

#[tokio::test]
async fn nats_bus_reports_health_and_reuses_its_stream() {
    let prefix = testing::unique_prefix();
    let bus = nats_bus(&prefix).await;
    assert!(bus.healthy().await);
    assert!(bus.client().server_info().jetstream);
    // A second process on the same prefix binds to the same stream.
    let other = nats_bus(&prefix).await;
    assert_eq!(other.stream_name(), bus.stream_name());
    bus.delete_stream().await.expect("delete");
    assert!(!other.healthy().await, "no stream, not healthy");
}

#[tokio::test]
async fn invalid_events_and_consumers_are_refused_by_every_bus() {
    let prefix = testing::unique_prefix();
    let nats = nats_bus(&prefix).await;
    let buses: Vec<SharedBus> = vec![
        Arc::new(MemoryBus::new()),
        Arc::new(journal_bus().await),
        Arc::new(nats.clone()),
    ];
    for bus in buses {
        let wildcard = Event::new("catalog.*", Vec::new());
        assert!(
            bus.publish(&wildcard).await.is_err(),
            "{bus:?}: no wildcard in a published subject"
        );
        let reserved = Event::new("catalog.x", Vec::new()).with_header("Nats-Msg-Id", "other");
        assert!(
            bus.publish(&reserved).await.is_err(),
            "{bus:?}: Nats- headers are the server's"
        );
        assert!(
            bus.subscribe(&spec("x", "catalog.>.x")).await.is_err(),
            "{bus:?}: > only last"
        );
        assert!(
            bus.subscribe(&spec("", "catalog.>")).await.is_err(),
            "{bus:?}: a durable has a name"
        );
    }
    nats.delete_stream().await.expect("delete");
}
