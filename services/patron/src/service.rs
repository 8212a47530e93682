//! The patron-account operations: registration and web-service enabling at the counter
//! (S2, S3, P1-P4), patron login and sessions (P5, P13), password change and reset (P10,
//! P11), email change and verification (P7-P9), and the contact lookup for the
//! notification service. Each change is written with its audit row (staff actions, S3)
//! and its events (outbox) in one transaction; the rules themselves are in `domain`.

use std::sync::Arc;

use kitsuki_platform::bus::Event;
use kitsuki_platform::clock::{SharedClock, format_instant, local_date};
use kitsuki_platform::db::Db;
use kitsuki_platform::{events, outbox, retention};
use kitsuki_proto::events as ev;
use kitsuki_proto::{Branch, CardNumber, ErrorCode, ServiceError};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::PatronConfig;
use crate::domain::age::eligible_for_web_service;
use crate::domain::email::{EmailAddress, EmailError, MailKind};
use crate::domain::password::{PasswordProblem, check_new_password};
use crate::domain::patron::{
    RegistrationError, RegistrationForm, card_from_draw, validate_registration,
};
use crate::domain::session::{
    LinkState, RESET_VALID, VERIFICATION_VALID, link_state, session_alive,
};
use crate::error::{PatronError, internal};
use crate::staff::{StaffAccounts, StaffIdentity, audit};
use crate::store::{self, PatronRow};
use crate::throttle::{Key, Scope, Throttle};
use crate::{passwords, tokens};

/// How many card numbers to draw before giving up. With 9 million numbers, even a library
/// a hundred times Kitsuki's size rarely needs a second draw.
const MAX_CARD_DRAWS: usize = 32;

/// Source of random card-number draws (replaceable in tests to force collisions).
#[derive(Clone)]
struct CardDraw(Arc<dyn Fn() -> u32 + Send + Sync>);

impl std::fmt::Debug for CardDraw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardDraw")
    }
}

impl Default for CardDraw {
    fn default() -> Self {
        CardDraw(Arc::new(|| {
            use rand::Rng;
            rand::rng().random::<u32>()
        }))
    }
}

/// A session granted at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub token: String,
    /// When the session ends at the latest (RFC 3339 UTC); it ends earlier when idle.
    pub expires_at: String,
    /// Rule P5: the patron logged in with a temporary password.
    pub temporary_password: bool,
}

/// What a patron session shows of its patron (API.md `GET /api/v1/me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatronProfile {
    pub card_number: String,
    pub name: String,
    /// The address in force (rule P9), if any.
    pub email: Option<String>,
    pub email_verified: bool,
    /// The address waiting for its link to be opened, if any.
    pub pending_email: Option<String>,
    /// Rule P5: pages recommend changing it.
    pub temporary_password: bool,
}

/// Rule P3: the temporary password, returned once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryPassword {
    pub card_number: String,
    pub name: String,
    pub temporary_password: String,
}

/// The answer to an email change (rule P8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChangeRequested {
    /// A mobile-carrier address: the patron must allow mail from `sender_address`.
    pub carrier_notice: bool,
    /// The library's sender address.
    pub sender_address: String,
}

/// Where to send a mail now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub card_number: String,
    pub name: String,
    pub email: String,
}

/// The patron-account service.
#[derive(Debug, Clone)]
pub struct PatronAccounts {
    db: Db,
    clock: SharedClock,
    config: Arc<PatronConfig>,
    staff: StaffAccounts,
    throttle: Throttle,
    relay_wake: Arc<Notify>,
    card_draw: CardDraw,
}

impl From<StaffAccounts> for PatronAccounts {
    /// The service over the staff accounts' database and clock with the default
    /// configuration ([`StaffAccounts::open`] has already run every migration).
    fn from(staff: StaffAccounts) -> Self {
        PatronAccounts::assemble(staff, PatronConfig::default())
    }
}

