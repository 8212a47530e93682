//! The patron-account service: patrons registered at the counter, web-service credentials,
//! sessions, email addresses and their verification, password reset, staff accounts and
//! the audit record. `domain` holds the rules as pure functions; `store`, `throttle`,
//! `service` and `grpc` are the shell around them.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod passwords;
pub mod service;
pub mod staff;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use config::{PatronConfig, PatronSettings};
pub use error::PatronError;
pub use service::PatronAccounts;
