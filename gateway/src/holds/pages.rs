//! The patron's circulation pages: マイページ's 「貸出状況」 and 「予約状況」 (the guide's
//! 貸出状況、予約状況の確認) with 延長 (rule L2: once, within the loan period) and 予約取消
//! (H10), and the インターネット予約 flow from a title page (rule H4): 「予約申込」 → login
//! if needed, and back → 予約登録 (pickup branch, 予約内容メール 希望する / 希望しない) →
//! 「予約」 → the review → 「送信」 → done. They call the same functions as the JSON API
//! (`crate::circulation`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kitsuki_proto::{Branch, ErrorCode, TitleId};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::account::api::Patron;
use crate::account::my::{HoldRow, PatronPage, render_my};
use crate::catalog::api::fetch_title;
use crate::catalog::views::TitleSummaryView;
use crate::circulation::{
    cancel_own, live_holdability, patron_holds, patron_loans, place_web_hold, renew_own,
};
use crate::state::AppState;
use crate::web::error::{ApiError, Lang};
use crate::web::layout::PatronState;
use crate::web::route_table::Routes;
use crate::web::templates;
use crate::web::{Layout, PageError, PageForm, forms, html_page, see_other};

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, PageError> {
    path.map(|Path(id)| id).map_err(|_| PageError::not_found())
}

/// The 延長 form: the lending branch, so that the renewal goes to its instance.
#[derive(Debug, Default, Deserialize)]
pub struct RenewForm {
    #[serde(default)]
    pub branch: String,
}

/// `POST /my/loans/{loan_id}/renew`: 延長 (rule L2). Back to マイページ with the new due
/// date, or マイページ again saying why not.
#[tracing::instrument(skip_all)]
pub async fn renew_submit(
    State(state): State<AppState>,
    page: PatronPage,
    path: Result<Path<String>, PathRejection>,
    PageForm(form): PageForm<RenewForm>,
) -> Result<Response, PageError> {
    let loan_id = path_id(path)?;
    let lending = Branch::parse(&form.branch).ok();
    let card = page.patron.profile.card_number.clone();
    Ok(match renew_own(&state, &card, &loan_id, lending).await {
        Ok(_) => see_other("/my?done=renewed"),
        Err(err) => match forms::patron_failure(&err) {
            Some(response) => response,
            None => {
                render_my(
                    &state,
                    &page,
                    None,
                    Some(err.code().message_ja()),
                    err.status(),
                )
                .await
            }
        },
    })
}

/// The 取消 form: the first press asks again, the second (`confirm=yes`) cancels.
#[derive(Debug, Default, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    pub confirm: String,
}

/// `POST /my/holds/{hold_id}/cancel`: 予約取消 (rule H10). A hold's place in the queue
/// cannot be had back, so the button of マイページ leads to a question first.
#[tracing::instrument(skip_all)]
pub async fn cancel_submit(
    State(state): State<AppState>,
    page: PatronPage,
    path: Result<Path<String>, PathRejection>,
    PageForm(form): PageForm<CancelForm>,
) -> Result<Response, PageError> {
    let hold_id = path_id(path)?;
    let card = page.patron.profile.card_number.clone();
    if form.confirm != "yes" {
        let (holds, titles) = patron_holds(&state, &card).await?;
        let hold = holds
            .iter()
            .find(|h| h.hold_id == hold_id && h.cancellable)
            .ok_or_else(|| PageError::from(ApiError::new(ErrorCode::HoldNotFound)))?;
        return Ok(html_page(
            StatusCode::OK,
            "hold_cancel.html",
            &page.layout.clone().with_form().view(),
            context! { hold => templates::to_value(&HoldRow::new(hold, &titles)) },
        ));
    }
    Ok(match cancel_own(&state, &card, &hold_id).await {
        Ok(_) => see_other("/my?done=cancelled"),
        Err(err) => match forms::patron_failure(&err) {
            Some(response) => response,
            None => {
                render_my(
                    &state,
                    &page,
                    None,
                    Some(err.code().message_ja()),
                    err.status(),
                )
                .await
            }
        },
    })
}

// ---------------------------------------------------------------------------------------
// インターネット予約 (rule H4).

fn hold_path(title_id: &str) -> String {
    format!("/titles/{title_id}/hold")
}

/// The login page, coming back to `next` afterwards.
fn login_then(next: &str) -> Response {
    see_other(&format!("/login?next={next}"))
}

