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

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use kitsuki_proto::catalog::GetTitleRequest;
use kitsuki_proto::circulation as pb;
use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, TitleId};
use serde::Serialize;

use crate::api::counter::CounterStaff;
use crate::error::{ApiError, Lang};
use crate::state::AppState;

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

// ---------------------------------------------------------------------------------------
// Titles of the lists.

/// How many titles are asked of the catalogue at once when a list is filled.
const TITLE_LOOKUPS_AT_ONCE: usize = 8;

/// The titles (書名) of a list's records, asked of the catalogue. A title that cannot be
/// had (the catalogue is down, or the record is gone) stays empty: a patron still sees
/// their due dates when the catalogue is down, and the list says so for that line.
#[derive(Debug, Clone, Default)]
pub struct TitleNames(HashMap<String, String>);

impl TitleNames {
    pub async fn fetch<'a>(state: &AppState, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut wanted: Vec<String> = ids
            .into_iter()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Owned ids and a state per lookup: the futures live in a stream that a handler's
        // future must be able to send between threads.
        let lookups = wanted.into_iter().map(|id| {
            let state = state.clone();
            async move {
                let answer = state
                    .catalog()
                    .get_title(state.rpc(GetTitleRequest {
                        title_id: id.clone(),
                    }))
                    .await;
                match answer {
                    Ok(detail) => detail.into_inner().title.map(|summary| (id, summary.title)),
                    Err(status) => {
                        tracing::warn!(title_id = %id, grpc_code = ?status.code(), "title of a list line not found");
                        None
                    }
                }
            }
        });
        let found: Vec<Option<(String, String)>> = futures::stream::iter(lookups)
            .buffer_unordered(TITLE_LOOKUPS_AT_ONCE)
            .collect()
            .await;
        TitleNames(found.into_iter().flatten().collect())
    }

    /// The title of `title_id`, or "" when it could not be had.
    pub fn get(&self, title_id: &str) -> String {
        self.0.get(title_id).cloned().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// JSON shapes of API.md.

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A refusal known in advance (API.md: `renew_block`), in the caller's language when the
/// code is one of ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockView {
    pub code: String,
    pub message: String,
}

impl BlockView {
    pub fn new(block: &pb::Block, lang: Lang) -> Self {
        let message = match ErrorCode::from_code(&block.code) {
            Some(code) => lang.message(code).to_string(),
            None => block.message.clone(),
        };
        BlockView {
            code: block.code.clone(),
            message,
        }
    }
}

/// A loan of `GET /api/v1/me/loans`, also the answer of a renewal or a checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoanView {
    pub loan_id: String,
    pub barcode: String,
    pub title_id: String,
    pub title: String,
    pub branch: String,
    pub checked_out_at: String,
    pub due_date: String,
    pub overdue: bool,
    pub renewed: bool,
    /// Rule L2.
    pub renewable: bool,
    pub renew_block: Option<BlockView>,
}

impl LoanView {
    pub fn new(loan: &pb::Loan, titles: &TitleNames, lang: Lang) -> Self {
        LoanView {
            loan_id: loan.loan_id.clone(),
            barcode: loan.barcode.clone(),
            title_id: loan.title_id.clone(),
            title: titles.get(&loan.title_id),
            branch: loan.branch.clone(),
            checked_out_at: loan.checked_out_at.clone(),
            due_date: loan.due_date.clone(),
            overdue: loan.overdue,
            renewed: loan.renewed,
            renewable: loan.renewable,
            // Only a refusal: a renewable loan carries no block, whatever was sent.
            renew_block: (!loan.renewable)
                .then_some(loan.renew_block.as_ref())
                .flatten()
                .map(|b| BlockView::new(b, lang)),
        }
    }
}

/// A hold of `GET /api/v1/me/holds`, also the answer of placing, confirming or rejecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldView {
    pub hold_id: String,
    pub title_id: String,
    pub title: String,
    pub pickup_branch: String,
    pub status: String,
    /// Rule H6: 1 for the first; null once the hold has ended.
    pub queue_position: Option<u32>,
    pub placed_at: String,
    /// Rule H9: the last day on the hold shelf, once the ready mail is sent.
    pub ready_until: Option<String>,
}

impl HoldView {
    pub fn new(hold: &pb::Hold, titles: &TitleNames) -> Self {
        HoldView {
            hold_id: hold.hold_id.clone(),
            title_id: hold.title_id.clone(),
            title: titles.get(&hold.title_id),
            pickup_branch: hold.pickup_branch.clone(),
            status: hold.status.clone(),
            queue_position: (hold.queue_position > 0).then_some(hold.queue_position),
            placed_at: hold.placed_at.clone(),
            ready_until: non_empty(&hold.ready_until),
        }
    }
}

/// `POST /api/v1/branches/{branch}/checkins`: API.md's `{routing, to_branch?, hold_id?}`,
/// with the item it was about so that the desk can read back what it scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckinView {
    /// Rule H7: `shelve`, `hold_shelf` or `transit`.
    pub routing: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    pub barcode: String,
    pub title_id: String,
    pub title: String,
    /// True when the scan returned a loan (rule L5: at any branch).
    pub returned: bool,
}

