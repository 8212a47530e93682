//! SQL of patron-account (portable between PostgreSQL and SQLite through sqlx `Any`; see
//! `kitsuki_platform::db` for the conventions). Every function takes a connection, so the
//! service decides what runs in one transaction. Writes that open a transaction come
//! first in it, so that SQLite takes its write lock before it reads.

use kitsuki_platform::clock::{format_date, format_instant, parse_instant};
use kitsuki_proto::{Branch, CardNumber};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use crate::domain::email::EmailAddress;
use crate::domain::patron::{Registration, parse_iso_date};

/// A patron as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatronRow {
    pub card_number: String,
    pub name: String,
    pub name_reading: String,
    pub birth_date: Date,
    pub id_document: String,
    pub registered_branch: String,
    /// The address in force (always verified, rule P9).
    pub email: Option<String>,
    pub email_verified_at: Option<String>,
    pub web_enabled: bool,
    pub password_hash: Option<String>,
    pub password_temporary: bool,
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unreadable {what} in the patron database").into())
}

fn instant(r: &AnyRow, column: &str) -> Result<OffsetDateTime, sqlx::Error> {
    let s: String = r.try_get(column)?;
    parse_instant(&s).ok_or_else(|| corrupt(column))
}

fn flag(r: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(r.try_get::<i64, _>(column)? != 0)
}

const PATRON_COLUMNS: &str = "card_number, name, name_reading, birth_date, id_document, registered_branch, email, email_verified_at, web_enabled, password_hash, password_temporary";

fn patron_from_row(r: &AnyRow) -> Result<PatronRow, sqlx::Error> {
    let birth: String = r.try_get("birth_date")?;
    Ok(PatronRow {
        card_number: r.try_get("card_number")?,
        name: r.try_get("name")?,
        name_reading: r.try_get("name_reading")?,
        birth_date: parse_iso_date(&birth).ok_or_else(|| corrupt("birth_date"))?,
        id_document: r.try_get("id_document")?,
        registered_branch: r.try_get("registered_branch")?,
        email: r.try_get("email")?,
        email_verified_at: r.try_get("email_verified_at")?,
        web_enabled: flag(r, "web_enabled")?,
        password_hash: r.try_get("password_hash")?,
        password_temporary: flag(r, "password_temporary")?,
    })
}

/// Inserts a patron; false when the card number is taken (the caller draws again).
pub async fn insert_patron(
    conn: &mut AnyConnection,
    card: &CardNumber,
    reg: &Registration,
    branch: Branch,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO patrons (card_number, name, name_reading, birth_date, id_document, registered_branch, web_enabled, password_temporary, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7) ON CONFLICT DO NOTHING",
    )
    .bind(card.as_str())
    .bind(&reg.name)
    .bind(&reg.name_reading)
    .bind(format_date(reg.birth_date))
    .bind(reg.id_document.code())
    .bind(branch.code())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_patron(
    conn: &mut AnyConnection,
    card: &str,
) -> Result<Option<PatronRow>, sqlx::Error> {
    let sql = format!("SELECT {PATRON_COLUMNS} FROM patrons WHERE card_number = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(card)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(patron_from_row).transpose()
}

/// Sets the password hash (and enables the web service, which a password implies).
pub async fn set_password(
    conn: &mut AnyConnection,
    card: &str,
    hash: &str,
    temporary: bool,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE patrons SET web_enabled = 1, password_hash = $2, password_temporary = $3, updated_at = $4 WHERE card_number = $1",
    )
    .bind(card)
    .bind(hash)
    .bind(kitsuki_platform::db::flag(temporary))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Rule P9: the verified address is now the one in force.
pub async fn set_email(
    conn: &mut AnyConnection,
    card: &str,
    email: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE patrons SET email = $2, email_verified_at = $3, updated_at = $3 WHERE card_number = $1",
    )
    .bind(card)
    .bind(email)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A patron session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub card_number: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub revoked: bool,
}

pub async fn insert_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    card: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patron_sessions (token_hash, card_number, created_at, last_seen_at, expires_at, revoked) VALUES ($1, $2, $3, $3, $4, 0)",
    )
    .bind(token_hash)
    .bind(card)
    .bind(format_instant(now))
    .bind(format_instant(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_session(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT card_number, created_at, last_seen_at, revoked FROM patron_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(SessionRow {
            card_number: r.try_get("card_number")?,
            created_at: instant(&r, "created_at")?,
            last_seen_at: instant(&r, "last_seen_at")?,
            revoked: flag(&r, "revoked")?,
        })
    })
    .transpose()
}