/// The signed-in patron of a step of the flow; anyone else logs in first and comes back
/// to the flow's first step (rule H3: holds are for logged-in patrons). The other answer
/// is boxed: a response is large, and this one is the rare way.
fn signed_in(layout: &Layout, title_id: &str) -> Result<Patron, Box<Response>> {
    match layout.patron_state() {
        PatronState::SignedIn(patron) => Ok(patron.clone()),
        PatronState::Anonymous => Err(Box::new(login_then(&hold_path(title_id)))),
        PatronState::Unavailable(err) => {
            Err(Box::new(PageError::from(err.clone()).into_response()))
        }
    }
}

/// The id of a title path, whatever follows it; not a UUID: the title does not exist.
fn title_id_of(path: &Result<Path<String>, PathRejection>) -> Result<TitleId, PageError> {
    path.as_ref()
        .ok()
        .and_then(|Path(id)| TitleId::parse(id).ok())
        .ok_or_else(|| ApiError::new(ErrorCode::TitleNotFound).into())
}

/// The title of the flow with rule H1 as circulation decides it now when it can say.
async fn hold_title(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<TitleSummaryView, PageError> {
    let detail = fetch_title(state, path).await?;
    let summary = detail.title.ok_or_else(|| {
        PageError::from(ApiError::internal(
            "catalog answered a title without its summary",
            &"TitleDetail.title missing",
        ))
    })?;
    let view = TitleSummaryView::new(&summary, Lang::Ja);
    Ok(match live_holdability(state, &summary.title_id).await {
        Some(live) => view.with_live(&live, Lang::Ja),
        None => view,
    })
}

/// What stops this patron from holding this title, known before the form is even shown:
/// rule H1 (the title), H3 (a verified address, the only way the library can tell them),
/// H2 (an overdue loan; if the loans cannot be read now, placing the hold will tell).
async fn refusal_before_form(
    state: &AppState,
    patron: &Patron,
    title: &TitleSummaryView,
) -> Option<ErrorCode> {
    if let Some(block) = &title.hold_block {
        return ErrorCode::from_code(block.code).or(Some(ErrorCode::HoldNotHeldHere));
    }
    if !patron.profile.email_verified {
        return Some(ErrorCode::EmailNotVerified);
    }
    match patron_loans(state, &patron.profile.card_number).await {
        Ok((loans, _)) if loans.iter().any(|l| l.overdue) => Some(ErrorCode::HoldOverdueBlock),
        _ => None,
    }
}

/// The page of a hold that cannot be placed: why, and what to do instead.
fn refused(layout: &Layout, title: Option<&TitleSummaryView>, code: ErrorCode) -> Response {
    let err = ApiError::new(code);
    let mut paragraphs = vec![code.message_ja()];
    let mut links: Vec<(String, &str)> = Vec::new();
    match code {
        ErrorCode::EmailNotVerified => {
            paragraphs.push("インターネット予約の連絡はメールのみです。メールアドレスを登録し、確認のメールのリンクを開いてから、もう一度お申し込みください。");
            links.push(("/my/email".to_string(), "メールアドレス登録・変更"));
        }
        ErrorCode::HoldMaterialType | ErrorCode::HoldNotHeldHere => {
            paragraphs
                .push("インターネット予約ができない資料については、カウンターまでおこしください。");
        }
        ErrorCode::HoldOverdueBlock => {
            paragraphs.push("延滞中の資料を返却してから、もう一度お申し込みください。");
        }
        _ => {}
    }
    if let Some(title) = title {
        links.push((format!("/titles/{}", title.title_id), "資料の画面へ戻る"));
    }
    links.push(("/my".to_string(), "マイページ（予約状況）へ"));
    html_page(
        err.status(),
        "notice.html",
        &layout.view(),
        context! {
            heading => "予約できません",
            paragraphs => paragraphs,
            links => templates::to_value(&links),
        },
    )
}

#[derive(Debug, Clone, Serialize)]
struct BranchChoice {
    code: &'static str,
    name: &'static str,
    checked: bool,
}

fn branch_choices(selected: Option<Branch>) -> Vec<BranchChoice> {
    Branch::ALL
        .iter()
        .map(|b| BranchChoice {
            code: b.code(),
            name: b.name_ja(),
            checked: Some(*b) == selected,
        })
        .collect()
}

/// The choices of 予約登録 (rule H4), as the form and the review page send them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HoldChoices {
    #[serde(default)]
    pub pickup_branch: String,
    /// 予約内容メール: `yes` 希望する, `no` 希望しない.
    #[serde(default)]
    pub receipt_mail: String,
}

