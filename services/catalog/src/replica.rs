//! One catalog replica among several behind one Service. The database is shared and is the
//! truth; each replica keeps its own search index. A write reaches one replica only (a gRPC
//! call, or the one delivery of an item status event to the shared durable consumer), so
//! every change of what search shows of a title is also an event written with the change
//! (`catalog.title.created`, `catalog.titles.imported`, `catalog.item.created.<branch>`,
//! `catalog.title.changed`), and each replica follows `catalog.>` through a consumer of its
//! own process ([`ConsumerSpec::per_process`]). Whatever the event, the replica catches its
//! index up from its watermark ([`Catalog::catch_up_index`], `catch_up.rs`): idempotent,
//! one query when the event's change is already in, so events handled late or twice cost
//! nothing, and one event of a bulk import indexes its whole batch. The replica that made
//! a change also catches up at once, so its caller reads its own write.
//!
//! At start the follower subscribes first and the index catches up after: a change
//! committed before the subscription is in the catch-up, one published after it comes as
//! an event (held until the catch-up is done). An index kept in the pod's `emptyDir`
//! across a container restart knows from its watermark what it missed meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_platform::bus::{
    BusError, ConsumerSpec, Event, EventBus, PublishOutcome, SharedBus, Subscription,
};
use kitsuki_platform::clock::SharedClock;
use kitsuki_platform::db::Db;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::{consumer, events};
use tokio::sync::watch;
use tracing::Instrument;

use crate::service::Catalog;

/// Every catalog event: each one tells of a change of what search shows.
pub const INDEX_FILTER: &str = "catalog.>";

/// How long the server keeps the consumer of a replica that no longer asks for events
/// (a crashed pod). Long enough for a NATS restart or a long rebuild to pass unnoticed
/// (and if it does not, the bus goes on from the last acknowledged event anyway), short
/// enough that a gone replica's lag does not linger in the consumer-lag alert.
pub const DEFAULT_INACTIVE_THRESHOLD: Duration = Duration::from_secs(120);

/// How long a clean stop waits to delete its consumer before leaving it to the server.
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// How a replica follows the catalog's changes.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// The name of this process's consumer; no other process may use it.
    pub consumer_name: String,
    pub inactive_threshold: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions::new()
    }
}

impl ReplicaOptions {
    /// `catalog-index-<HOSTNAME>-<random>`: the pod name tells an operator whose it is; the
    /// random part keeps a restarted container from binding to its predecessor's consumer.
    pub fn new() -> ReplicaOptions {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = if host.is_empty() {
            format!("catalog-index-{}", &random[..12])
        } else {
            format!("catalog-index-{host}-{}", &random[..8])
        };
        ReplicaOptions {
            consumer_name: name,
            inactive_threshold: DEFAULT_INACTIVE_THRESHOLD,
        }
    }

    pub fn spec(&self) -> ConsumerSpec {
        ConsumerSpec::per_process(
            self.consumer_name.clone(),
            INDEX_FILTER,
            self.inactive_threshold,
        )
    }
}

/// The running follower of one replica.
#[derive(Debug)]
pub struct IndexFollower {
    task: tokio::task::JoinHandle<()>,
    spec: ConsumerSpec,
    shutdown: Shutdown,
}

impl IndexFollower {
    /// The consumer this replica follows the catalog with.
    pub fn consumer_spec(&self) -> &ConsumerSpec {
        &self.spec
    }

    /// For a process that is ending: triggers its shutdown (if nothing did yet) and waits
    /// until the follower has stopped and deleted its consumer (or given up on that after a
    /// few seconds: the server then deletes it after its inactivity threshold).
    pub async fn stopped(self) {
        self.shutdown.trigger();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the index follower ended abnormally");
        }
    }

    /// Stops following without deleting the consumer, as a crash would (tests).
    pub fn abort(self) {
        self.task.abort();
    }
}

impl Catalog {
    /// Opens the catalog as one of several replicas: migrates, subscribes this process's
    /// follower of the catalog's events, catches the index up from its watermark (or starts
    /// its background rebuild, `catch_up.rs`), then lets the follower apply what came
    /// meanwhile and everything after. Waits for the bus (the
    /// follower retries) unless the shutdown comes first.
    pub async fn open_replica(
        db: Db,
        index_dir: Option<&Path>,
        clock: SharedClock,
        bus: SharedBus,
        shutdown: &Shutdown,
        options: ReplicaOptions,
    ) -> anyhow::Result<(Catalog, IndexFollower)> {
        let catalog = Catalog::open_unindexed(db, index_dir, clock).await?;
        let spec = options.spec();
        let (subscribed_tx, mut subscribed) = watch::channel(false);
        let (caught_up_tx, caught_up) = watch::channel(false);
        let announcing: SharedBus = Arc::new(Announcing {
            inner: bus.clone(),
            subscribed: subscribed_tx,
        });
        let task = tokio::spawn(follow(
            catalog.clone(),
            announcing,
            bus,
            spec.clone(),
            shutdown.clone(),
            caught_up,
        ));
        let follower = IndexFollower {
            task,
            spec,
            shutdown: shutdown.clone(),
        };
        tokio::select! {
            biased;
            _ = shutdown.wait() => {
                follower.stopped().await;
                anyhow::bail!("shut down before the index follower was subscribed");
            }
            _ = subscribed.wait_for(|s| *s) => {}
        }
        match catalog.catch_up_index().await {
            Ok(n) => {
                tracing::info!(consumer = %follower.spec.durable, titles = n, "search index caught up")
            }
            Err(e) => {
                follower.abort();
                return Err(e);
            }
        }
        // Seen by the follower even after the sender is dropped (a closed channel still
        // shows its last value to `wait_for`).
        caught_up_tx.send_replace(true);
        Ok((catalog, follower))
    }