impl CheckinView {
    pub fn new(answer: &pb::CheckinResponse, titles: &TitleNames) -> Self {
        CheckinView {
            routing: answer.routing.clone(),
            to_branch: non_empty(&answer.to_branch),
            hold_id: non_empty(&answer.hold_id),
            barcode: answer.barcode.clone(),
            title_id: answer.title_id.clone(),
            title: titles.get(&answer.title_id),
            returned: answer.returned,
        }
    }
}

/// One line of a desk list (rule S1): whose hold it is, never what a patron has read (V1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeskHoldView {
    pub hold_id: String,
    pub title_id: String,
    pub title: String,
    pub card_number: String,
    pub pickup_branch: String,
    pub status: String,
    pub barcode: Option<String>,
    pub placed_at: String,
    pub ready_until: Option<String>,
    pub mail_sent_at: Option<String>,
    pub queue_position: Option<u32>,
    pub reason: Option<String>,
    /// Expired holds: where the released item goes now; pull list: how its checkin will
    /// route it (H7, H9).
    pub routing: Option<String>,
    pub to_branch: Option<String>,
    pub next_hold_id: Option<String>,
    pub item_status: Option<String>,
}

impl DeskHoldView {
    pub fn new(hold: &pb::DeskHold, titles: &TitleNames) -> Self {
        DeskHoldView {
            hold_id: hold.hold_id.clone(),
            title_id: hold.title_id.clone(),
            title: titles.get(&hold.title_id),
            card_number: hold.card_number.clone(),
            pickup_branch: hold.pickup_branch.clone(),
            status: hold.status.clone(),
            barcode: non_empty(&hold.barcode),
            placed_at: hold.placed_at.clone(),
            ready_until: non_empty(&hold.ready_until),
            mail_sent_at: non_empty(&hold.mail_sent_at),
            queue_position: (hold.queue_position > 0).then_some(hold.queue_position),
            reason: non_empty(&hold.reason),
            routing: non_empty(&hold.routing),
            to_branch: non_empty(&hold.to_branch),
            next_hold_id: non_empty(&hold.next_hold_id),
            item_status: non_empty(&hold.item_status),
        }
    }

    pub fn list(holds: &[pb::DeskHold], titles: &TitleNames) -> Vec<Self> {
        holds.iter().map(|h| DeskHoldView::new(h, titles)).collect()
    }
}

/// An item travelling between branches (rules H7, H9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitView {
    pub barcode: String,
    pub title_id: String,
    pub title: String,
    pub from_branch: String,
    pub to_branch: String,
    /// Null when the item is going home.
    pub hold_id: Option<String>,
    pub since: String,
}

/// `GET /api/v1/branches/{branch}/transits`: to this branch, and from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitsView {
    pub incoming: Vec<TransitView>,
    pub outgoing: Vec<TransitView>,
}

impl TransitsView {
    pub fn new(transits: &pb::Transits, titles: &TitleNames) -> Self {
        let view = |t: &pb::Transit| TransitView {
            barcode: t.barcode.clone(),
            title_id: t.title_id.clone(),
            title: titles.get(&t.title_id),
            from_branch: t.from_branch.clone(),
            to_branch: t.to_branch.clone(),
            hold_id: non_empty(&t.hold_id),
            since: t.since.clone(),
        };
        TransitsView {
            incoming: transits.incoming.iter().map(view).collect(),
            outgoing: transits.outgoing.iter().map(view).collect(),
        }
    }

