//! The one loop every event consumer runs: subscribe a durable consumer, hand each event to
//! a handler that records its effect and the inbox row in one transaction, then acknowledge.
//! A handler error gives the event back (nack) and backs off; a subscription that fails is
//! retried; shutdown ends the loop between events (ARCHITECTURE.md "Nothing lost").

use std::future::Future;
use std::time::Duration;

use crate::bus::{ConsumerSpec, Event, SharedBus};

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

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
    let mut backoff = FIRST_BACKOFF;
    loop {
        let subscribed = tokio::select! {
            biased;
            _ = shutdown.clone() => return,
            s = bus.subscribe(&spec) => s,
        };
        let mut subscription = match subscribed {
            Ok(s) => s,
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
