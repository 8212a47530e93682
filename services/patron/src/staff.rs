//! Staff accounts scoped to branches, with roles `staff` and `admin` (rule S3), their
//! server-side sessions, and the audit record of staff actions. Staff logins are throttled
//! like patron logins (P13), per user name and per client address.

use kitsuki_platform::clock::{SharedClock, format_instant, parse_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_proto::{Branch, ErrorCode, ServiceError};
use sqlx::Row;
use time::Duration;

use crate::domain::throttle::ThrottleConfig;
use crate::error::{PatronError, internal};
use crate::throttle::{Key, Scope, Throttle};
use crate::{passwords, tokens};

static MIGRATIONS_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A staff session ends after this long without use…
pub const STAFF_IDLE: Duration = Duration::hours(2);
/// …and after this long in any case (one working day).
pub const STAFF_MAX: Duration = Duration::hours(12);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Staff,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "staff" => Some(Role::Staff),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }
}

/// Who a staff session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffIdentity {
    pub username: String,
    pub branches: Vec<Branch>,
    pub role: Role,
}

impl StaffIdentity {
    /// Rule S3: staff act only at the branches they are assigned to.
    pub fn may_act_at(&self, branch: Branch) -> bool {
        self.branches.contains(&branch)
    }
}

#[derive(Debug, Clone)]
pub struct Granted {
    pub token: String,
    pub expires_at: String,
}

/// The staff part of the patron-account service.
#[derive(Debug, Clone)]
pub struct StaffAccounts {
    db: Db,
    clock: SharedClock,
    throttle: Throttle,
}

