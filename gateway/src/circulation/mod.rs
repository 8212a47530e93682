//! The gateway's side of circulation: which branch instance each call goes to, the calls
//! themselves (shared by the JSON API and the pages, so they cannot disagree about a rule),
//! the titles that fill the lists, and the JSON shapes of API.md for loans and holds.
//!
//! Routing of calls to the three instances (rule S1), decided in [`instance_for`]:
//!
//! - A desk call (`/api/v1/branches/{branch}/…`, `/staff/{branch}/…`) goes to the instance
//!   of `{branch}` and names it, so the instance can refuse a desk that is not its own.
//! - A patron's web hold goes to the instance of the pickup branch: that instance keeps the
//!   hold shelf, runs the expiry job and lends the item (H7–H9), so the hold starts where
//!   it will end.
//! - A patron's renewal goes to the instance of the lending branch when the gateway knows it
//!   (the pages carry it from the list of loans), else to the main library's; the API path
//!   names only the loan, and asking for the loan first would double every renewal.
//! - A patron's lists and cancellations go to the main library's instance (kitsuki).
//!
//! The three instances share one database and every change takes its title's guard, so
//! any instance gives the same answer to a patron: the choices above only say where the
//! work is done and logged. So a patron's own calls do not depend on one instance
//! ([`on_any_instance`]): when the chosen one is down, a list is read from the next one
//! that answers, and a renewal or a cancellation goes to the next one when it never
//! reached the first (it cannot have been done twice).

mod desk;
mod items;
mod live;
mod patron;
mod titles;
mod views;

pub use desk::*;
pub use items::*;
pub use live::*;
pub use patron::*;
pub use titles::*;
pub use views::*;

use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Branch, ErrorCode};

use crate::state::AppState;
use crate::web::error::ApiError;

/// A call to circulation, as far as choosing its instance goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// At the desk of a branch (rule S1).
    Desk(Branch),
    /// A patron places a web hold to be picked up at this branch (H4).
    PlaceHold { pickup: Branch },
    /// A patron renews a loan of this lending branch, when known (L2).
    Renew { lending: Option<Branch> },
    /// A patron reads their loans or holds, or cancels a hold (H10).
    Patron,
}

/// The branch whose instance serves `call` (see the module's documentation).
pub fn instance_for(call: Call) -> Branch {
    match call {
        Call::Desk(branch) => branch,
        Call::PlaceHold { pickup } => pickup,
        Call::Renew { lending } => lending.unwrap_or(Branch::Kitsuki),
        Call::Patron => Branch::Kitsuki,
    }
}

/// The longest loan or hold id accepted in a path; the services make UUIDs.
const MAX_RECORD_ID: usize = 64;

/// A loan or hold id from a path or a form: anything that cannot be one of ours is the
/// record that does not exist (`missing`, 404), not malformed input.
pub fn record_id(raw: &str, missing: ErrorCode) -> Result<String, ApiError> {
    let id = raw.trim();
    let plausible = !id.is_empty()
        && id.len() <= MAX_RECORD_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plausible {
        Ok(id.to_string())
    } else {
        Err(ApiError::new(missing))
    }
}

/// A circulation client, as [`AppState::circulation`] gives it.
type Client = pb::circulation_service_client::CirculationServiceClient<
    kitsuki_platform::grpc_trace::TracedChannel,
>;

/// Whether a patron's call may change something (then it moves to another instance only
/// when it never reached the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Read,
    Change,
}

/// The instances to try for a patron's call, `preferred` first, then the others in the
/// order of [`Branch::ALL`].
pub fn failover_order(preferred: Branch) -> Vec<Branch> {
    std::iter::once(preferred)
        .chain(Branch::ALL.into_iter().filter(|b| *b != preferred))
        .collect()
}

/// Whether a failed patron call may be sent to the next instance: the instance did not
/// answer (`unavailable` with no code of ours: down, restarting) and, for a change, the
/// call never reached it.
fn moves_on(status: &tonic::Status, effect: Effect) -> bool {
    let peer_down = status.code() == tonic::Code::Unavailable
        && status
            .metadata()
            .get(kitsuki_proto::error::CODE_METADATA_KEY)
            .is_none();
    peer_down
        && match effect {
            Effect::Read => true,
            Effect::Change => kitsuki_platform::grpc_retry::status_never_sent(status),
        }
}

