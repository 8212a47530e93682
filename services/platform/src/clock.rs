//! Every "now" comes from a [`Clock`] handed in (ARCHITECTURE.md "Time"), so that due dates,
//! the 2-day and 30-minute links and the 1-week hold shelf can be tested. The test clock can
//! be moved only when the process was started with `KITSUKI_TEST_CLOCK=1`.

use std::sync::{Arc, Mutex};

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// The source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that runs with real time plus an offset that tests move forward (or pin).
#[derive(Debug, Default)]
pub struct TestClock {
    state: Mutex<TestClockState>,
}

#[derive(Debug, Default)]
struct TestClockState {
    offset: Duration,
    pinned: Option<OffsetDateTime>,
}

impl TestClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward (never backward: a negative advance is ignored).
    pub fn advance(&self, by: Duration) {
        if by.is_negative() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.pinned.as_mut() {
            Some(p) => *p += by,
            None => s.offset += by,
        }
    }

    /// Sets the clock to an instant; it stays there until advanced.
    pub fn set(&self, at: OffsetDateTime) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.pinned = Some(at);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.pinned {
            Some(p) => p,
            None => OffsetDateTime::now_utc() + s.offset,
        }
    }
}

/// Japan Standard Time: no daylight saving, so a fixed offset is exact.
pub const LIBRARY_OFFSET: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// The one stored form of an instant: RFC 3339 UTC with microseconds, fixed width so that
/// text order is time order on both database backends.
pub fn format_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The library-local calendar date of an instant (Asia/Tokyo).
pub fn local_date(t: OffsetDateTime) -> Date {
    t.to_offset(LIBRARY_OFFSET).date()
}

pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_are_fixed_width_and_round_trip() {
        let t = datetime!(2026-04-01 23:59:59.5 UTC);
        let s = format_instant(t);
        assert_eq!(s, "2026-04-01T23:59:59.500000Z");
        assert_eq!(parse_instant(&s), Some(t));
        assert!(format_instant(datetime!(2026-04-01 09:00 UTC)) < s);
    }

    #[test]
    fn local_date_is_tokyo() {
        assert_eq!(
            format_date(local_date(datetime!(2026-03-31 15:00 UTC))),
            "2026-04-01"
        );
        assert_eq!(
            format_date(local_date(datetime!(2026-03-31 14:59 UTC))),
            "2026-03-31"
        );
    }

    #[test]
    fn test_clock_moves_forward_only() {
        let c = TestClock::new();
        c.set(datetime!(2026-01-01 00:00 UTC));
        c.advance(Duration::days(7));
        assert_eq!(c.now(), datetime!(2026-01-08 00:00 UTC));
        c.advance(Duration::days(-3));
        assert_eq!(c.now(), datetime!(2026-01-08 00:00 UTC));
    }
}
