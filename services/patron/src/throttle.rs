//! Rule P13 in the database: attempts are rows of `login_failures`, so that every replica
//! of the service sees the same counts. Keys are stored as SHA-256 of scope and value (a
//! card number, a user name, a client address), so the table holds no addresses in clear.
//!
//! An attempt is counted before its password is verified: [`Throttle::reserve`] locks each
//! counter's row of `login_throttle_keys` (an upsert, which PostgreSQL holds as a row lock
//! and SQLite as its one write lock until the transaction ends), counts the attempts in the
//! window and, when every counter is under its limit, adds one for each, all in one
//! transaction. Parallel guesses on one card are thus counted one after the other: of a
//! hundred sent at once, at most the limit are verified. A successful login gives its
//! attempt back ([`Throttle::refund`]) and clears its card's counter ([`Throttle::clear`]);
//! a failure simply keeps its place.

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

/// The attempts [`Throttle::reserve`] counted, one per key: failures unless given back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a reservation is a failure unless it is given back"]
pub struct Reservation {
    ids: Vec<String>,
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

    /// Rule P13: counts one attempt against each of `keys`, or refuses with the longest
    /// wait among them when any is at its limit (and then counts nothing). Runs in its own
    /// transaction, committed before the caller verifies anything.
    pub async fn reserve(
        &self,
        keys: &[Key],
        now: OffsetDateTime,
    ) -> Result<Reservation, PatronError> {
        // One lock order for every caller (no deadlock between two attempts sharing keys).
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| (a.scope.code(), &a.hash).cmp(&(b.scope.code(), &b.hash)));
        keys.dedup();
        let at = format_instant(now);
        let since = format_instant(now - self.config.window);
        let fail = |e| internal("counting a login attempt", e);
        let mut tx = self.db.pool.begin().await.map_err(fail)?;
        for key in &keys {
            sqlx::query(
                "INSERT INTO login_throttle_keys (scope, key_hash, touched_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, key_hash) DO UPDATE SET touched_at = excluded.touched_at",
            )
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        let mut longest = None;
        for key in &keys {
            let rows = sqlx::query(
                "SELECT at FROM login_failures WHERE scope = $1 AND key_hash = $2 AND at > $3",
            )
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(&since)
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?;
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
        if let Some(wait) = longest {
            tx.rollback().await.map_err(fail)?;
            return Err(PatronError::Throttled {
                retry_after_secs: retry_after_seconds(wait),
            });
        }
        let mut ids = Vec::with_capacity(keys.len());
        for key in &keys {
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::query(
                "INSERT INTO login_failures (failure_id, scope, key_hash, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            ids.push(id);
        }
        tx.commit().await.map_err(fail)?;
        Ok(Reservation { ids })
    }

    /// Gives back the attempts of `reservation` in the caller's transaction: a successful
    /// login (or a right current password) is not a failure.
    pub async fn refund(
        &self,
        conn: &mut AnyConnection,
        reservation: &Reservation,
    ) -> Result<(), sqlx::Error> {
        for id in &reservation.ids {
            sqlx::query("DELETE FROM login_failures WHERE failure_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Forgets the attempts of a key (a successful login clears its card's counter).
    /// Only the attempts that still count: older ones are the purge's ([`Throttle::purge`]),
    /// so that a request and the purge never delete the same rows (no lock waits, no
    /// deadlock between them on PostgreSQL).
    pub async fn clear(
        &self,
        conn: &mut AnyConnection,
        key: &Key,
        now: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND key_hash = $2 AND at > $3")
            .bind(key.scope.code())
            .bind(&key.hash)
            .bind(format_instant(now - self.config.window))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Retention: attempts that no longer count at `now`, and counters without an attempt
    /// in the window (their row is made again by the next attempt). Returns how many went.
    /// A counter's row goes in a statement of its own: an attempt holds its counters' rows
    /// while it counts, and one statement deleting many would wait for it while holding
    /// rows it waits for.
    pub async fn purge(&self, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
        let since = format_instant(now - self.config.window);
        let mut rows = sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(&since)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        let stale =
            sqlx::query("SELECT scope, key_hash FROM login_throttle_keys WHERE touched_at <= $1")
                .bind(&since)
                .fetch_all(&self.db.pool)
                .await?;
        for key in stale {
            let (scope, hash): (String, String) = (key.try_get("scope")?, key.try_get("key_hash")?);
            rows += sqlx::query(
                "DELETE FROM login_throttle_keys WHERE scope = $1 AND key_hash = $2 AND touched_at <= $3",
            )
            .bind(&scope)
            .bind(&hash)
            .bind(&since)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        }
        Ok(rows)
    }
}
