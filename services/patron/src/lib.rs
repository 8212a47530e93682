//! The patron-account service: patrons, staff accounts, passwords, emails, sessions.

pub mod grpc;
pub mod passwords;
pub mod staff;
pub mod tokens;
