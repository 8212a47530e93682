//! A branch desk's circulation pages for staff (rule S1), each working through the
//! branch's own circulation instance with the staff member as `actor` (S3): the desk page
//! with checkout, checkin (where the item goes, in large letters: rule H7), renewal for a
//! patron at the counter or by phone (L2) and counter holds; and the lists: 予約棚 (the
//! hold shelf), 取り置き期限切れ (holds that ended with their item on the shelf: take it
//! off, H9, H10), 取り寄せリスト (the pull list), 搬送 (transits in and out) and 仮予約の確認
//! (H5's staff review, 確定 / お断り).
//!
//! Only staff assigned to the branch reach them ([`BranchPage`], 403 otherwise). Rule V1:
//! the desk sees a patron's current loans (to renew one), never what they returned.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Barcode, Branch, CardNumber, TitleId};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::account::my::LoanRow;
use crate::circulation::{self, DeskList, TitleNames, TransitsView};
use crate::staff::pages::BranchPage;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::route_table::Routes;
use crate::web::templates;
use crate::web::{Layout, PageError, PageForm, forms, html_page, see_other, words};

fn form_layout(layout: &Layout) -> crate::web::LayoutView {
    layout.clone().with_form().view()
}

// ---------------------------------------------------------------------------------------
// The desk page.

/// A loan just made, as the desk reads it back.
#[derive(Debug, Clone, Serialize)]
struct CheckoutDone {
    title: String,
    barcode: String,
    card_number: String,
    due_date: String,
}

/// Where a checked-in item goes (rule H7), shown large.
#[derive(Debug, Clone, Serialize)]
struct CheckinDone {
    /// `shelve`, `hold_shelf` or `transit`: the page's colour for it.
    routing: String,
    /// 「配架」, 「この館の予約棚へ」, 「○○へ搬送」.
    words: String,
    hold_id: Option<String>,
    /// An item sent home without a hold (H9: back to its home branch).
    going_home: bool,
    barcode: String,
    title: String,
    returned: bool,
}

impl CheckinDone {
    fn new(answer: &pb::CheckinResponse, titles: &TitleNames) -> Self {
        CheckinDone {
            routing: answer.routing.clone(),
            words: words::routing(&answer.routing, &answer.to_branch),
            hold_id: (!answer.hold_id.is_empty()).then(|| answer.hold_id.clone()),
            going_home: answer.routing == "transit" && answer.hold_id.is_empty(),
            barcode: answer.barcode.clone(),
            title: titles.get(&answer.title_id),
            returned: answer.returned,
        }
    }
}

/// A counter hold just placed.
#[derive(Debug, Clone, Serialize)]
struct HoldDone {
    hold_id: String,
    title: String,
    card_number: String,
    pickup_name: &'static str,
    status_label: &'static str,
    position: Option<u32>,
}

/// What the desk page shows besides its forms: the result of the last action, or the
/// refusal of it on the form it came from (with what was typed, to correct it).
#[derive(Debug, Clone, Default, Serialize)]
struct DeskOutcome {
    checkout: Option<CheckoutDone>,
    checkin: Option<CheckinDone>,
    hold: Option<HoldDone>,
    /// `checkout`, `checkin` or `hold`.
    error_form: Option<&'static str>,
    error: Option<&'static str>,
    checkout_form: CheckoutForm,
    checkin_form: CheckinForm,
    hold_form: CounterHoldForm,
}

fn desk_page(page: &BranchPage, status: StatusCode, outcome: &DeskOutcome) -> Response {
    let branch = page.counter.branch;
    let pickups: Vec<(&str, &str)> = Branch::ALL
        .iter()
        .map(|b| (b.code(), b.name_ja()))
        .collect();
    html_page(
        status,
        "staff_desk.html",
        &form_layout(&page.layout),
        context! {
            branch => branch.code(),
            branch_name => branch.name_ja(),
            pickups => templates::to_value(&pickups),
            outcome => templates::to_value(outcome),
        },
    )
}