    /// Catches the index up on an event of the catalog (any: each tells of a change).
    async fn follow_event(&self, event: &Event) -> Result<(), String> {
        let span = tracing::info_span!("catalog.index_follow", event_id = %event.id, subject = %event.subject);
        events::set_parent_from_headers(&span, &event.headers);
        self.catch_up_index()
            .instrument(span)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The durable consumer of the embedded run's index follower.
pub const EMBEDDED_FOLLOWER: &str = "catalog-index-embedded";
/// What the embedded follower listens to: every catalog event.
pub const EMBEDDED_FILTER: &str = INDEX_FILTER;

impl Catalog {
    /// The all-in-one's follower (issue 8): one process owns the index and indexes its own
    /// writes at once, but `kitsuki import` run beside it is a second process writing
    /// titles into the same database, with a `catalog.titles.imported` per batch in the
    /// outbox. The running process's outbox relay polls that outbox and publishes those
    /// rows on its in-process bus; on each event this durable consumer (journaled, so a
    /// crash loses nothing) catches the index up from its watermark
    /// ([`Catalog::catch_up_index`]): its own changes are already in, so they cost one
    /// query. Call after [`Catalog::open`] and before the relay starts.
    pub fn spawn_embedded_index_follower(
        &self,
        bus: SharedBus,
        shutdown: &Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = self.clone();
        let s = shutdown.clone();
        tokio::spawn(async move {
            let spec = ConsumerSpec::new(EMBEDDED_FOLLOWER, EMBEDDED_FILTER);
            let stop = futures::FutureExt::shared(Box::pin(async move { s.wait().await }));
            consumer::run(bus, spec, stop, |event| {
                let catalog = catalog.clone();
                async move { catalog.follow_event(&event).await }
            })
            .await
        })
    }
}

/// The follower: the shared consumer loop on this replica's consumer; events wait for the
/// first catch-up. After the shutdown it deletes its consumer.
async fn follow(
    catalog: Catalog,
    announcing: SharedBus,
    bus: SharedBus,
    spec: ConsumerSpec,
    shutdown: Shutdown,
    caught_up: watch::Receiver<bool>,
) {
    let s = shutdown.clone();
    let stop = futures::FutureExt::shared(Box::pin(async move { s.wait().await }));
    consumer::run(announcing, spec.clone(), stop, |event| {
        let catalog = catalog.clone();
        let mut caught_up = caught_up.clone();
        async move {
            if caught_up.wait_for(|r| *r).await.is_err() {
                return Err("the index did not catch up".to_string());
            }
            catalog.follow_event(&event).await
        }
    })
    .await;
    match tokio::time::timeout(REMOVE_PATIENCE, bus.remove_consumer(&spec)).await {
        Ok(Ok(())) => tracing::info!(consumer = %spec.durable, "index follower removed"),
        Ok(Err(e)) => {
            tracing::warn!(consumer = %spec.durable, error = %e, "index follower not removed; the server drops it when inactive")
        }
        Err(_) => {
            tracing::warn!(consumer = %spec.durable, "index follower not removed in time; the server drops it when inactive")
        }
    }
}

/// The bus as it is, telling when a subscription has been made: the consumer then exists
/// on the server, and the catch-up may start.
#[derive(Debug)]
struct Announcing {
    inner: SharedBus,
    subscribed: watch::Sender<bool>,
}

#[async_trait]
impl EventBus for Announcing {
    async fn publish(&self, event: &Event) -> Result<PublishOutcome, BusError> {
        self.inner.publish(event).await
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let subscription = self.inner.subscribe(spec).await?;
        self.subscribed.send_replace(true);
        Ok(subscription)
    }

    async fn remove_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        self.inner.remove_consumer(spec).await
    }

    async fn pending(&self, spec: &ConsumerSpec) -> Result<Option<u64>, BusError> {
        self.inner.pending(spec).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_consumers_have_their_own_names() {
        let (a, b) = (ReplicaOptions::new(), ReplicaOptions::new());
        assert_ne!(a.consumer_name, b.consumer_name);
        assert!(a.consumer_name.starts_with("catalog-index-"));
        assert!(a.spec().is_per_process());
    }
}
