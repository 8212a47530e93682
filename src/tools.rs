//! One-shot tools: migrate, import, reindex, staff add.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kitsuki_catalog::Catalog;
use kitsuki_catalog::import::{ImportOptions, ImportProgress};
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
    let started = Instant::now();
    let (url, index_dir) = match &a.database_url {
        // A role's database: this process updates the given index itself.
        Some(url) => (
            database_url_from_env(url)?,
            a.index_dir
                .clone()
                .unwrap_or_else(|| a.data_dir.join("catalog-index")),
        ),
        // The embedded default: the all-in-one's database and index.
        None => {
            std::fs::create_dir_all(&a.data_dir)
                .with_context(|| format!("while creating {}", a.data_dir.display()))?;
            (
                crate::all_in_one::sqlite_url(&a.data_dir, crate::all_in_one::CATALOG_DB),
                a.data_dir.join("catalog-index"),
            )
        }
    };
    let db = db::connect(&url).await?;
    // The index is built in the same pass, unless a running process (the all-in-one, or a
    // catalog role on this index) holds it: then it is that process's follower that
    // indexes what this import commits, and this one writes the database only.
    let (catalog, indexed_here) = match Catalog::open(
        db.clone(),
        Some(&index_dir),
        Arc::new(SystemClock),
    )
    .await
    {
        Ok(catalog) => (catalog, true),
        Err(e) if kitsuki_catalog::import::is_index_busy(&e) => {
            eprintln!(
                "{} is in use by a running kitsuki: this import writes the database, the running kitsuki indexes the titles",
                index_dir.display()
            );
            (
                Catalog::open_without_index(db.clone(), Arc::new(SystemClock)).await?,
                false,
            )
        }
        Err(e) => {
            return Err(e.context(format!(
                "while opening the search index {}",
                index_dir.display()
            )));
        }
    };
    // Records without a reading get a generated one, when the dictionary is there.
    kitsuki_catalog::readings::load_into(&catalog, kitsuki_catalog::readings::default_cache())
        .await;
    let options = ImportOptions {
        batch: a.batch_size,
        index: indexed_here,
        // The process exits after the import: the merge at its end needs no dictionary.
        release_readings_before_merge: true,
        ..ImportOptions::default()
    };
    let mut progress = Progress::new(started);
    let s = kitsuki_catalog::import::import_file(&catalog, &a.file, options, &mut |p| {
        progress.update(p)
    })
    .await
    .with_context(|| a.file.display().to_string());
    progress.clear();
    let s = s?;
    for e in &s.first_errors {
        eprintln!("record {}: {}", e.index, e.message);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}: {} records read, {} created, {} already present, {} bad records skipped, {} deleted records skipped, {} invalid ISBNs dropped, {} failed, in {:.1} s ({:.0} records/s)",
        a.file.display(),
        s.parsed,
        s.created,
        s.already_present,
        s.parse_errors,
        s.skipped,
        s.invalid_isbns,
        s.failed,
        elapsed,
        s.records_in_file() as f64 / elapsed.max(0.001),
    );
    if let Some(url) = &a.nats_url {
        let bus: SharedBus = Arc::new(NatsBus::connect(url, &a.bus_prefix).await?);
        let n = kitsuki_platform::outbox::publish_pending_once(&db, &bus).await?;
        println!("published {n} events under {}", a.bus_prefix);
    }
    import_outcome(&s, a.allow_skipped).with_context(|| a.file.display().to_string())
}

/// How far an import is: a bar on stderr when it is a terminal (records/s, ETA from the
/// share of the file read), else a log line every [`Progress::LOG_EVERY`]. Hand-drawn: one
/// line of text does not need a crate (and its dependencies) in the tree.
struct Progress {
    started: Instant,
    terminal: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    const DRAW_EVERY: Duration = Duration::from_millis(200);
    const LOG_EVERY: Duration = Duration::from_secs(10);
    const BAR: usize = 30;

    fn new(started: Instant) -> Self {
        Progress {
            started,
            terminal: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    fn update(&mut self, p: ImportProgress<'_>) {
        let now = Instant::now();
        let every = if self.terminal {
            Self::DRAW_EVERY
        } else {
            Self::LOG_EVERY
        };
        let due = self.last.is_none_or(|last| now - last >= every);
        if !due {
            return;
        }
        self.last = Some(now);
        let elapsed = (now - self.started).as_secs_f64().max(0.001);
        let records = p.summary.records_in_file();
        let rate = records as f64 / elapsed;
        let done = if p.bytes_total > 0 {
            (p.bytes_read as f64 / p.bytes_total as f64).min(1.0)
        } else {
            0.0
        };
        let eta = (done > 0.0).then(|| elapsed * (1.0 - done) / done);
        if self.terminal {
            let filled = (done * Self::BAR as f64) as usize;
            let eta = eta.map_or_else(
                || "?".to_string(),
                |s| format!("{}:{:02}", s as u64 / 60, s as u64 % 60),
            );
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {:>3.0}%  {records} records  {rate:.0}/s  ETA {eta}",
                "#".repeat(filled),
                ".".repeat(Self::BAR - filled),
                done * 100.0,
            );
            let _ = err.flush();
            self.drawn = true;
        } else {
            tracing::info!(
                records,
                created = p.summary.created,
                records_per_second = rate as u64,
                percent = (done * 100.0) as u64,
                eta_seconds = eta.map(|s| s as u64),
                "import progress"
            );
        }
    }

    /// Erases the bar, so that what follows starts on a clean line.
    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
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
    if let Some(e) = &s.index_error {
        anyhow::bail!(
            "the titles are stored, but the search index could not be written: {e}; the next start of kitsuki rebuilds it (or run `kitsuki reindex`)"
        );
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

pub async fn readings(c: crate::cli::ReadingsCommand) -> anyhow::Result<()> {
    let crate::cli::ReadingsCommand::Regenerate(a) = c;
    let db = db::connect(&database_url_from_env(&a.database_url)?).await?;
    let catalog = Catalog::open(db, Some(&a.index_dir), Arc::new(SystemClock)).await?;
    if let Some(note) =
        kitsuki_catalog::readings::load_into(&catalog, kitsuki_catalog::readings::default_cache())
            .await
    {
        anyhow::bail!("{note}");
    }
    let s = catalog.regenerate_readings().await?;
    println!(
        "readings made again for {} titles, {} changed",
        s.titles, s.changed
    );
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