/// The desk page again after a refusal: on the form it came from, with its status.
fn refused_on(
    page: &BranchPage,
    form: &'static str,
    err: &ApiError,
    mut outcome: DeskOutcome,
) -> Response {
    if let Some(response) = forms::staff_failure(err) {
        return response;
    }
    outcome.error_form = Some(form);
    outcome.error = Some(err.code().message_ja());
    desk_page(page, err.status(), &outcome)
}

/// `GET /staff/{branch}/desk`: 貸出・返却カウンター.
pub async fn desk(page: BranchPage) -> Response {
    desk_page(&page, StatusCode::OK, &DeskOutcome::default())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CheckoutForm {
    #[serde(default)]
    pub card_number: String,
    #[serde(default)]
    pub barcode: String,
}

/// `POST /staff/{branch}/desk/checkout`: 貸出 (rules L1, L3, L4, H8).
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn checkout_submit(
    State(state): State<AppState>,
    page: BranchPage,
    PageForm(form): PageForm<CheckoutForm>,
) -> Response {
    let outcome = DeskOutcome {
        checkout_form: form.clone(),
        ..DeskOutcome::default()
    };
    let parsed = CardNumber::parse(&form.card_number)
        .map_err(ApiError::from)
        .and_then(|card| Ok((card, Barcode::parse(&form.barcode)?)));
    let (card, barcode) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused_on(&page, "checkout", &err, outcome),
    };
    match circulation::checkout(&state, &page.counter, &card, &barcode).await {
        Ok(loan) => {
            let titles = TitleNames::fetch(&state, [loan.title_id.as_str()]).await;
            let done = DeskOutcome {
                checkout: Some(CheckoutDone {
                    title: titles.get(&loan.title_id),
                    barcode: loan.barcode,
                    card_number: card.to_string(),
                    due_date: words::date(&loan.due_date),
                }),
                // The next item of the same patron: the card stays in the box.
                checkout_form: CheckoutForm {
                    card_number: card.to_string(),
                    barcode: String::new(),
                },
                ..DeskOutcome::default()
            };
            desk_page(&page, StatusCode::OK, &done)
        }
        Err(err) => refused_on(&page, "checkout", &err, outcome),
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CheckinForm {
    #[serde(default)]
    pub barcode: String,
}

/// `POST /staff/{branch}/desk/checkin`: 返却 at any branch (rule L5) and where the item
/// goes now (H7).
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn checkin_submit(
    State(state): State<AppState>,
    page: BranchPage,
    PageForm(form): PageForm<CheckinForm>,
) -> Response {
    let outcome = DeskOutcome {
        checkin_form: form.clone(),
        ..DeskOutcome::default()
    };
    let barcode = match Barcode::parse(&form.barcode) {
        Ok(b) => b,
        Err(e) => return refused_on(&page, "checkin", &e.into(), outcome),
    };
    match circulation::checkin(&state, &page.counter, &barcode).await {
        Ok(answer) => {
            let titles = TitleNames::fetch(&state, [answer.title_id.as_str()]).await;
            let done = DeskOutcome {
                checkin: Some(CheckinDone::new(&answer, &titles)),
                ..DeskOutcome::default()
            };
            desk_page(&page, StatusCode::OK, &done)
        }
        Err(err) => refused_on(&page, "checkin", &err, outcome),
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CounterHoldForm {
    #[serde(default)]
    pub card_number: String,
    /// The title's id, or the address of its page (staff copy it from the catalogue).
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub pickup_branch: String,
}

/// The title id in what staff typed: an id, or a title page's address that holds one.
fn title_in(input: &str) -> Result<TitleId, ApiError> {
    let input = input.trim();
    let id = match input.find("/titles/") {
        Some(at) => input[at + "/titles/".len()..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default(),
        None => input,
    };
    Ok(TitleId::parse(id)?)
}

/// `POST /staff/{branch}/desk/holds`: a counter hold (rule S1: any material, available
/// copies too, which then appear on the pull list of the branch that has them).
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn hold_submit(
    State(state): State<AppState>,
    page: BranchPage,
    PageForm(form): PageForm<CounterHoldForm>,
) -> Response {
    let outcome = DeskOutcome {
        hold_form: form.clone(),
        ..DeskOutcome::default()
    };
    let parsed = (|| {
        let card = CardNumber::parse(&form.card_number)?;
        let title = title_in(&form.title)?;
        let pickup = Branch::parse(&form.pickup_branch)?;
        Ok::<_, ApiError>((card, title, pickup))
    })();
    let (card, title, pickup) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused_on(&page, "hold", &err, outcome),
    };
    match circulation::counter_hold(&state, &page.counter, &card, &title, pickup).await {
        Ok(hold) => {
            let titles = TitleNames::fetch(&state, [hold.title_id.as_str()]).await;
            let done = DeskOutcome {
                hold: Some(HoldDone {
                    title: titles.get(&hold.title_id),
                    card_number: card.to_string(),
                    pickup_name: pickup.name_ja(),
                    status_label: words::hold_status(&hold.status),
                    position: (hold.queue_position > 0).then_some(hold.queue_position),
                    hold_id: hold.hold_id,
                }),
                ..DeskOutcome::default()
            };
            desk_page(&page, StatusCode::OK, &done)
        }
        Err(err) => refused_on(&page, "hold", &err, outcome),
    }
}

// ---------------------------------------------------------------------------------------
// Renewal for a patron (rule L2 at the counter or by phone).

#[derive(Debug, Default, Deserialize)]
pub struct LoansQuery {
    pub card: Option<String>,
    pub done: Option<String>,
}

async fn loans_page(
    state: &AppState,
    page: &BranchPage,
    card: &CardNumber,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let (loans, titles) = circulation::loans_at_desk(state, &page.counter, card).await?;
    let rows: Vec<LoanRow> = loans.iter().map(|l| LoanRow::new(l, &titles)).collect();
    let branch = page.counter.branch;
    Ok(html_page(
        status,
        "staff_desk_loans.html",
        &form_layout(&page.layout),
        context! {
            branch => branch.code(),
            branch_name => branch.name_ja(),
            card_number => card.to_string(),
            loans => templates::to_value(&rows),
            notice => notice,
            error => error,
        },
    ))
}

/// `GET /staff/{branch}/desk/loans?card=…`: a patron's current loans, each with 延長 or
/// the reason it is not offered.
pub async fn loans(
    State(state): State<AppState>,
    page: BranchPage,
    query: Result<Query<LoansQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.unwrap_or_default();
    let card =
        CardNumber::parse(query.card.as_deref().unwrap_or_default()).map_err(ApiError::from)?;
    let notice = (query.done.as_deref() == Some("renewed")).then_some("延長しました。");
    loans_page(&state, &page, &card, StatusCode::OK, notice, None).await
}

#[derive(Debug, Default, Deserialize)]
pub struct DeskRenewForm {
    #[serde(default)]
    pub card: String,
}

/// `POST /staff/{branch}/desk/loans/{loan_id}/renew`.
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn renew_submit(
    State(state): State<AppState>,
    page: BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
    PageForm(form): PageForm<DeskRenewForm>,
) -> Result<Response, PageError> {
    let Path((_, loan_id)) = path.map_err(|_| PageError::not_found())?;
    let card = CardNumber::parse(&form.card).map_err(ApiError::from)?;
    match circulation::renew_for_patron(&state, &page.counter, &loan_id).await {
        Ok(_) => Ok(see_other(&format!(
            "/staff/{}/desk/loans?card={card}&done=renewed",
            page.counter.branch.code()
        ))),
        Err(err) => match forms::staff_failure(&err) {
            Some(response) => Ok(response),
            None => {
                loans_page(
                    &state,
                    &page,
                    &card,
                    err.status(),
                    None,
                    Some(err.code().message_ja()),
                )
                .await
            }
        },
    }
}

// ---------------------------------------------------------------------------------------
// The lists (rule S1).

/// One table of a list page: a heading, column names, and rows of cells.
#[derive(Debug, Clone, Serialize)]
struct Table {
    heading: Option<&'static str>,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    empty: &'static str,
}

fn list_page(page: &BranchPage, heading: &str, intro: &str, tables: &[Table]) -> Response {
    let branch = page.counter.branch;
    html_page(
        StatusCode::OK,
        "staff_list.html",
        &page.layout.view(),
        context! {
            branch => branch.code(),
            branch_name => branch.name_ja(),
            heading => heading,
            intro => intro,
            tables => templates::to_value(&tables),
        },
    )
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| "—".to_string())
}

fn title_or_id(titles: &TitleNames, title_id: &str) -> String {
    let name = titles.get(title_id);
    if name.is_empty() {
        format!("（資料ID {title_id}）")
    } else {
        name
    }
}

/// `GET /staff/{branch}/hold-shelf`: 予約棚, the soonest to expire first (H8, H9).
pub async fn hold_shelf(
    State(state): State<AppState>,
    page: BranchPage,
) -> Result<Response, PageError> {
    let (holds, titles) =
        circulation::desk_list(&state, &page.counter, DeskList::HoldShelf).await?;
    let rows = holds
        .iter()
        .map(|h| {
            vec![
                title_or_id(&titles, &h.title_id),
                or_dash(Some(&h.barcode)),
                h.card_number.clone(),
                words::hold_status(&h.status).to_string(),
                or_dash(
                    (!h.ready_until.is_empty())
                        .then(|| words::keep_until(&h.ready_until))
                        .as_deref(),
                ),
                h.hold_id.clone(),
            ]
        })
        .collect();
    Ok(list_page(
        &page,
        "予約棚",
        "用意中（お知らせ送信前）の資料は、おしらせメールの送信まで貸出できません（予約資料は、おしらせ送信後の貸出です）。",
        &[Table {
            heading: None,
            columns: vec![
                "資料",
                "資料番号",
                "利用者カード",
                "状態",
                "取り置き期限",
                "予約番号",
            ],
            rows,
            empty: "予約棚の資料はありません。",
        }],
    ))
}

/// Where a released item goes now, in words (rule H9).
fn next_step(h: &pb::DeskHold) -> String {
    let mut text = words::routing(&h.routing, &h.to_branch);
    if !h.next_hold_id.is_empty() {
        text.push_str(&format!("（次の予約 {}）", h.next_hold_id));
    } else if h.routing == "transit" {
        text.push_str("（所蔵館へ返送）");
    }
    text
}

/// `GET /staff/{branch}/expired-holds`: 取り置き期限切れ, items to take off the shelf and
/// where each goes now (H9, H10).
pub async fn expired_holds(
    State(state): State<AppState>,
    page: BranchPage,
) -> Result<Response, PageError> {
    let (holds, titles) = circulation::desk_list(&state, &page.counter, DeskList::Expired).await?;
    let rows = holds
        .iter()
        .map(|h| {
            vec![
                title_or_id(&titles, &h.title_id),
                or_dash(Some(&h.barcode)),
                words::hold_status(&h.status).to_string(),
                next_step(h),
                h.hold_id.clone(),
            ]
        })
        .collect();
    Ok(list_page(
        &page,
        "取り置き期限切れ（棚から下ろす）",
        "予約棚から下ろし、資料を「行き先」へ回してください。資料を返却処理で読み取ると、行き先が表示されます。",
        &[Table {
            heading: None,
            columns: vec!["資料", "資料番号", "予約の状態", "行き先", "予約番号"],
            rows,
            empty: "棚から下ろす資料はありません。",
        }],
    ))
}

/// `GET /staff/{branch}/pull-list`: 取り寄せリスト, copies on this branch's shelves that a
/// hold wants; scanning one at the checkin routes it (H7).
pub async fn pull_list(
    State(state): State<AppState>,
    page: BranchPage,
) -> Result<Response, PageError> {
    let (holds, titles) = circulation::desk_list(&state, &page.counter, DeskList::PullList).await?;
    let rows = holds
        .iter()
        .map(|h| {
            vec![
                title_or_id(&titles, &h.title_id),
                or_dash(Some(&h.barcode)),
                words::branch_name(&h.pickup_branch),
                words::routing(&h.routing, &h.to_branch),
                h.hold_id.clone(),
            ]
        })
        .collect();
    Ok(list_page(
        &page,
        "取り寄せリスト",
        "書架から抜き出し、返却の画面で資料番号を読み取ってください。予約棚または搬送に回ります。",
        &[Table {
            heading: None,
            columns: vec!["資料", "資料番号", "受取館", "読み取り後", "予約番号"],
            rows,
            empty: "取り寄せる資料はありません。",
        }],
    ))
}

/// `GET /staff/{branch}/transits`: 搬送, items arriving here and items sent from here.
pub async fn transits(
    State(state): State<AppState>,
    page: BranchPage,
) -> Result<Response, PageError> {
    let (transits, titles) = circulation::transits(&state, &page.counter).await?;
    let view = TransitsView::new(&transits, &titles);
    let title = |t: &circulation::TransitView| {
        if t.title.is_empty() {
            format!("（資料ID {}）", t.title_id)
        } else {
            t.title.clone()
        }
    };
    let incoming = view
        .incoming
        .iter()
        .map(|t| {
            vec![
                title(t),
                t.barcode.clone(),
                words::branch_name(&t.from_branch),
                or_dash(t.hold_id.as_deref()),
                words::instant(&t.since),
            ]
        })
        .collect();
    let outgoing = view
        .outgoing
        .iter()
        .map(|t| {
            vec![
                title(t),
                t.barcode.clone(),
                words::branch_name(&t.to_branch),
                t.hold_id
                    .clone()
                    .unwrap_or_else(|| "（所蔵館へ返送）".to_string()),
                words::instant(&t.since),
            ]
        })
        .collect();
    Ok(list_page(
        &page,
        "搬送（発送・到着予定）",
        "到着した資料は、返却の画面で資料番号を読み取ってください。予約の資料はこの館の予約棚に回ります。",
        &[
            Table {
                heading: Some("到着予定（この館あて）"),
                columns: vec!["資料", "資料番号", "発送館", "予約番号", "発送日時"],
                rows: incoming,
                empty: "到着予定の資料はありません。",
            },
            Table {
                heading: Some("発送済み（この館から）"),
                columns: vec!["資料", "資料番号", "送り先", "予約番号", "発送日時"],
                rows: outgoing,
                empty: "発送中の資料はありません。",
            },
        ],
    ))
}

/// A provisional hold as the review list shows it.
#[derive(Debug, Clone, Serialize)]
struct ReviewRow {
    hold_id: String,
    title: String,
    card_number: String,
    pickup_name: String,
    placed: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReviewQuery {
    pub done: Option<String>,
}

async fn provisional_page(
    state: &AppState,
    page: &BranchPage,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let (holds, titles) =
        circulation::desk_list(state, &page.counter, DeskList::Provisional).await?;
    let rows: Vec<ReviewRow> = holds
        .iter()
        .map(|h| ReviewRow {
            hold_id: h.hold_id.clone(),
            title: title_or_id(&titles, &h.title_id),
            card_number: h.card_number.clone(),
            pickup_name: words::branch_name(&h.pickup_branch),
            placed: words::instant(&h.placed_at),
        })
        .collect();
    let branch = page.counter.branch;
    Ok(html_page(
        status,
        "staff_provisional.html",
        &form_layout(&page.layout),
        context! {
            branch => branch.code(),
            branch_name => branch.name_ja(),
            holds => templates::to_value(&rows),
            notice => notice,
            error => error,
        },
    ))
}

/// `GET /staff/{branch}/provisional-holds`: 仮予約の確認 (rule H5, staff review).
pub async fn provisional_holds(
    State(state): State<AppState>,
    page: BranchPage,
    query: Result<Query<ReviewQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.unwrap_or_default();
    let notice = match query.done.as_deref() {
        Some("confirmed") => Some("予約を確定しました。予約確定のメールが送られます。"),
        Some("rejected") => Some("予約をお断りしました。理由を添えたメールが送られます。"),
        _ => None,
    };
    provisional_page(&state, &page, StatusCode::OK, notice, None).await
}

#[derive(Debug, Default, Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    pub reason: String,
}

async fn review(
    state: &AppState,
    page: &BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
    reject: Option<&str>,
) -> Result<Response, PageError> {
    let Path((_, hold_id)) = path.map_err(|_| PageError::not_found())?;
    match circulation::review_hold(state, &page.counter, &hold_id, reject).await {
        Ok(_) => Ok(see_other(&format!(
            "/staff/{}/provisional-holds?done={}",
            page.counter.branch.code(),
            if reject.is_some() {
                "rejected"
            } else {
                "confirmed"
            }
        ))),
        Err(err) => match forms::staff_failure(&err) {
            Some(response) => Ok(response),
            None => {
                provisional_page(
                    state,
                    page,
                    err.status(),
                    None,
                    Some(err.code().message_ja()),
                )
                .await
            }
        },
    }
}

/// `POST /staff/{branch}/holds/{hold_id}/confirm`: 確定 (rule H5).
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn confirm_submit(
    State(state): State<AppState>,
    page: BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, PageError> {
    review(&state, &page, path, None).await
}

/// `POST /staff/{branch}/holds/{hold_id}/reject`: お断り, with the reason the patron
/// reads in the mail (rule H5).
#[tracing::instrument(skip_all, fields(actor = %page.counter.staff.username))]
pub async fn reject_submit(
    State(state): State<AppState>,
    page: BranchPage,
    path: Result<Path<(String, String)>, PathRejection>,
    PageForm(form): PageForm<RejectForm>,
) -> Result<Response, PageError> {
    let reason = form.reason.trim().to_string();
    review(&state, &page, path, Some(&reason)).await
}

/// A branch desk's circulation pages (rule S1).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/staff/{branch}/desk", desk)
        .post("/staff/{branch}/desk/checkout", checkout_submit)
        .post("/staff/{branch}/desk/checkin", checkin_submit)
        .post("/staff/{branch}/desk/holds", hold_submit)
        .get("/staff/{branch}/desk/loans", loans)
        .post("/staff/{branch}/desk/loans/{loan_id}/renew", renew_submit)
        .get("/staff/{branch}/hold-shelf", hold_shelf)
        .get("/staff/{branch}/expired-holds", expired_holds)
        .get("/staff/{branch}/pull-list", pull_list)
        .get("/staff/{branch}/transits", transits)
        .get("/staff/{branch}/provisional-holds", provisional_holds)
        .post("/staff/{branch}/holds/{hold_id}/confirm", confirm_submit)
        .post("/staff/{branch}/holds/{hold_id}/reject", reject_submit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::ErrorCode;

    #[test]
    fn a_counter_hold_takes_a_title_id_or_the_address_of_its_page() {
        let id = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";
        for input in [
            id.to_string(),
            format!(" {id} "),
            format!("http://localhost:8080/titles/{id}"),
            format!("https://library.example.jp/titles/{id}/hold?x=1"),
            format!("/titles/{id}#items"),
        ] {
            assert_eq!(title_in(&input).unwrap().as_str(), id, "{input}");
        }
        assert_eq!(
            title_in("坊っちゃん").unwrap_err().code(),
            ErrorCode::TitleNotFound
        );
    }

    #[test]
    fn h9_a_released_item_says_where_it_goes() {
        let h = |routing: &str, to: &str, next: &str| pb::DeskHold {
            routing: routing.into(),
            to_branch: to.into(),
            next_hold_id: next.into(),
            ..Default::default()
        };
        assert_eq!(next_step(&h("shelve", "", "")), "配架");
        assert_eq!(
            next_step(&h("transit", "yamaga", "")),
            "山香図書室へ搬送（所蔵館へ返送）"
        );
        assert_eq!(
            next_step(&h("hold_shelf", "", "h2")),
            "この館の予約棚へ（次の予約 h2）"
        );
    }
}
