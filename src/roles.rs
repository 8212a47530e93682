//! Each role started alone: its database, the NATS bus, its outbox relay, and one listener
//! for its gRPC service and /healthz, /readyz, /metrics. The bound address is printed on a
//! line `kitsuki <role> listening on <url>` so that scripts and tests can find it.

use std::sync::Arc;

use anyhow::Context;
use kitsuki_catalog::Catalog;
use kitsuki_catalog::grpc::CatalogGrpc;
use kitsuki_platform::bus::SharedBus;
use kitsuki_platform::bus::nats::NatsBus;
use kitsuki_platform::catch_up::CatchUp;
use kitsuki_platform::clock::{SharedClock, SystemClock, TestClock};
use kitsuki_platform::config::{BusArgs, CommonArgs, display_url};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::outbox::Relay;
use kitsuki_platform::retention;
use kitsuki_platform::server::{Readiness, bind, serve};
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testclock::{DueJobs, TestClockGrpc};
use kitsuki_proto::Branch;
use tonic::service::Routes;

use crate::cli::{CatalogArgs, CirculationArgs, GatewayArgs, NotificationArgs, PatronArgs};
use kitsuki_circulation::domain::calendar::LibraryCalendar;
use kitsuki_circulation::{Circulation, CirculationConfig, CirculationGrpc, GrpcPatronFacts};
use kitsuki_notification::titles::GrpcTitles;
use kitsuki_notification::{GrpcContacts, NotificationGrpc, Notifier, NotifierConfig};
use kitsuki_patron::PatronAccounts;

/// The clock of a process: the system clock, or (only with `KITSUKI_TEST_CLOCK=1`) a
/// test clock served over gRPC with the jobs to run when it moves.
#[derive(Debug, Clone)]
pub struct Clocks {
    pub shared: SharedClock,
    test: Option<Arc<TestClock>>,
    pub due_jobs: DueJobs,
}

impl Clocks {
    pub fn new(common: &CommonArgs) -> Clocks {
        if common.test_clock {
            tracing::warn!("test clock enabled: never in a deployment");
            let t = Arc::new(TestClock::new());
            Clocks {
                shared: t.clone(),
                test: Some(t),
                due_jobs: DueJobs::default(),
            }
        } else {
            Clocks {
                shared: Arc::new(SystemClock),
                test: None,
                due_jobs: DueJobs::default(),
            }
        }
    }

    /// Adds the test clock's gRPC service to a role's routes when it is enabled.
    pub fn serve(&self, routes: Routes) -> Routes {
        match &self.test {
            Some(t) => routes
                .add_service(TestClockGrpc::new(t.clone(), self.due_jobs.clone()).into_server()),
            None => routes,
        }
    }
}

/// Retention (ARCHITECTURE.md "Retention"): a service's purges on their schedule and after
/// every move of the test clock.
pub fn retention_of(
    service: &'static str,
    purge: retention::Purge,
    clocks: &Clocks,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<()> {
    retention::schedule(
        service,
        clocks.shared.clone(),
        purge,
        &clocks.due_jobs,
        shutdown,
    )
}

/// Rule B2: the branches' closed days from the file `KITSUKI_CALENDAR_FILE` names (format:
/// `kitsuki_circulation::domain::calendar_file`); unset or empty, every branch is open
/// every day. Circulation and notification read the same file, so that a due date and
/// the keep-until date of a ready mail are the same everywhere. An unreadable or invalid
/// file stops the start with the parser's message: a process running on a calendar other
/// than the library's would promise dates it does not keep.
pub fn calendars_from_env() -> anyhow::Result<LibraryCalendar> {
    let Some(path) = std::env::var_os("KITSUKI_CALENDAR_FILE").filter(|p| !p.is_empty()) else {
        return Ok(LibraryCalendar::open_every_day());
    };
    let path = std::path::PathBuf::from(path);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the calendar file {} (KITSUKI_CALENDAR_FILE)",
            path.display()
        )
    })?;
    let calendars = LibraryCalendar::from_json(&text).map_err(|e| {
        anyhow::anyhow!(
            "the calendar file {} (KITSUKI_CALENDAR_FILE) is refused: {e}",
            path.display()
        )
    })?;
    tracing::info!(file = %path.display(), "closed days of the branches read");
    Ok(calendars)
}

pub async fn nats(bus: &BusArgs) -> anyhow::Result<SharedBus> {
    let b = NatsBus::connect_replicated(
        &bus.nats_url,
        &bus.bus_prefix,
        bus.stream_replicas,
        kitsuki_platform::bus::nats::CONNECT_PATIENCE,
    )
    .await
    .with_context(|| format!("while connecting to NATS at {}", bus.nats_url))?;
    Ok(Arc::new(b))
}

