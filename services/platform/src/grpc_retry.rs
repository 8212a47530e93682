//! Which gRPC calls are sent again when they fail on the way, and for how long: what makes a
//! restart of one process invisible to the patron at the gateway (ARCHITECTURE.md
//! "Restarts"). A rolling restart leaves a peer refusing connections for a moment, and the
//! calls in flight on its old connection are cut; the channel of every client
//! ([`crate::grpc_trace::TracedChannel`]) retries within [`BUDGET`], with backoff:
//!
//! - a call that never reached the peer ([`never_sent`]: the connection could not be
//!   made, hyper cancelled the request before sending it, or the server refused the stream
//!   unprocessed, `REFUSED_STREAM` or past its `GOAWAY`), whatever the method;
//! - a read ([`is_idempotent`]: it changes nothing, so sending it twice is harmless) that
//!   failed in any way on the transport, or that the peer answered `UNAVAILABLE`.
//!
//! A call that changes something and may have reached the peer (a checkout whose answer
//! was lost) is never sent again: it fails as before, and the caller sees 503.
//! A caller that does its own failover (the gateway's patron reads, which ask another
//! circulation instance) turns the retries off for one call with [`NoRetry`].

use std::error::Error as StdError;
use std::time::Duration;

use axum::http::HeaderMap;

/// The longest a call is retried, from its first attempt: past it the failure is answered.
/// A restart refuses connections for about 0.1 s and answers 503 for about 0.5 s (issue 8's
/// soak); 1.5 s covers that with room, and is short enough that a peer really down answers
/// 503 while the patron still waits.
pub const BUDGET: Duration = Duration::from_millis(1500);

/// The first wait between attempts; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(25);
pub const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// The methods that change nothing (`/package.Service/Method`): reads, whose repetition is
/// harmless. Every other method may change state and is retried only when it never
/// reached the peer.
pub const IDEMPOTENT: &[&str] = &[
    "/kitsuki.catalog.v1.CatalogService/GetTitle",
    "/kitsuki.catalog.v1.CatalogService/SearchTitles",
    "/kitsuki.catalog.v1.CatalogService/CountTitles",
    "/kitsuki.circulation.v1.CirculationService/ListLoans",
    "/kitsuki.circulation.v1.CirculationService/ListHolds",
    "/kitsuki.circulation.v1.CirculationService/GetTitleHoldability",
    "/kitsuki.circulation.v1.CirculationService/ListHoldShelf",
    "/kitsuki.circulation.v1.CirculationService/ListExpiredHolds",
    "/kitsuki.circulation.v1.CirculationService/ListPullList",
    "/kitsuki.circulation.v1.CirculationService/ListTransits",
    "/kitsuki.circulation.v1.CirculationService/ListProvisionalHolds",
    "/kitsuki.circulation.v1.CirculationService/BranchInfo",
    "/kitsuki.patron.v1.PatronService/StaffSession",
    "/kitsuki.patron.v1.PatronService/PatronSession",
    "/kitsuki.patron.v1.PatronService/GetContact",
    "/kitsuki.patron.v1.PatronService/GetPatronFacts",
    "/kitsuki.notification.v1.NotificationService/ListDeliveries",
    "/kitsuki.platform.v1.TestClockService/Now",
];

/// Whether the method of `path` changes nothing.
pub fn is_idempotent(path: &str) -> bool {
    IDEMPOTENT.contains(&path)
}

/// A request extension that turns the channel's retries off for one call (the caller
/// retries elsewhere itself): `request.extensions_mut().insert(NoRetry)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRetry;

/// Whether `err` (a transport failure, or a status made from one) says the request never
/// reached the peer's application, so that sending it again cannot do anything twice.
pub fn never_sent(err: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(hyper) = err.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            // hyper cancels the requests still queued when their connection ends.
            return true;
        }
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            // RFC 9113 8.7: a stream refused, or above the last one a GOAWAY says the
            // server processed, was not processed.
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote());
        }
        source = err.source();
    }
    false
}

/// [`never_sent`] of a failed call's status (tonic keeps the transport error as its
/// source).
pub fn status_never_sent(status: &tonic::Status) -> bool {
    StdError::source(status).is_some_and(never_sent)
}

/// The gRPC status code an answer carries in its headers (a "trailers only" answer: every
/// failure tonic's servers send), if any.
pub fn header_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// gRPC's `UNAVAILABLE`.
pub const UNAVAILABLE: i32 = 14;

/// The deadline a request carries (`grpc-timeout`: digits and a unit), if any.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// What one attempt's outcome calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it (a success, a refusal of the peer, or a failure not safe to repeat).
    Done,
    /// Send the request again, after the backoff, if the budget allows.
    Again,
}

