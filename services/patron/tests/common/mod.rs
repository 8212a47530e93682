//! Shared set-up of the patron-account tests: a fresh database per test (PostgreSQL or
//! SQLite), a pinned test clock, staff members per branch, and readers of the outbox.
#![allow(dead_code)]

use std::sync::Arc;

use kitsuki_patron::domain::patron::RegistrationForm;
use kitsuki_patron::staff::{Role, StaffIdentity};
use kitsuki_patron::{PatronAccounts, PatronConfig};
use kitsuki_platform::clock::{Clock, TestClock};
use kitsuki_platform::testing;
use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, CardNumber};
use prost::Message;
use sqlx::Row;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub use kitsuki_platform::on_both_backends;
pub use kitsuki_platform::testing::Backend;

/// 10:00 in Kitsuki (01:00 UTC) on Sunday 10 May 2026.
pub const START: OffsetDateTime = datetime!(2026-05-10 01:00 UTC);

pub const STAFF_PASSWORD: &str = "counter-password";

pub struct Env {
    pub accounts: PatronAccounts,
    pub clock: Arc<TestClock>,
}

pub async fn env(backend: Backend) -> Env {
    env_with(backend, PatronConfig::default()).await
}

pub async fn env_with(backend: Backend, config: PatronConfig) -> Env {
    let db = testing::fresh_db(backend).await;
    let clock = Arc::new(TestClock::new());
    clock.set(START);
    let accounts = PatronAccounts::open(db, clock.clone(), config)
        .await
        .unwrap();
    Env { accounts, clock }
}

pub fn form(name: &str, birth: &str) -> RegistrationForm {
    RegistrationForm {
        name: name.into(),
        name_reading: "キツキ ハナコ".into(),
        birth_date: birth.into(),
        id_document: "health_insurance".into(),
        email: String::new(),
    }
}

/// A web-service patron: born 2 April 2010 (平成22年), so eligible since 1 April 2023.
pub const ADULT_BIRTH: &str = "2010-04-02";

impl Env {
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// A staff member assigned to `branches`, logged in; returns the session token.
    pub async fn staff(&self, username: &str, branches: &[Branch]) -> String {
        let who = StaffIdentity {
            username: username.into(),
            branches: branches.to_vec(),
            role: Role::Staff,
        };
        self.accounts
            .staff()
            .create(&who, STAFF_PASSWORD, "test")
            .await
            .unwrap();
        self.accounts
            .staff()
            .login(username, STAFF_PASSWORD, "10.0.0.1")
            .await
            .unwrap()
            .token
    }

    /// A clerk of the main library.
    pub async fn clerk(&self) -> String {
        self.staff("kitsuki_clerk", &[Branch::Kitsuki]).await
    }

    pub async fn register(&self, staff: &str, name: &str, birth: &str) -> CardNumber {
        self.accounts
            .register_patron(staff, Branch::Kitsuki, &form(name, birth))
            .await
            .unwrap()
    }

    /// A registered patron with web service; returns the card and the temporary password.
    pub async fn web_patron(&self, staff: &str, birth: &str) -> (CardNumber, String) {
        let card = self.register(staff, "杵築 花子", birth).await;
        let t = self
            .accounts
            .enable_web_service(staff, Branch::Kitsuki, card.as_str())
            .await
            .unwrap();
        (card, t.temporary_password)
    }

    pub async fn login(&self, card: &CardNumber, password: &str) -> String {
        self.accounts
            .login(card.as_str(), password, "192.0.2.10")
            .await
            .unwrap()
            .token
    }

    /// Every outbox row in order: (subject, payload).
    pub async fn outbox(&self) -> Vec<(String, Vec<u8>)> {
        sqlx::query("SELECT subject, payload FROM outbox ORDER BY seq")
            .fetch_all(&self.accounts.db().pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("subject"),
                    r.get::<Vec<u8>, _>("payload"),
                )
            })
            .collect()
    }

    pub async fn subjects(&self) -> Vec<String> {
        self.outbox().await.into_iter().map(|(s, _)| s).collect()
    }

    /// The newest event of a subject, decoded.
    pub async fn last<M: Message + Default>(&self, subject: &str) -> M {
        let rows = self.outbox().await;
        let (_, payload) = rows
            .iter()
            .rev()
            .find(|(s, _)| s == subject)
            .unwrap_or_else(|| panic!("no {subject} event"));
        M::decode(payload.as_slice()).unwrap()
    }

    pub async fn last_verification(&self) -> ev::EmailVerificationRequested {
        self.last("patron.email.verification_requested").await
    }

    /// Registers and verifies `email` for the patron of `session`.
    pub async fn verified_email(&self, session: &str, email: &str) {
        self.accounts
            .request_email_change(session, email)
            .await
            .unwrap();
        let v = self.last_verification().await;
        self.accounts.verify_email(&v.token).await.unwrap();
    }
}
