//! How long sessions and one-time links live: a patron session ends after a time without
//! use and after a longest time in any case (ARCHITECTURE.md "Security"); a link (rules P9,
//! P11) works until it is used once or expires.

use time::{Duration, OffsetDateTime};

/// Rule P9: an email verification link is valid for 2 days.
pub const VERIFICATION_VALID: Duration = Duration::days(2);
/// Rule P11: a password-reset link is valid for 30 minutes.
pub const RESET_VALID: Duration = Duration::minutes(30);

/// Lifetimes of a patron session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Ends this long after login, however active.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    /// 30 minutes idle, 12 hours in all.
    fn default() -> Self {
        SessionLimits {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

/// True while a session may be used.
pub fn session_alive(
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    revoked: bool,
    now: OffsetDateTime,
    limits: SessionLimits,
) -> bool {
    !revoked && now < created_at + limits.absolute && now < last_seen_at + limits.idle
}

/// What a one-time link can still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Valid,
    /// Used, or replaced by a newer one: as good as unknown (`token_invalid`).
    Spent,
    /// Past its time (`token_expired`).
    Expired,
}

/// The state of a one-time link at `now`. A spent link says so even after it expired: a
/// used link is never "expired", it is gone.
pub fn link_state(expires_at: OffsetDateTime, spent: bool, now: OffsetDateTime) -> LinkState {
    if spent {
        LinkState::Spent
    } else if now >= expires_at {
        LinkState::Expired
    } else {
        LinkState::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-05-10 01:00 UTC);

    #[test]
    fn sessions_end_after_30_idle_minutes() {
        let l = SessionLimits::default();
        let seen = T0 + Duration::minutes(10);
        assert!(session_alive(
            T0,
            seen,
            false,
            seen + Duration::minutes(29),
            l
        ));
        assert!(!session_alive(
            T0,
            seen,
            false,
            seen + Duration::minutes(30),
            l
        ));
    }

    #[test]
    fn sessions_end_after_12_hours_however_active() {
        let l = SessionLimits::default();
        let end = T0 + Duration::hours(12);
        let just_seen = end - Duration::seconds(1);
        assert!(session_alive(
            T0,
            just_seen,
            false,
            end - Duration::microseconds(1),
            l
        ));
        assert!(!session_alive(T0, just_seen, false, end, l));
    }

    #[test]
    fn revoked_sessions_are_dead_at_once() {
        assert!(!session_alive(T0, T0, true, T0, SessionLimits::default()));
        assert!(session_alive(T0, T0, false, T0, SessionLimits::default()));
    }

    #[test]
    fn p9_verification_links_live_2_days() {
        let exp = T0 + VERIFICATION_VALID;
        assert_eq!(
            link_state(exp, false, T0 + Duration::hours(47)),
            LinkState::Valid
        );
        assert_eq!(
            link_state(exp, false, exp - Duration::microseconds(1)),
            LinkState::Valid
        );
        assert_eq!(link_state(exp, false, exp), LinkState::Expired);
    }

    #[test]
    fn p11_reset_links_live_30_minutes_and_work_once() {
        let exp = T0 + RESET_VALID;
        assert_eq!(
            link_state(exp, false, T0 + Duration::minutes(29)),
            LinkState::Valid
        );
        assert_eq!(
            link_state(exp, false, T0 + Duration::minutes(30)),
            LinkState::Expired
        );
        assert_eq!(link_state(exp, true, T0), LinkState::Spent);
        assert_eq!(
            link_state(exp, true, exp + Duration::days(1)),
            LinkState::Spent
        );
    }
}
