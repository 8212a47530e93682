//! Which mails an event calls for (rule N1). One function, [`mails_for`], with one `match`
//! on the event's subject: the hold mails of issue 4 are one more arm there (and one more
//! entry in [`SOURCES`], since a NATS 2.9 consumer has a single filter subject).
//!
//! Events carry ids, not personal data (ARCHITECTURE.md "Data"): a planned mail holds the
//! card number and the parameters of its template, and the address is asked for when the
//! mail is sent.

use kitsuki_proto::CardNumber;
use kitsuki_proto::events as ev;
use prost::Message;
use serde::{Deserialize, Serialize};

/// The event streams the service consumes: a durable consumer per entry, named
/// `<consumer prefix>-<name>`, with one filter subject.
pub const SOURCES: &[(&str, &str)] = &[
    ("patron", "patron.>"),
    // Issue 4: ("holds", "circulation.*.hold.*"),
];

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
    // Issue 4 (H5, H8, H9, H10): HoldReceipt, HoldConfirmed, HoldReady, HoldExpired,
    // HoldCancelled.
}

impl Template {
    pub const ALL: [Template; 3] = [
        Template::EmailVerification,
        Template::EmailChanged,
        Template::PasswordReset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::EmailVerification => "email_verification",
            Template::EmailChanged => "email_changed",
            Template::PasswordReset => "password_reset",
        }
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
        // Issue 4: ["circulation", _branch, "hold", kind] → decode `HoldEvent` and map
        // `kind` to its mail: placed → HoldReceipt only if `receipt_mail` (H4, H5);
        // confirmed → HoldConfirmed; ready_to_notify → HoldReady (its MailSent starts the
        // H9 clock); expired → HoldExpired; rejected | cancelled (by the library) →
        // HoldCancelled. Params carry hold_id, title_id, pickup_branch and reason.
        _ => return Ok(Plan::Ignore),
    };
    Ok(Plan::Mails(vec![mail]))
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
                    hold_id: String::new(),
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
}
