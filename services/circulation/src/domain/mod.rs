//! The pure core of circulation (ARCHITECTURE.md "pure core"): the library's decisions on
//! loans, renewals, holds, queues, routing and hold shelves as functions of plain values.
//! Nothing here does I/O or reads a clock: every "now" is an argument, every calendar is
//! configuration handed in, and every refusal is a [`kitsuki_proto::ErrorCode`] so that it
//! reaches the patron as the API's stable code.
//!
//! Where RULES.md is silent, the decision taken is written on the function that takes it,
//! with the word "Decision".
//!
//! - [`calendar`]: library-local dates and each branch's closed days (B2).
//! - [`calendar_file`]: the closed days as operators write them (JSON), parsed (B2).
//! - [`loans`]: due dates, overdue, renewal, checkout limits (L1–L4).
//! - [`holdability`]: may this patron hold this title, on the web or at a counter (H1–H3,
//!   H11, S1).
//! - [`holds`]: the hold state machine (H5, H7–H10).
//! - [`queue`]: one queue per title, positions and allocation order (H6).
//! - [`routing`]: where an item goes when checked in or released (H7, H9, H10, L5).
//! - [`shelf`]: the hold-shelf period, expiry and the branch lists (H8, H9, S1).
//! - [`privacy`]: what a returned loan keeps (V1).

pub mod calendar;
pub mod calendar_file;
pub mod holdability;
pub mod holds;
pub mod loans;
pub mod privacy;
pub mod queue;
pub mod routing;
pub mod shelf;

#[cfg(test)]
mod test_support;

use std::fmt;

/// Rule M1: book 図書, magazine 雑誌, AV 視聴覚資料. Circulation's own copy of the catalog's
/// type (each service owns its data; this one is fed by catalog events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaterialType {
    Book,
    Magazine,
    Av,
}

impl MaterialType {
    pub const ALL: [MaterialType; 3] =
        [MaterialType::Book, MaterialType::Magazine, MaterialType::Av];

    /// The code of API.md (`book`, `magazine`, `av`).
    pub fn code(self) -> &'static str {
        match self {
            MaterialType::Book => "book",
            MaterialType::Magazine => "magazine",
            MaterialType::Av => "av",
        }
    }

    pub fn parse(s: &str) -> Option<MaterialType> {
        MaterialType::ALL.into_iter().find(|t| t.code() == s)
    }
}

/// The id of a hold, as the store assigns it (a UUID in practice). The core only compares
/// ids; it never makes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldId(String);

impl HoldId {
    pub fn new(id: impl Into<String>) -> HoldId {
        HoldId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_types_m1_round_trip_their_api_codes() {
        for t in MaterialType::ALL {
            assert_eq!(MaterialType::parse(t.code()), Some(t));
        }
        assert_eq!(MaterialType::parse("cd"), None);
        assert_eq!(MaterialType::parse("Book"), None);
    }
}
