//! One-shot tools: migrate, import, reindex, staff add.

use std::sync::Arc;

use anyhow::Context;
use kitsuki_catalog::Catalog;
use kitsuki_platform::bus::SharedBus;
use kitsuki_platform::bus::nats::NatsBus;
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::db;
use kitsuki_platform::secrets::database_url_from_env;
use kitsuki_proto::Branch;

use crate::cli::{ImportArgs, IndexArgs, MigrateArgs, StaffCommand};

pub async fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    let db = db::connect(&database_url_from_env(&a.database_url)?).await?;
    match a.role.as_str() {
        "catalog" => {
            Catalog::open(db, None, Arc::new(SystemClock)).await?;
        }
        "patron" => {
            kitsuki_patron::PatronAccounts::open(db, Arc::new(SystemClock), Default::default())
                .await?;
        }
        "notification" => {
            let config = kitsuki_notification::NotifierConfig::from_env(std::path::Path::new("."))?;
            let contacts = Arc::new(kitsuki_notification::GrpcContacts::connect_lazy(
                "http://127.0.0.1:1",
            )?);
            kitsuki_notification::Notifier::open(db, config, Arc::new(SystemClock), contacts)
                .await?;
        }
        other => anyhow::bail!("no migrations for role {other} (catalog, patron, notification)"),
    }
    println!("migrated {}", a.role);
    Ok(())
}

pub async fn import(a: ImportArgs) -> anyhow::Result<()> {
    let report = kitsuki_catalog::marc::parse_file(&a.file)
        .with_context(|| format!("while reading {}", a.file.display()))?;
    let (s, db) = match &a.database_url {
        // A role's database: this process updates the given index itself.
        Some(url) => {
            let db = db::connect(&database_url_from_env(url)?).await?;
            let index_dir = a
                .index_dir
                .clone()
                .unwrap_or_else(|| a.data_dir.join("catalog-index"));
            let catalog =
                Catalog::open(db.clone(), Some(&index_dir), Arc::new(SystemClock)).await?;
            let s = kitsuki_catalog::import::import_report(&catalog, &report).await;
            (s, db)
        }
        // The embedded default: the all-in-one's database; its index is the all-in-one's.
        None => {
            std::fs::create_dir_all(&a.data_dir)
                .with_context(|| format!("while creating {}", a.data_dir.display()))?;
            let url = crate::all_in_one::sqlite_url(&a.data_dir, crate::all_in_one::CATALOG_DB);
            let db = db::connect(&url).await?;
            let catalog = Catalog::open_without_index(db.clone(), Arc::new(SystemClock)).await?;
            let s = kitsuki_catalog::import::import_records(&catalog, &report).await;
            (s, db)
        }
    };
    for e in report.errors.iter().take(20) {
        eprintln!("record {}: {}", e.index, e.message);
    }
    println!(
        "{}: {} records read, {} created, {} already present, {} bad records skipped, {} deleted records skipped, {} invalid ISBNs dropped, {} failed",
        a.file.display(),
        s.parsed,
        s.created,
        s.already_present,
        s.parse_errors,
        s.skipped,
        s.invalid_isbns,
        s.failed
    );
    if let Some(url) = &a.nats_url {
        let bus: SharedBus = Arc::new(NatsBus::connect(url, &a.bus_prefix).await?);
        let n = kitsuki_platform::outbox::publish_pending_once(&db, &bus).await?;
        println!("published {n} events under {}", a.bus_prefix);
    }
    import_outcome(&s, a.allow_skipped).with_context(|| a.file.display().to_string())
}

/// The exit of `kitsuki import`: a file without any record, records the database refused,
/// or (unless allowed) bad or deleted records skipped are errors, so a script notices.
fn import_outcome(
    s: &kitsuki_catalog::import::ImportSummary,
    allow_skipped: bool,
) -> anyhow::Result<()> {
    if s.records_in_file() == 0 {
        anyhow::bail!("the file holds no records: nothing imported");
    }
    if s.failed > 0 {
        anyhow::bail!("{} records could not be stored (see the log)", s.failed);
    }
    if s.records_skipped() > 0 && !allow_skipped {
        anyhow::bail!(
            "{} records skipped ({} bad, {} deleted); the others are imported — pass --allow-skipped to accept that",
            s.records_skipped(),
            s.parse_errors,
            s.skipped
        );
    }
    Ok(())
}

pub async fn reindex(a: IndexArgs) -> anyhow::Result<()> {
    let db = db::connect(&database_url_from_env(&a.database_url)?).await?;
    let catalog = Catalog::open(db, Some(&a.index_dir), Arc::new(SystemClock)).await?;
    let n = catalog.reindex().await?;
    println!("indexed {n} titles");
    Ok(())
}

pub async fn staff(c: StaffCommand) -> anyhow::Result<()> {
    match c {
        StaffCommand::Add {
            username,
            branches,
            role,
            database_url,
            password,
        } => {
            // The password from the flag or variable, or from KITSUKI_STAFF_PASSWORD_FILE.
            let password = kitsuki_platform::secrets::resolve(
                "KITSUKI_STAFF_PASSWORD",
                password,
                std::env::var_os("KITSUKI_STAFF_PASSWORD_FILE")
                    .filter(|p| !p.is_empty())
                    .map(std::path::PathBuf::from)
                    .as_deref(),
            )?
            .context(
                "give the password in KITSUKI_STAFF_PASSWORD or KITSUKI_STAFF_PASSWORD_FILE",
            )?;
            let db = db::connect(&database_url_from_env(&database_url)?).await?;
            let staff =
                kitsuki_patron::staff::StaffAccounts::open(db, Arc::new(SystemClock)).await?;
            let branches = branches
                .split(',')
                .map(Branch::parse)
                .collect::<Result<Vec<_>, _>>()?;
            let role =
                kitsuki_patron::staff::Role::parse(&role).context("role is staff or admin")?;
            let who = kitsuki_patron::staff::StaffIdentity {
                username: username.clone(),
                branches,
                role,
            };
            staff
                .create(&who, &password, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("staff account {username} created");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_catalog::import::ImportSummary;

    #[test]
    fn an_import_fails_on_an_empty_file_refused_records_and_unallowed_skips() {
        let fine = ImportSummary {
            parsed: 3,
            created: 3,
            ..Default::default()
        };
        assert!(import_outcome(&fine, false).is_ok());
        let empty = ImportSummary::default();
        let e = import_outcome(&empty, true).unwrap_err().to_string();
        assert!(e.contains("no records"), "{e}");
        let skipped = ImportSummary {
            parsed: 3,
            parse_errors: 1,
            skipped: 2,
            ..Default::default()
        };
        assert!(import_outcome(&skipped, false).is_err());
        assert!(import_outcome(&skipped, true).is_ok());
        let only_deleted = ImportSummary {
            skipped: 2,
            ..Default::default()
        };
        assert!(import_outcome(&only_deleted, false).is_err());
        let failed = ImportSummary {
            parsed: 3,
            failed: 1,
            ..Default::default()
        };
        assert!(import_outcome(&failed, true).is_err());
    }
}
