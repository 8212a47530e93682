//! Shared plumbing of every kitsuki role: configuration, clock, database, event bus,
//! outbox/inbox, telemetry, health and metrics, graceful shutdown.

pub mod bus;
pub mod catch_up;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
pub mod events;
pub mod grpc_retry;
pub mod grpc_trace;
pub mod inbox;
pub mod metrics_layer;
pub mod outbox;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod testclock;
pub mod testing;
