//! Helpers for tests against the real servers of this machine: a fresh PostgreSQL database
//! per test and a unique NATS subject namespace per test, so tests run in parallel and a
//! second run passes like the first (the servers outlive every run).

use anyhow::Context;
use sqlx::Connection;

/// Admin URL of the test PostgreSQL server (`KITSUKI_TEST_PG_URL`).
pub fn pg_admin_url() -> String {
    std::env::var("KITSUKI_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// URL of the test NATS server (`KITSUKI_TEST_NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("KITSUKI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A short random id for names of databases, streams and subject prefixes.
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A unique subject prefix such as `test-1a2b3c4d5e6f.library`.
pub fn unique_prefix() -> String {
    format!("test-{}.library", unique_id())
}

/// Creates a new, empty database named `kitsuki_test_<id>` and returns its URL.
pub async fn fresh_pg_database() -> anyhow::Result<String> {
    let admin = pg_admin_url();
    let name = format!("kitsuki_test_{}", unique_id());
    let mut conn = sqlx::PgConnection::connect(&admin).await.context(
        "while connecting to the test PostgreSQL server (is it running? see scripts/test)",
    )?;
    // The name is made here of hex digits only, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .context("while creating a test database")?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Ok(format!("{base}/{name}"))
}

/// A `sqlite://` URL of a file in a fresh temporary folder (kept until the process ends).
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("kitsuki-test-{}", unique_id()));
    let _ = std::fs::create_dir_all(&dir);
    format!("sqlite://{}", dir.join("test.db").display())
}
