//! Rule P13: failed logins are throttled per card and per client address. The decision is
//! a function of the failures recorded in the window; where they are kept (the database,
//! so that replicas share them) is the shell's business.

use time::{Duration, OffsetDateTime};

/// How many failures lock further attempts, and for how long they count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures per card number (or staff user name) within `window`; 0 turns the limit
    /// off.
    pub per_account: u32,
    /// Failures per client address within `window`; 0 turns the limit off.
    pub per_address: u32,
    /// How long a failure counts.
    pub window: Duration,
}

impl Default for ThrottleConfig {
    /// 5 per card, 20 per address, within 15 minutes.
    fn default() -> Self {
        ThrottleConfig {
            per_account: 5,
            per_address: 20,
            window: Duration::minutes(15),
        }
    }
}

/// How long to wait before another attempt may be made, or `None` when one may be made
/// now. `failures` are the instants of recorded failures of one key, in any order; those
/// older than `window` no longer count.
///
/// With `limit` or more failures in the window, the next attempt waits until enough of
/// them have left the window to bring the count below `limit`.
pub fn wait_before_next_attempt(
    failures: &[OffsetDateTime],
    limit: u32,
    window: Duration,
    now: OffsetDateTime,
) -> Option<Duration> {
    if limit == 0 {
        return None;
    }
    let start = now - window;
    let mut recent: Vec<OffsetDateTime> = failures.iter().copied().filter(|t| *t > start).collect();
    let limit = limit as usize;
    if recent.len() < limit {
        return None;
    }
    recent.sort();
    // Once this one leaves the window, `limit - 1` remain.
    let oldest_that_must_leave = recent[recent.len() - limit];
    Some(oldest_that_must_leave + window - now)
}

/// Whole seconds to announce in `Retry-After`: rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let micros = wait.whole_microseconds().max(0) as u64;
    micros.div_ceil(1_000_000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-05-10 01:00 UTC);

    fn mins(m: i64) -> Duration {
        Duration::minutes(m)
    }

    #[test]
    fn p13_defaults_are_5_per_card_20_per_address_in_15_minutes() {
        let c = ThrottleConfig::default();
        assert_eq!((c.per_account, c.per_address, c.window), (5, 20, mins(15)));
    }

    #[test]
    fn p13_four_failures_leave_the_fifth_attempt_open() {
        let f: Vec<_> = (0..4).map(|i| T0 + mins(i)).collect();
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(4)),
            None
        );
    }

    #[test]
    fn p13_five_failures_lock_until_the_first_leaves_the_window() {
        let f: Vec<_> = (0..5).map(|i| T0 + mins(i)).collect();
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(5)),
            Some(mins(10))
        );
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(15) - Duration::seconds(1)),
            Some(Duration::seconds(1))
        );
        // At exactly 15 minutes the first failure no longer counts.
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(15)),
            None
        );
    }

    #[test]
    fn p13_order_of_the_records_does_not_matter() {
        let mut f: Vec<_> = (0..5).map(|i| T0 + mins(i)).collect();
        f.reverse();
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(5)),
            Some(mins(10))
        );
    }

    #[test]
    fn p13_more_failures_than_the_limit_wait_for_enough_to_leave() {
        // Seven failures (a lower limit configured after they were counted): three must
        // leave.
        let f: Vec<_> = (0..7).map(|i| T0 + mins(i)).collect();
        assert_eq!(
            wait_before_next_attempt(&f, 5, mins(15), T0 + mins(7)),
            Some(mins(17) - mins(7))
        );
    }

    #[test]
    fn p13_old_failures_do_not_count_and_zero_means_no_limit() {
        let f: Vec<_> = (0..10).map(|i| T0 - mins(60) + mins(i)).collect();
        assert_eq!(wait_before_next_attempt(&f, 5, mins(15), T0), None);
        let f: Vec<_> = (0..50).map(|i| T0 + Duration::seconds(i)).collect();
        assert_eq!(
            wait_before_next_attempt(&f, 0, mins(15), T0 + mins(1)),
            None
        );
        assert_eq!(wait_before_next_attempt(&[], 1, mins(15), T0), None);
        assert_eq!(
            wait_before_next_attempt(&[T0], 1, mins(15), T0),
            Some(mins(15))
        );
    }

    #[test]
    fn p13_retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::milliseconds(1)), 1);
        assert_eq!(retry_after_seconds(Duration::seconds(10)), 10);
        assert_eq!(retry_after_seconds(Duration::milliseconds(10_001)), 11);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(mins(15)), 900);
    }

    proptest! {
        #[test]
        fn p13_locked_exactly_while_limit_failures_are_in_the_window(
            offsets in prop::collection::vec(0i64..3600, 0..30),
            limit in 1u32..10,
            at in 0i64..4000,
        ) {
            let window = mins(15);
            let failures: Vec<_> = offsets.iter().map(|s| T0 + Duration::seconds(*s)).collect();
            let now = T0 + Duration::seconds(at);
            let in_window = |t: OffsetDateTime| failures.iter().filter(|f| **f > t - window).count();
            match wait_before_next_attempt(&failures, limit, window, now) {
                None => prop_assert!(in_window(now) < limit as usize),
                Some(wait) => {
                    prop_assert!(wait > Duration::ZERO);
                    prop_assert!(in_window(now) >= limit as usize);
                    // After the wait the count is below the limit (no new failures).
                    let later = now + wait;
                    let count_later = failures.iter().filter(|f| **f > later - window && **f <= now).count();
                    prop_assert!(count_later < limit as usize);
                }
            }
        }
    }
}