/// The verdict on an attempt of a call to `path`: `answered` is the gRPC status of the
/// answer's headers when there was an answer, `failure` the transport error otherwise.
pub fn verdict(
    path: &str,
    answered: Option<Option<i32>>,
    failure: Option<&(dyn StdError + 'static)>,
) -> Verdict {
    let read = is_idempotent(path);
    let again = match (answered, failure) {
        (Some(status), _) => read && status == Some(UNAVAILABLE),
        (None, Some(err)) => read || never_sent(err),
        (None, None) => false,
    };
    if again { Verdict::Again } else { Verdict::Done }
}

/// The wait after an attempt that waited `previous` (zero before the first retry).
pub fn next_backoff(previous: Duration) -> Duration {
    if previous.is_zero() {
        FIRST_BACKOFF
    } else {
        (previous * 2).min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Wrapped(Box<dyn StdError + Send + Sync>);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("transport error")
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    fn refused() -> Wrapped {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        Wrapped(Box::new(tonic::ConnectError(Box::new(io))))
    }

    #[test]
    fn a_connection_never_made_is_never_sent_at_any_depth() {
        assert!(never_sent(&refused()));
        assert!(never_sent(&Wrapped(Box::new(refused()))));
        let status = tonic::Status::from_error(Box::new(refused()));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status_never_sent(&status));
    }

    #[test]
    fn a_refused_stream_is_never_sent_but_a_reset_one_may_have_been() {
        let refused: h2::Error = h2::Reason::REFUSED_STREAM.into();
        assert!(never_sent(&Wrapped(Box::new(refused))));
        let reset: h2::Error = h2::Reason::INTERNAL_ERROR.into();
        assert!(!never_sent(&Wrapped(Box::new(reset))));
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_sent(&Wrapped(Box::new(io))));
        assert!(!status_never_sent(&tonic::Status::unavailable("peer down")));
    }

    #[test]
    fn reads_are_retried_on_any_failure_writes_only_when_never_sent() {
        let read = "/kitsuki.circulation.v1.CirculationService/ListLoans";
        let write = "/kitsuki.circulation.v1.CirculationService/Checkout";
        let reset = Wrapped(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(verdict(read, None, Some(&reset)), Verdict::Again);
        assert_eq!(verdict(write, None, Some(&reset)), Verdict::Done);
        assert_eq!(verdict(write, None, Some(&refused())), Verdict::Again);
        // The peer answered UNAVAILABLE (draining, or its own peer down): a read again,
        // a write never (it may have done part of its work).
        assert_eq!(verdict(read, Some(Some(UNAVAILABLE)), None), Verdict::Again);
        assert_eq!(verdict(write, Some(Some(UNAVAILABLE)), None), Verdict::Done);
        // Any other answer is the answer.
        for status in [None, Some(0), Some(3), Some(5), Some(13)] {
            assert_eq!(
                verdict(read, Some(status), None),
                Verdict::Done,
                "{status:?}"
            );
        }
    }

    #[test]
    fn every_listed_read_is_a_method_of_the_services() {
        use kitsuki_proto::catalog::catalog_service_server::SERVICE_NAME as CATALOG;
        use kitsuki_proto::circulation::circulation_service_server::SERVICE_NAME as CIRCULATION;
        use kitsuki_proto::notification::notification_service_server::SERVICE_NAME as NOTIFICATION;
        use kitsuki_proto::patron::patron_service_server::SERVICE_NAME as PATRON;
        use kitsuki_proto::testclock::test_clock_service_server::SERVICE_NAME as CLOCK;
        for path in IDEMPOTENT {
            let (service, method) = path[1..].split_once('/').unwrap();
            assert!(
                [CATALOG, CIRCULATION, NOTIFICATION, PATRON, CLOCK].contains(&service),
                "{path}"
            );
            assert!(
                ["Get", "List", "Search", "Count", "Now", "BranchInfo"]
                    .iter()
                    .any(|p| method.starts_with(p))
                    || method.ends_with("Session"),
                "{path} does not read like a read"
            );
        }
        assert!(!is_idempotent(
            "/kitsuki.catalog.v1.CatalogService/CreateTitle"
        ));
    }

    #[test]
    fn the_deadline_of_a_request_is_read_from_grpc_timeout() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_timeout(&h), None);
        for (value, expected) in [
            ("10S", Duration::from_secs(10)),
            ("1500m", Duration::from_millis(1500)),
            ("2M", Duration::from_secs(120)),
            ("7u", Duration::from_micros(7)),
        ] {
            h.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&h), Some(expected), "{value}");
        }
        h.insert("grpc-timeout", "soon".parse().unwrap());
        assert_eq!(grpc_timeout(&h), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut wait = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..7 {
            wait = next_backoff(wait);
            seen.push(wait.as_millis());
        }
        assert_eq!(seen, [25, 50, 100, 200, 400, 400, 400]);
    }
}
