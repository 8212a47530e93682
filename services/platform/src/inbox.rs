//! Inbox de-duplication (ARCHITECTURE.md "Nothing lost"): the bus delivers at least once,
//! so a consumer records each event id it handles in the same transaction as its own
//! change, and skips an id it has recorded before. The table is created by
//! [`crate::outbox::ensure_tables`].

use sqlx::AnyConnection;

/// Records that `consumer` handles `event_id`, in the caller's transaction (pass
/// `&mut *tx`). True the first time; false when it was handled before, and the caller
/// should then only acknowledge. Two transactions racing on one id: the second waits for
/// the first and gets false if it committed.
pub async fn first_time(
    conn: &mut AnyConnection,
    consumer: &str,
    event_id: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets ids handled before `before` (an instant as stored by
/// [`crate::clock::format_instant`]); returns how many. Only ids older than any redelivery
/// can be forgotten safely: keep days, not minutes.
pub async fn forget_before(db: &crate::db::Db, before: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM inbox WHERE handled_at < $1")
        .bind(before)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}
