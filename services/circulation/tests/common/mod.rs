//! Helpers of the circulation tests: the three branch instances on one fresh database
//! (PostgreSQL or SQLite), a test clock, patrons in memory, titles and items fed through the
//! projection's own handler, the outbox read back as events, and the ready mail's
//! `MailSent` made as the notification service makes it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use kitsuki_circulation::domain::holdability::HoldOrigin;
use kitsuki_circulation::{
    Circulation, CirculationConfig, HoldRequest, InMemoryPatrons, PatronRecord, Recorded,
};
use kitsuki_platform::bus::Event;
use kitsuki_platform::clock::{Clock, TestClock, format_instant};
use kitsuki_platform::db::Db;
use kitsuki_platform::{events, testing};
use kitsuki_proto::catalog::MaterialType as PbMaterial;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Barcode, Branch, CardNumber, TitleId};
use prost::Message;
use sqlx::Row;
use time::OffsetDateTime;
use time::macros::datetime;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// A Wednesday morning in Kitsuki: 2026-04-01 10:00 JST.
pub const START: OffsetDateTime = datetime!(2026-04-01 10:00 +09:00);

// Not every test file of the crate runs on both backends.
#[allow(unused_imports)]
pub use kitsuki_platform::on_both_backends;
pub use kitsuki_platform::testing::{Backend, fresh_db};

/// The three branch instances on one database, one clock and one patron table.
pub struct Library {
    pub db: Db,
    pub clock: Arc<TestClock>,
    pub patrons: Arc<InMemoryPatrons>,
    pub kitsuki: Circulation,
    pub yamaga: Circulation,
    pub ota: Circulation,
    pub consumer: String,
}

pub fn config() -> CirculationConfig {
    CirculationConfig {
        consumer_prefix: format!("circulation-{}", testing::unique_id()),
        ..CirculationConfig::default()
    }
}

impl Library {
    pub async fn open(backend: Backend) -> Library {
        Library::open_with(backend, config()).await
    }

    pub async fn open_with(backend: Backend, config: CirculationConfig) -> Library {
        let db = fresh_db(backend).await;
        let clock = Arc::new(TestClock::new());
        clock.set(START);
        let patrons = Arc::new(InMemoryPatrons::new());
        let open = |branch| {
            Circulation::open(
                db.clone(),
                branch,
                clock.clone(),
                config.clone(),
                patrons.clone(),
            )
        };
        let kitsuki = open(Branch::Kitsuki).await.expect("open kitsuki");
        let yamaga = open(Branch::Yamaga).await.expect("open yamaga");
        let ota = open(Branch::Ota).await.expect("open ota");
        Library {
            db,
            clock,
            patrons,
            kitsuki,
            yamaga,
            ota,
            consumer: format!("{}-catalog-items", config.consumer_prefix),
        }
    }

    pub fn at(&self, branch: Branch) -> &Circulation {
        match branch {
            Branch::Kitsuki => &self.kitsuki,
            Branch::Yamaga => &self.yamaga,
            Branch::Ota => &self.ota,
        }
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(time::Duration::days(days));
    }

    /// A patron with the web service and a verified address.
    pub fn patron(&self, n: u32) -> CardNumber {
        let c = card(n);
        self.patrons.add_web_patron(&c);
        c
    }

    pub fn patron_with(&self, n: u32, record: PatronRecord) -> CardNumber {
        let c = card(n);
        self.patrons.set(&c, record);
        c
    }

    /// A title of `material` with copies `(barcode, home)`, projected as catalog events
    /// would be.
    pub async fn title(&self, material: PbMaterial, copies: &[(&str, Branch)]) -> TitleId {
        let title = TitleId::parse(&uuid::Uuid::now_v7().to_string()).unwrap();
        for (barcode, home) in copies {
            let got = self
                .kitsuki
                .record_item_created(
                    &self.consumer,
                    &item_created(&title, barcode, *home, material),
                )
                .await
                .unwrap();
            assert_eq!(got, Recorded::Applied);
        }
        title
    }

    pub async fn book(&self, copies: &[(&str, Branch)]) -> TitleId {
        self.title(PbMaterial::Book, copies).await
    }

    /// Lends a copy to a throwaway patron, to make it "on loan" for H1.
    pub async fn lend_away(&self, barcode: &str, branch: Branch, n: u32) -> String {
        let c = self.patron(n);
        self.at(branch)
            .checkout(&c, &bc(barcode), "desk")
            .await
            .unwrap()
            .loan_id
    }

    pub async fn web_hold(
        &self,
        via: Branch,
        card: &CardNumber,
        title: &TitleId,
        pickup: Branch,
    ) -> kitsuki_proto::circulation::Hold {
        self.at(via)
            .place_hold(&web_request(card, title, pickup))
            .await
            .unwrap()
    }

