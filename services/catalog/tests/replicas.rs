//! Two or more catalog replicas over one PostgreSQL database and one NATS stream, as the
//! prod overlay runs them: each with its own search index, its own outbox relay, the
//! shared item-status consumer, and its own index follower. What one replica writes, and
//! what the shared consumer records on whichever replica got the event, is found by a
//! search on every replica; a replica started later rebuilds and then follows; a replica
//! that stops leaves no consumer on the server.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kitsuki_catalog::index::SearchFilter;
use kitsuki_catalog::model::MaterialType;
use kitsuki_catalog::{Catalog, IndexFollower, NewTitle, ReplicaOptions};
use kitsuki_platform::bus::{EventBus, NatsBus, SharedBus};
use kitsuki_platform::clock::{Clock, SystemClock, format_instant};
use kitsuki_platform::outbox::Relay;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::{db, events, testing};
use kitsuki_proto::catalog::ItemStatus;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Barcode, Branch};

/// How long a change may take to reach another replica before the test fails; it takes
/// milliseconds when things work.
const PATIENCE: Duration = Duration::from_secs(60);

/// One replica, as `kitsuki catalog` runs it, but in this process with its own
/// connections (database pool, NATS client) and its own shutdown.
struct Replica {
    catalog: Catalog,
    bus: Arc<NatsBus>,
    follower: IndexFollower,
    shutdown: Shutdown,
}

async fn start(url: &str, prefix: &str, threshold: Duration) -> Replica {
    let db = db::connect(url).await.expect("database");
    let bus = Arc::new(
        NatsBus::connect(&testing::nats_url(), prefix)
            .await
            .expect("test NATS"),
    );
    let shared: SharedBus = bus.clone();
    let shutdown = Shutdown::new();
    let options = ReplicaOptions {
        inactive_threshold: threshold,
        ..ReplicaOptions::new()
    };
    let (catalog, follower) = Catalog::open_replica(
        db.clone(),
        None,
        Arc::new(SystemClock),
        shared.clone(),
        &shutdown,
        options,
    )
    .await
    .expect("replica opens");
    let s = shutdown.clone();
    let (relay_bus, wake) = (shared.clone(), catalog.relay_wake());
    tokio::spawn(async move {
        Relay::new(db, relay_bus, wake)
            .run(async move { s.wait().await })
            .await
    });
    catalog.spawn_consumer(shared, &shutdown);
    Replica {
        catalog,
        bus,
        follower,
        shutdown,
    }
}

impl Replica {
    /// The title ids a search finds on this replica, filtered by the index.
    async fn find(&self, q: &str, branch: Option<Branch>, available_only: bool) -> Vec<String> {
        let filter = SearchFilter {
            material_type: None,
            branch: branch.map(|b| b.code().to_string()),
            available_only,
            ..SearchFilter::default()
        };
        self.catalog
            .search(q, &filter, 1, 50)
            .await
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.title_id)
            .collect()
    }

    async fn finds(&self, q: &str, title_id: &str) -> bool {
        self.find(q, None, false)
            .await
            .iter()
            .any(|t| t == title_id)
    }

    async fn available_at(&self, q: &str, branch: Branch, title_id: &str) -> bool {
        self.find(q, Some(branch), true)
            .await
            .iter()
            .any(|t| t == title_id)
    }

    /// The consumers of this test's stream on the server.
    async fn consumers_on_server(&self) -> Vec<String> {
        let js = async_nats::jetstream::new(self.bus.client());
        let stream = js.get_stream(self.bus.stream_name()).await.expect("stream");
        stream
            .consumer_names()
            .map(|n| n.expect("consumer name"))
            .collect()
            .await
    }

    /// A clean stop: shutdown, then the follower deletes its consumer.
    async fn stop(self) {
        self.shutdown.trigger();
        self.follower.stopped().await;
    }
}

fn book(title: &str) -> NewTitle {
    NewTitle {
        title: title.into(),
        title_reading: String::new(),
        author: "宮本武蔵".into(),
        responsibility: String::new(),
        ndc: String::new(),
        publisher: "杵築書房".into(),
        year: Some(1645),
        isbn: None,
        material_type: MaterialType::Book,
        aliases: vec![],
        source_id: None,
    }
}

/// Publishes an item status event as circulation's instance of `branch` would.
async fn publish_status(
    bus: &NatsBus,
    branch: Branch,
    barcode: &str,
    title_id: &str,
    status: ItemStatus,
) {
    let now = format_instant(SystemClock.now());
    let id = events::new_event_id();
    let event = events::build(
        format!("circulation.{}.item.status", branch.code()),
        id.clone(),
        &now,
        &ev::ItemStatusChanged {
            meta: Some(ev::EventMeta {
                event_id: id,
                occurred_at: now.clone(),
            }),
            barcode: barcode.into(),
            title_id: title_id.into(),
            status: status as i32,
            due_date: if status == ItemStatus::OnLoan {
                "2026-12-24".into()
            } else {
                String::new()
            },
            holds_waiting: 0,
            // Versioned as circulation does: a higher version than any before (the
            // instant in microseconds is one here).
            item_version: u64::try_from(SystemClock.now().unix_timestamp_nanos() / 1000)
                .unwrap_or(u64::MAX),
            holds_version: 0,
        },
    );
    bus.publish(&event).await.expect("publish");
}

