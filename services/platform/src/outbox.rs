//! Outbox (being written).
