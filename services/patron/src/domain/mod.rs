//! The pure core of patron-account: the library's rules about patrons as functions of plain
//! values, with no I/O and no clock of their own ("today" and "now" are arguments), tested
//! exhaustively where they live.

pub mod age;
pub mod email;
pub mod password;
pub mod patron;
pub mod session;
pub mod throttle;
