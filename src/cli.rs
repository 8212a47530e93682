//! The command line of the one binary: no arguments runs everything in one process; a
//! subcommand runs one role or one tool (ARCHITECTURE.md "One binary, many roles").

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use kitsuki_gateway::TrustedProxies;
use kitsuki_platform::config::{CommonArgs, ServiceArgs, boolish};

#[derive(Parser, Debug)]
#[command(name = "kitsuki", version, about = "杵築市立図書館 library system")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// All in one: where the web UI listens.
    #[arg(
        long,
        env = "KITSUKI_LISTEN",
        default_value = "127.0.0.1:8080",
        global = false
    )]
    pub listen: SocketAddr,
    /// All in one: folder of the embedded databases, index and mail outbox.
    #[arg(long, env = "KITSUKI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Enables the movable test clock. Never in a deployment.
    #[arg(
        long,
        env = "KITSUKI_TEST_CLOCK",
        value_parser = boolish(),
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub test_clock: bool,
    /// All in one: the patron-account rules' settings (P7, P8, P13).
    #[command(flatten)]
    pub patron: kitsuki_patron::PatronSettings,
    /// All in one: reverse proxies (comma-separated IPs or CIDR networks) whose
    /// `X-Forwarded-For` names the client for rule P13's per-address throttle.
    #[arg(long, env = "KITSUKI_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    /// All in one: set the Secure flag on cookies (the site is served over https), as the
    /// gateway role does.
    #[arg(
        long,
        env = "KITSUKI_SECURE_COOKIES",
        value_parser = boolish(),
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub secure_cookies: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The catalog service (titles, items, search).
    Catalog(CatalogArgs),
    /// The patron-account service (patrons, staff, sessions).
    Patron(PatronArgs),
    /// The notification service (mail).
    Notification(NotificationArgs),
    /// One branch's circulation instance.
    Circulation(CirculationArgs),
    /// The web gateway (pages, JSON API, staff pages).
    Gateway(GatewayArgs),
    /// Runs a service's database migrations and exits.
    Migrate(MigrateArgs),
    /// Imports MARC21 (ISO 2709 or MARCXML) or parsed JAPAN/MARC JSON into the catalog.
    Import(ImportArgs),
    /// Rebuilds the catalog's search index from its database.
    Reindex(IndexArgs),
    /// Staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Readings of titles and authors (issue 10).
    Readings {
        #[command(subcommand)]
        command: ReadingsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReadingsCommand {
    /// Makes the generated readings of the whole catalogue again with the dictionary
    /// installed now (after a dictionary change); readings a record or staff gave stay.
    Regenerate(IndexArgs),
}

#[derive(clap::Args, Debug)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Folder of the search index (default: `<data-dir>/catalog-index`).
    #[arg(long, env = "KITSUKI_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PatronArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The rules' settings (P7, P8, P13).
    #[command(flatten)]
    pub settings: kitsuki_patron::PatronSettings,
}

#[derive(clap::Args, Debug)]
pub struct NotificationArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The patron-account service, asked for addresses when a mail is sent.
    #[arg(long, env = "KITSUKI_PATRON_URL")]
    pub patron_url: String,
    /// The catalog service, asked for the title of a hold mail.
    #[arg(long, env = "KITSUKI_CATALOG_URL")]
    pub catalog_url: String,
}

#[derive(clap::Args, Debug)]
pub struct CirculationArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// kitsuki, yamaga or ota.
    #[arg(long, env = "KITSUKI_BRANCH")]
    pub branch: String,
    /// The patron-account service, asked whether a patron may hold (H3) and borrow.
    #[arg(long, env = "KITSUKI_PATRON_URL")]
    pub patron_url: String,
}

#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    #[arg(long, env = "KITSUKI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, env = "KITSUKI_CATALOG_URL")]
    pub catalog_url: String,
    #[arg(long, env = "KITSUKI_PATRON_URL")]
    pub patron_url: String,
    /// The circulation instances of kitsuki, yamaga and ota (loans and holds are
    /// unavailable without them).
    #[arg(long, env = "KITSUKI_CIRCULATION_KITSUKI_URL")]
    pub circulation_kitsuki_url: Option<String>,
    #[arg(long, env = "KITSUKI_CIRCULATION_YAMAGA_URL")]
    pub circulation_yamaga_url: Option<String>,
    #[arg(long, env = "KITSUKI_CIRCULATION_OTA_URL")]
    pub circulation_ota_url: Option<String>,
    /// Test clock runs only: the services whose clocks `POST /api/v1/test/clock` moves
    /// (comma-separated URLs).
    #[arg(long, env = "KITSUKI_TEST_CLOCK_PEERS", value_delimiter = ',')]
    pub test_clock_peers: Vec<String>,
    /// Set the Secure flag on cookies (the site is served over https).
    #[arg(
        long,
        env = "KITSUKI_SECURE_COOKIES",
        value_parser = boolish(),
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub secure_cookies: bool,
    /// Reverse proxies (comma-separated IPs or CIDR networks, e.g. the ingress
    /// controller's pods) whose `X-Forwarded-For` names the client for rule P13's
    /// per-address throttle; from any other peer the header is ignored.
    #[arg(long, env = "KITSUKI_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// catalog or patron.
    #[arg(long)]
    pub role: String,
    #[arg(long, env = "KITSUKI_DATABASE_URL")]
    pub database_url: String,
}

