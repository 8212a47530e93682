//! Which mails an event calls for (rule N1). One function, [`mails_for`], with one `match`
//! on the event's subject: the patron account's mails (P9, P11) and the hold mails of
//! circulation (H4, H5, H8–H10), each source with its entry in [`SOURCES`] since a NATS
//! 2.9 consumer has a single filter subject.
//!
//! Events carry ids, not personal data (ARCHITECTURE.md "Data"): a planned mail holds the
//! card number and the parameters of its template, and the address (and the title a hold
//! mail names) is asked for when the mail is sent.
//!
//! The hold events, `circulation.<branch>.hold.<kind>` with a `HoldEvent`:
//!
//! | kind              | mail                                                       |
//! |-------------------|------------------------------------------------------------|
//! | `placed`          | [`Template::HoldReceipt`] only if `receipt_mail` (H4, H5)  |
//! | `confirmed`       | [`Template::HoldConfirmed`] (H5)                           |
//! | `ready_to_notify` | [`Template::HoldReady`] (H8; its `MailSent` starts H9)     |
//! | `expired`         | [`Template::HoldExpired`] (H9)                             |
//! | `rejected`        | [`Template::HoldRejected`] (H5), always: only staff reject |
//! | `cancelled`       | [`Template::HoldCancelled`] if the library cancelled it    |
//! | anything else     | nothing                                                    |
//!
//! Who cancelled is the event's `by_library` (events.proto): true when staff cancelled for
//! the library (always with the reason the patron reads), false for the patron's own
//! cancellation (H10, on the web or asked at a counter), which the patron, who did it,
//! is not mailed about. See [`cancelled_by_library`].
//!
//! The ready mail's keep-until date is computed when it is sent (H9: the week runs from
//! the sending); the event's `ready_until`, circulation's date for a mail sent on the
//! event's day, travels as a floor (see [`Params::ready_until_floor`]).

use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, CardNumber};
use prost::Message;
use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

/// The event streams the service consumes: a durable consumer per entry, named
/// `<consumer prefix>-<name>`, with one filter subject.
pub const SOURCES: &[(&str, &str)] = &[("patron", "patron.>"), ("holds", "circulation.*.hold.*")];

/// The mails of rule N1 built so far. The name is stored with each delivery, labels the
/// metrics and travels in `MailSent.template`: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// P9: the link that verifies a new address, to that address.
    EmailVerification,
    /// P9: 「メールアドレス変更完了のお知らせ」, to the address now in force.
    EmailChanged,
    /// P11: the single-use reset link, to the verified address.
    PasswordReset,
    /// H4, H5: 「仮予約受付け内容のお知らせ」, only when the patron asked for it; says that
    /// the hold is not yet confirmed.
    HoldReceipt,
    /// H5: 「予約確定のお知らせ」, the hold is in force.
    HoldConfirmed,
    /// H8: 「資料について用意ができました」, with the pickup branch and the last day on its
    /// hold shelf (H9, B2), computed from the sending time.
    HoldReady,
    /// H9: the hold-shelf week passed and the hold expired.
    HoldExpired,
    /// H5: staff rejected the provisional hold.
    HoldRejected,
    /// H10, N1: the library cancelled the hold.
    HoldCancelled,
}

impl Template {
    pub const ALL: [Template; 9] = [
        Template::EmailVerification,
        Template::EmailChanged,
        Template::PasswordReset,
        Template::HoldReceipt,
        Template::HoldConfirmed,
        Template::HoldReady,
        Template::HoldExpired,
        Template::HoldRejected,
        Template::HoldCancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::EmailVerification => "email_verification",
            Template::EmailChanged => "email_changed",
            Template::PasswordReset => "password_reset",
            Template::HoldReceipt => "hold_receipt",
            Template::HoldConfirmed => "hold_confirmed",
            Template::HoldReady => "hold_ready",
            Template::HoldExpired => "hold_expired",
            Template::HoldRejected => "hold_rejected",
            Template::HoldCancelled => "hold_cancelled",
        }
    }

    /// A mail about a hold: it names the title (asked of the catalog at send time) and
    /// the pickup branch.
    pub fn is_hold(self) -> bool {
        matches!(
            self,
            Template::HoldReceipt
                | Template::HoldConfirmed
                | Template::HoldReady
                | Template::HoldExpired
                | Template::HoldRejected
                | Template::HoldCancelled
        )
    }

    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What a template needs besides the patron's contact. Stored as JSON with the delivery;
