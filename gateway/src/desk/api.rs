//! A branch desk's circulation work over JSON (API.md "Staff", rule S1): checkout,
//! checkin with the routing of rule H7, renewal for a patron (L2), counter holds, the
//! review of provisional holds (H5) and the desk lists. Every path is for staff assigned
//! to `{branch}` (rule S3, 403 otherwise: the [`CounterStaff`] guard of the counter's
//! other paths), goes to `{branch}`'s own instance and passes the staff member's name as
//! `actor`, so that each action is recorded with who, when and where.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, TitleId};
use serde::Deserialize;

use crate::circulation::{
    self, CheckinView, DeskHoldView, DeskList, HoldView, LoanView, TitleNames, TransitsView,
};
use crate::staff::counter::CounterStaff;
use crate::state::AppState;
use crate::web::error::{ApiError, Lang};
use crate::web::extract::ApiJson;
use crate::web::route_table::Routes;

/// The record id of a `/{branch}/…/{id}/…` path.
fn second_param(
    path: Result<Path<(String, String)>, PathRejection>,
    missing: ErrorCode,
) -> Result<String, ApiError> {
    path.map(|Path((_, id))| id)
        .map_err(|_| ApiError::new(missing))
}

/// `POST /api/v1/branches/{branch}/checkouts`.
#[derive(Debug, Deserialize)]
pub struct CheckoutBody {
    pub card_number: String,
    pub barcode: String,
}

/// 201 the loan (rules L1, L3, L4, H8).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn checkout(
    State(state): State<AppState>,
    lang: Lang,
    counter: CounterStaff,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<impl IntoResponse, ApiError> {
    let card = CardNumber::parse(&body.card_number)?;
    let barcode = Barcode::parse(&body.barcode)?;
    let loan = circulation::checkout(&state, &counter, &card, &barcode).await?;
    let titles = TitleNames::fetch(&state, [loan.title_id.as_str()]).await;
    Ok((
        StatusCode::CREATED,
        Json(LoanView::new(&loan, &titles, lang)),
    ))
}

/// `POST /api/v1/branches/{branch}/checkins`.
#[derive(Debug, Deserialize)]
pub struct CheckinBody {
    pub barcode: String,
}

/// 200 `{routing, to_branch?, hold_id?}` (rules L5, H7).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn checkin(
    State(state): State<AppState>,
    counter: CounterStaff,
    ApiJson(body): ApiJson<CheckinBody>,
) -> Result<Json<CheckinView>, ApiError> {
    let barcode = Barcode::parse(&body.barcode)?;
    let answer = circulation::checkin(&state, &counter, &barcode).await?;
    let titles = TitleNames::fetch(&state, [answer.title_id.as_str()]).await;
    Ok(Json(CheckinView::new(&answer, &titles)))
}

/// `POST /api/v1/branches/{branch}/loans/{loan_id}/renew`: 200 the loan (rule L2).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn renew(
    State(state): State<AppState>,
    lang: Lang,
    counter: CounterStaff,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<LoanView>, ApiError> {
    let loan_id = second_param(path, ErrorCode::LoanNotFound)?;
    let loan = circulation::renew_for_patron(&state, &counter, &loan_id).await?;
    let titles = TitleNames::fetch(&state, [loan.title_id.as_str()]).await;
    Ok(Json(LoanView::new(&loan, &titles, lang)))
}

/// `POST /api/v1/branches/{branch}/holds`: a counter hold.
#[derive(Debug, Deserialize)]
pub struct CounterHoldBody {
    pub card_number: String,
    pub title_id: String,
    pub pickup_branch: String,
}

/// 201 the hold (rule S1: any material type, available copies too).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn place_hold(
    State(state): State<AppState>,
    counter: CounterStaff,
    ApiJson(body): ApiJson<CounterHoldBody>,
) -> Result<impl IntoResponse, ApiError> {
    let card = CardNumber::parse(&body.card_number)?;
    let title = TitleId::parse(&body.title_id)?;
    let pickup = Branch::parse(&body.pickup_branch)?;
    let hold = circulation::counter_hold(&state, &counter, &card, &title, pickup).await?;
    let titles = TitleNames::fetch(&state, [hold.title_id.as_str()]).await;
    Ok((StatusCode::CREATED, Json(HoldView::new(&hold, &titles))))
}

/// The body of confirm and reject; both may come without one.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The decision of an optional JSON body: none at all (or only blanks) is the empty
/// decision, anything else must be the JSON object (else 400 `invalid_input`).
fn decision(body: &Bytes) -> Result<DecisionBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_input(e.to_string()))
}

