//! Shared plumbing of every kitsuki role: configuration, clock, database, event bus,
//! outbox/inbox, telemetry, health and metrics, graceful shutdown.

pub mod bus;
pub mod clock;
pub mod db;
pub mod inbox;
pub mod outbox;
pub mod testing;