fn registration_error(e: RegistrationError) -> PatronError {
    let err = match e {
        RegistrationError::Name => ServiceError::with_detail(ErrorCode::InvalidInput, "name"),
        RegistrationError::NameReading => {
            ServiceError::with_detail(ErrorCode::InvalidInput, "name_reading")
        }
        RegistrationError::BirthDate(_) => ServiceError::new(ErrorCode::InvalidBirthDate),
        RegistrationError::IdDocument => ServiceError::new(ErrorCode::InvalidIdDocument),
        RegistrationError::Email(e) => return email_error(e),
    };
    err.into()
}

fn email_error(e: EmailError) -> PatronError {
    match e {
        EmailError::Syntax => ErrorCode::InvalidEmail.into(),
        EmailError::FreeMail => ErrorCode::FreeMailDomain.into(),
    }
}

fn password_error(p: PasswordProblem) -> PatronError {
    let detail = match p {
        PasswordProblem::TooLong => return ErrorCode::PasswordTooLong.into(),
        PasswordProblem::TooShort => "too_short",
        PasswordProblem::Blank => "blank",
        PasswordProblem::SameAsCardNumber => "card_number",
        PasswordProblem::SameAsBirthDate => "birth_date",
    };
    ServiceError::with_detail(ErrorCode::WeakPassword, detail).into()
}

/// Refuses a password over `MAX_PASSWORD_BYTES` before anything is looked up, counted or
/// hashed: the answer is the same for every card, so it reveals nothing (P13).
pub(crate) fn refuse_long_password(password: &str) -> Result<(), ServiceError> {
    if crate::domain::password::too_long(password) {
        return Err(ServiceError::new(ErrorCode::PasswordTooLong));
    }
    Ok(())
}

/// Maps a database error to "internal", logged once.
fn db(context: &'static str) -> impl Fn(sqlx::Error) -> ServiceError {
    move |e| internal(context, e)
}

/// An event with a fresh id, its meta filled in.
fn event<M: prost::Message>(
    subject: &str,
    now: &str,
    make: impl FnOnce(Option<ev::EventMeta>) -> M,
) -> Event {
    let id = events::new_event_id();
    let meta = ev::EventMeta {
        event_id: id.clone(),
        occurred_at: now.to_string(),
    };
    events::build(subject, id, now, &make(Some(meta)))
}

impl PatronAccounts {
    /// Migrates the database (staff and patron tables, outbox) and builds the service.
    pub async fn open(
        db: Db,
        clock: SharedClock,
        config: PatronConfig,
    ) -> anyhow::Result<PatronAccounts> {
        let staff = StaffAccounts::open(db, clock).await?;
        Ok(PatronAccounts::assemble(staff, config))
    }

    fn assemble(staff: StaffAccounts, config: PatronConfig) -> PatronAccounts {
        let staff = staff.with_throttle(config.throttle);
        let db = staff.db().clone();
        PatronAccounts {
            clock: staff.clock().clone(),
            throttle: Throttle::new(db.clone(), config.throttle),
            db,
            config: Arc::new(config),
            staff,
            relay_wake: Arc::new(Notify::new()),
            card_draw: CardDraw::default(),
        }
    }

    /// Replaces the random source of card numbers (tests force collisions with it).
    #[doc(hidden)]
    pub fn with_card_draws(mut self, draw: impl Fn() -> u32 + Send + Sync + 'static) -> Self {
        self.card_draw = CardDraw(Arc::new(draw));
        self
    }

