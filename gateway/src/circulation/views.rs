//! The JSON shapes of API.md for loans, holds, check-ins, the desk's lists and transits.

use kitsuki_proto::ErrorCode;
use kitsuki_proto::circulation as pb;
use serde::Serialize;

use super::*;
use crate::web::error::Lang;

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

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::circulation as pb;
    use std::collections::HashMap;

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