pub async fn touch_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE patron_sessions SET last_seen_at = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(format_instant(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn revoke_session(conn: &mut AnyConnection, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE patron_sessions SET revoked = 1 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every session of a patron, except `keep` (the caller's own, rule P10).
pub async fn revoke_sessions_of(
    conn: &mut AnyConnection,
    card: &str,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE patron_sessions SET revoked = 1 WHERE card_number = $1 AND revoked = 0 AND token_hash <> $2",
    )
    .bind(card)
    .bind(keep.unwrap_or(""))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes a patron's sessions that can never be used again.
pub async fn delete_dead_sessions(
    conn: &mut AnyConnection,
    card: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM patron_sessions WHERE card_number = $1 AND (revoked = 1 OR expires_at <= $2)",
    )
    .bind(card)
    .bind(format_instant(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending or past email verification (rule P9).
#[derive(Debug, Clone)]
pub struct VerificationRow {
    pub verification_id: String,
    pub card_number: String,
    pub email: String,
    pub expires_at: OffsetDateTime,
    pub used: bool,
    pub superseded: bool,
}

const VERIFICATION_COLUMNS: &str =
    "verification_id, card_number, email, expires_at, used, superseded";

fn verification_from_row(r: &AnyRow) -> Result<VerificationRow, sqlx::Error> {
    Ok(VerificationRow {
        verification_id: r.try_get("verification_id")?,
        card_number: r.try_get("card_number")?,
        email: r.try_get("email")?,
        expires_at: instant(r, "expires_at")?,
        used: flag(r, "used")?,
        superseded: flag(r, "superseded")?,
    })
}

/// A newer request supersedes a patron's older pending verifications.
pub async fn supersede_verifications(
    conn: &mut AnyConnection,
    card: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email_verifications SET superseded = 1 WHERE card_number = $1 AND used = 0 AND superseded = 0",
    )
    .bind(card)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_verification(
    conn: &mut AnyConnection,
    verification_id: &str,
    card: &str,
    email: &EmailAddress,
    token_hash: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_verifications (verification_id, card_number, email, token_hash, created_at, expires_at, used, superseded) VALUES ($1, $2, $3, $4, $5, $6, 0, 0)",
    )
    .bind(verification_id)
    .bind(card)
    .bind(email.as_str())
    .bind(token_hash)
    .bind(format_instant(now))
    .bind(format_instant(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn verification_by_token(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    let sql =
        format!("SELECT {VERIFICATION_COLUMNS} FROM email_verifications WHERE token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(verification_from_row).transpose()
}

pub async fn verification_by_id(
    conn: &mut AnyConnection,
    verification_id: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VERIFICATION_COLUMNS} FROM email_verifications WHERE verification_id = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(verification_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(verification_from_row).transpose()
}

/// Marks a verification used; false when it was used or superseded meanwhile (the link
/// works once even when opened twice at the same moment).
pub async fn claim_verification(
    conn: &mut AnyConnection,
    verification_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE email_verifications SET used = 1 WHERE verification_id = $1 AND used = 0 AND superseded = 0",
    )
    .bind(verification_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The address of a patron's newest verification that can still be opened.
pub async fn pending_email(
    conn: &mut AnyConnection,
    card: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT email FROM email_verifications WHERE card_number = $1 AND used = 0 AND superseded = 0 AND expires_at > $2 \
         ORDER BY created_at DESC, verification_id DESC LIMIT 1",
    )
    .bind(card)
    .bind(format_instant(now))
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get("email")).transpose()
}

/// A password-reset link (rule P11).
#[derive(Debug, Clone)]
pub struct ResetRow {
    pub card_number: String,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

pub async fn insert_reset(
    conn: &mut AnyConnection,
    token_hash: &str,
    card: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO password_resets (token_hash, card_number, created_at, expires_at, used) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(token_hash)
    .bind(card)
    .bind(format_instant(now))
    .bind(format_instant(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn reset_by_token(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<ResetRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT card_number, expires_at, used FROM password_resets WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ResetRow {
            card_number: r.try_get("card_number")?,
            expires_at: instant(&r, "expires_at")?,
            used: flag(&r, "used")?,
        })
    })
    .transpose()
}

/// Marks one reset link used; false when it was used meanwhile.
pub async fn claim_reset(conn: &mut AnyConnection, token_hash: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE password_resets SET used = 1 WHERE token_hash = $1 AND used = 0")
            .bind(token_hash)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Spends every outstanding reset link of a patron (the password just changed).
pub async fn spend_resets_of(conn: &mut AnyConnection, card: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE password_resets SET used = 1 WHERE card_number = $1 AND used = 0")
        .bind(card)
        .execute(conn)
        .await?;
    Ok(())
}

/// Retention: sessions that expired (their longest life, 12 hours) before `before`,
/// revoked or not. Returns how many went.
pub async fn purge_sessions(conn: &mut AnyConnection, before: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM patron_sessions WHERE expires_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Retention: verification links (P9) that expired before `before`, used or not.
pub async fn purge_verifications(
    conn: &mut AnyConnection,
    before: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM email_verifications WHERE expires_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Retention: reset links (P11) that expired before `before`, used or not.
pub async fn purge_resets(conn: &mut AnyConnection, before: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM password_resets WHERE expires_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
