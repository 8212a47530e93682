//! `kitsuki`: the one binary of the library system. No arguments runs everything in one
//! process; a subcommand runs one role (catalog, patron, notification, circulation,
//! gateway) or a tool (migrate, import, reindex, staff).

mod all_in_one;
mod cli;
mod demo;
mod roles;
mod tools;

use clap::Parser;
use kitsuki_platform::shutdown::Shutdown;

use crate::cli::{Cli, Command};

/// mimalloc, not glibc's malloc: glibc gives every thread that allocates an arena of its
/// own (up to 8 per core) and keeps what is freed in each, so the resident memory of a
/// long-running role crept up under a steady load (the catalog under the desk load of
/// `benches/catalogue_scale`: 22 → 143 MB of anonymous memory in two minutes, levelling
/// off at ~50 MB with `MALLOC_ARENA_MAX=2`). mimalloc returns freed pages to the system
/// (its v2, which does so after 10 ms, without huge pages: docs/DEPENDENCIES.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (service, branch) = match &cli.command {
        None => ("all-in-one".to_string(), None),
        Some(Command::Circulation(a)) => {
            (format!("circulation-{}", a.branch), Some(a.branch.clone()))
        }
        Some(c) => (
            format!("{c:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("tool")
                .to_lowercase(),
            None,
        ),
    };
    let _telemetry = kitsuki_platform::telemetry::init(&service, branch.as_deref());
    kitsuki_platform::metrics_layer::build_info(&service, branch.as_deref());
    let shutdown = Shutdown::new();
    // The roles drain on SIGTERM/SIGINT; a tool keeps the default, so Ctrl-C stops an
    // import at once (each batch of titles is one transaction: a rerun goes on from there).
    let is_tool = matches!(
        cli.command,
        Some(
            Command::Migrate(_)
                | Command::Import(_)
                | Command::Reindex(_)
                | Command::Staff { .. }
                | Command::Readings { .. }
        )
    );
    if !is_tool {
        shutdown.on_signals();
    }
    match cli.command {
        None => {
            all_in_one::run(
                Cli {
                    command: None,
                    ..cli
                },
                shutdown,
            )
            .await
        }
        Some(Command::Catalog(a)) => roles::catalog(a, shutdown).await,
        Some(Command::Patron(a)) => roles::patron(a, shutdown).await,
        Some(Command::Notification(a)) => roles::notification(a, shutdown).await,
        Some(Command::Circulation(a)) => roles::circulation(a, shutdown).await,
        Some(Command::Gateway(a)) => roles::gateway(a, shutdown).await,
        Some(Command::Migrate(a)) => tools::migrate(a).await,
        Some(Command::Import(a)) => tools::import(a).await,
        Some(Command::Reindex(a)) => tools::reindex(a).await,
        Some(Command::Staff { command }) => tools::staff(command).await,
        Some(Command::Readings { command }) => tools::readings(command).await,
    }
}