impl HoldChoices {
    /// The pickup branch and the receipt mail, or which choice is missing.
    fn read(&self) -> Result<(Branch, bool), &'static str> {
        let pickup = Branch::parse(&self.pickup_branch).map_err(|_| "受取館を選んでください。")?;
        let receipt = match self.receipt_mail.as_str() {
            "yes" => true,
            "no" => false,
            _ => {
                return Err("予約内容メールの送信を「希望する」「希望しない」から選んでください。");
            }
        };
        Ok((pickup, receipt))
    }
}

fn form_page(
    layout: &Layout,
    status: StatusCode,
    title: &TitleSummaryView,
    patron: &Patron,
    choices: &HoldChoices,
    error: Option<&str>,
) -> Response {
    html_page(
        status,
        "hold_form.html",
        &layout.clone().with_form().view(),
        context! {
            title => templates::to_value(title),
            email => patron.profile.email.clone(),
            branches => templates::to_value(&branch_choices(Branch::parse(&choices.pickup_branch).ok())),
            // The guide's form starts on 希望する: the receipt is the patron's record of
            // what they asked for.
            receipt_mail => if choices.receipt_mail == "no" { "no" } else { "yes" },
            error => error,
        },
    )
}

/// `GET /titles/{title_id}/hold`: 予約登録, the first step (rule H4).
#[tracing::instrument(skip_all)]
pub async fn hold_form(
    State(state): State<AppState>,
    layout: Layout,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let title_id = title_id_of(&path)?;
    let patron = match signed_in(&layout, title_id.as_str()) {
        Ok(p) => p,
        Err(response) => return Ok(*response),
    };
    let title = hold_title(&state, path).await?;
    if !state.has_circulation() {
        // A catalogue-only deployment: say so before the patron fills anything in.
        return Err(ApiError::new(ErrorCode::Unavailable).into());
    }
    if let Some(code) = refusal_before_form(&state, &patron, &title).await {
        return Ok(refused(&layout, Some(&title), code));
    }
    Ok(form_page(
        &layout,
        StatusCode::OK,
        &title,
        &patron,
        &HoldChoices::default(),
        None,
    ))
}

/// `POST /titles/{title_id}/hold/review`: 「予約」 pressed; the review with 「送信」.
#[tracing::instrument(skip_all)]
pub async fn hold_review(
    State(state): State<AppState>,
    layout: Layout,
    path: Result<Path<String>, PathRejection>,
    PageForm(choices): PageForm<HoldChoices>,
) -> Result<Response, PageError> {
    let title_id = title_id_of(&path)?;
    let patron = match signed_in(&layout, title_id.as_str()) {
        Ok(p) => p,
        Err(response) => return Ok(*response),
    };
    let title = hold_title(&state, path).await?;
    let (pickup, receipt_mail) = match choices.read() {
        Ok(read) => read,
        Err(missing) => {
            return Ok(form_page(
                &layout,
                StatusCode::BAD_REQUEST,
                &title,
                &patron,
                &choices,
                Some(missing),
            ));
        }
    };
    Ok(html_page(
        StatusCode::OK,
        "hold_review.html",
        &layout.clone().with_form().view(),
        context! {
            title => templates::to_value(&title),
            email => patron.profile.email.clone(),
            pickup_branch => pickup.code(),
            pickup_name => pickup.name_ja(),
            receipt_mail => receipt_mail,
        },
    ))
}

