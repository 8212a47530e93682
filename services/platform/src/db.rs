//! Database pools and migrations for `postgres://` and `sqlite://` URLs. Services write
//! portable SQL through sqlx's `Any` driver; each keeps its migrations per backend
//! (`migrations/postgres`, `migrations/sqlite`) and hands both migrators here.
//!
//! Portability conventions (ARCHITECTURE.md "Data"): instants are TEXT in the fixed form of
//! [`crate::clock::format_instant`] (sorts as time), dates TEXT `YYYY-MM-DD`, booleans
//! INTEGER 0/1, placeholders `$1, $2, …` numbered in order of first use (SQLite reads them
//! as named parameters bound by position).

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use anyhow::Context;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

/// Which server a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            anyhow::bail!(
                "database URL must start with postgres:// or sqlite:// (got a URL of another scheme)"
            )
        }
    }
}

/// A pool and the backend it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

static DRIVERS: Once = Once::new();

/// Opens a pool. For SQLite the file (and its folder) is created if missing.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let backend = Backend::of_url(url)?;
    let (url, max) = match backend {
        Backend::Postgres => (url.to_string(), 10),
        Backend::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string();
            if let Some(parent) = Path::new(&path)
                .parent()
                .filter(|_| !path.is_empty() && path != ":memory:")
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("while creating the folder of {path}"))?;
            }
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = if url.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            // SQLite has one writer at a time; a small pool with the driver's busy timeout
            // (5 s) serialises writers instead of failing them.
            (url, 4)
        }
    };
    let mut options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10));
    if backend == Backend::Sqlite {
        // WAL: readers do not wait for the writer (an import beside a running all-in-one),
        // and a commit appends to the log instead of rewriting pages. `synchronous=NORMAL`
        // syncs at checkpoints, not at every commit: still consistent after a crash (a
        // power cut may lose the last commits, never corrupt), the setting SQLite
        // recommends with WAL. The URL cannot say either (sqlx's `Any` URL takes only
        // mode, cache, immutable, vfs).
        options = options.after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
                    .execute(conn)
                    .await
                    .map(drop)
            })
        });
    }
    let pool = options
        .connect(&url)
        .await
        .with_context(|| format!("while connecting to the {backend:?} database"))?;
    Ok(Db { pool, backend })
}

/// Runs the migrator of the pool's backend.
pub async fn migrate(db: &Db, postgres: &Migrator, sqlite: &Migrator) -> anyhow::Result<()> {
    let m = match db.backend {
        Backend::Postgres => postgres,
        Backend::Sqlite => sqlite,
    };
    m.run(&db.pool).await.context("while running migrations")?;
    Ok(())
}

/// Stores a boolean portably (INTEGER 0/1 on both backends).
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// True when a database error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Parses a `postgres://` URL's database name out, for tools that create databases.
pub fn database_name(url: &str) -> Option<String> {
    let after = url.split("://").nth(1)?;
    let path = after.split_once('/')?.1;
    let name = path.split('?').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

impl FromStr for Backend {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Backend> {
        Backend::of_url(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("sqlite://./data/x.db").unwrap(),
            Backend::Sqlite
        );
        assert!(Backend::of_url("mysql://x").is_err());
        assert_eq!(
            database_name("postgres://u@h:5432/kitsuki?sslmode=disable").as_deref(),
            Some("kitsuki")
        );
    }
}
