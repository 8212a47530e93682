//! Rule P13 in the database: failures are rows of `login_failures`, so that every replica of
//! the service sees the same counts. Keys are stored as SHA-256 of scope and value (a card
//! number, a user name, a client address), so the table holds no addresses in clear.
//!
//! Two replicas checking the same key at the same moment may both let an attempt through
//! when it is the last one under the limit; the limit can thus be overrun by the number of
//! concurrent requests, which is harmless for a brute-force defence and keeps the check
//! free of locks.

use kitsuki_platform::clock::{format_instant, parse_instant};
use kitsuki_platform::db::Db;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::domain::throttle::{ThrottleConfig, retry_after_seconds, wait_before_next_attempt};
use crate::error::{PatronError, internal};

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Patron logins (and wrong current passwords) per card number.
    PatronCard,
    /// Patron logins per client address.
    PatronAddress,
    /// Staff logins per user name.
    StaffUser,
    /// Staff logins per client address.
    StaffAddress,
    /// Password-reset requests per card number (every request counts, P11).
    ResetCard,
    /// Password-reset requests per client address.
    ResetAddress,
}

impl Scope {
    fn code(self) -> &'static str {
        match self {
            Scope::PatronCard => "patron_card",
            Scope::PatronAddress => "patron_address",
            Scope::StaffUser => "staff_user",
            Scope::StaffAddress => "staff_address",
            Scope::ResetCard => "reset_card",
            Scope::ResetAddress => "reset_address",
        }
    }

    fn limit(self, config: &ThrottleConfig) -> u32 {
        match self {
            Scope::PatronCard | Scope::StaffUser | Scope::ResetCard => config.per_account,
            Scope::PatronAddress | Scope::StaffAddress | Scope::ResetAddress => config.per_address,
        }
    }
}

/// One counter: a scope and the hash of what it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    scope: Scope,
    hash: String,
}

impl Key {
    pub fn new(scope: Scope, value: &str) -> Key {
        let mut h = Sha256::new();
        h.update(scope.code().as_bytes());
        h.update(b"\0");
        h.update(value.as_bytes());
        Key {
            scope,
            hash: hex::encode(h.finalize()),
        }
    }

    /// The key of a client address, or none when the caller did not say (counting every
    /// anonymous request together would let one attacker lock everybody out).
    pub fn address(scope: Scope, address: &str) -> Option<Key> {
        let a = address.trim();
        (!a.is_empty()).then(|| Key::new(scope, a))
    }
}

/// The failure counters of one database.
#[derive(Debug, Clone)]
pub struct Throttle {
    db: Db,
    config: ThrottleConfig,
}

impl Throttle {
    pub fn new(db: Db, config: ThrottleConfig) -> Throttle {
        Throttle { db, config }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Refuses with the longest wait among `keys` when any of them is locked.
    pub async fn check(&self, keys: &[Key], now: OffsetDateTime) -> Result<(), PatronError> {
        let since = format_instant(now - self.config.window);
        let mut longest = None;
        for key in keys {
            let rows = sqlx::query(
                "SELECT at FROM login_failures WHERE scope = $1 AND key_hash = $2 AND at > $3",
            )
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(&since)
            .fetch_all(&self.db.pool)
            .await
            .map_err(|e| internal("reading login failures", e))?;
            let times: Vec<OffsetDateTime> = rows
                .iter()
                .filter_map(|r| r.try_get::<String, _>("at").ok())
                .filter_map(|s| parse_instant(&s))
                .collect();
            let wait = wait_before_next_attempt(
                &times,
                key.scope.limit(&self.config),
                self.config.window,
                now,
            );
            longest = longest.max(wait);
        }
        match longest {
            Some(wait) => Err(PatronError::Throttled {
                retry_after_secs: retry_after_seconds(wait),
            }),
            None => Ok(()),
        }
    }

    /// Records one failure for each key in the caller's transaction, and forgets failures
    /// that no longer count (of any key).
    pub async fn record(
        &self,
        conn: &mut AnyConnection,
        keys: &[Key],
        now: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        let at = format_instant(now);
        for key in keys {
            sqlx::query(
                "INSERT INTO login_failures (failure_id, scope, key_hash, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(&at)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(format_instant(now - self.config.window))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Forgets the failures of a key (a successful login clears its card's counter).
    pub async fn clear(&self, conn: &mut AnyConnection, key: &Key) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND key_hash = $2")
            .bind(key.scope.code())
            .bind(&key.hash)
            .execute(conn)
            .await?;
        Ok(())
    }
}
