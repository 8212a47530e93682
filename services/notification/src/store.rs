//! SQL of the delivery log (portable between PostgreSQL and SQLite through sqlx `Any`).
//! Instants are TEXT in the one form of `clock::format_instant`, so text order is time
//! order on both backends.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::domain::delivery::Status;

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub delivery_id: String,
    /// The event that called for the mail.
    pub event_id: String,
    pub template: String,
    pub card_number: String,
    /// JSON of [`crate::domain::plan::Params`].
    pub params: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    /// Our own description of the last failure; never an address.
    pub last_error: String,
    /// The address the mail was sent to; empty until it is sent.
    pub recipient: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// JSON of the cause event's `traceparent`/`tracestate` headers.
    pub trace: String,
}

const COLUMNS: &str = "delivery_id, event_id, template, card_number, params, subject, status, \
     attempts, next_attempt_at, last_error, recipient, created_at, sent_at, trace";

fn from_row(r: &AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    Ok(DeliveryRow {
        delivery_id: r.try_get("delivery_id")?,
        event_id: r.try_get("event_id")?,
        template: r.try_get("template")?,
        card_number: r.try_get("card_number")?,
        params: r.try_get("params")?,
        subject: r.try_get("subject")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        recipient: r.try_get("recipient")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
        trace: r.try_get("trace")?,
    })
}

/// A delivery to insert, pending and due at once.
#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub template: &'a str,
    pub card_number: &'a str,
    pub params: &'a str,
    pub subject: &'a str,
    pub trace: &'a str,
    pub now: &'a str,
}

/// Inserts in the caller's transaction; false when this event's mail of this template is
/// already there.
pub async fn insert(conn: &mut AnyConnection, d: &NewDelivery<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO deliveries (delivery_id, event_id, template, card_number, params, subject, \
         status, attempts, next_attempt_at, last_error, recipient, created_at, trace) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, '', '', $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(d.delivery_id)
    .bind(d.event_id)
    .bind(d.template)
    .bind(d.card_number)
    .bind(d.params)
    .bind(d.subject)
    .bind(d.now)
    .bind(d.trace)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Pending deliveries due at `now`, the longest waiting first.
pub async fn due(pool: &AnyPool, now: &str, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, delivery_id LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Starts an attempt: counts it and moves the row a lease ahead, if it is still pending,
/// due, and as this sender saw it (`attempts`). True when this sender has it.
pub async fn claim(
    pool: &AnyPool,
    delivery_id: &str,
    seen_attempts: i64,
    now: &str,
    lease_until: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
         WHERE delivery_id = $2 AND status = 'pending' AND attempts = $3 AND next_attempt_at <= $4",
    )
    .bind(lease_until)
    .bind(delivery_id)
    .bind(seen_attempts)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a delivery sent, in the caller's transaction (with its `MailSent` event). False
/// when it was no longer pending.
pub async fn mark_sent(
    conn: &mut AnyConnection,
    delivery_id: &str,
    recipient: &str,
    subject: &str,
    settled_params: &str,
    sent_at: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'sent', recipient = $1, subject = $2, params = $3, \
         sent_at = $4, last_error = '' WHERE delivery_id = $5 AND status = 'pending'",
    )
    .bind(recipient)
    .bind(subject)
    .bind(settled_params)
    .bind(sent_at)
    .bind(delivery_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt; the delivery comes due again at `next_attempt_at`.
pub async fn mark_retry(
    pool: &AnyPool,
    delivery_id: &str,
    next_attempt_at: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $1, last_error = $2 \
         WHERE delivery_id = $3 AND status = 'pending'",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(delivery_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a delivery without sending it (`failed` or `no_address`).
pub async fn mark_final(
    pool: &AnyPool,
    delivery_id: &str,
    status: Status,
    error: &str,
    settled_params: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET status = $1, last_error = $2, params = $3 \
         WHERE delivery_id = $4 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(settled_params)
    .bind(delivery_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest deliveries first.
pub async fn newest(pool: &AnyPool, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries ORDER BY created_at DESC, delivery_id DESC LIMIT $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(pool: &AnyPool, delivery_id: &str) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE delivery_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(delivery_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The deliveries an event called for.
pub async fn of_event(pool: &AnyPool, event_id: &str) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE event_id = $1 ORDER BY template");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(event_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn pending_count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
        .fetch_one(pool)
        .await
}

/// When the next pending delivery comes due, if any.
pub async fn next_due_at(pool: &AnyPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'")
        .fetch_one(pool)
        .await
}

/// Retention: deliveries asked for before `before` that are done (sent, failed or without
/// an address); a pending one stays whatever its age. Returns how many went.
pub async fn purge_done(pool: &AnyPool, before: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM deliveries WHERE status <> 'pending' AND created_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