    pub fn staff(&self) -> &StaffAccounts {
        &self.staff
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &PatronConfig {
        &self.config
    }

    /// Retention (ARCHITECTURE.md "Retention"): deletes links and sessions (patron and
    /// staff) expired for longer than `retention::EXPIRED_KEPT`, login attempts that no
    /// longer count (P13) and old inbox ids. The audit record (S3) is kept. Returns how
    /// many rows went.
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
        let before = format_instant(now - retention::EXPIRED_KEPT);
        let mut conn = self.db.pool.acquire().await?;
        let mut rows = store::purge_sessions(&mut conn, &before).await?;
        rows += store::purge_verifications(&mut conn, &before).await?;
        rows += store::purge_resets(&mut conn, &before).await?;
        drop(conn);
        rows += self.staff.purge_sessions(&before).await?;
        rows += self.throttle.purge(now).await?;
        rows += retention::purge_event_rows(&self.db, now).await?;
        Ok(rows)
    }

    /// The purge of [`PatronAccounts::purge_expired`], for `retention::schedule`.
    pub fn retention(&self) -> retention::Purge {
        let this = self.clone();
        Arc::new(move |now| {
            let this = this.clone();
            Box::pin(async move { this.purge_expired(now).await })
        })
    }

    /// Notified after every commit that wrote to the outbox (hand it to the relay).
    pub fn relay_wake(&self) -> Arc<Notify> {
        self.relay_wake.clone()
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ServiceError> {
        self.db
            .pool
            .acquire()
            .await
            .map_err(|e| internal("acquiring a connection", e))
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, ServiceError> {
        self.db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))
    }

    async fn commit(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        wrote_events: bool,
    ) -> Result<(), ServiceError> {
        tx.commit().await.map_err(|e| internal("committing", e))?;
        if wrote_events {
            self.relay_wake.notify_one();
        }
        Ok(())
    }

    /// Rule S3: the staff member behind `token`, if assigned to `branch`. A refusal is
    /// recorded too, with who, when and where.
    async fn authorize_staff(
        &self,
        token: &str,
        branch: Branch,
        action: &str,
        now: &str,
    ) -> Result<StaffIdentity, PatronError> {
        let who = self.staff.session(token).await?;
        if !who.may_act_at(branch) {
            let mut conn = self.conn().await?;
            audit(
                &mut conn,
                &who.username,
                &format!("{action}.denied"),
                branch.code(),
                "",
                now,
            )
            .await
            .map_err(db("auditing a refusal"))?;
            return Err(ErrorCode::Forbidden.into());
        }
        Ok(who)
    }

    /// Rules S2, P1, P2: registers a patron at `branch`'s counter and returns the new card
    /// number (7 digits, random, unique). An email given here waits for its verification
    /// link like any change (P9).
    #[tracing::instrument(skip_all, fields(branch = %branch))]
    pub async fn register_patron(
        &self,
        staff_token: &str,
        branch: Branch,
        form: &RegistrationForm,
    ) -> Result<CardNumber, PatronError> {
        let now = self.clock.now();
        let now_s = format_instant(now);
        let who = self
            .authorize_staff(staff_token, branch, "patron.register", &now_s)
            .await?;
        let reg = validate_registration(form, local_date(now), &self.config.mail)
            .map_err(registration_error)?;
        for _ in 0..MAX_CARD_DRAWS {
            let card = card_from_draw((self.card_draw.0)());
            let mut tx = self.begin().await?;
            let inserted = store::insert_patron(&mut tx, &card, &reg, branch, &now_s)
                .await
                .map_err(db("inserting a patron"))?;
            if !inserted {
                // Taken: this transaction did nothing; draw again.
                continue;
            }
            audit(
                &mut tx,
                &who.username,
                "patron.register",
                branch.code(),
                card.as_str(),
                &now_s,
            )
            .await
            .map_err(db("auditing"))?;
            let registered = event("patron.registered", &now_s, |meta| ev::PatronRegistered {
                meta,
                card_number: card.to_string(),
                branch: branch.code().to_string(),
            });
            outbox::enqueue(&mut tx, &registered, &now_s)
                .await
                .map_err(db("queueing an event"))?;
            if let Some(address) = &reg.email {
                self.start_verification(&mut tx, card.as_str(), address, now)
                    .await?;
            }
            self.commit(tx, true).await?;
            tracing::info!(staff = %who.username, "patron registered");
            return Ok(card);
        }
        Err(internal("drawing a card number", "every draw was taken").into())
    }

