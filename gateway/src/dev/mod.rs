//! What only a developer's or a test's run serves: the embedded run's mail outbox pages
//! (on loopback) and the test clock.

pub mod eml;
pub mod pages;
pub mod testclock;
