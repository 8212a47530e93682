//! Ready only after catching up (ARCHITECTURE.md "Operations"): a process that consumes
//! events says ready on `/readyz` only once its durable consumers have handled the events
//! stored before it started, so that the first request it is sent sees them (an item
//! registered before a restart can be lent; the seed's items on a first start).
//!
//! At start [`CatchUp::start`] reads the bus's last sequence (the mark); a background task
//! then asks the bus, every [`CHECK_EVERY`], whether each consumer has acknowledged every
//! event of its filter up to the mark ([`EventBus::caught_up`]). Once all have, it says so
//! once in the log and in the gauge `kitsuki_ready_catch_up_seconds` (the wait from the
//! start), and [`crate::server::Readiness`] lets `/readyz` answer 200. A bus that cannot
//! tell (`None`) is not waited for. Events published after the mark are not waited for: a
//! busy stream would otherwise keep a process unready for ever.
//!
//! [`EventBus::caught_up`]: crate::bus::EventBus::caught_up

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bus::{ConsumerSpec, SharedBus};

/// How often the consumers' positions are asked of the bus while catching up.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A bus question not answered within this is asked again.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the consumers of a process have caught up with the events stored before its
/// start. Clones share one state; the task that watches ends once they have.
#[derive(Debug, Clone)]
pub struct CatchUp {
    done: Arc<AtomicBool>,
}

impl CatchUp {
    /// Already caught up: for a process without consumers.
    pub fn done() -> CatchUp {
        CatchUp {
            done: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Reads the mark now and watches `specs` (the shared durable consumers the process
    /// runs, each once) until each has handled every event of its filter up to it.
    pub async fn start(bus: SharedBus, specs: Vec<ConsumerSpec>) -> CatchUp {
        let started = Instant::now();
        let mut specs: Vec<ConsumerSpec> = specs;
        specs.sort_by(|a, b| a.durable.cmp(&b.durable));
        specs.dedup_by(|a, b| a.durable == b.durable);
        let mark = loop {
            match tokio::time::timeout(ASK_TIMEOUT, bus.last_sequence()).await {
                Ok(Ok(mark)) => break mark,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "the bus's last sequence not read; asking again")
                }
                Err(_) => tracing::warn!("the bus's last sequence not read in time; asking again"),
            }
            tokio::time::sleep(CHECK_EVERY).await;
        };
        let catch_up = CatchUp {
            done: Arc::new(AtomicBool::new(false)),
        };
        let Some(mark) = mark.filter(|_| !specs.is_empty()) else {
            catch_up.finish(started, 0);
            return catch_up;
        };
        tracing::info!(
            mark,
            consumers = specs.len(),
            "catching up with the events stored before the start"
        );
        let watching = catch_up.clone();
        tokio::spawn(async move {
            let mut left = specs;
            while !left.is_empty() {
                let mut still = Vec::new();
                for spec in left {
                    match tokio::time::timeout(ASK_TIMEOUT, bus.caught_up(&spec, mark)).await {
                        Ok(Ok(Some(false))) => still.push(spec),
                        Ok(Ok(_)) => {
                            tracing::debug!(durable = %spec.durable, mark, "consumer caught up")
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(durable = %spec.durable, error = %err, "consumer position not read");
                            still.push(spec);
                        }
                        Err(_) => still.push(spec),
                    }
                }
                left = still;
                if !left.is_empty() {
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            }
            watching.finish(started, mark);
        });
        catch_up
    }

    fn finish(&self, started: Instant, mark: u64) {
        let waited = started.elapsed();
        metrics::gauge!("kitsuki_ready_catch_up_seconds").set(waited.as_secs_f64());
        tracing::info!(
            mark,
            waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "caught up with the events stored before the start"
        );
        self.done.store(true, Ordering::SeqCst);
    }

    /// Whether every consumer has caught up.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::bus::{Event, MemoryBus, NatsBus};
    use crate::server::Readiness;
    use crate::{consumer, testing};

    const BACKLOG: usize = 300;

    /// A backlog stored before the start: the process is not ready until its consumer has
    /// handled every event of it, and once ready, all of them are handled (a request right
    /// after sees their effect). Events of other subjects after the backlog are not waited
    /// for by a consumer that does not take them.
    async fn ready_only_after_the_backlog(bus: SharedBus) {
        for i in 0..BACKLOG {
            bus.publish(&Event::new(
                format!("catalog.item.created.b{}", i % 3),
                vec![],
            ))
            .await
            .unwrap();
        }
        bus.publish(&Event::new("patron.other", vec![]))
            .await
            .unwrap();
        let spec = ConsumerSpec::new("backlog", "catalog.item.created.*");
        let catch_up = CatchUp::start(bus.clone(), vec![spec.clone(), spec.clone()]).await;
        let readiness = Readiness::new().after(catch_up.clone());
        readiness.set_ready();
        assert!(
            !readiness.is_ready().await,
            "not ready before the consumer ran"
        );
        let handled = Arc::new(AtomicUsize::new(0));
        let h = handled.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = futures::FutureExt::shared(Box::pin(async move {
            let _ = stop_rx.await;
        }));
        let task = tokio::spawn(consumer::run(bus.clone(), spec, stop, move |_event| {
            let h = h.clone();
            async move {
                tokio::time::sleep(Duration::from_micros(200)).await;
                h.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        }));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = readiness.is_ready().await;
            let seen = handled.load(Ordering::SeqCst);
            if ready {
                assert_eq!(seen, BACKLOG, "ready with events of the backlog unhandled");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never caught up ({seen} handled)"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop_tx.send(());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_in_process_bus_is_ready_only_after_the_backlog() {
        ready_only_after_the_backlog(Arc::new(MemoryBus::new())).await;
    }

    #[tokio::test]
    async fn jetstream_is_ready_only_after_the_backlog() {
        let bus = Arc::new(
            NatsBus::connect(&testing::nats_url(), &testing::unique_prefix())
                .await
                .unwrap(),
        );
        ready_only_after_the_backlog(bus.clone()).await;
        bus.delete_stream().await.unwrap();
    }

    #[tokio::test]
    async fn without_consumers_or_events_it_is_done_at_once() {
        let bus: SharedBus = Arc::new(MemoryBus::new());
        assert!(CatchUp::start(bus.clone(), vec![]).await.is_done());
        let spec = ConsumerSpec::new("none", "catalog.>");
        // The consumer does not exist yet: waited for, even with nothing to catch up to.
        let c = CatchUp::start(bus.clone(), vec![spec.clone()]).await;
        drop(bus.subscribe(&spec).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !c.is_done() {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}