    /// Rules P3, P4: enables the web service with a new temporary password, returned once
    /// and stored only as an Argon2id hash. Issuing one again (a patron who forgot theirs)
    /// revokes every session of the patron.
    #[tracing::instrument(skip_all, fields(branch = %branch))]
    pub async fn enable_web_service(
        &self,
        staff_token: &str,
        branch: Branch,
        card_input: &str,
    ) -> Result<TemporaryPassword, PatronError> {
        let now = self.clock.now();
        let now_s = format_instant(now);
        let who = self
            .authorize_staff(staff_token, branch, "patron.web_service", &now_s)
            .await?;
        let card = CardNumber::parse(card_input).map_err(ServiceError::from)?;
        let patron = store::get_patron(&mut *self.conn().await?, card.as_str())
            .await
            .map_err(db("reading a patron"))?
            .ok_or(PatronError::new(ErrorCode::PatronNotFound))?;
        // rule P4: junior-high-school students and older, by the school year.
        if !eligible_for_web_service(patron.birth_date, local_date(now)) {
            return Err(ErrorCode::NotEligibleAge.into());
        }
        let password = tokens::new_password(tokens::TEMPORARY_PASSWORD_LEN);
        let hash = passwords::hash(password.clone())
            .await
            .map_err(|e| internal("hashing", e))?;
        let mut tx = self.begin().await?;
        store::set_password(&mut tx, card.as_str(), &hash, true, &now_s)
            .await
            .map_err(db("setting a password"))?;
        store::revoke_sessions_of(&mut tx, card.as_str(), None)
            .await
            .map_err(db("revoking sessions"))?;
        store::spend_resets_of(&mut tx, card.as_str())
            .await
            .map_err(db("spending reset links"))?;
        let (action, e) = if patron.web_enabled {
            // A new temporary password for a patron who had one: a password change.
            let e = event("patron.password.changed", &now_s, |meta| {
                ev::PasswordChanged {
                    meta,
                    card_number: card.to_string(),
                }
            });
            ("patron.temporary_password.reissue", e)
        } else {
            let e = event("patron.web_service.enabled", &now_s, |meta| {
                ev::WebServiceEnabled {
                    meta,
                    card_number: card.to_string(),
                    branch: branch.code().to_string(),
                }
            });
            ("patron.web_service.enable", e)
        };
        audit(
            &mut tx,
            &who.username,
            action,
            branch.code(),
            card.as_str(),
            &now_s,
        )
        .await
        .map_err(db("auditing"))?;
        outbox::enqueue(&mut tx, &e, &now_s)
            .await
            .map_err(db("queueing an event"))?;
        self.commit(tx, true).await?;
        tracing::info!(staff = %who.username, action, "temporary password issued");
        Ok(TemporaryPassword {
            card_number: card.to_string(),
            name: patron.name,
            temporary_password: password,
        })
    }