/// Waits until the condition (an expression, may `.await`) holds, failing after
/// [`PATIENCE`].
macro_rules! eventually {
    ($what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if $check {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within {PATIENCE:?}: {}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_search_the_same_catalog() {
    let url = testing::fresh_pg_database().await.expect("test PostgreSQL");
    let prefix = testing::unique_prefix();
    let long = Duration::from_secs(60);

    // Before replica B exists: a title with a copy at Yamaga, lent out.
    let a = start(&url, &prefix, long).await;
    let (gorin, _) = a.catalog.create_title(book("五輪書"), true).await.unwrap();
    let b1 = Barcode::parse("RPL-0001").unwrap();
    a.catalog
        .create_item(&gorin, &b1, Branch::Yamaga, "Y-1", true)
        .await
        .unwrap();
    publish_status(
        &a.bus,
        Branch::Yamaga,
        b1.as_str(),
        &gorin,
        ItemStatus::OnLoan,
    )
    .await;
    eventually!(
        "A records the loan",
        !a.available_at("五輪書", Branch::Yamaga, &gorin).await
    );

    // B starts after all that: its rebuild has the title, not available at Yamaga.
    let b = start(&url, &prefix, long).await;
    assert!(b.finds("五輪書", &gorin).await, "B's rebuild has A's title");
    assert!(b.finds("", &gorin).await, "and lists it");
    assert!(
        !b.available_at("五輪書", Branch::Yamaga, &gorin).await,
        "B's rebuild has the loan"
    );

    // Then B follows: a title created through A is found on B, an item added through B
    // shows on A.
    let (kaze, _) = a.catalog.create_title(book("風の巻"), true).await.unwrap();
    assert!(
        a.finds("風の巻", &kaze).await,
        "A reads its own write at once"
    );
    eventually!(
        "B finds a title created through A",
        b.finds("風の巻", &kaze).await
    );
    let b2 = Barcode::parse("RPL-0002").unwrap();
    b.catalog
        .create_item(&kaze, &b2, Branch::Ota, "O-1", true)
        .await
        .unwrap();
    eventually!(
        "A sees the copy added through B",
        a.available_at("風の巻", Branch::Ota, &kaze).await
    );

    // An item status event goes to one replica (the shared consumer); both show it.
    publish_status(
        &a.bus,
        Branch::Yamaga,
        b1.as_str(),
        &gorin,
        ItemStatus::Available,
    )
    .await;
    for (name, r) in [("A", &a), ("B", &b)] {
        eventually!(
            format!("{name} shows the return"),
            r.available_at("五輪書", Branch::Yamaga, &gorin).await
        );
    }
    publish_status(
        &b.bus,
        Branch::Ota,
        b2.as_str(),
        &kaze,
        ItemStatus::InTransit,
    )
    .await;
    for (name, r) in [("A", &a), ("B", &b)] {
        eventually!(
            format!("{name} shows the transit"),
            !r.available_at("風の巻", Branch::Ota, &kaze).await && r.finds("風の巻", &kaze).await
        );
    }

    // A clean stop deletes B's consumer; A's stays and A goes on following.
    let b_consumer = b.follower.consumer_spec().durable.clone();
    let a_consumer = a.follower.consumer_spec().durable.clone();
    let on_server = a.consumers_on_server().await;
    assert!(
        on_server.iter().any(|c| c.ends_with(&b_consumer)),
        "{on_server:?}"
    );
    b.stop().await;
    let on_server = a.consumers_on_server().await;
    assert!(
        !on_server.iter().any(|c| c.ends_with(&b_consumer)),
        "B's consumer deleted at its stop: {on_server:?}"
    );
    assert!(
        on_server.iter().any(|c| c.ends_with(&a_consumer)),
        "{on_server:?}"
    );

    let c = start(&url, &prefix, long).await;
    let (mizu, _) = c.catalog.create_title(book("水の巻"), true).await.unwrap();
    eventually!(
        "A finds a title created through C",
        a.finds("水の巻", &mizu).await
    );

    a.stop().await;
    c.stop().await;
    let bus = NatsBus::connect(&testing::nats_url(), &prefix)
        .await
        .unwrap();
    bus.delete_stream().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_leaves_no_consumer_behind() {
    let url = testing::fresh_pg_database().await.expect("test PostgreSQL");
    let prefix = testing::unique_prefix();
    let a = start(&url, &prefix, Duration::from_secs(60)).await;
    let crashed = start(&url, &prefix, Duration::from_secs(2)).await;
    let name = crashed.follower.consumer_spec().durable.clone();
    assert!(
        a.consumers_on_server()
            .await
            .iter()
            .any(|c| c.ends_with(&name))
    );
    // As a killed pod: no clean stop, no more pulls, the connection gone.
    crashed.follower.abort();
    crashed.shutdown.trigger();
    drop(crashed.catalog);
    drop(crashed.bus);
    eventually!(
        "the server deletes the crashed replica's consumer",
        !a.consumers_on_server()
            .await
            .iter()
            .any(|c| c.ends_with(&name))
    );
    // The live one's consumer, idle all that time, is still there and still follows.
    let (id, _) = a.catalog.create_title(book("空の巻"), false).await.unwrap();
    eventually!(
        "A's follower indexes a title it did not index itself",
        a.finds("空の巻", &id).await
    );
    a.stop().await;
    let bus = NatsBus::connect(&testing::nats_url(), &prefix)
        .await
        .unwrap();
    bus.delete_stream().await.unwrap();
}