    pub fn title_ids(transits: &pb::Transits) -> impl Iterator<Item = &str> {
        transits
            .incoming
            .iter()
            .chain(&transits.outgoing)
            .map(|t| t.title_id.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// The patron's calls (web).

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

// ---------------------------------------------------------------------------------------
// Catalogue administration.

/// Read-your-writes of a new item (ARCHITECTURE.md "Data"): tells circulation of an item
/// the catalogue has just registered, before the gateway answers 201, so that the item
/// can be lent and held at once rather than when its `ItemCreated` event has come through
/// the outbox relay and the bus. The instance of its home branch is asked first, then the
/// others (one database: any of them records it for all). When none answers (circulation
/// wholly down, so nothing can be lent anyway) the event path still brings the item, and
/// an instance says ready only once it has caught up with the events published before it
/// started (`kitsuki_platform::catch_up`): so the answer stays 201 and this is logged.
pub async fn tell_new_item(state: &AppState, item: &kitsuki_proto::catalog::Item) {
    if !state.has_circulation() {
        return;
    }
    let home = Branch::parse(&item.branch).unwrap_or(Branch::Kitsuki);
    let message = pb::RecordItemRequest {
        barcode: item.barcode.clone(),
        title_id: item.title_id.clone(),
        branch: item.branch.clone(),
        r#type: item.r#type,
    };
    // An idempotent upsert (by barcode), so it moves on like a read; and no retry budget
    // even on the last instance: the event is this call's retry, and a registration while
    // circulation is wholly down should not wait for it.
    let recorded = on_any_instance(
        state,
        home,
        Effect::Read,
        message,
        |mut c, mut r| async move {
            r.extensions_mut()
                .insert(kitsuki_platform::grpc_retry::NoRetry);
            c.record_item(r).await
        },
    )
    .await;
    if let Err(error) = recorded {
        tracing::warn!(barcode = %item.barcode, error = ?error, "no circulation instance recorded the new item; its event will bring it");
    }
}

// ---------------------------------------------------------------------------------------
// The desk's calls (rule S1), each naming its branch and its staff member (rule S3).

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

/// How long a title page waits for circulation's own answer before it shows the
/// catalogue's: the page must not hang on a service it can do without.
const LIVE_HOLDABILITY_TIMEOUT: Duration = Duration::from_millis(1500);

/// Rule H1 for one title as circulation decides it now, from the same rows a hold is
/// checked against (see `pages::title`); `None` when circulation cannot say (not
/// deployed, down or slow, or it has not seen the title's copies yet).
pub async fn live_holdability(state: &AppState, title_id: &str) -> Option<pb::TitleHoldability> {
    let mut client = state.circulation(instance_for(Call::Patron)).ok()?;
    let mut request = state.rpc(pb::TitleHoldabilityRequest {
        title_ids: vec![title_id.to_string()],
    });
    request.set_timeout(LIVE_HOLDABILITY_TIMEOUT);
    match client.get_title_holdability(request).await {
        Ok(answer) => answer
            .into_inner()
            .titles
            .into_iter()
            .find(|t| t.title_id == title_id && t.copies > 0),
        Err(status) => {
            tracing::warn!(grpc_code = ?status.code(), "holdability not available from circulation");
            None
        }
    }
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

    fn loan(renewable: bool) -> pb::Loan {
        pb::Loan {
            loan_id: "l1".into(),
            barcode: "KT-1".into(),
            title_id: "t1".into(),
            branch: "kitsuki".into(),
            checked_out_at: "2026-04-01T01:00:00.000000Z".into(),
            due_date: "2026-04-15".into(),
            renewed: true,
            overdue: false,
            renewable,
            renew_block: Some(pb::Block {
                code: "renewal_already_renewed".into(),
                message: "延長は1回のみです。".into(),
                rule: "L2".into(),
            }),
            card_number: "1234567".into(),
        }
    }

    #[test]
    fn a_loan_has_exactly_the_fields_of_api_md_and_its_block_in_the_callers_language() {
        let titles = TitleNames(HashMap::from([(
            "t1".to_string(),
            "坊っちゃん".to_string(),
        )]));
        let v = serde_json::to_value(LoanView::new(&loan(false), &titles, Lang::En)).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "barcode",
                "branch",
                "checked_out_at",
                "due_date",
                "loan_id",
                "overdue",
                "renew_block",
                "renewable",
                "renewed",
                "title",
                "title_id"
            ]
        );
        assert_eq!(v["title"], "坊っちゃん");
        assert_eq!(v["renew_block"]["code"], "renewal_already_renewed");
        assert_eq!(
            v["renew_block"]["message"],
            ErrorCode::RenewalAlreadyRenewed.message_en()
        );
        assert!(
            v.get("card_number").is_none(),
            "the patron knows their card"
        );
        let v = serde_json::to_value(LoanView::new(&loan(true), &titles, Lang::Ja)).unwrap();
        assert_eq!(v["renew_block"], serde_json::Value::Null);
    }

    #[test]
    fn a_hold_has_exactly_the_fields_of_api_md_with_nulls_for_what_is_not_set() {
        let hold = pb::Hold {
            hold_id: "h1".into(),
            title_id: "t1".into(),
            pickup_branch: "ota".into(),
            status: "cancelled".into(),
            queue_position: 0,
            placed_at: "2026-04-01T01:00:00.000000Z".into(),
            card_number: "1234567".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(HoldView::new(&hold, &TitleNames::default())).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 8);
        assert_eq!(v["queue_position"], serde_json::Value::Null);
        assert_eq!(v["ready_until"], serde_json::Value::Null);
        assert_eq!(v["title"], "", "a title the catalogue could not give");
    }

    #[test]
    fn a_checkin_omits_to_branch_and_hold_id_unless_set() {
        let shelve = pb::CheckinResponse {
            routing: "shelve".into(),
            barcode: "KT-1".into(),
            title_id: "t1".into(),
            returned: true,
            ..Default::default()
        };
        let v = serde_json::to_value(CheckinView::new(&shelve, &TitleNames::default())).unwrap();
        assert!(v.get("to_branch").is_none() && v.get("hold_id").is_none());
        let transit = pb::CheckinResponse {
            routing: "transit".into(),
            to_branch: "ota".into(),
            hold_id: "h1".into(),
            ..shelve
        };
        let v = serde_json::to_value(CheckinView::new(&transit, &TitleNames::default())).unwrap();
        assert_eq!(v["to_branch"], "ota");
        assert_eq!(v["hold_id"], "h1");
    }
}
