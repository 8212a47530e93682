//! マイページ (the guide's 貸出状況、予約状況の確認): the page of a signed-in patron with
//! their 「貸出状況」 and 「予約状況」, and the extractor every page of a signed-in patron
//! starts from ([`PatronPage`]). The account pages ([`super::account`]) and the hold pages
//! ([`super::holds`]) both come back to it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use kitsuki_proto::ErrorCode;
use kitsuki_proto::circulation as pb;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::account::api::{MeView, Patron};
use crate::circulation::{TitleNames, patron_holds, patron_loans};
use crate::state::AppState;
use crate::web::error::Lang;
use crate::web::layout::PatronState;
use crate::web::route_table::Routes;
use crate::web::templates;
use crate::web::{Layout, PageError, html_page, see_other, words};

/// An account page's patron: signed in by the cookie, or sent to the login page.
#[derive(Debug, Clone)]
pub struct PatronPage {
    pub layout: Layout,
    pub patron: Patron,
}

impl FromRequestParts<AppState> for PatronPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(layout) = Layout::from_request_parts(parts, state).await;
        match layout.patron_state().clone() {
            PatronState::SignedIn(patron) => Ok(PatronPage { layout, patron }),
            PatronState::Anonymous => Err(see_other("/login")),
            PatronState::Unavailable(err) => Err(PageError::from(err).into_response()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct MyQuery {
    pub done: Option<String>,
}

/// `GET /my`: マイページ, with 「貸出状況」 and 「予約状況」. Rule P6: a patron with no
/// address at all (none in force, none waiting) is led to register one first.
pub async fn my(
    State(state): State<AppState>,
    page: PatronPage,
    query: Result<Query<MyQuery>, QueryRejection>,
) -> Response {
    let me = MeView::from(&page.patron.profile);
    if me.email.is_none() && me.pending_email.is_none() {
        return see_other("/my/email");
    }
    let Query(query) = query.unwrap_or_default();
    let notice = match query.done.as_deref() {
        Some("password") => Some("パスワードを変更しました。"),
        Some("renewed") => Some("貸出期間を延長しました。新しい返却期限をご確認ください。"),
        Some("cancelled") => Some("予約を取り消しました。"),
        _ => None,
    };
    render_my(&state, &page, notice, None, StatusCode::OK).await
}

/// マイページ with its sections as they are now, a notice of what was just done, or the
/// reason an action on it was refused (with the refusal's status).
pub async fn render_my(
    state: &AppState,
    page: &PatronPage,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let me = MeView::from(&page.patron.profile);
    let sections = MySections::load(state, &me.card_number).await;
    html_page(
        status,
        "my.html",
        &page.layout.clone().with_form().view(),
        context! {
            me => templates::to_value(&me),
            notice => notice,
            error => error,
            sections => templates::to_value(&sections),
        },
    )
}

/// A loan as 「貸出状況」 shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LoanRow {
    pub loan_id: String,
    pub title_id: String,
    pub title: String,
    pub barcode: String,
    pub branch: String,
    pub branch_name: String,
    pub due_date: String,
    pub overdue: bool,
    pub renewed: bool,
    pub renewable: bool,
    /// Rule L2: why there is no 延長 button.
    pub renew_block: Option<String>,
}

impl LoanRow {
    pub fn new(loan: &pb::Loan, titles: &TitleNames) -> Self {
        let block = (!loan.renewable).then(|| {
            loan.renew_block
                .as_ref()
                .map(|b| match ErrorCode::from_code(&b.code) {
                    Some(code) => Lang::Ja.message(code).to_string(),
                    None => b.message.clone(),
                })
                .unwrap_or_else(|| "延長できません。".to_string())
        });
        LoanRow {
            loan_id: loan.loan_id.clone(),
            title_id: loan.title_id.clone(),
            title: titles.get(&loan.title_id),
            barcode: loan.barcode.clone(),
            branch: loan.branch.clone(),
            branch_name: words::branch_name(&loan.branch),
            due_date: words::date(&loan.due_date),
            overdue: loan.overdue,
            renewed: loan.renewed,
            renewable: loan.renewable,
            renew_block: block,
        }
    }
}

/// A hold as 「予約状況」 shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HoldRow {
    pub hold_id: String,
    pub title_id: String,
    pub title: String,
    pub status: String,
    pub status_label: &'static str,
    /// Rule H6: 「N番目」.
    pub position: Option<u32>,
    pub pickup_branch: String,
    pub pickup_name: String,
    /// Rule H9: 「M月D日まで」.
    pub ready_until: Option<String>,
    pub placed: String,
    pub reason: Option<String>,
    /// Rule H10: until it is checked out.
    pub cancellable: bool,
    pub receipt_mail: bool,
}

impl HoldRow {
    pub fn new(hold: &pb::Hold, titles: &TitleNames) -> Self {
        HoldRow {
            hold_id: hold.hold_id.clone(),
            title_id: hold.title_id.clone(),
            title: titles.get(&hold.title_id),
            status: hold.status.clone(),
            status_label: words::hold_status(&hold.status),
            position: (hold.queue_position > 0).then_some(hold.queue_position),
            pickup_branch: hold.pickup_branch.clone(),
            pickup_name: words::branch_name(&hold.pickup_branch),
            ready_until: (!hold.ready_until.is_empty())
                .then(|| words::keep_until(&hold.ready_until)),
            placed: words::instant_date(&hold.placed_at),
            reason: (!hold.reason.trim().is_empty()).then(|| hold.reason.clone()),
            cancellable: hold.cancellable,
            receipt_mail: hold.receipt_mail,
        }
    }
}

/// The two sections of マイページ. `None` for a section that could not be read now (the
/// rest of the page still shows); both absent where circulation is not deployed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MySections {
    pub circulation: bool,
    pub loans: Option<Vec<LoanRow>>,
    pub holds: Option<Vec<HoldRow>>,
}

impl MySections {
    pub async fn load(state: &AppState, card: &str) -> MySections {
        if !state.has_circulation() {
            return MySections::default();
        }
        let (loans, holds) = tokio::join!(patron_loans(state, card), patron_holds(state, card));
        let loans = match loans {
            Ok((loans, titles)) => Some(loans.iter().map(|l| LoanRow::new(l, &titles)).collect()),
            Err(err) => {
                tracing::warn!(code = err.code().as_str(), "loans not shown on マイページ");
                None
            }
        };
        let holds = match holds {
            Ok((holds, titles)) => Some(holds.iter().map(|h| HoldRow::new(h, &titles)).collect()),
            Err(err) => {
                tracing::warn!(code = err.code().as_str(), "holds not shown on マイページ");
                None
            }
        };
        MySections {
            circulation: true,
            loans,
            holds,
        }
    }
}

/// マイページ.
pub(crate) fn routes() -> Routes {
    Routes::new().get("/my", my)
}
