//! Helpers for tests against the real servers of this machine: a fresh PostgreSQL database
//! per test and a unique NATS subject namespace per test, so tests run in parallel and a
//! second run passes like the first (the servers outlive every run). The one home of what
//! the workspace's tests share: [`on_both_backends!`](crate::on_both_backends) to run a test
//! body on each database, [`fresh_db`], [`free_port`].

use std::future::Future;

use anyhow::Context;
use sqlx::Connection;

pub use crate::db::Backend;
use crate::db::{self, Db};

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

/// A fresh, empty database of `backend`, connected ([`fresh_pg_database`] or
/// [`fresh_sqlite_url`]).
pub async fn fresh_db(backend: Backend) -> Db {
    db::connect(&fresh_url(backend).await)
        .await
        .expect("connect to a fresh test database")
}

/// The URL of a fresh, empty database of `backend`.
pub async fn fresh_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => fresh_pg_database()
            .await
            .expect("a fresh PostgreSQL database"),
        Backend::Sqlite => fresh_sqlite_url(),
    }
}

/// A loopback port nobody listens on right now (bound and released: another process can
/// take it before the test does, which on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// What a test body of [`on_both_backends!`](crate::on_both_backends) takes: the
/// [`Backend`] itself, its name (`"postgres"`, `"sqlite"`), or a fresh database of it.
pub trait FromBackend: Sized {
    fn from_backend(backend: Backend) -> impl Future<Output = Self> + Send;
}

impl FromBackend for Backend {
    async fn from_backend(backend: Backend) -> Self {
        backend
    }
}

impl FromBackend for &'static str {
    async fn from_backend(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl FromBackend for Db {
    async fn from_backend(backend: Backend) -> Self {
        fresh_db(backend).await
    }
}

/// What a test body takes for `backend`, its type inferred from the body's parameter
/// (for [`on_both_backends!`](crate::on_both_backends)).
pub async fn backend_arg<T: FromBackend>(backend: Backend) -> T {
    T::from_backend(backend).await
}

/// Runs each named test body (`async fn name(x: X)`, `X` a [`FromBackend`]) once on
/// PostgreSQL and once on SQLite, as the tests `name::postgres` and `name::sqlite`; with
/// `multi_thread(N);` first, on a runtime of N worker threads (tests that run services
/// beside the test body), else on tokio's test runtime.
#[macro_export]
macro_rules! on_both_backends {
    (multi_thread($workers:literal); $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
            async fn postgres() {
                $crate::on_both_backends!(@run $name, Postgres)
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
            async fn sqlite() {
                $crate::on_both_backends!(@run $name, Sqlite)
            }
        }
    )*};
    (@run $name:ident, $backend:ident) => {
        super::$name($crate::testing::backend_arg($crate::testing::Backend::$backend).await).await
    };
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                $crate::on_both_backends!(@run $name, Postgres)
            }
            #[tokio::test]
            async fn sqlite() {
                $crate::on_both_backends!(@run $name, Sqlite)
            }
        }
    )*};
}