fn valid_username(u: &str) -> bool {
    (1..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl StaffAccounts {
    /// Runs every migration of patron-account (staff and patron tables) and the outbox's,
    /// with the default login throttling.
    pub async fn open(db: Db, clock: SharedClock) -> anyhow::Result<StaffAccounts> {
        db::migrate(&db, &MIGRATIONS_PG, &MIGRATIONS_SQLITE).await?;
        kitsuki_platform::outbox::ensure_tables(&db).await?;
        let throttle = Throttle::new(db.clone(), ThrottleConfig::default());
        Ok(StaffAccounts {
            db,
            clock,
            throttle,
        })
    }

    /// The same accounts with other throttling limits.
    pub fn with_throttle(mut self, config: ThrottleConfig) -> StaffAccounts {
        self.throttle = Throttle::new(self.db.clone(), config);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// API.md: the first start with no staff creates `admin` (all branches, role admin) with
    /// the given password, or a generated one that is returned to be printed once.
    pub async fn ensure_admin(&self, password: Option<String>) -> anyhow::Result<Option<String>> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM staff")
            .fetch_one(&self.db.pool)
            .await?
            .try_get("n")?;
        if n > 0 {
            return Ok(None);
        }
        let (password, generated) = match password.filter(|p| !p.is_empty()) {
            Some(p) => (p, false),
            None => (tokens::new_password(16), true),
        };
        self.create(
            &StaffIdentity {
                username: "admin".into(),
                branches: Branch::ALL.to_vec(),
                role: Role::Admin,
            },
            &password,
            "system",
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
        Ok(generated.then_some(password))
    }

    pub async fn create(
        &self,
        who: &StaffIdentity,
        password: &str,
        actor: &str,
    ) -> Result<(), ServiceError> {
        if !valid_username(&who.username) {
            return Err(ServiceError::with_detail(
                ErrorCode::InvalidInput,
                "username",
            ));
        }
        if who.branches.is_empty() {
            return Err(ServiceError::with_detail(
                ErrorCode::InvalidInput,
                "branches",
            ));
        }
        crate::service::refuse_long_password(password)?;
        if password.chars().count() < 8 {
            return Err(ServiceError::new(ErrorCode::WeakPassword));
        }
        let hash = passwords::hash(password.to_string())
            .await
            .map_err(|e| internal("hashing", e))?;
        let now = format_instant(self.clock.now());
        let branches = who
            .branches
            .iter()
            .map(|b| b.code())
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        let res = sqlx::query("INSERT INTO staff (username, password_hash, branches, role, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&who.username)
            .bind(&hash)
            .bind(&branches)
            .bind(who.role.code())
            .bind(&now)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            return Err(if db::is_unique_violation(&e) {
                ServiceError::new(ErrorCode::UsernameTaken)
            } else {
                internal("inserting staff", e)
            });
        }
        audit(&mut tx, actor, "staff.create", "", &who.username, &now)
            .await
            .map_err(|e| internal("auditing", e))?;
        tx.commit().await.map_err(|e| internal("committing", e))?;
        Ok(())
    }

    /// One answer for every failure (unknown user or wrong password), same time spent;
    /// failures counted per user name (known or not) and per client address (P13).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_address: &str,
    ) -> Result<Granted, PatronError> {
        crate::service::refuse_long_password(password)?;
        let now = self.clock.now();
        let user_key = Key::new(Scope::StaffUser, username);
        let keys: Vec<Key> = std::iter::once(user_key.clone())
            .chain(Key::address(Scope::StaffAddress, client_address))
            .collect();
        // Counted before the password is verified (P13).
        let attempt = self.throttle.reserve(&keys, now).await?;
        let row = sqlx::query("SELECT password_hash FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(|e| internal("reading staff", e))?;
        let stored: Option<String> = row
            .map(|r| r.try_get("password_hash"))
            .transpose()
            .map_err(|e| internal("reading", e))?;
        if !passwords::verify(password.to_string(), stored).await {
            // The attempt counted above stays: it is a failure.
            return Err(ServiceError::new(ErrorCode::BadCredentials).into());
        }
        let token = tokens::new_token();
        let expires = now + STAFF_MAX;
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .map_err(|e| internal("beginning", e))?;
        sqlx::query("INSERT INTO staff_sessions (token_hash, username, created_at, last_seen_at, expires_at, revoked) VALUES ($1, $2, $3, $3, $4, 0)")
            .bind(tokens::token_hash(&token))
            .bind(username)
            .bind(format_instant(now))
            .bind(format_instant(expires))
            .execute(&mut *tx)
            .await
            .map_err(|e| internal("creating a session", e))?;
        self.throttle
            .refund(&mut tx, &attempt)
            .await
            .map_err(|e| internal("giving back an attempt", e))?;
        self.throttle
            .clear(&mut tx, &user_key, now)
            .await
            .map_err(|e| internal("clearing failures", e))?;
        audit(
            &mut tx,
            username,
            "staff.login",
            "",
            "",
            &format_instant(now),
        )
        .await
        .map_err(|e| internal("auditing", e))?;
        tx.commit().await.map_err(|e| internal("committing", e))?;
        Ok(Granted {
            token,
            expires_at: format_instant(expires),
        })
    }

    /// Resolves a session token; refreshes its idle clock.
    pub async fn session(&self, token: &str) -> Result<StaffIdentity, ServiceError> {
        let h = tokens::token_hash(token);
        let row = sqlx::query(
            "SELECT s.username, s.last_seen_at, s.expires_at, s.revoked, t.branches, t.role \
             FROM staff_sessions s JOIN staff t ON t.username = s.username WHERE s.token_hash = $1",
        )
        .bind(&h)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(|e| internal("reading a session", e))?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotLoggedIn))?;
        let get = |c: &str| {
            row.try_get::<String, _>(c)
                .map_err(|e| internal("reading a session", e))
        };
        let revoked: i64 = row
            .try_get("revoked")
            .map_err(|e| internal("reading a session", e))?;
        let now = self.clock.now();
        let last = parse_instant(&get("last_seen_at")?).ok_or_else(ServiceError::internal)?;
        let expires = parse_instant(&get("expires_at")?).ok_or_else(ServiceError::internal)?;
        if revoked != 0 || now >= expires || now - last >= STAFF_IDLE {
            return Err(ServiceError::new(ErrorCode::NotLoggedIn));
        }
        sqlx::query("UPDATE staff_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(format_instant(now))
            .bind(&h)
            .execute(&self.db.pool)
            .await
            .map_err(|e| internal("touching a session", e))?;
        let branches = get("branches")?
            .split(',')
            .filter_map(|b| Branch::parse(b).ok())
            .collect();
        let role = Role::parse(&get("role")?).unwrap_or(Role::Staff);
        Ok(StaffIdentity {
            username: get("username")?,
            branches,
            role,
        })
    }

    /// Retention: staff sessions that expired before `before`, revoked or not.
    pub async fn purge_sessions(&self, before: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE expires_at < $1")
            .bind(before)
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn logout(&self, token: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE staff_sessions SET revoked = 1 WHERE token_hash = $1")
            .bind(tokens::token_hash(token))
            .execute(&self.db.pool)
            .await
            .map_err(|e| internal("revoking a session", e))?;
        Ok(())
    }
}

/// Rule S3: records a staff action in the caller's transaction.
pub async fn audit(
    conn: &mut sqlx::AnyConnection,
    actor: &str,
    action: &str,
    branch: &str,
    subject: &str,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (audit_id, actor, action, branch, subject, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(actor)
        .bind(action)
        .bind(branch)
        .bind(subject)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