/// Sends a patron's call to `preferred`'s instance, and on to the next ones of
/// [`failover_order`] while [`moves_on`] allows. The attempts before the last go out
/// without the channel's own retries (the next instance is the retry); the last one has
/// them, so a restart of every instance at once is still waited for briefly.
async fn on_any_instance<M, T, F, Fut>(
    state: &AppState,
    preferred: Branch,
    effect: Effect,
    message: M,
    call: F,
) -> Result<T, ApiError>
where
    M: Clone,
    F: Fn(Client, tonic::Request<M>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let order = failover_order(preferred);
    for (i, branch) in order.iter().enumerate() {
        let last = i + 1 == order.len();
        let mut request = state.rpc(message.clone());
        if !last {
            request
                .extensions_mut()
                .insert(kitsuki_platform::grpc_retry::NoRetry);
        }
        match call(state.circulation(*branch)?, request).await {
            Ok(answer) => return Ok(answer.into_inner()),
            Err(status) if !last && moves_on(&status, effect) => {
                tracing::warn!(branch = %branch.code(), grpc_code = ?status.code(), "circulation instance down; asking the next one");
            }
            Err(status) => return Err(status.into()),
        }
    }
    Err(ApiError::new(ErrorCode::Unavailable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patrons_call_tries_every_instance_its_own_first() {
        for preferred in Branch::ALL {
            let order = failover_order(preferred);
            assert_eq!(order[0], preferred);
            let mut sorted = order.clone();
            sorted.sort_by_key(|b| b.code());
            let mut all = Branch::ALL.to_vec();
            all.sort_by_key(|b| b.code());
            assert_eq!(sorted, all);
        }
    }

    #[test]
    fn a_read_moves_on_when_the_instance_is_down_a_change_only_when_never_sent() {
        let down = tonic::Status::unavailable("connection reset");
        assert!(moves_on(&down, Effect::Read));
        assert!(!moves_on(&down, Effect::Change), "it may have been renewed");
        let refused = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
        assert!(moves_on(&refused, Effect::Change));
        // The instance answered: its answer stands (the others share its database).
        let own: tonic::Status = kitsuki_proto::ServiceError::new(ErrorCode::Unavailable).into();
        assert!(!moves_on(&own, Effect::Read));
        let refusal: tonic::Status =
            kitsuki_proto::ServiceError::new(ErrorCode::RenewalHasHolds).into();
        assert!(!moves_on(&refusal, Effect::Read));
    }

    #[test]
    fn s1_desk_calls_go_to_their_own_branch_instance() {
        for branch in Branch::ALL {
            assert_eq!(instance_for(Call::Desk(branch)), branch);
        }
    }

    #[test]
    fn a_web_hold_goes_to_the_pickup_branch_instance() {
        for pickup in Branch::ALL {
            assert_eq!(instance_for(Call::PlaceHold { pickup }), pickup);
        }
    }

    #[test]
    fn a_renewal_goes_to_the_lending_branch_when_known_else_the_main_library() {
        assert_eq!(
            instance_for(Call::Renew {
                lending: Some(Branch::Ota)
            }),
            Branch::Ota
        );
        assert_eq!(instance_for(Call::Renew { lending: None }), Branch::Kitsuki);
        assert_eq!(instance_for(Call::Patron), Branch::Kitsuki);
    }

    #[test]
    fn record_ids_that_cannot_be_ours_are_not_found() {
        assert_eq!(
            record_id(
                " 0192f1c2-7a5e-7c3b-9d1e-0123456789ab ",
                ErrorCode::HoldNotFound
            )
            .unwrap(),
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ab"
        );
        for bad in ["", " ", "a/b", "x'; drop", &"a".repeat(65), "予約"] {
            assert_eq!(
                record_id(bad, ErrorCode::LoanNotFound).unwrap_err().code(),
                ErrorCode::LoanNotFound,
                "{bad}"
            );
        }
    }
}
