//! The patron's own calls (web): their loans and holds, a renewal, a web hold, a
//! cancellation; each on the instance [`instance_for`] chooses, moving on when it is down
//! ([`on_any_instance`]).

use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Branch, ErrorCode, TitleId};

use super::*;
use crate::state::AppState;
use crate::web::error::ApiError;

/// The patron's current loans (L2 says which can be renewed) and their titles.
pub async fn patron_loans(
    state: &AppState,
    card: &str,
) -> Result<(Vec<pb::Loan>, TitleNames), ApiError> {
    let message = pb::PatronRequest {
        card_number: card.to_string(),
    };
    let loans = on_any_instance(
        state,
        instance_for(Call::Patron),
        Effect::Read,
        message,
        |mut c, r| async move { c.list_loans(r).await },
    )
    .await?
    .loans;
    let titles = TitleNames::fetch(state, loans.iter().map(|l| l.title_id.as_str())).await;
    Ok((loans, titles))
}

/// The patron's holds with their queue positions (H6), then the ones that ended lately,
/// and their titles.
pub async fn patron_holds(
    state: &AppState,
    card: &str,
) -> Result<(Vec<pb::Hold>, TitleNames), ApiError> {
    let message = pb::PatronRequest {
        card_number: card.to_string(),
    };
    let holds = on_any_instance(
        state,
        instance_for(Call::Patron),
        Effect::Read,
        message,
        |mut c, r| async move { c.list_holds(r).await },
    )
    .await?
    .holds;
    let titles = TitleNames::fetch(state, holds.iter().map(|h| h.title_id.as_str())).await;
    Ok((holds, titles))
}

/// Rule L2 on the web: the patron renews their own loan (circulation answers
/// `loan_not_found` for another patron's).
pub async fn renew_own(
    state: &AppState,
    card: &str,
    loan_id: &str,
    lending: Option<Branch>,
) -> Result<pb::Loan, ApiError> {
    let loan_id = record_id(loan_id, ErrorCode::LoanNotFound)?;
    let message = pb::RenewRequest {
        loan_id,
        card_number: card.to_string(),
        branch: String::new(),
        actor: String::new(),
    };
    let loan = on_any_instance(
        state,
        instance_for(Call::Renew { lending }),
        Effect::Change,
        message,
        |mut c, r| async move { c.renew(r).await },
    )
    .await?;
    tracing::info!(card = card, loan_id = %loan.loan_id, "loan renewed on the web");
    Ok(loan)
}

/// Rules H1–H5, H11: a web hold. Circulation decides whether it starts provisional or is
/// confirmed at once (H5's automatic confirmation).
pub async fn place_web_hold(
    state: &AppState,
    card: &str,
    title: &TitleId,
    pickup: Branch,
    receipt_mail: bool,
) -> Result<pb::Hold, ApiError> {
    let hold = state
        .circulation(instance_for(Call::PlaceHold { pickup }))?
        .place_hold(state.rpc(pb::PlaceHoldRequest {
            card_number: card.to_string(),
            title_id: title.to_string(),
            pickup_branch: pickup.code().to_string(),
            receipt_mail,
            counter_branch: String::new(),
            actor: String::new(),
        }))
        .await?
        .into_inner();
    tracing::info!(card = card, hold_id = %hold.hold_id, status = %hold.status, "web hold placed");
    Ok(hold)
}

/// Rule H10: the patron cancels their own hold (circulation answers `hold_not_found` for
/// another patron's, `hold_state_conflict` once it is checked out or ended).
pub async fn cancel_own(state: &AppState, card: &str, hold_id: &str) -> Result<pb::Hold, ApiError> {
    let hold_id = record_id(hold_id, ErrorCode::HoldNotFound)?;
    let message = pb::CancelHoldRequest {
        hold_id,
        card_number: card.to_string(),
        actor: String::new(),
        branch: String::new(),
        reason: String::new(),
    };
    let hold = on_any_instance(
        state,
        instance_for(Call::Patron),
        Effect::Change,
        message,
        |mut c, r| async move { c.cancel_hold(r).await },
    )
    .await?;
    tracing::info!(card = card, hold_id = %hold.hold_id, "hold cancelled by the patron");
    Ok(hold)
}
