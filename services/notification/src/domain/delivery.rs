//! The life of one delivery (rule N2: no mail is lost, every attempt is recorded).
//!
//! ```text
//!            event consumed (one row per mail, in the inbox transaction)
//!                              │
//!                              ▼
//!   ┌──────────────────────► pending ──── contact missing ────► no_address
//!   │ back-off                 │  │
//!   │ (attempts < max)         │  └──── given up (attempts ≥ max) ──► failed
//!   └──── attempt failed ◄─────┤
//!                              └──── accepted by SMTP / written ──► sent (+ MailSent)
//! ```
//!
//! An attempt starts by claiming the row: `attempts + 1` and `next_attempt_at` moved a
//! lease ahead, in one conditional update, so that two senders never send one row at the
//! same time and a sender killed mid-attempt leaves a row that comes due again when the
//! lease runs out. `sent`, `failed` and `no_address` are final.

use std::time::Duration;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for its next attempt at `next_attempt_at`.
    Pending,
    /// Accepted by the mail server (or written to the outbox folder) at `sent_at`.
    Sent,
    /// Given up after the configured number of attempts.
    Failed,
    /// The patron has no address to send to (patron-account answered NOT_FOUND).
    NoAddress,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::NoAddress => "no_address",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Sent,
            Status::Failed,
            Status::NoAddress,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles with each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// After this many attempts the delivery is given up (`failed`).
    pub max_attempts: u32,
    /// After this many attempts a mail the server refuses for good (an SMTP 5xx answer)
    /// is given up: such an answer rarely changes, but one bad configuration of the relay
    /// should not lose mail on the first try (N2).
    pub max_attempts_refused: u32,
}

impl Default for RetryPolicy {
    /// 5 s doubling to 10 min; 500 attempts is about three and a half days of trying.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
            max_attempts: 500,
            max_attempts_refused: 5,
        }
    }
}

/// Why an attempt failed, as far as deciding what next goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May pass later: the server is down or busy, patron-account did not answer.
    Transient,
    /// The server refused this mail for good (5xx), or it could not be built.
    Refused,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt: `base · 2^(attempts-1)`, at most
    /// `max`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Decides after the `attempts`-th attempt (counting this one) failed.
    pub fn after_failure(&self, attempts: u32, kind: FailureKind) -> AfterFailure {
        let limit = match kind {
            FailureKind::Transient => self.max_attempts,
            FailureKind::Refused => self.max_attempts_refused.min(self.max_attempts),
        };
        if attempts >= limit {
            AfterFailure::GiveUp
        } else {
            AfterFailure::RetryIn(self.delay(attempts))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_backs_off_from_five_seconds_to_ten_minutes() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_secs(5));
        assert_eq!(p.delay(2), Duration::from_secs(10));
        assert_eq!(p.delay(3), Duration::from_secs(20));
        assert_eq!(p.delay(8), Duration::from_secs(600));
        assert_eq!(p.delay(400), Duration::from_secs(600));
    }

    #[test]
    fn a_refused_mail_is_given_up_sooner_than_a_server_that_is_down() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.after_failure(4, FailureKind::Refused),
            AfterFailure::RetryIn(p.delay(4))
        );
        assert_eq!(
            p.after_failure(5, FailureKind::Refused),
            AfterFailure::GiveUp
        );
        assert!(matches!(
            p.after_failure(5, FailureKind::Transient),
            AfterFailure::RetryIn(_)
        ));
        assert_eq!(
            p.after_failure(500, FailureKind::Transient),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn statuses_round_trip_and_only_pending_is_open() {
        for s in [
            Status::Pending,
            Status::Sent,
            Status::Failed,
            Status::NoAddress,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(s.is_final(), s != Status::Pending);
        }
        assert_eq!(Status::parse("queued"), None);
    }

    proptest! {
        #[test]
        fn delays_never_shrink_and_never_pass_the_cap(
            base_ms in 1u64..10_000, max_ms in 1u64..10_000_000, a in 1u32..1000
        ) {
            let p = RetryPolicy {
                base: Duration::from_millis(base_ms),
                max: Duration::from_millis(max_ms),
                ..RetryPolicy::default()
            };
            prop_assert!(p.delay(a) <= p.max);
            prop_assert!(p.delay(a) <= p.delay(a + 1));
            prop_assert!(p.delay(a) >= p.base.min(p.max));
        }
    }
}
