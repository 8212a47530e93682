//! Configuration of a circulation instance: the rules' defaults (L1, L3, H5, H11, B2) and
//! the shell's timings. The defaults are the rules' defaults; nothing here is a secret.

use std::time::Duration;

use crate::domain::calendar::LibraryCalendar;
use crate::domain::holdability::HoldPolicy;
use crate::domain::loans::LoanPolicy;

/// Everything an instance is configured with besides its database, branch and clock.
#[derive(Debug, Clone)]
pub struct CirculationConfig {
    /// Rules L1, L3: loan periods per material type and the loan limit.
    pub loans: LoanPolicy,
    /// Rules H5, H11: automatic confirmation or staff review, and the hold limit.
    pub holds: HoldPolicy,
    /// Rule B2: each branch's closed days (default: none). The three instances must be
    /// given the same calendars, as they decide for each other's branches (a due date is
    /// the lending branch's, a shelf period the pickup branch's).
    pub calendars: LibraryCalendar,
    /// Durable consumer names are `<consumer_prefix>-catalog-items` and
    /// `<consumer_prefix>-mail-sent`, the same for the three instances so that each event is
    /// handled once among them. A new prefix rebuilds the item projection from the stream.
    pub consumer_prefix: String,
    /// How often the hold-shelf expiry job of this branch runs (H9).
    pub expiry_every: Duration,
    /// How long a patron's list of holds keeps showing holds that ended (cancelled,
    /// expired, rejected), so that they see why.
    pub ended_holds_shown: time::Duration,
    /// How long a consumer's delivery may stay unacknowledged before it comes again.
    pub ack_wait: Duration,
}

impl Default for CirculationConfig {
    fn default() -> CirculationConfig {
        CirculationConfig {
            loans: LoanPolicy::default(),
            holds: HoldPolicy::default(),
            calendars: LibraryCalendar::open_every_day(),
            consumer_prefix: "circulation".to_string(),
            expiry_every: Duration::from_secs(60),
            ended_holds_shown: time::Duration::days(30),
            ack_wait: Duration::from_secs(30),
        }
    }
}