/// empty fields are left out. The one-time `token` is dropped from the row once the
/// delivery is settled (see [`Params::settled`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// RFC 3339, as the event gave it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
    /// Asks patron-account for the address being verified rather than the one in force.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verification_id: String,
    /// Travels in `MailSent` so that circulation can start the hold-shelf clock (N2, H9).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hold_id: String,
    /// The held title, looked up in the catalog when the mail is sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title_id: String,
    /// The pickup branch's code (`kitsuki`, `yamaga`, `ota`), checked when planned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pickup_branch: String,
    /// Why the library rejected or cancelled a hold, as staff wrote it for the patron.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The ready mail's keep-until date (`YYYY-MM-DD`), written into the delivery log once
    /// the mail is sent; it is computed from the sending time (H9), never planned ahead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ready_until: String,
    /// `HoldEvent.ready_until` of a `ready_to_notify` event (`YYYY-MM-DD`): the last day on
    /// the shelf by circulation's own calendars for a mail sent on the event's day. The mail
    /// never states an earlier date: a later sending only moves the date later, so the
    /// larger of the two is right, and it stays right where this service's calendar
    /// configuration lags behind circulation's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ready_until_floor: String,
}

impl Params {
    /// What is kept once a delivery is sent or given up: everything but the link token,
    /// which is a credential for as long as it is valid and is of no use to the log.
    pub fn settled(&self) -> Params {
        Params {
            token: String::new(),
            ..self.clone()
        }
    }
}

/// One mail an event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest {
    pub template: Template,
    pub card_number: String,
    pub params: Params,
}

/// The answer for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not an event that calls for mail (a subject this service does not know, or a
    /// patron event without a mail such as `patron.registered`): acknowledge it.
    Ignore,
    /// These mails, possibly none.
    Mails(Vec<MailRequest>),
}

/// An event of a known subject that cannot be used. Retrying does not mend it: the
/// consumer logs it and acknowledges it.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the payload of {subject} does not decode")]
    Decode {
        subject: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{subject} is unusable: {what}")]
    Invalid { subject: String, what: &'static str },
}

/// The mails that the event of `subject` (relative, as the bus delivers it) calls for.
pub fn mails_for(subject: &str, payload: &[u8]) -> Result<Plan, PlanError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let decode_err = |source| PlanError::Decode {
        subject: subject.to_string(),
        source,
    };
    let invalid = |what| PlanError::Invalid {
        subject: subject.to_string(),
        what,
    };
    let mail = match tokens.as_slice() {
        ["patron", "email", "verification_requested"] => {
            let e = ev::EmailVerificationRequested::decode(payload).map_err(decode_err)?;
            if e.token.is_empty() {
                return Err(invalid("no token"));
            }
            if e.verification_id.is_empty() {
                return Err(invalid("no verification id"));
            }
            MailRequest {
                template: Template::EmailVerification,
                card_number: card(&e.card_number).ok_or_else(|| invalid("bad card number"))?,
                params: Params {
                    token: e.token,
                    expires_at: e.expires_at,
                    verification_id: e.verification_id,
                    ..Params::default()
                },
            }
        }
        ["patron", "email", "changed"] => {
            let e = ev::EmailChanged::decode(payload).map_err(decode_err)?;
            MailRequest {
                template: Template::EmailChanged,
                card_number: card(&e.card_number).ok_or_else(|| invalid("bad card number"))?,
                params: Params::default(),
            }
        }
        ["patron", "password", "reset_requested"] => {
            let e = ev::PasswordResetRequested::decode(payload).map_err(decode_err)?;
            if e.token.is_empty() {
                return Err(invalid("no token"));
            }
            MailRequest {
                template: Template::PasswordReset,
                card_number: card(&e.card_number).ok_or_else(|| invalid("bad card number"))?,
                params: Params {
                    token: e.token,
                    expires_at: e.expires_at,
                    ..Params::default()
                },
            }
        }
        ["circulation", _, "hold", kind] => {
            let Some(kind) = HoldKind::parse(kind) else {
                return Ok(Plan::Ignore);
            };
            let e = ev::HoldEvent::decode(payload).map_err(decode_err)?;
            let Some(template) = hold_template(kind, &e) else {
                return Ok(Plan::Ignore);
            };
            if e.hold_id.trim().is_empty() {
                return Err(invalid("no hold id"));
            }
            let pickup =
                Branch::parse(&e.pickup_branch).map_err(|_| invalid("bad pickup branch"))?;
            MailRequest {
                template,
                card_number: card(&e.card_number).ok_or_else(|| invalid("bad card number"))?,
                params: Params {
                    hold_id: e.hold_id,
                    title_id: e.title_id.trim().to_string(),
                    pickup_branch: pickup.code().to_string(),
                    reason: e.reason.trim().to_string(),
                    ready_until_floor: if template == Template::HoldReady {
                        e.ready_until.trim().to_string()
                    } else {
                        String::new()
                    },
                    ..Params::default()
                },
            }
        }
        _ => return Ok(Plan::Ignore),
    };
    Ok(Plan::Mails(vec![mail]))
}