fn announce(role: &str, addr: std::net::SocketAddr) {
    println!("kitsuki {role} listening on {}", display_url(addr));
}

/// The background tasks of a role are tracked by its shutdown, so that the process waits
/// for them to end their step before it exits (`serve` does, after the drain). The relay
/// is tracked for the last phase: it stops after the requests and the other tasks, once it
/// has published what they committed while stopping.
fn spawn_relay(db: Db, bus: SharedBus, wake: Arc<tokio::sync::Notify>, shutdown: &Shutdown) {
    let s = shutdown.clone();
    shutdown.track_last([tokio::spawn(async move {
        Relay::new(db, bus, wake)
            .run(async move { s.wait_last_phase().await })
            .await
    })]);
}

pub async fn catalog(args: CatalogArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let db = db::connect(&args.service.database_url_with_password()?).await?;
    let index_dir = args
        .index_dir
        .unwrap_or_else(|| args.service.common.data_dir.join("catalog-index"));
    let clocks = Clocks::new(&args.service.common);
    let bus = nats(&args.service.bus).await?;
    // One replica of several: its index follows every catalog change through a consumer
    // of its own, subscribed before the index catches up from its watermark
    // (kitsuki_catalog::replica).
    let (catalog, follower) = Catalog::open_replica(
        db.clone(),
        Some(&index_dir),
        clocks.shared.clone(),
        bus.clone(),
        &shutdown,
        kitsuki_catalog::ReplicaOptions::new(),
    )
    .await?;
    let readings_note =
        kitsuki_catalog::readings::load_into(&catalog, kitsuki_catalog::readings::default_cache())
            .await;
    spawn_relay(db.clone(), bus.clone(), catalog.relay_wake(), &shutdown);
    // Live availability from circulation's item status events.
    shutdown.track([catalog.spawn_consumer(bus.clone(), &shutdown)]);
    let caught_up = CatchUp::start(bus, vec![catalog.consumer_spec()]).await;
    shutdown.track([retention_of(
        "catalog",
        retention::event_rows_purge(db.clone()),
        &clocks,
        &shutdown,
    )]);
    let (listener, addr) = bind(args.service.listen).await?;
    // Not ready while the search index is rebuilt in the background (`/readyz` says so).
    let readiness = Readiness::new()
        .with_db(db)
        .after(caught_up)
        .gated_by(catalog.index_gate())
        .noting(readings_note);
    readiness.set_ready();
    announce("catalog", addr);
    let app = clocks
        .serve(Routes::new(CatalogGrpc::new(catalog).into_server()))
        .into_axum_router();
    let served = serve(listener, app, readiness, shutdown).await;
    // Deletes this replica's consumer rather than leaving it to the server's timer.
    follower.stopped().await;
    served
}

pub async fn patron(args: PatronArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    // Every secret is read before anything is opened: a bad setting stops the start at once.
    let admin_password = admin_password_from_env()?;
    let db = db::connect(&args.service.database_url_with_password()?).await?;
    let clocks = Clocks::new(&args.service.common);
    let accounts =
        PatronAccounts::open(db.clone(), clocks.shared.clone(), args.settings.config()).await?;
    bootstrap_admin(accounts.staff(), admin_password).await?;
    shutdown.track([retention_of(
        "patron",
        accounts.retention(),
        &clocks,
        &shutdown,
    )]);
    let bus = nats(&args.service.bus).await?;
    spawn_relay(db.clone(), bus, accounts.relay_wake(), &shutdown);
    let (listener, addr) = bind(args.service.listen).await?;
    let readiness = Readiness::new().with_db(db);
    readiness.set_ready();
    announce("patron", addr);
    let app = clocks
        .serve(Routes::new(
            kitsuki_patron::grpc::PatronGrpc::new(accounts).into_server(),
        ))
        .into_axum_router();
    serve(listener, app, readiness, shutdown).await
}

/// The bootstrap admin's password: `KITSUKI_ADMIN_PASSWORD`, or the file
/// `KITSUKI_ADMIN_PASSWORD_FILE` names (never both), or none.
pub fn admin_password_from_env() -> anyhow::Result<Option<String>> {
    Ok(kitsuki_platform::secrets::from_env(
        "KITSUKI_ADMIN_PASSWORD",
    )?)
}

/// API.md: the first start creates `admin` with `given` (from
/// [`admin_password_from_env`]), or prints a generated password once.
pub async fn bootstrap_admin(
    staff: &kitsuki_patron::staff::StaffAccounts,
    given: Option<String>,
) -> anyhow::Result<()> {
    if let Some(generated) = staff.ensure_admin(given).await? {
        // stdout, once: the one thing besides the URL that a person must read there.
        println!("created staff account 'admin' with password: {generated}");
        tracing::warn!(
            "the generated password of 'admin' is shown once on stdout; change it, or set KITSUKI_ADMIN_PASSWORD or KITSUKI_ADMIN_PASSWORD_FILE before the first start"
        );
    }
    Ok(())
}

