//! The JSON API of API.md under `/api/v1`: catalogue search, staff sessions and catalogue
//! administration. Each handler checks its input, asks one service and shapes the answer.

pub mod admin;
pub mod catalog;
pub mod staff;

#[cfg(test)]
mod tests;