/// The hold events of circulation that this service reads (`circulation.<branch>.hold.<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    Placed,
    Confirmed,
    ReadyToNotify,
    Expired,
    Rejected,
    Cancelled,
}

impl HoldKind {
    pub fn parse(kind: &str) -> Option<HoldKind> {
        Some(match kind {
            "placed" => HoldKind::Placed,
            "confirmed" => HoldKind::Confirmed,
            "ready_to_notify" => HoldKind::ReadyToNotify,
            "expired" => HoldKind::Expired,
            "rejected" => HoldKind::Rejected,
            "cancelled" => HoldKind::Cancelled,
            _ => return None,
        })
    }
}

/// The mail a hold event calls for, if any (rule N1).
pub fn hold_template(kind: HoldKind, e: &ev::HoldEvent) -> Option<Template> {
    match kind {
        // H4, H5: the provisional receipt only when the patron chose 「希望する」.
        HoldKind::Placed => e.receipt_mail.then_some(Template::HoldReceipt),
        HoldKind::Confirmed => Some(Template::HoldConfirmed),
        HoldKind::ReadyToNotify => Some(Template::HoldReady),
        HoldKind::Expired => Some(Template::HoldExpired),
        HoldKind::Rejected => Some(Template::HoldRejected),
        HoldKind::Cancelled => cancelled_by_library(e).then_some(Template::HoldCancelled),
    }
}

/// Rule N1 mails a cancellation by the library, not the patron's own (H10): the event's
/// `by_library`, which circulation sets when staff cancel for the library, and leaves false
/// when the patron cancels (on the web, or at a counter where staff do it for them). A
/// reason alone does not make a cancellation the library's.
pub fn cancelled_by_library(e: &ev::HoldEvent) -> bool {
    e.by_library
}

/// Rule H9: the keep-until date a ready mail states, from `computed` (the sending date plus
/// the week, on the pickup branch's next open day, by this service's calendars) and the
/// event's `floor` ([`Params::ready_until_floor`], possibly empty): the later of the two.
/// With the same calendars as circulation's they agree (a later sending only moves the date
/// later); where they differ, circulation's is never undercut. The second value says that
/// the floor won, which only a calendar (or clock) that differs from circulation's causes.
pub fn keep_until(computed: Date, floor: &str) -> (Date, bool) {
    let floor = Date::parse(floor.trim(), format_description!("[year]-[month]-[day]")).ok();
    match floor {
        Some(f) if f > computed => (f, true),
        _ => (computed, false),
    }
}

