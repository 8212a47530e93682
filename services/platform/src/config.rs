//! Configuration shared by the roles: flags with `KITSUKI_*` environment fallbacks (clap).
//! Secrets come only from the environment or files; nothing here has a secret default.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Options every service role takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Address to serve gRPC and /healthz, /readyz, /metrics on.
    #[arg(long, env = "KITSUKI_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…`; its password may come from the file
    /// `KITSUKI_DATABASE_PASSWORD_FILE` names instead ([`ServiceArgs::database_url_with_password`]).
    #[arg(long, env = "KITSUKI_DATABASE_URL")]
    pub database_url: String,
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ServiceArgs {
    /// The URL to connect with: `database_url`, with the password of the file
    /// `KITSUKI_DATABASE_PASSWORD_FILE` when that is set ([`crate::secrets`]).
    pub fn database_url_with_password(&self) -> Result<String, crate::secrets::SecretError> {
        crate::secrets::database_url_from_env(&self.database_url)
    }
}

/// Where events go.
#[derive(clap::Args, Debug, Clone)]
pub struct BusArgs {
    /// NATS server with JetStream, e.g. nats://127.0.0.1:4222.
    #[arg(long, env = "KITSUKI_NATS_URL")]
    pub nats_url: String,
    /// Subject namespace (and stream name) of this deployment.
    #[arg(long, env = "KITSUKI_BUS_PREFIX", default_value = "library")]
    pub bus_prefix: String,
    /// Servers of a JetStream cluster that keep the event stream (1, 3 or 5): 3 on the
    /// prod overlay's three-node cluster, so the stream survives the loss of a node.
    #[arg(long, env = "KITSUKI_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
}

/// Options of every process.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Enables the movable test clock and `POST /api/v1/test/clock`. Never in a deployment.
    /// A boolean setting ([`boolish`]): `--test-clock`, `--test-clock=on`, `KITSUKI_TEST_CLOCK=1`.
    #[arg(
        long,
        env = "KITSUKI_TEST_CLOCK",
        value_parser = boolish(),
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub test_clock: bool,
    /// Folder of local files (search index, outbox mails in the embedded run).
    #[arg(long, env = "KITSUKI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// The value parser of every boolean setting (flag and environment variable alike):
/// `1/0`, `true/false`, `yes/no`, `on/off` (also `y/n`, `t/f`, in any case), the forms
/// API.md and ARCHITECTURE.md give (`KITSUKI_TEST_CLOCK=1`). Used with
/// `action = ArgAction::Set, num_args = 0..=1, require_equals = true,
/// default_missing_value = "true"`, so that `--flag` alone still means true and a value
/// is given as `--flag=no` (an optional value without `=` would swallow the next
/// argument, such as a subcommand).
pub fn boolish() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// The listen address printed for a bound socket, with 0.0.0.0 shown as localhost.
pub fn display_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}