/// `POST /titles/{title_id}/hold`: 「送信」 pressed; the hold is placed (rules H1–H5, H11)
/// and the browser goes on to the done page, so that a reload cannot send it twice.
#[tracing::instrument(skip_all)]
pub async fn hold_submit(
    State(state): State<AppState>,
    layout: Layout,
    path: Result<Path<String>, PathRejection>,
    PageForm(choices): PageForm<HoldChoices>,
) -> Result<Response, PageError> {
    let title_id = title_id_of(&path)?;
    let patron = match signed_in(&layout, title_id.as_str()) {
        Ok(p) => p,
        Err(response) => return Ok(*response),
    };
    let Ok((pickup, receipt_mail)) = choices.read() else {
        // Only a hand-made form lacks them: start the flow again.
        return Ok(see_other(&hold_path(title_id.as_str())));
    };
    match place_web_hold(
        &state,
        &patron.profile.card_number,
        &title_id,
        pickup,
        receipt_mail,
    )
    .await
    {
        Ok(hold) => Ok(see_other(&format!(
            "{}/done?hold_id={}",
            hold_path(title_id.as_str()),
            hold.hold_id
        ))),
        Err(err) => match forms::patron_failure(&err) {
            Some(response) => Ok(response),
            None => {
                let title = hold_title(&state, path).await.ok();
                Ok(refused(&layout, title.as_ref(), err.code()))
            }
        },
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    pub hold_id: Option<String>,
}

/// `GET /titles/{title_id}/hold/done?hold_id=…`: what was received and what comes next
/// (rule H5: a provisional hold is not in force until the confirmation mail; H8, H9: the
/// ready mail, and one week to collect).
#[tracing::instrument(skip_all)]
pub async fn hold_done(
    State(state): State<AppState>,
    layout: Layout,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let title_id = title_id_of(&path)?;
    let patron = match layout.patron_state() {
        PatronState::SignedIn(patron) => patron.clone(),
        PatronState::Anonymous => return Ok(login_then("/my")),
        PatronState::Unavailable(err) => return Err(err.clone().into()),
    };
    let hold_id = query
        .ok()
        .and_then(|Query(q)| q.hold_id)
        .unwrap_or_default();
    let (holds, titles) = patron_holds(&state, &patron.profile.card_number).await?;
    let hold = holds
        .iter()
        .find(|h| h.hold_id == hold_id && h.title_id == title_id.as_str())
        .ok_or_else(|| PageError::from(ApiError::new(ErrorCode::HoldNotFound)))?;
    Ok(html_page(
        StatusCode::OK,
        "hold_done.html",
        &layout.view(),
        context! { hold => templates::to_value(&HoldRow::new(hold, &titles)) },
    ))
}

/// The インターネット予約 pages (rule H4) and マイページ's renew and cancel forms.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/titles/{title_id}/hold", hold_form)
        .post("/titles/{title_id}/hold/review", hold_review)
        .post("/titles/{title_id}/hold", hold_submit)
        .get("/titles/{title_id}/hold/done", hold_done)
        .post("/my/loans/{loan_id}/renew", renew_submit)
        .post("/my/holds/{hold_id}/cancel", cancel_submit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::my::LoanRow;
    use crate::circulation::TitleNames;
    use kitsuki_proto::circulation as pb;

    #[test]
    fn h4_both_choices_are_needed() {
        let c = |pickup: &str, receipt: &str| HoldChoices {
            pickup_branch: pickup.into(),
            receipt_mail: receipt.into(),
        };
        assert_eq!(c("ota", "yes").read(), Ok((Branch::Ota, true)));
        assert_eq!(c("yamaga", "no").read(), Ok((Branch::Yamaga, false)));
        assert!(c("", "yes").read().unwrap_err().contains("受取館"));
        assert!(c("oita", "yes").read().is_err());
        assert!(
            c("kitsuki", "")
                .read()
                .unwrap_err()
                .contains("予約内容メール")
        );
    }

    #[test]
    fn a_loan_row_says_why_it_cannot_be_renewed() {
        let loan = pb::Loan {
            loan_id: "l1".into(),
            title_id: "t1".into(),
            branch: "yamaga".into(),
            due_date: "2026-04-15".into(),
            overdue: true,
            renewable: false,
            renew_block: Some(pb::Block {
                code: "renewal_overdue_loan".into(),
                message: String::new(),
                rule: "L2".into(),
            }),
            ..Default::default()
        };
        let row = LoanRow::new(&loan, &TitleNames::default());
        assert_eq!(row.due_date, "2026年4月15日");
        assert_eq!(row.branch_name, "山香図書室");
        assert_eq!(
            row.renew_block.as_deref(),
            Some(ErrorCode::RenewalOverdueLoan.message_ja())
        );
    }

    #[test]
    fn a_hold_row_has_its_words_position_and_keep_until_date() {
        let hold = pb::Hold {
            hold_id: "h1".into(),
            title_id: "t1".into(),
            pickup_branch: "ota".into(),
            status: "ready".into(),
            queue_position: 1,
            placed_at: "2026-04-01T01:00:00.000000Z".into(),
            ready_until: "2026-04-09".into(),
            cancellable: true,
            ..Default::default()
        };
        let row = HoldRow::new(&hold, &TitleNames::default());
        assert_eq!(row.status_label, "用意できました");
        assert_eq!(row.position, Some(1));
        assert_eq!(row.pickup_name, "大田図書室");
        assert_eq!(row.ready_until.as_deref(), Some("4月9日まで"));
        assert_eq!(row.placed, "2026年4月1日");
    }
}