pub async fn notification(args: NotificationArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let service = args.service;
    let mut config = NotifierConfig::from_env(&service.common.data_dir)?;
    config.calendars = calendars_from_env()?;
    let db = db::connect(&service.database_url_with_password()?).await?;
    let contacts = Arc::new(GrpcContacts::connect_lazy(&args.patron_url)?);
    let clocks = Clocks::new(&service.common);
    let notifier = Notifier::open(db.clone(), config, clocks.shared.clone(), contacts)
        .await?
        .with_titles(Arc::new(GrpcTitles::connect_lazy(&args.catalog_url)?));
    // After the clock moved, mails whose retry became due go out at once.
    let n = notifier.clone();
    clocks.due_jobs.register(move || {
        let n = n.clone();
        Box::pin(async move {
            let _ = n.send_due_once().await;
        })
    });
    let bus = nats(&service.bus).await?;
    // Consumer and sender; the outbox relay of MailSent events is tracked by `spawn` for
    // the last phase.
    shutdown.track(notifier.spawn(bus.clone(), &shutdown));
    let caught_up = CatchUp::start(bus, notifier.consumer_specs()).await;
    shutdown.track([retention_of(
        "notification",
        notifier.retention(),
        &clocks,
        &shutdown,
    )]);
    let (listener, addr) = bind(service.listen).await?;
    let readiness = Readiness::new().with_db(db).after(caught_up);
    readiness.set_ready();
    announce("notification", addr);
    let app = clocks
        .serve(Routes::new(NotificationGrpc::new(notifier).into_server()))
        .into_axum_router();
    serve(listener, app, readiness, shutdown).await
}

pub async fn circulation(args: CirculationArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let branch = Branch::parse(&args.branch).context("--branch must be kitsuki, yamaga or ota")?;
    let config = CirculationConfig {
        calendars: calendars_from_env()?,
        ..CirculationConfig::default()
    };
    let db = db::connect(&args.service.database_url_with_password()?).await?;
    let clocks = Clocks::new(&args.service.common);
    let patrons = Arc::new(GrpcPatronFacts::connect_lazy(&args.patron_url)?);
    let circulation =
        Circulation::open(db.clone(), branch, clocks.shared.clone(), config, patrons).await?;
    let bus = nats(&args.service.bus).await?;
    // Projection of catalog items, ready-mail consumer, this branch's shelf expiry; the
    // relay is tracked by `spawn` for the last phase.
    shutdown.track(circulation.spawn(bus.clone(), &shutdown));
    circulation.register_due_jobs(&clocks.due_jobs);
    let caught_up = CatchUp::start(bus, circulation.consumer_specs()).await;
    shutdown.track([retention_of(
        "circulation",
        retention::event_rows_purge(db.clone()),
        &clocks,
        &shutdown,
    )]);
    let (listener, addr) = bind(args.service.listen).await?;
    let readiness = Readiness::new().with_db(db).after(caught_up);
    readiness.set_ready();
    announce(&format!("circulation {branch}"), addr);
    let app = clocks
        .serve(Routes::new(CirculationGrpc::new(circulation).into_server()))
        .into_axum_router();
    serve(listener, app, readiness, shutdown).await
}

pub async fn gateway(args: GatewayArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let circulation = match (
        args.circulation_kitsuki_url,
        args.circulation_yamaga_url,
        args.circulation_ota_url,
    ) {
        (Some(k), Some(y), Some(o)) => Some([k, y, o]),
        (None, None, None) => None,
        _ => anyhow::bail!("give the circulation URLs of all three branches, or none"),
    };
    if !args.test_clock_peers.is_empty() && !args.common.test_clock {
        anyhow::bail!("--test-clock-peers needs KITSUKI_TEST_CLOCK=1");
    }
    let peers = crate::all_in_one::Peers {
        catalog: args.catalog_url,
        patron: args.patron_url,
        notification: None,
        circulation,
        test_clocks: args.test_clock_peers,
    };
    let state = crate::all_in_one::gateway_state(&peers)?
        .with_secure_cookies(args.secure_cookies)
        .with_trusted_proxies(args.trusted_proxies);
    let (listener, addr) = bind(args.listen).await?;
    let readiness = Readiness::new();
    readiness.set_ready();
    announce("gateway", addr);
    serve(
        listener,
        kitsuki_gateway::router(state),
        readiness,
        shutdown,
    )
    .await
}