#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    #[arg(long, env = "KITSUKI_DATABASE_URL")]
    pub database_url: String,
    #[arg(
        long,
        env = "KITSUKI_INDEX_DIR",
        default_value = "./data/catalog-index"
    )]
    pub index_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// The catalog database. Without it: the all-in-one's `<data-dir>/catalog.db`, which a
    /// running all-in-one picks up (its relay publishes the new titles' events from the
    /// outbox and its follower indexes them).
    #[arg(long, env = "KITSUKI_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The all-in-one's data folder (used without `--database-url`).
    #[arg(long, env = "KITSUKI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// With `--database-url`: the search index to build in the same pass (default
    /// `<data-dir>/catalog-index`); without, the all-in-one's `<data-dir>/catalog-index`.
    /// When a running kitsuki holds that index, the import writes the database only and
    /// the running process indexes the titles.
    #[arg(long, env = "KITSUKI_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    /// Publish the import's events to this NATS server (otherwise they wait in the outbox
    /// for the catalog service's relay).
    #[arg(long, env = "KITSUKI_NATS_URL")]
    pub nats_url: Option<String>,
    /// Subject namespace and stream of the deployment the events go to (with `--nats-url`).
    #[arg(long, env = "KITSUKI_BUS_PREFIX", default_value = "library")]
    pub bus_prefix: String,
    /// Titles stored in one transaction.
    #[arg(long, env = "KITSUKI_IMPORT_BATCH", default_value_t = kitsuki_catalog::import::BATCH)]
    pub batch_size: usize,
    /// Exit 0 even when bad or deleted records of the file were skipped.
    #[arg(
        long,
        value_parser = boolish(),
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub allow_skipped: bool,
}

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Adds a staff account; the password is read from KITSUKI_STAFF_PASSWORD or the file
    /// KITSUKI_STAFF_PASSWORD_FILE names.
    Add {
        username: String,
        /// Comma-separated branches.
        #[arg(long)]
        branches: String,
        #[arg(long, default_value = "staff")]
        role: String,
        #[arg(long, env = "KITSUKI_DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "KITSUKI_STAFF_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    //! The flags only: clap reads the environment variable through the same value parser,
    //! and the environment is process-wide, so the `KITSUKI_*=1` forms are tested on the
    //! binary (tests/boolean_settings.rs).

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("kitsuki").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn every_boolean_flag_takes_the_usual_spellings() {
        for (value, expected) in [
            ("1", true),
            ("0", false),
            ("true", true),
            ("false", false),
            ("yes", true),
            ("no", false),
            ("on", true),
            ("off", false),
            ("YES", true),
            ("Off", false),
        ] {
            let cli = parse(&[
                &format!("--test-clock={value}"),
                &format!("--secure-cookies={value}"),
            ]);
            assert_eq!(
                (cli.test_clock, cli.secure_cookies),
                (expected, expected),
                "{value}"
            );
            let Some(Command::Gateway(g)) = parse(&[
                "gateway",
                "--catalog-url=http://c",
                "--patron-url=http://p",
                &format!("--secure-cookies={value}"),
                &format!("--test-clock={value}"),
            ])
            .command
            else {
                panic!("gateway");
            };
            assert_eq!(
                (g.secure_cookies, g.common.test_clock),
                (expected, expected),
                "{value}"
            );
        }
        assert!(Cli::try_parse_from(["kitsuki", "--test-clock=maybe"]).is_err());
    }

    #[test]
    fn a_boolean_flag_alone_is_true_and_absent_is_false() {
        let cli = parse(&["--test-clock", "--secure-cookies"]);
        assert!(cli.test_clock && cli.secure_cookies);
        let cli = parse(&[]);
        assert!(!cli.test_clock && !cli.secure_cookies);
        // The flag alone does not swallow the subcommand after it.
        let cli = parse(&["--test-clock", "reindex", "--database-url=sqlite://x"]);
        assert!(cli.test_clock && matches!(cli.command, Some(Command::Reindex(_))));
    }
}
