//! The one listener of a role: gRPC services and the operational endpoints `/healthz`,
//! `/readyz` and `/metrics` on the same port (axum serves HTTP/1 and h2c side by side),
//! with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::db::Db;
use crate::shutdown::Shutdown;

/// What `/readyz` checks: the process has finished starting, and its database answers.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    started: Arc<AtomicBool>,
    dbs: Vec<Db>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_db(mut self, db: Db) -> Self {
        self.dbs.push(db);
        self
    }

    pub fn set_ready(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub async fn is_ready(&self) -> bool {
        if !self.started.load(Ordering::SeqCst) {
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
    if r.is_ready().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Binds a listener (port 0 picks a free one) and reports the address actually bound.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `app` merged with the ops routes until `shutdown`, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let app = app
        .merge(ops_router(readiness))
        .layer(axum::middleware::from_fn(crate::metrics_layer::track));
    // Without TCP_NODELAY a gRPC answer's last frame (the trailers) waits for the peer's
    // delayed ACK: about 40 ms on every call.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.wait().await })
    .await?;
    Ok(())
}
