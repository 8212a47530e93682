//! One catalog replica among several behind one Service. The database is shared and is the
//! truth; each replica keeps its own search index. A write reaches one replica only (a gRPC
//! call, or the one delivery of an item status event to the shared durable consumer), so
//! every change of what search shows of a title is also an event written with the change
//! (`catalog.title.created`, `catalog.item.created.<branch>`, `catalog.title.changed`),
//! and each replica follows `catalog.>` through a consumer of its own process
//! ([`ConsumerSpec::per_process`]), re-indexing the title each event names from the
//! database. Re-indexing reads the title as it is now, so it is idempotent, and events
//! handled late or twice only repeat the latest state. The replica that made a change
//! also indexes it at once, so its caller reads its own write.
//!
//! At start the follower subscribes first and the index is rebuilt after: a change
//! committed before the subscription is in the rebuild, one published after it comes as
//! an event (held until the rebuild is done). The rebuild always runs: an index kept in
//! the pod's `emptyDir` across a container restart holds as many titles as the database
//! but can have missed availability changes meanwhile.

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
use kitsuki_proto::events as ev;
use prost::Message;
use tokio::sync::watch;
use tracing::Instrument;

use crate::consumer::TITLE_CHANGED;
use crate::service::Catalog;

/// Every catalog event: each one names a title whose search document may have changed.
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

/// The title an event of the catalog names, if it is one that changes a search document.
pub fn title_of(event: &Event) -> Option<String> {
    let subject = event.subject.as_str();
    let id = if subject == "catalog.title.created" {
        ev::TitleCreated::decode(event.payload.as_slice())
            .ok()?
            .title_id
    } else if subject == TITLE_CHANGED {
        ev::TitleChanged::decode(event.payload.as_slice())
            .ok()?
            .title_id
    } else if subject.starts_with("catalog.item.created.") {
        ev::ItemCreated::decode(event.payload.as_slice())
            .ok()?
            .title_id
    } else {
        return None;
    };
    (!id.is_empty()).then_some(id)
}

impl Catalog {
    /// Opens the catalog as one of several replicas: migrates, subscribes this process's
    /// follower of the catalog's events, rebuilds the index from the database, then lets
    /// the follower apply what came meanwhile and everything after. Waits for the bus (the
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
        let (rebuilt_tx, rebuilt) = watch::channel(false);
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
            rebuilt,
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
        tracing::info!(consumer = %follower.spec.durable, "rebuilding the search index");
        if let Err(e) = catalog.reindex().await {
            follower.abort();
            return Err(e);
        }
        // Seen by the follower even after the sender is dropped (a closed channel still
        // shows its last value to `wait_for`).
        rebuilt_tx.send_replace(true);
        Ok((catalog, follower))
    }

    /// Re-indexes the title an event of the catalog names (nothing for other events).
    async fn follow_event(&self, event: &Event) -> Result<(), String> {
        let Some(title_id) = title_of(event) else {
            tracing::debug!(subject = %event.subject, "catalog event without a title to index");
            return Ok(());
        };
        let span =
            tracing::info_span!("catalog.index_follow", event_id = %event.id, title_id = %title_id);
        events::set_parent_from_headers(&span, &event.headers);
        self.refresh_index(&[title_id])
            .instrument(span)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The durable consumer of the embedded run's index follower.
pub const EMBEDDED_FOLLOWER: &str = "catalog-index-embedded";
/// What the embedded follower listens to: titles written by another process.
pub const EMBEDDED_FILTER: &str = "catalog.title.created";

impl Catalog {
    /// The all-in-one's follower (issue 8): one process owns the index and indexes its own
    /// writes at once, but `kitsuki import` run beside it is a second process writing
    /// titles into the same database, with their `catalog.title.created` in the outbox.
    /// The running process's outbox relay polls that outbox and publishes those rows on
    /// its in-process bus; this durable consumer (journaled, so a crash loses nothing)
    /// meets a title the index does not hold yet and indexes every title missing so far,
    /// a page per commit ([`Catalog::index_missing`]): the events of the rest of that
    /// import then find their titles indexed. Its own titles are already there, so they
    /// cost a lookup, not a commit. Call after [`Catalog::open`] (which rebuilds an
    /// index that holds fewer titles than the database) and before the relay starts.
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
                async move {
                    match title_of(&event) {
                        Some(id) if !catalog.is_indexed(&id) => {
                            catalog.index_missing().await.map_err(|e| e.to_string())?;
                            // A title the page walk did not reach (committed meanwhile).
                            if catalog.is_indexed(&id) {
                                Ok(())
                            } else {
                                catalog.follow_event(&event).await
                            }
                        }
                        _ => Ok(()),
                    }
                }
            })
            .await
        })
    }
}

/// The follower: the shared consumer loop on this replica's consumer; events wait for the
/// rebuild. After the shutdown it deletes its consumer.
async fn follow(
    catalog: Catalog,
    announcing: SharedBus,
    bus: SharedBus,
    spec: ConsumerSpec,
    shutdown: Shutdown,
    rebuilt: watch::Receiver<bool>,
) {
    let s = shutdown.clone();
    let stop = futures::FutureExt::shared(Box::pin(async move { s.wait().await }));
    consumer::run(announcing, spec.clone(), stop, |event| {
        let catalog = catalog.clone();
        let mut rebuilt = rebuilt.clone();
        async move {
            if rebuilt.wait_for(|r| *r).await.is_err() {
                return Err("the index was not rebuilt".to_string());
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
/// on the server, and the rebuild may start.
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
    fn catalog_events_name_their_title() {
        let meta = Some(ev::EventMeta::default());
        let created = Event::new(
            "catalog.title.created",
            ev::TitleCreated {
                meta: meta.clone(),
                title_id: "t1".into(),
                r#type: 1,
            }
            .encode_to_vec(),
        );
        let item = Event::new(
            "catalog.item.created.ota",
            ev::ItemCreated {
                meta: meta.clone(),
                barcode: "b".into(),
                title_id: "t2".into(),
                branch: "ota".into(),
                r#type: 1,
            }
            .encode_to_vec(),
        );
        let changed = Event::new(
            TITLE_CHANGED,
            ev::TitleChanged {
                meta,
                title_id: "t3".into(),
            }
            .encode_to_vec(),
        );
        assert_eq!(title_of(&created).as_deref(), Some("t1"));
        assert_eq!(title_of(&item).as_deref(), Some("t2"));
        assert_eq!(title_of(&changed).as_deref(), Some("t3"));
        assert_eq!(title_of(&Event::new("catalog.other", vec![])), None);
        assert_eq!(
            title_of(&Event::new("catalog.title.changed", b"\xff\xff".to_vec())),
            None
        );
    }

    #[test]
    fn replica_consumers_have_their_own_names() {
        let (a, b) = (ReplicaOptions::new(), ReplicaOptions::new());
        assert_ne!(a.consumer_name, b.consumer_name);
        assert!(a.consumer_name.starts_with("catalog-index-"));
        assert!(a.spec().is_per_process());
    }
}
