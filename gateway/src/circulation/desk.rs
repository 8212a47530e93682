//! The desk's calls (rule S1), each naming its branch and its staff member (rule S3).

use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, TitleId};

use super::*;
use crate::staff::counter::CounterStaff;
use crate::state::AppState;
use crate::web::error::ApiError;

/// A desk's instance and the fields every desk request carries.
fn desk(
    state: &AppState,
    counter: &CounterStaff,
) -> Result<
    (
        kitsuki_proto::circulation::circulation_service_client::CirculationServiceClient<
            kitsuki_platform::grpc_trace::TracedChannel,
        >,
        String,
        String,
    ),
    ApiError,
> {
    let client = state.circulation(instance_for(Call::Desk(counter.branch)))?;
    Ok((
        client,
        counter.branch.code().to_string(),
        counter.staff.username.clone(),
    ))
}

/// Lends `barcode` to `card` at this desk (L1, L3, L4, H8).
pub async fn checkout(
    state: &AppState,
    counter: &CounterStaff,
    card: &CardNumber,
    barcode: &Barcode,
) -> Result<pb::Loan, ApiError> {
    let (mut client, branch, actor) = desk(state, counter)?;
    let loan = client
        .checkout(state.rpc(pb::CheckoutRequest {
            branch,
            card_number: card.to_string(),
            barcode: barcode.to_string(),
            actor,
        }))
        .await?
        .into_inner();
    tracing::info!(actor = %counter.staff.username, branch = counter.branch.code(), loan_id = %loan.loan_id, "checkout");
    Ok(loan)
}

/// Takes `barcode` back at this desk (L5) and says where it goes (H7).
pub async fn checkin(
    state: &AppState,
    counter: &CounterStaff,
    barcode: &Barcode,
) -> Result<pb::CheckinResponse, ApiError> {
    let (mut client, branch, actor) = desk(state, counter)?;
    let answer = client
        .checkin(state.rpc(pb::CheckinRequest {
            branch,
            barcode: barcode.to_string(),
            actor,
        }))
        .await?
        .into_inner();
    tracing::info!(actor = %counter.staff.username, branch = counter.branch.code(), routing = %answer.routing, "checkin");
    Ok(answer)
}

/// Rule L2 at the counter or by phone: staff renew a patron's loan.
pub async fn renew_for_patron(
    state: &AppState,
    counter: &CounterStaff,
    loan_id: &str,
) -> Result<pb::Loan, ApiError> {
    let loan_id = record_id(loan_id, ErrorCode::LoanNotFound)?;
    let (mut client, branch, actor) = desk(state, counter)?;
    let loan = client
        .renew(state.rpc(pb::RenewRequest {
            loan_id,
            card_number: String::new(),
            branch,
            actor,
        }))
        .await?
        .into_inner();
    tracing::info!(actor = %counter.staff.username, branch = counter.branch.code(), loan_id = %loan.loan_id, "loan renewed at the desk");
    Ok(loan)
}

/// A patron's current loans as the desk sees them to renew one (rule L2 by phone or at
/// the counter). Current loans only: a returned loan is nowhere to be seen (V1).
pub async fn loans_at_desk(
    state: &AppState,
    counter: &CounterStaff,
    card: &CardNumber,
) -> Result<(Vec<pb::Loan>, TitleNames), ApiError> {
    let (mut client, _, _) = desk(state, counter)?;
    let loans = client
        .list_loans(state.rpc(pb::PatronRequest {
            card_number: card.to_string(),
        }))
        .await?
        .into_inner()
        .loans;
    let titles = TitleNames::fetch(state, loans.iter().map(|l| l.title_id.as_str())).await;
    Ok((loans, titles))
}

/// Rule S1: a hold placed at the counter (any material type, available copies too).
pub async fn counter_hold(
    state: &AppState,
    counter: &CounterStaff,
    card: &CardNumber,
    title: &TitleId,
    pickup: Branch,
) -> Result<pb::Hold, ApiError> {
    let (mut client, branch, actor) = desk(state, counter)?;
    let hold = client
        .place_hold(state.rpc(pb::PlaceHoldRequest {
            card_number: card.to_string(),
            title_id: title.to_string(),
            pickup_branch: pickup.code().to_string(),
            // H4's choice is the web patron's; a counter hold gets the mails of N1 that
            // circulation sends for every hold.
            receipt_mail: false,
            counter_branch: branch,
            actor,
        }))
        .await?
        .into_inner();
    tracing::info!(actor = %counter.staff.username, branch = counter.branch.code(), hold_id = %hold.hold_id, "counter hold placed");
    Ok(hold)
}

/// Rule H5 in staff review: confirm (`reject == None`) or reject a provisional hold.
pub async fn review_hold(
    state: &AppState,
    counter: &CounterStaff,
    hold_id: &str,
    reject: Option<&str>,
) -> Result<pb::Hold, ApiError> {
    let hold_id = record_id(hold_id, ErrorCode::HoldNotFound)?;
    let (mut client, branch, actor) = desk(state, counter)?;
    let request = pb::ReviewHoldRequest {
        hold_id,
        branch,
        actor,
        reason: reject.map(str::trim).unwrap_or_default().to_string(),
    };
    let hold = match reject {
        None => client.confirm_hold(state.rpc(request)).await?,
        Some(_) => client.reject_hold(state.rpc(request)).await?,
    }
    .into_inner();
    tracing::info!(actor = %counter.staff.username, branch = counter.branch.code(), hold_id = %hold.hold_id, status = %hold.status, "hold reviewed");
    Ok(hold)
}

/// The desk lists of a branch (rule S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskList {
    /// Items waiting for their patrons (H8, H9).
    HoldShelf,
    /// Holds that expired or were cancelled while their item was on the shelf: take it off
    /// and send it where it goes now (H9, H10).
    Expired,
    /// Copies on this branch's shelves wanted by a hold (counter holds on available items).
    PullList,
    /// Provisional holds waiting for staff review (H5).
    Provisional,
}

pub async fn desk_list(
    state: &AppState,
    counter: &CounterStaff,
    list: DeskList,
) -> Result<(Vec<pb::DeskHold>, TitleNames), ApiError> {
    let (mut client, branch, _) = desk(state, counter)?;
    let request = state.rpc(pb::BranchRequest { branch });
    let holds = match list {
        DeskList::HoldShelf => client.list_hold_shelf(request).await?,
        DeskList::Expired => client.list_expired_holds(request).await?,
        DeskList::PullList => client.list_pull_list(request).await?,
        DeskList::Provisional => client.list_provisional_holds(request).await?,
    }
    .into_inner()
    .holds;
    let titles = TitleNames::fetch(state, holds.iter().map(|h| h.title_id.as_str())).await;
    Ok((holds, titles))
}

/// Transits to and from a branch (H7, H9).
pub async fn transits(
    state: &AppState,
    counter: &CounterStaff,
) -> Result<(pb::Transits, TitleNames), ApiError> {
    let (mut client, branch, _) = desk(state, counter)?;
    let transits = client
        .list_transits(state.rpc(pb::BranchRequest { branch }))
        .await?
        .into_inner();
    let titles = TitleNames::fetch(state, TransitsView::title_ids(&transits)).await;
    Ok((transits, titles))
}