/// `POST /api/v1/branches/{branch}/holds/{hold_id}/confirm`: 200 the hold (rule H5).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn confirm_hold(
    State(state): State<AppState>,
    counter: CounterStaff,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Result<Json<HoldView>, ApiError> {
    let hold_id = second_param(path, ErrorCode::HoldNotFound)?;
    decision(&body)?;
    let hold = circulation::review_hold(&state, &counter, &hold_id, None).await?;
    let titles = TitleNames::fetch(&state, [hold.title_id.as_str()]).await;
    Ok(Json(HoldView::new(&hold, &titles)))
}

/// `POST /api/v1/branches/{branch}/holds/{hold_id}/reject` `{reason?}`: 200 the hold
/// (rule H5; the reason goes to the patron in the rejection mail of N1).
#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn reject_hold(
    State(state): State<AppState>,
    counter: CounterStaff,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Result<Json<HoldView>, ApiError> {
    let hold_id = second_param(path, ErrorCode::HoldNotFound)?;
    let body = decision(&body)?;
    let reason = body.reason.unwrap_or_default();
    let hold = circulation::review_hold(&state, &counter, &hold_id, Some(&reason)).await?;
    let titles = TitleNames::fetch(&state, [hold.title_id.as_str()]).await;
    Ok(Json(HoldView::new(&hold, &titles)))
}

async fn list(
    state: &AppState,
    counter: &CounterStaff,
    which: DeskList,
) -> Result<Json<Vec<DeskHoldView>>, ApiError> {
    let (holds, titles) = circulation::desk_list(state, counter, which).await?;
    Ok(Json(DeskHoldView::list(&holds, &titles)))
}

/// `GET /api/v1/branches/{branch}/hold-shelf`: this branch's hold shelf (H8, H9).
pub async fn hold_shelf(
    State(state): State<AppState>,
    counter: CounterStaff,
) -> Result<Json<Vec<DeskHoldView>>, ApiError> {
    list(&state, &counter, DeskList::HoldShelf).await
}

/// `GET /api/v1/branches/{branch}/expired-holds`: holds that ended with their item on this
/// shelf, to take it off and send it on (H9, H10).
pub async fn expired_holds(
    State(state): State<AppState>,
    counter: CounterStaff,
) -> Result<Json<Vec<DeskHoldView>>, ApiError> {
    list(&state, &counter, DeskList::Expired).await
}

/// `GET /api/v1/branches/{branch}/pull-list`: copies on this branch's shelves that holds
/// want (S1).
pub async fn pull_list(
    State(state): State<AppState>,
    counter: CounterStaff,
) -> Result<Json<Vec<DeskHoldView>>, ApiError> {
    list(&state, &counter, DeskList::PullList).await
}

/// `GET /api/v1/branches/{branch}/provisional-holds`: holds waiting for review (H5).
pub async fn provisional_holds(
    State(state): State<AppState>,
    counter: CounterStaff,
) -> Result<Json<Vec<DeskHoldView>>, ApiError> {
    list(&state, &counter, DeskList::Provisional).await
}

/// `GET /api/v1/branches/{branch}/transits`: `{incoming, outgoing}` (H7, H9).
pub async fn transits(
    State(state): State<AppState>,
    counter: CounterStaff,
) -> Result<Json<TransitsView>, ApiError> {
    let (transits, titles) = circulation::transits(&state, &counter).await?;
    Ok(Json(TransitsView::new(&transits, &titles)))
}

/// A branch desk's circulation in the JSON API (rule S1).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/branches/{branch}/checkouts", checkout)
        .post("/api/v1/branches/{branch}/checkins", checkin)
        .post("/api/v1/branches/{branch}/loans/{loan_id}/renew", renew)
        .post("/api/v1/branches/{branch}/holds", place_hold)
        .post(
            "/api/v1/branches/{branch}/holds/{hold_id}/confirm",
            confirm_hold,
        )
        .post(
            "/api/v1/branches/{branch}/holds/{hold_id}/reject",
            reject_hold,
        )
        .get("/api/v1/branches/{branch}/hold-shelf", hold_shelf)
        .get("/api/v1/branches/{branch}/expired-holds", expired_holds)
        .get("/api/v1/branches/{branch}/pull-list", pull_list)
        .get("/api/v1/branches/{branch}/transits", transits)
        .get(
            "/api/v1/branches/{branch}/provisional-holds",
            provisional_holds,
        )
}
