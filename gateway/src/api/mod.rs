//! The JSON API of API.md under `/api/v1`: catalogue search, patron sessions and accounts,
//! staff sessions, the counter's patron work and catalogue administration. Each handler
//! checks its input, asks one service and shapes the answer.

pub mod admin;
pub mod catalog;
pub mod counter;
pub mod patron;
pub mod staff;
