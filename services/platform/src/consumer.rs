//! The one loop every event consumer runs: subscribe a durable consumer, hand each event to
//! a handler that records its effect and the inbox row in one transaction, then acknowledge.
//! A handler error gives the event back (nack) and backs off; a subscription that fails is
//! retried; shutdown ends the loop between events (ARCHITECTURE.md "Nothing lost").
//!
//! Beside the loop, the consumer's lag is sampled into the gauge
//! `kitsuki_bus_consumer_pending{consumer=<durable>}`: once subscribed, then every
//! [`LAG_EVERY`] (the dashboards' and the consumer-lag alert's figure).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::bus::{ConsumerSpec, Event, SharedBus};

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How often the lag of a consumer is asked of the bus: about a Prometheus scrape interval.
pub const LAG_EVERY: Duration = Duration::from_secs(15);

/// A bus that does not answer the lag question within this is asked again next round.
const LAG_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `handle` for every event of `spec` until `shutdown` resolves. `handle` returns
/// `Ok` once the event's effect is committed (or the event is deliberately ignored), and
/// `Err` when it could not be recorded and must come again.
pub async fn run<H, Fut, E>(
    bus: SharedBus,
    spec: ConsumerSpec,
    shutdown: impl Future<Output = ()> + Clone,
    handle: H,
) where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let subscribed = Arc::new(Notify::new());
    tokio::select! {
        () = consume(bus.clone(), spec.clone(), shutdown, handle, subscribed.clone()) => {}
        () = sample_lag(bus, spec, subscribed) => {}
    }
}

/// Records the lag of `spec`'s consumer every [`LAG_EVERY`], from its first subscription
/// on (before, a NATS consumer may not exist yet). Never ends: [`run`] drops it.
async fn sample_lag(bus: SharedBus, spec: ConsumerSpec, subscribed: Arc<Notify>) {
    subscribed.notified().await;
    let gauge = metrics::gauge!("kitsuki_bus_consumer_pending", "consumer" => spec.durable.clone());
    let mut tick = tokio::time::interval(LAG_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(LAG_TIMEOUT, bus.pending(&spec)).await {
            Ok(Ok(Some(n))) => gauge.set(n as f64),
            Ok(Ok(None)) => {}
            Ok(Err(err)) => {
                tracing::debug!(durable = %spec.durable, error = %err, "consumer lag not read")
            }
            Err(_) => tracing::debug!(durable = %spec.durable, "consumer lag not read in time"),
        }
    }
}

async fn consume<H, Fut, E>(
    bus: SharedBus,
    spec: ConsumerSpec,
    shutdown: impl Future<Output = ()> + Clone,
    handle: H,
    subscribed: Arc<Notify>,
) where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        let subscribed_now = tokio::select! {
            biased;
            _ = shutdown.clone() => return,
            s = bus.subscribe(&spec) => s,
        };
        let mut subscription = match subscribed_now {
            Ok(s) => {
                // One stored permit: the sampler starts after the first subscription.
                subscribed.notify_one();
                s
            }
            Err(err) => {
                tracing::warn!(durable = %spec.durable, error = %err, "subscribing failed; retrying");
                if pause(&mut backoff, shutdown.clone()).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.clone() => return,
                n = subscription.next() => n,
            };
            let delivery = match next {
                None => break,
                Some(Err(err)) => {
                    tracing::warn!(durable = %spec.durable, error = %err, "receiving failed");
                    if pause(&mut backoff, shutdown.clone()).await {
                        return;
                    }
                    continue;
                }
                Some(Ok(d)) => d,
            };
            match handle(delivery.event.clone()).await {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    if let Err(err) = delivery.ack().await {
                        // It comes again and the handler's inbox skips it.
                        tracing::warn!(durable = %spec.durable, error = %err, "acknowledging failed");
                    }
                }
                Err(err) => {
                    tracing::warn!(durable = %spec.durable, event_id = %delivery.event.id, error = %err, "event not recorded; it will come again");
                    let _ = delivery.nack().await;
                    if pause(&mut backoff, shutdown.clone()).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps the back-off (doubling it for next time); true when shutdown came first.
async fn pause(backoff: &mut Duration, shutdown: impl Future<Output = ()>) -> bool {
    let d = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        biased;
        _ = shutdown => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::{ConsumerSpec, Event, EventBus, MemoryBus, NatsBus};
    use crate::testing;

    #[tokio::test]
    async fn jetstream_reports_what_a_consumer_has_not_acknowledged() {
        let bus = NatsBus::connect(&testing::nats_url(), &testing::unique_prefix())
            .await
            .unwrap();
        let spec = ConsumerSpec::new("lag", "catalog.>");
        assert_eq!(bus.pending(&spec).await.unwrap(), None, "no consumer yet");
        for subject in ["catalog.a", "patron.b", "catalog.c", "catalog.d"] {
            bus.publish(&Event::new(subject, vec![])).await.unwrap();
        }
        let mut sub = bus.subscribe(&spec).await.unwrap();
        // Pulled ahead or not, three are unacknowledged.
        assert_eq!(bus.pending(&spec).await.unwrap(), Some(3));
        let first = sub.next().await.unwrap().unwrap();
        first.ack().await.unwrap();
        assert_eq!(bus.pending(&spec).await.unwrap(), Some(2));
        drop(sub);
        bus.delete_stream().await.unwrap();
    }

    #[tokio::test]
    async fn the_in_process_bus_counts_what_a_consumer_has_not_acknowledged() {
        let bus = MemoryBus::new();
        let spec = ConsumerSpec::new("lag", "catalog.>");
        assert_eq!(bus.pending(&spec).await.unwrap(), None, "no consumer yet");
        for subject in ["catalog.a", "patron.b", "catalog.c", "catalog.d"] {
            bus.publish(&Event::new(subject, vec![])).await.unwrap();
        }
        let mut sub = bus.subscribe(&spec).await.unwrap();
        assert_eq!(
            bus.pending(&spec).await.unwrap(),
            Some(3),
            "its filter only"
        );
        let first = sub.next().await.unwrap().unwrap();
        assert_eq!(
            bus.pending(&spec).await.unwrap(),
            Some(3),
            "out, not acknowledged"
        );
        first.ack().await.unwrap();
        assert_eq!(bus.pending(&spec).await.unwrap(), Some(2));
        let second = sub.next().await.unwrap().unwrap();
        second.nack().await.unwrap();
        assert_eq!(bus.pending(&spec).await.unwrap(), Some(2), "given back");
    }
}
