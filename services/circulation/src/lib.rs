//! The circulation service, one instance per branch (kitsuki, yamaga, ota) over one shared
//! database: loans, renewals, holds, pickup routing, hold shelves, transits, expiry.
//!
//! - [`domain`]: the pure core, the library's rules as functions of plain values.
//! - [`store`]: SQL (PostgreSQL and SQLite) and the guards that serialise a title's queue.
//! - [`service`]: [`Circulation`], the operations, consumers and jobs around the core.
//! - [`grpc`]: [`CirculationGrpc`], the contract of `circulation.proto`.
//! - [`patrons`]: what circulation asks patron-account ([`PatronFacts`]).
//! - [`config`]: [`CirculationConfig`], the rules' defaults and the shell's timings.

pub mod config;
pub mod domain;
pub mod grpc;
pub mod patrons;
pub mod service;
pub mod store;

pub use config::CirculationConfig;
pub use grpc::CirculationGrpc;
pub use patrons::{GrpcPatronFacts, InMemoryPatrons, PatronFacts, PatronRecord};
pub use service::{
    Circulation, HoldRequest, ITEM_CREATED_FILTER, MAIL_SENT_SUBJECT, READY_MAIL_TEMPLATE,
    Recorded, Requester,
};