fn card(s: &str) -> Option<String> {
    CardNumber::parse(s).ok().map(|c| c.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Option<ev::EventMeta> {
        Some(ev::EventMeta {
            event_id: "e1".into(),
            occurred_at: "2026-04-01T00:00:00.000000Z".into(),
        })
    }

    #[test]
    fn a_verification_request_calls_for_one_verification_mail() {
        let payload = ev::EmailVerificationRequested {
            meta: meta(),
            card_number: "1234567".into(),
            verification_id: "v1".into(),
            token: "tok".into(),
            expires_at: "2026-04-03T00:00:00.000000Z".into(),
        }
        .encode_to_vec();
        let plan = mails_for("patron.email.verification_requested", &payload).unwrap();
        assert_eq!(
            plan,
            Plan::Mails(vec![MailRequest {
                template: Template::EmailVerification,
                card_number: "1234567".into(),
                params: Params {
                    token: "tok".into(),
                    expires_at: "2026-04-03T00:00:00.000000Z".into(),
                    verification_id: "v1".into(),
                    ..Params::default()
                },
            }])
        );
    }

    #[test]
    fn the_change_and_reset_events_call_for_their_mails() {
        let changed = ev::EmailChanged {
            meta: meta(),
            card_number: "7654321".into(),
        }
        .encode_to_vec();
        let Plan::Mails(m) = mails_for("patron.email.changed", &changed).unwrap() else {
            panic!("a mail")
        };
        assert_eq!(m[0].template, Template::EmailChanged);
        let reset = ev::PasswordResetRequested {
            meta: meta(),
            card_number: "7654321".into(),
            token: "t".into(),
            expires_at: String::new(),
        }
        .encode_to_vec();
        let Plan::Mails(m) = mails_for("patron.password.reset_requested", &reset).unwrap() else {
            panic!("a mail")
        };
        assert_eq!(m[0].template, Template::PasswordReset);
        assert_eq!(m[0].params.token, "t");
    }

    #[test]
    fn other_subjects_are_ignored() {
        for s in [
            "patron.registered",
            "patron.password.changed",
            "catalog.title.created",
            "patron",
        ] {
            assert_eq!(mails_for(s, b"\x00garbage").unwrap(), Plan::Ignore, "{s}");
        }
    }

    #[test]
    fn unusable_events_are_refused_not_mailed() {
        let no_token = ev::PasswordResetRequested {
            meta: meta(),
            card_number: "7654321".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(mails_for("patron.password.reset_requested", &no_token).is_err());
        let bad_card = ev::EmailChanged {
            meta: meta(),
            card_number: "12".into(),
        }
        .encode_to_vec();
        assert!(mails_for("patron.email.changed", &bad_card).is_err());
        assert!(mails_for("patron.email.changed", b"\xff\xff\xff").is_err());
    }

    #[test]
    fn template_names_round_trip_and_settled_params_drop_the_token() {
        for t in Template::ALL {
            assert_eq!(Template::parse(t.name()), Some(t));
        }
        let p = Params {
            token: "secret".into(),
            hold_id: "h".into(),
            ..Params::default()
        };
        let s = serde_json::to_string(&p.settled()).unwrap();
        assert_eq!(s, r#"{"hold_id":"h"}"#);
    }

    fn hold(kind: &str) -> ev::HoldEvent {
        ev::HoldEvent {
            meta: meta(),
            hold_id: "h-1".into(),
            card_number: "1234567".into(),
            title_id: "0190f0e0-0000-7000-8000-000000000001".into(),
            pickup_branch: "ota".into(),
            kind: kind.into(),
            ..ev::HoldEvent::default()
        }
    }

    fn plan_of(subject: &str, e: &ev::HoldEvent) -> Plan {
        mails_for(subject, &e.encode_to_vec()).unwrap()
    }

    fn template_of(subject: &str, e: &ev::HoldEvent) -> Option<Template> {
        match plan_of(subject, e) {
            Plan::Ignore => None,
            Plan::Mails(m) => {
                assert_eq!(m.len(), 1);
                Some(m[0].template)
            }
        }
    }

    #[test]
    fn each_hold_event_calls_for_its_mail_n1() {
        let mut placed = hold("placed");
        placed.receipt_mail = true;
        let mut rejected = hold("rejected");
        rejected.reason = "所蔵資料の不備".into();
        let mut cancelled = hold("cancelled");
        cancelled.reason = "資料破損のため".into();
        cancelled.by_library = true;
        let cases = [
            (
                "circulation.kitsuki.hold.placed",
                placed,
                Template::HoldReceipt,
            ),
            (
                "circulation.kitsuki.hold.confirmed",
                hold("confirmed"),
                Template::HoldConfirmed,
            ),
            (
                "circulation.ota.hold.ready_to_notify",
                hold("ready_to_notify"),
                Template::HoldReady,
            ),
            (
                "circulation.ota.hold.expired",
                hold("expired"),
                Template::HoldExpired,
            ),
            (
                "circulation.yamaga.hold.rejected",
                rejected,
                Template::HoldRejected,
            ),
            (
                "circulation.yamaga.hold.cancelled",
                cancelled,
                Template::HoldCancelled,
            ),
        ];
        for (subject, e, template) in cases {
            let Plan::Mails(m) = plan_of(subject, &e) else {
                panic!("{subject} calls for a mail")
            };
            assert_eq!(m.len(), 1, "{subject}");
            assert_eq!(m[0].template, template, "{subject}");
            assert!(template.is_hold());
            assert_eq!(m[0].card_number, "1234567");
            assert_eq!(m[0].params.hold_id, "h-1");
            assert_eq!(m[0].params.title_id, e.title_id);
            // The pickup branch comes from the event, not from the publishing instance.
            assert_eq!(m[0].params.pickup_branch, "ota");
            assert_eq!(m[0].params.reason, e.reason);
            assert_eq!(m[0].params.ready_until, "", "never planned ahead (H9)");
        }
    }

    #[test]
    fn the_keep_until_date_is_the_later_of_the_sending_s_and_the_event_s_h9() {
        use time::macros::date;
        let computed = date!(2026 - 04 - 10);
        assert_eq!(keep_until(computed, ""), (computed, false));
        assert_eq!(keep_until(computed, "garbage"), (computed, false));
        assert_eq!(keep_until(computed, "2026-04-08"), (computed, false));
        assert_eq!(keep_until(computed, "2026-04-10"), (computed, false));
        assert_eq!(
            keep_until(computed, " 2026-04-11 "),
            (date!(2026 - 04 - 11), true)
        );
    }

    #[test]
    fn the_ready_event_s_keep_until_date_travels_as_a_floor_h9() {
        let e = ev::HoldEvent {
            ready_until: "2026-04-08".into(),
            ..hold("ready_to_notify")
        };
        let Plan::Mails(m) = plan_of("circulation.ota.hold.ready_to_notify", &e) else {
            panic!("a mail")
        };
        assert_eq!(m[0].params.ready_until_floor, "2026-04-08");
        assert_eq!(m[0].params.ready_until, "");
        // Only the ready mail has one.
        let e = ev::HoldEvent {
            ready_until: "2026-04-08".into(),
            ..hold("expired")
        };
        let Plan::Mails(m) = plan_of("circulation.ota.hold.expired", &e) else {
            panic!("a mail")
        };
        assert_eq!(m[0].params.ready_until_floor, "");
    }

    #[test]
    fn a_hold_placed_without_asking_for_the_receipt_calls_for_no_mail_h4_h5() {
        let e = hold("placed");
        assert_eq!(plan_of("circulation.ota.hold.placed", &e), Plan::Ignore);
        let asked = ev::HoldEvent {
            receipt_mail: true,
            ..e
        };
        assert_eq!(
            template_of("circulation.ota.hold.placed", &asked),
            Some(Template::HoldReceipt)
        );
    }

    #[test]
    fn only_a_cancellation_by_the_library_is_mailed_h10_n1() {
        let by_patron = hold("cancelled");
        assert!(!cancelled_by_library(&by_patron));
        assert_eq!(
            plan_of("circulation.kitsuki.hold.cancelled", &by_patron),
            Plan::Ignore
        );
        // Staff cancelling at the patron's request may note why: still the patron's own.
        let noted = ev::HoldEvent {
            reason: "ご本人のお申し出".into(),
            ..hold("cancelled")
        };
        assert_eq!(
            plan_of("circulation.kitsuki.hold.cancelled", &noted),
            Plan::Ignore
        );
        let by_library = ev::HoldEvent {
            reason: " 資料紛失のため ".into(),
            by_library: true,
            ..hold("cancelled")
        };
        let Plan::Mails(m) = plan_of("circulation.kitsuki.hold.cancelled", &by_library) else {
            panic!("a mail")
        };
        assert_eq!(m[0].template, Template::HoldCancelled);
        assert_eq!(m[0].params.reason, "資料紛失のため");
        // A rejection is always the library's, with or without a reason.
        assert_eq!(
            template_of("circulation.kitsuki.hold.rejected", &hold("rejected")),
            Some(Template::HoldRejected)
        );
    }

    #[test]
    fn other_hold_kinds_and_circulation_events_are_ignored() {
        for s in [
            "circulation.ota.hold.fulfilled",
            "circulation.ota.hold.in_transit",
            "circulation.ota.item.status",
            "circulation.ota.hold",
            "circulation.ota.hold.ready_to_notify.extra",
        ] {
            assert_eq!(mails_for(s, b"\xff\xff").unwrap(), Plan::Ignore, "{s}");
        }
    }

    #[test]
    fn unusable_hold_events_are_refused_not_mailed() {
        let subject = "circulation.ota.hold.confirmed";
        let no_id = ev::HoldEvent {
            hold_id: " ".into(),
            ..hold("confirmed")
        };
        let bad_branch = ev::HoldEvent {
            pickup_branch: "beppu".into(),
            ..hold("confirmed")
        };
        let bad_card = ev::HoldEvent {
            card_number: "12".into(),
            ..hold("confirmed")
        };
        for e in [no_id, bad_branch, bad_card] {
            assert!(mails_for(subject, &e.encode_to_vec()).is_err(), "{e:?}");
        }
        assert!(mails_for(subject, b"\xff\xff\xff").is_err());
    }

    #[test]
    fn the_holds_source_has_its_own_consumer_filter() {
        assert!(SOURCES.contains(&("holds", "circulation.*.hold.*")));
        assert_eq!(SOURCES.len(), 2);
    }
}
