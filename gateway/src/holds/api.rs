//! The patron's loans and holds over JSON (API.md "Patron"): 貸出状況・予約状況の確認,
//! 延長 (rule L2: once, within the loan period), 予約申込 (H1–H5, H11) and 予約取消 (H10).
//! The patron is the one of the session ([`Patron`]); no path names a patron, so a token
//! only ever reaches its own loans and holds. Which circulation instance answers is
//! [`crate::circulation`]'s choice.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use kitsuki_proto::{Branch, ErrorCode, TitleId};
use serde::Deserialize;

use crate::account::api::Patron;
use crate::circulation::{
    HoldView, LoanView, TitleNames, cancel_own, patron_holds, patron_loans, place_web_hold,
    renew_own,
};
use crate::state::AppState;
use crate::web::error::{ApiError, Lang};
use crate::web::extract::ApiJson;
use crate::web::route_table::Routes;

/// The id of a path whose only parameter is that id; a path that does not parse names no
/// record (`missing`).
fn path_id(
    path: Result<Path<String>, PathRejection>,
    missing: ErrorCode,
) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::new(missing))
}

/// `GET /api/v1/me/loans`.
#[tracing::instrument(skip_all)]
pub async fn my_loans(
    State(state): State<AppState>,
    lang: Lang,
    patron: Patron,
) -> Result<Json<Vec<LoanView>>, ApiError> {
    let (loans, titles) = patron_loans(&state, &patron.profile.card_number).await?;
    Ok(Json(
        loans
            .iter()
            .map(|l| LoanView::new(l, &titles, lang))
            .collect(),
    ))
}

/// `POST /api/v1/me/loans/{loan_id}/renew`: 200 the loan with its new due date, or the
/// refusal of rule L2 (`renewal_already_renewed`, `renewal_overdue_loan`,
/// `renewal_patron_overdue`, `renewal_has_holds`).
#[tracing::instrument(skip_all)]
pub async fn renew(
    State(state): State<AppState>,
    lang: Lang,
    patron: Patron,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<LoanView>, ApiError> {
    let loan_id = path_id(path, ErrorCode::LoanNotFound)?;
    // The API path does not say which branch lent it (see `circulation::instance_for`).
    let loan = renew_own(&state, &patron.profile.card_number, &loan_id, None).await?;
    let titles = TitleNames::fetch(&state, [loan.title_id.as_str()]).await;
    Ok(Json(LoanView::new(&loan, &titles, lang)))
}

/// `GET /api/v1/me/holds`.
#[tracing::instrument(skip_all)]
pub async fn my_holds(
    State(state): State<AppState>,
    patron: Patron,
) -> Result<Json<Vec<HoldView>>, ApiError> {
    let (holds, titles) = patron_holds(&state, &patron.profile.card_number).await?;
    Ok(Json(
        holds.iter().map(|h| HoldView::new(h, &titles)).collect(),
    ))
}

/// `POST /api/v1/me/holds` (rule H4: pickup branch and the receipt mail are the patron's
/// choice).
#[derive(Debug, Deserialize)]
pub struct NewHoldBody {
    pub title_id: String,
    pub pickup_branch: String,
    pub receipt_mail: bool,
}

/// 201 the hold: `provisional` (rule H5), or `confirmed` when circulation confirmed it at
/// once. Refusals carry the codes of H1 (`hold_material_type`, `hold_not_held_here`,
/// `hold_available_copy`), H2, H3 and H11.
#[tracing::instrument(skip_all)]
pub async fn place_hold(
    State(state): State<AppState>,
    patron: Patron,
    ApiJson(body): ApiJson<NewHoldBody>,
) -> Result<impl IntoResponse, ApiError> {
    let pickup = Branch::parse(&body.pickup_branch)?;
    let title = TitleId::parse(&body.title_id)?;
    let hold = place_web_hold(
        &state,
        &patron.profile.card_number,
        &title,
        pickup,
        body.receipt_mail,
    )
    .await?;
    let titles = TitleNames::fetch(&state, [hold.title_id.as_str()]).await;
    Ok((StatusCode::CREATED, Json(HoldView::new(&hold, &titles))))
}

/// `DELETE /api/v1/me/holds/{hold_id}`: 204 (rule H10).
#[tracing::instrument(skip_all)]
pub async fn cancel_hold(
    State(state): State<AppState>,
    patron: Patron,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let hold_id = path_id(path, ErrorCode::HoldNotFound)?;
    cancel_own(&state, &patron.profile.card_number, &hold_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The patron's loans and holds in the JSON API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/me/loans", my_loans)
        .post("/api/v1/me/loans/{loan_id}/renew", renew)
        .get("/api/v1/me/holds", my_holds)
        .post("/api/v1/me/holds", place_hold)
        .delete("/api/v1/me/holds/{hold_id}", cancel_hold)
}