    /// Rules P1, P13: one answer, `bad_credentials`, for an unparsable or unknown card, a
    /// wrong password, a card without web service or a patron not (yet) eligible (P4);
    /// one Argon2 verification in every case; failures counted per card (known or not) and
    /// per client address.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        card_input: &str,
        password: &str,
        client_address: &str,
    ) -> Result<Granted, PatronError> {
        refuse_long_password(password)?;
        let now = self.clock.now();
        let card = CardNumber::parse(card_input).ok();
        let card_key = card
            .as_ref()
            .map(|c| Key::new(Scope::PatronCard, c.as_str()));
        let keys: Vec<Key> = card_key
            .iter()
            .cloned()
            .chain(Key::address(Scope::PatronAddress, client_address))
            .collect();
        // Counted before the password is verified: parallel guesses queue here (P13).
        let attempt = self.throttle.reserve(&keys, now).await?;
        let patron = match &card {
            Some(c) => store::get_patron(&mut *self.conn().await?, c.as_str())
                .await
                .map_err(db("reading a patron"))?,
            None => None,
        };
        let stored = patron
            .as_ref()
            .filter(|p| p.web_enabled)
            .and_then(|p| p.password_hash.clone());
        let verified = passwords::verify(password.to_string(), stored).await;
        let today = local_date(now);
        let patron = patron
            .filter(|p| verified && p.web_enabled && eligible_for_web_service(p.birth_date, today));
        let Some(patron) = patron else {
            // The attempt counted above stays: it is a failure.
            return Err(ErrorCode::BadCredentials.into());
        };
        let token = tokens::new_token();
        let expires = now + self.config.sessions.absolute;
        let mut tx = self.begin().await?;
        store::insert_session(
            &mut tx,
            &tokens::token_hash(&token),
            &patron.card_number,
            now,
            expires,
        )
        .await
        .map_err(db("creating a session"))?;
        self.throttle
            .refund(&mut tx, &attempt)
            .await
            .map_err(db("giving back an attempt"))?;
        if let Some(key) = &card_key {
            self.throttle
                .clear(&mut tx, key, now)
                .await
                .map_err(db("clearing failures"))?;
        }
        store::delete_dead_sessions(&mut tx, &patron.card_number, now)
            .await
            .map_err(db("deleting old sessions"))?;
        self.commit(tx, false).await?;
        Ok(Granted {
            token,
            expires_at: format_instant(expires),
            temporary_password: patron.password_temporary,
        })
    }

    /// The live session behind `token` (refreshing its idle clock) and its patron.
    async fn live_session(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(String, PatronRow), PatronError> {
        if token.is_empty() {
            return Err(ErrorCode::NotLoggedIn.into());
        }
        let hash = tokens::token_hash(token);
        let mut conn = self.conn().await?;
        let session = store::get_session(&mut conn, &hash)
            .await
            .map_err(db("reading a session"))?
            .ok_or(PatronError::new(ErrorCode::NotLoggedIn))?;
        let alive = session_alive(
            session.created_at,
            session.last_seen_at,
            session.revoked,
            now,
            self.config.sessions,
        );
        if !alive {
            return Err(ErrorCode::NotLoggedIn.into());
        }
        store::touch_session(&mut conn, &hash, now)
            .await
            .map_err(db("touching a session"))?;
        let patron = store::get_patron(&mut conn, &session.card_number)
            .await
            .map_err(db("reading a patron"))?
            .filter(|p| p.web_enabled)
            .ok_or(PatronError::new(ErrorCode::NotLoggedIn))?;
        Ok((hash, patron))
    }

    /// The profile of a logged-in patron (rules P5, P6, P9).
    #[tracing::instrument(skip_all)]
    pub async fn session(&self, token: &str) -> Result<PatronProfile, PatronError> {
        let now = self.clock.now();
        let (_, patron) = self.live_session(token, now).await?;
        let pending = store::pending_email(&mut *self.conn().await?, &patron.card_number, now)
            .await
            .map_err(db("reading a pending email"))?;
        Ok(PatronProfile {
            email_verified: patron.email.is_some() && patron.email_verified_at.is_some(),
            card_number: patron.card_number,
            name: patron.name,
            email: patron.email,
            pending_email: pending,
            temporary_password: patron.password_temporary,
        })
    }

    /// Ends a session. An unknown or ended token is not an error: the outcome is the same.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, token: &str) -> Result<(), PatronError> {
        store::revoke_session(&mut *self.conn().await?, &tokens::token_hash(token))
            .await
            .map_err(db("revoking a session"))?;
        Ok(())
    }

    /// Rule P10: needs the current password (wrong guesses count against the card, P13);
    /// the new one is checked, set (no longer temporary, P5), every other session of the
    /// patron is revoked and outstanding reset links are spent.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        token: &str,
        current: &str,
        new: &str,
    ) -> Result<(), PatronError> {
        refuse_long_password(current)?;
        refuse_long_password(new)?;
        let now = self.clock.now();
        let (session_hash, patron) = self.live_session(token, now).await?;
        let card = CardNumber::parse(&patron.card_number)
            .map_err(|e| internal("reading a stored card number", e))?;
        let key = Key::new(Scope::PatronCard, card.as_str());
        let attempt = self
            .throttle
            .reserve(std::slice::from_ref(&key), now)
            .await?;
        if !passwords::verify(current.to_string(), patron.password_hash.clone()).await {
            // The attempt stays counted: a wrong current password is a failure.
            return Err(ErrorCode::BadCredentials.into());
        }
        // The right current password is no failure, whatever becomes of the new one.
        self.throttle
            .refund(&mut *self.conn().await?, &attempt)
            .await
            .map_err(db("giving back an attempt"))?;
        check_new_password(new, &card, patron.birth_date).map_err(password_error)?;
        let hash = passwords::hash(new.to_string())
            .await
            .map_err(|e| internal("hashing", e))?;
        let now_s = format_instant(now);
        let mut tx = self.begin().await?;
        store::set_password(&mut tx, card.as_str(), &hash, false, &now_s)
            .await
            .map_err(db("setting a password"))?;
        store::revoke_sessions_of(&mut tx, card.as_str(), Some(&session_hash))
            .await
            .map_err(db("revoking sessions"))?;
        store::spend_resets_of(&mut tx, card.as_str())
            .await
            .map_err(db("spending reset links"))?;
        let changed = event("patron.password.changed", &now_s, |meta| {
            ev::PasswordChanged {
                meta,
                card_number: card.to_string(),
            }
        });
        outbox::enqueue(&mut tx, &changed, &now_s)
            .await
            .map_err(db("queueing an event"))?;
        self.commit(tx, true).await?;
        Ok(())
    }

    /// Rule P9: a verification for `address`, superseding the patron's older pending ones,
    /// and the event that makes the notification service mail its link. In the caller's
    /// transaction.
    async fn start_verification(
        &self,
        conn: &mut AnyConnection,
        card: &str,
        address: &EmailAddress,
        now: OffsetDateTime,
    ) -> Result<(), PatronError> {
        let now_s = format_instant(now);
        store::supersede_verifications(conn, card)
            .await
            .map_err(db("superseding verifications"))?;
        let token = tokens::new_token();
        let verification_id = uuid::Uuid::now_v7().to_string();
        let expires = now + VERIFICATION_VALID;
        store::insert_verification(
            conn,
            &verification_id,
            card,
            address,
            &tokens::token_hash(&token),
            now,
            expires,
        )
        .await
        .map_err(db("inserting a verification"))?;
        // The raw token travels only in this event, to the notification service, which
        // puts it in the link (events.proto); the address is asked for by verification id.
        let requested = event("patron.email.verification_requested", &now_s, |meta| {
            ev::EmailVerificationRequested {
                meta,
                card_number: card.to_string(),
                verification_id,
                token,
                expires_at: format_instant(expires),
            }
        });
        outbox::enqueue(conn, &requested, &now_s)
            .await
            .map_err(db("queueing an event"))?;
        Ok(())
    }

    /// Rules P7-P9: registers or changes the email address of a logged-in patron. The
    /// address in force (if any) stays until the link mailed to the new one is opened.
    #[tracing::instrument(skip_all)]
    pub async fn request_email_change(
        &self,
        token: &str,
        email: &str,
    ) -> Result<EmailChangeRequested, PatronError> {
        let now = self.clock.now();
        let (_, patron) = self.live_session(token, now).await?;
        let address = EmailAddress::parse(email).map_err(email_error)?;
        let kind = self.config.mail.classify(&address).map_err(email_error)?;
        let mut tx = self.begin().await?;
        self.start_verification(&mut tx, &patron.card_number, &address, now)
            .await?;
        self.commit(tx, true).await?;
        Ok(EmailChangeRequested {
            carrier_notice: kind == MailKind::Carrier,
            sender_address: self.config.mail.sender_address.clone(),
        })
    }

    /// Rule P9: opening the link puts the address in force, once. The completion mail
    /// (「メールアドレス変更完了のお知らせ」) follows from the `patron.email.changed` event.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<(), PatronError> {
        let now = self.clock.now();
        let row =
            store::verification_by_token(&mut *self.conn().await?, &tokens::token_hash(token))
                .await
                .map_err(db("reading a verification"))?
                .ok_or(PatronError::new(ErrorCode::TokenInvalid))?;
        match link_state(row.expires_at, row.used || row.superseded, now) {
            LinkState::Spent => return Err(ErrorCode::TokenInvalid.into()),
            LinkState::Expired => return Err(ErrorCode::TokenExpired.into()),
            LinkState::Valid => {}
        }
        let now_s = format_instant(now);
        let mut tx = self.begin().await?;
        if !store::claim_verification(&mut tx, &row.verification_id)
            .await
            .map_err(db("using a verification"))?
        {
            return Err(ErrorCode::TokenInvalid.into());
        }
        store::set_email(&mut tx, &row.card_number, &row.email, &now_s)
            .await
            .map_err(db("setting an email"))?;
        let changed = event("patron.email.changed", &now_s, |meta| ev::EmailChanged {
            meta,
            card_number: row.card_number.clone(),
        });
        outbox::enqueue(&mut tx, &changed, &now_s)
            .await
            .map_err(db("queueing an event"))?;
        self.commit(tx, true).await?;
        Ok(())
    }

    /// Rule P11: when card and a verified address of a web-service patron match, a
    /// single-use reset link valid for 30 minutes is mailed. The answer is the same either
    /// way, and so is the work (a token is made, the request is counted). Every request
    /// counts against card and address (P13): counting only the failures would let the
    /// throttle tell which ones matched.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        card_input: &str,
        email: &str,
        client_address: &str,
    ) -> Result<(), PatronError> {
        let now = self.clock.now();
        let card = CardNumber::parse(card_input).ok();
        let keys: Vec<Key> = card
            .iter()
            .map(|c| Key::new(Scope::ResetCard, c.as_str()))
            .chain(Key::address(Scope::ResetAddress, client_address))
            .collect();
        // Every request counts, matched or not, and is counted before anything is looked
        // up, so parallel requests cannot pass the limit (P13).
        let _counted = self.throttle.reserve(&keys, now).await?;
        let token = tokens::new_token();
        let token_hash = tokens::token_hash(&token);
        let patron = match &card {
            Some(c) => store::get_patron(&mut *self.conn().await?, c.as_str())
                .await
                .map_err(db("reading a patron"))?,
            None => None,
        };
        let matched = patron.filter(|p| {
            p.web_enabled
                && p.email_verified_at.is_some()
                && p.email
                    .as_deref()
                    .and_then(|e| EmailAddress::parse(e).ok())
                    .is_some_and(|registered| registered.matches_typed(email))
        });
        let now_s = format_instant(now);
        let mut tx = self.begin().await?;
        if let Some(p) = &matched {
            let expires = now + RESET_VALID;
            store::insert_reset(&mut tx, &token_hash, &p.card_number, now, expires)
                .await
                .map_err(db("inserting a reset link"))?;
            let requested = event("patron.password.reset_requested", &now_s, |meta| {
                ev::PasswordResetRequested {
                    meta,
                    card_number: p.card_number.clone(),
                    token,
                    expires_at: format_instant(expires),
                }
            });
            outbox::enqueue(&mut tx, &requested, &now_s)
                .await
                .map_err(db("queueing an event"))?;
        }
        self.commit(tx, matched.is_some()).await?;
        Ok(())
    }

    /// Rule P11: the reset link sets a new password (P10 rules, not temporary), once; every
    /// session of the patron is revoked and the card's login failures are forgotten (the
    /// patron has just proved they read the registered mailbox).
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<(), PatronError> {
        refuse_long_password(new_password)?;
        let now = self.clock.now();
        let token_hash = tokens::token_hash(token);
        let mut conn = self.conn().await?;
        let reset = store::reset_by_token(&mut conn, &token_hash)
            .await
            .map_err(db("reading a reset link"))?
            .ok_or(PatronError::new(ErrorCode::TokenInvalid))?;
        match link_state(reset.expires_at, reset.used, now) {
            LinkState::Spent => return Err(ErrorCode::TokenInvalid.into()),
            LinkState::Expired => return Err(ErrorCode::TokenExpired.into()),
            LinkState::Valid => {}
        }
        let patron = store::get_patron(&mut conn, &reset.card_number)
            .await
            .map_err(db("reading a patron"))?
            .ok_or(PatronError::new(ErrorCode::TokenInvalid))?;
        drop(conn);
        let card = CardNumber::parse(&patron.card_number)
            .map_err(|e| internal("reading a stored card number", e))?;
        check_new_password(new_password, &card, patron.birth_date).map_err(password_error)?;
        let hash = passwords::hash(new_password.to_string())
            .await
            .map_err(|e| internal("hashing", e))?;
        let now_s = format_instant(now);
        let mut tx = self.begin().await?;
        if !store::claim_reset(&mut tx, &token_hash)
            .await
            .map_err(db("using a reset link"))?
        {
            return Err(ErrorCode::TokenInvalid.into());
        }
        store::set_password(&mut tx, card.as_str(), &hash, false, &now_s)
            .await
            .map_err(db("setting a password"))?;
        store::revoke_sessions_of(&mut tx, card.as_str(), None)
            .await
            .map_err(db("revoking sessions"))?;
        store::spend_resets_of(&mut tx, card.as_str())
            .await
            .map_err(db("spending reset links"))?;
        self.throttle
            .clear(&mut tx, &Key::new(Scope::PatronCard, card.as_str()), now)
            .await
            .map_err(db("clearing failures"))?;
        let changed = event("patron.password.changed", &now_s, |meta| {
            ev::PasswordChanged {
                meta,
                card_number: card.to_string(),
            }
        });
        outbox::enqueue(&mut tx, &changed, &now_s)
            .await
            .map_err(db("queueing an event"))?;
        self.commit(tx, true).await?;
        Ok(())
    }

    /// For the notification service (events carry no addresses): with a verification id,
    /// the address that verification is waiting for (while its link can still be opened);
    /// without, the address in force. `patron_not_found` when there is none.
    #[tracing::instrument(skip_all)]
    pub async fn contact(
        &self,
        card: &CardNumber,
        verification_id: Option<&str>,
    ) -> Result<Contact, PatronError> {
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let patron = store::get_patron(&mut conn, card.as_str())
            .await
            .map_err(db("reading a patron"))?
            .ok_or(PatronError::new(ErrorCode::PatronNotFound))?;
        let email = match verification_id {
            Some(id) => store::verification_by_id(&mut conn, id)
                .await
                .map_err(db("reading a verification"))?
                .filter(|v| {
                    v.card_number == patron.card_number
                        && link_state(v.expires_at, v.used || v.superseded, now) == LinkState::Valid
                })
                .map(|v| v.email),
            None => patron.email.clone(),
        };
        let email = email.ok_or(PatronError::new(ErrorCode::PatronNotFound))?;
        Ok(Contact {
            card_number: patron.card_number,
            name: patron.name,
            email,
        })
    }
}
