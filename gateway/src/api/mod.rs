//! The JSON API of API.md under `/api/v1`: catalogue search, patron sessions and accounts,
//! the patron's loans and holds, staff sessions, the counter's patron work, the desks'
//! circulation, catalogue administration and the test clock. Each handler checks its
//! input, asks the services and shapes the answer.

pub mod admin;
pub mod catalog;
pub mod counter;
pub mod desk;
pub mod loans;
pub mod patron;
pub mod staff;
pub mod testclock;
