//! Inbox (being written).
