//! The one listener of a role: gRPC services and the operational endpoints `/healthz`,
//! `/readyz` and `/metrics` on the same port (axum serves HTTP/1 and h2c side by side),
//! with graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::catch_up::CatchUp;
use crate::db::Db;
use crate::shutdown::{LAST_PHASE, Shutdown};

/// A condition a service reports on `/readyz` while it holds: closed with the reason (the
/// catalog's "rebuilding the search index: 120000 of 250000 titles"), open when done. Clones
/// share one state.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    reason: Arc<Mutex<Option<String>>>,
}

impl Gate {
    /// An open gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Not ready, for this reason (replaces an earlier one).
    pub fn close(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason.into());
        }
    }

    pub fn open(&self) {
        if let Ok(mut r) = self.reason.lock() {
            *r = None;
        }
    }

    /// Why it is closed; `None` when open.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
}

/// What `/readyz` checks: the process has finished starting, its consumers have caught up
/// with the events stored before its start ([`CatchUp`]), no [`Gate`] of it is closed, it is
/// not shutting down, and its database answers.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    started: Arc<AtomicBool>,
    dbs: Vec<Db>,
    catch_ups: Vec<CatchUp>,
    gates: Vec<Gate>,
    /// Set by [`serve`]: once it is triggered the process drains and is not ready.
    stopping: Option<Shutdown>,
    /// What the process runs without, said under the answer of `/readyz` (readiness does
    /// not depend on it).
    notes: Vec<String>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_db(mut self, db: Db) -> Self {
        self.dbs.push(db);
        self
    }

    /// Not ready before `catch_up` is done.
    pub fn after(mut self, catch_up: CatchUp) -> Self {
        self.catch_ups.push(catch_up);
        self
    }

    /// Not ready while `gate` is closed; `/readyz` then says why.
    pub fn gated_by(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// Adds a line that `/readyz` says under its answer, ready or not (a part the process
    /// runs without, and why).
    pub fn noting(mut self, note: Option<String>) -> Self {
        self.notes.extend(note);
        self
    }

    /// Why a gate holds the process back, if one does.
    pub fn waiting_for(&self) -> Option<String> {
        self.gates.iter().find_map(Gate::reason)
    }

    pub fn set_ready(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Not ready from the moment `shutdown` is triggered, while in-flight requests drain.
    pub fn until(mut self, shutdown: Shutdown) -> Self {
        self.stopping = Some(shutdown);
        self
    }

    pub async fn is_ready(&self) -> bool {
        if !self.started.load(Ordering::SeqCst)
            || !self.catch_ups.iter().all(CatchUp::is_done)
            || self.waiting_for().is_some()
            || self.stopping.as_ref().is_some_and(Shutdown::is_triggered)
        {
            return false;
        }
        for db in &self.dbs {
            if sqlx::query("SELECT 1").execute(&db.pool).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Routes of `/healthz`, `/readyz` and `/metrics`.
pub fn ops_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async { crate::telemetry::prometheus().render() }),
        )
        .with_state(readiness)
}

async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let (status, mut body) = if r.is_ready().await {
        (StatusCode::OK, "ready".to_string())
    } else {
        match r.waiting_for() {
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
            None => (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_string()),
        }
    };
    for note in &r.notes {
        body.push('\n');
        body.push_str(note);
    }
    (status, body)
}

/// Binds a listener (port 0 picks a free one) and reports the address actually bound.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// How long a process may take to stop, from the signal on: the in-flight requests drain,
/// then the background tasks of [`Shutdown::track`] end their step, then the outbox relays
/// of [`Shutdown::track_last`] publish what they all committed. Kubernetes kills the
/// process `terminationGracePeriodSeconds` (30 s in k8s/base) after the preStop hook began,
/// and the hook sleeps 5 s: 20 s keeps clear of that.
pub const SHUTDOWN_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// The least the background tasks get of [`SHUTDOWN_BUDGET`] after slow requests.
const TASKS_AT_LEAST: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves `app` merged with the ops routes until `shutdown`, then drains in-flight requests
/// and ends the shutdown's tracked tasks ([`Shutdown::finish`]: the relays last), all
/// within [`SHUTDOWN_BUDGET`].
///
/// On the signal the listener closes at once (a new connection is refused, which a load
/// balancer or a kubelet probe takes as not ready), and a `/readyz` still being answered
/// says 503; requests already received are answered, and HTTP/2 clients (the gateway's
/// channels) get GOAWAY, so they send the next call to a new connection instead.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let app = app
        .merge(ops_router(readiness.until(shutdown.clone())))
        .layer(axum::middleware::from_fn(crate::metrics_layer::track))
        // Outermost, so the server span covers the whole request and continues the
        // caller's trace (traceparent in the headers).
        .layer(axum::middleware::from_fn(crate::grpc_trace::server_span));
    // Without TCP_NODELAY a gRPC answer's last frame (the trailers) waits for the peer's
    // delayed ACK: about 40 ms on every call.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = shutdown.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.wait().await })
    .into_future();
    let mut server = std::pin::pin!(server);
    let signalled = tokio::select! {
        biased;
        _ = shutdown.wait() => true,
        served = &mut server => {
            served?;
            false
        }
    };
    if !signalled {
        // The server ended by itself: the process ends, so its background tasks stop too.
        shutdown.trigger();
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
    // A request that outlasts its share is cut, rather than the process (with its
    // background tasks) being killed mid-way by the orchestrator; the tasks and the
    // relays' last phase keep theirs.
    let requests_by = deadline - (LAST_PHASE + TASKS_AT_LEAST);
    if signalled {
        match tokio::time::timeout_at(requests_by, &mut server).await {
            Ok(served) => served?,
            Err(_) => tracing::warn!("requests still in flight at the end of their shutdown time"),
        }
    }
    // `main` returns right after this, and the runtime drops whatever still runs there
    // (a relay's round, a mail being sent): the tracked tasks get the rest of the budget,
    // the relays last so that they publish what the others committed while stopping.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    shutdown.finish(left).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_from_the_shutdown_signal_on() {
        let shutdown = Shutdown::new();
        let readiness = Readiness::new().until(shutdown.clone());
        assert!(!readiness.is_ready().await, "not started yet");
        readiness.set_ready();
        assert!(readiness.is_ready().await);
        shutdown.trigger();
        assert!(!readiness.is_ready().await, "draining");
    }
}