    /// The ready mail of a hold has been sent now: the `MailSent` the notification service
    /// writes, answering the hold's `ready_to_notify` event, handled by `via`.
    pub async fn ready_mail_sent(&self, via: Branch, hold_id: &str) -> Recorded {
        let cause = self
            .outbox()
            .await
            .into_iter()
            .rev()
            .find_map(|e| match e.hold() {
                Some(h) if h.hold_id == hold_id && h.kind == "ready_to_notify" => Some(e.id),
                _ => None,
            })
            .expect("a ready_to_notify event for the hold");
        let event = mail_sent(&cause, hold_id, "hold_ready", self.clock.now());
        self.at(via)
            .record_mail_sent("circulation-mail-sent", &event)
            .await
            .unwrap()
    }

    /// Every event in the outbox, in order.
    pub async fn outbox(&self) -> Vec<Outboxed> {
        let rows = sqlx::query("SELECT seq, event_id, subject, payload FROM outbox ORDER BY seq")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| Outboxed {
                seq: r.get("seq"),
                id: r.get("event_id"),
                subject: r.get("subject"),
                payload: r.get("payload"),
            })
            .collect()
    }

    /// The outbox's last sequence number, to read what comes after it.
    pub async fn outbox_mark(&self) -> i64 {
        self.outbox().await.last().map_or(0, |e| e.seq)
    }

    pub async fn outbox_after(&self, mark: i64) -> Vec<Outboxed> {
        self.outbox()
            .await
            .into_iter()
            .filter(|e| e.seq > mark)
            .collect()
    }
}

/// An outbox row.
#[derive(Debug, Clone)]
pub struct Outboxed {
    pub seq: i64,
    pub id: String,
    pub subject: String,
    pub payload: Vec<u8>,
}

impl Outboxed {
    pub fn hold(&self) -> Option<ev::HoldEvent> {
        self.subject
            .contains(".hold.")
            .then(|| ev::HoldEvent::decode(self.payload.as_slice()).unwrap())
    }

    pub fn item(&self) -> Option<ev::ItemStatusChanged> {
        self.subject
            .ends_with(".item.status")
            .then(|| ev::ItemStatusChanged::decode(self.payload.as_slice()).unwrap())
    }

    /// A short form for comparing lists: `hold.<kind>` or `item.<barcode>.<status>`.
    pub fn short(&self) -> String {
        if let Some(h) = self.hold() {
            format!("hold.{}", h.kind)
        } else if let Some(i) = self.item() {
            let status = kitsuki_proto::catalog::ItemStatus::try_from(i.status)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_default();
            format!("item.{}.{}", i.barcode, status)
        } else {
            self.subject.clone()
        }
    }
}

pub fn card(n: u32) -> CardNumber {
    CardNumber::parse(&format!("{n:07}")).unwrap()
}

pub fn bc(s: &str) -> Barcode {
    Barcode::parse(s).unwrap()
}

pub fn web_request(card: &CardNumber, title: &TitleId, pickup: Branch) -> HoldRequest {
    HoldRequest {
        card: card.clone(),
        title: title.clone(),
        pickup,
        receipt_mail: true,
        origin: HoldOrigin::Web,
        actor: String::new(),
    }
}

pub fn counter_request(
    card: &CardNumber,
    title: &TitleId,
    pickup: Branch,
    at: Branch,
) -> HoldRequest {
    HoldRequest {
        card: card.clone(),
        title: title.clone(),
        pickup,
        receipt_mail: false,
        origin: HoldOrigin::Counter { branch: at },
        actor: format!("staff-{}", at.code()),
    }
}

/// `catalog.item.created.<branch>` as the catalog writes it.
pub fn item_created(title: &TitleId, barcode: &str, home: Branch, material: PbMaterial) -> Event {
    let id = events::new_event_id();
    let now = format_instant(OffsetDateTime::now_utc());
    events::build(
        format!("catalog.item.created.{}", home.code()),
        id.clone(),
        &now,
        &ev::ItemCreated {
            meta: Some(ev::EventMeta {
                event_id: id,
                occurred_at: now.clone(),
            }),
            barcode: barcode.to_string(),
            title_id: title.as_str().to_string(),
            branch: home.code().to_string(),
            r#type: material as i32,
        },
    )
}

/// `notification.mail.sent` as the notification service writes it.
pub fn mail_sent(cause_event_id: &str, hold_id: &str, template: &str, at: OffsetDateTime) -> Event {
    let id = events::new_event_id();
    let sent_at = format_instant(at);
    events::build(
        "notification.mail.sent",
        id.clone(),
        &sent_at,
        &ev::MailSent {
            meta: Some(ev::EventMeta {
                event_id: id,
                occurred_at: sent_at.clone(),
            }),
            cause_event_id: cause_event_id.to_string(),
            template: template.to_string(),
            sent_at: sent_at.clone(),
            hold_id: hold_id.to_string(),
        },
    )
}

/// Waits for `cond` with a deadline instead of sleeping a fixed time.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
