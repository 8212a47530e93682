//! `kitsuki` with no arguments: every service in one process on the embedded default —
//! SQLite files and the in-process event bus under the data folder, the web UI on
//! `--listen`. The services still talk through their gRPC interfaces (on an internal
//! loopback port) and the bus interface, so this run exercises the paths of a deployment.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kitsuki_catalog::Catalog;
use kitsuki_catalog::grpc::CatalogGrpc;
use kitsuki_catalog::import;
use kitsuki_circulation::{Circulation, CirculationConfig, CirculationGrpc, GrpcPatronFacts};
use kitsuki_gateway::{AppState, CirculationClients, Clients};
use kitsuki_notification::{GrpcContacts, NotificationGrpc, Notifier, NotifierConfig};
use kitsuki_platform::bus::SharedBus;
use kitsuki_platform::bus::memory::MemoryBus;
use kitsuki_platform::catch_up::CatchUp;
use kitsuki_platform::config::{CommonArgs, display_url};
use kitsuki_platform::db;
use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_platform::outbox::Relay;
use kitsuki_platform::retention;
use kitsuki_platform::server::{Readiness, bind, serve};
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_proto::Branch;
use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use kitsuki_proto::circulation::circulation_service_client::CirculationServiceClient;
use kitsuki_proto::notification::notification_service_client::NotificationServiceClient;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use kitsuki_proto::testclock::test_clock_service_client::TestClockServiceClient;
use tonic::service::Routes;
use tonic::transport::Endpoint;

use crate::cli::Cli;

/// The real records loaded on the first start (see services/catalog/seed/README.md).
const SEED_MARC: &[u8] = include_bytes!("../services/catalog/seed/loc-jpn-880-sample.mrc");
const SEED_NDL: &[u8] = include_bytes!("../services/catalog/seed/ndl-japan-marc-300.json");

/// The embedded run's catalog database in the data folder.
pub const CATALOG_DB: &str = "catalog.db";

/// Where the gateway finds its peers.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub catalog: String,
    pub patron: String,
    /// Only the embedded run's dev page asks the notification service.
    pub notification: Option<String>,
    /// The circulation instances of kitsuki, yamaga and ota, in that order.
    pub circulation: Option<[String; 3]>,
    /// Services whose test clock `POST /api/v1/test/clock` moves (test clock runs only).
    pub test_clocks: Vec<String>,
}

fn channel(url: &str) -> anyhow::Result<TracedChannel> {
    Ok(Endpoint::from_shared(url.to_string())
        .with_context(|| format!("bad service URL {url}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect_lazy()
        .into())
}

/// gRPC clients of the gateway, connecting lazily (a peer that is not up yet is retried
/// per call instead of failing the start).
pub fn clients(peers: &Peers) -> anyhow::Result<Clients> {
    let circulation = match &peers.circulation {
        Some([k, y, o]) => Some(CirculationClients {
            kitsuki: CirculationServiceClient::new(channel(k)?),
            yamaga: CirculationServiceClient::new(channel(y)?),
            ota: CirculationServiceClient::new(channel(o)?),
        }),
        None => None,
    };
    Ok(Clients {
        catalog: CatalogServiceClient::new(channel(&peers.catalog)?),
        patron: PatronServiceClient::new(channel(&peers.patron)?),
        notification: peers
            .notification
            .as_deref()
            .map(channel)
            .transpose()?
            .map(NotificationServiceClient::new),
        circulation,
    })
}

/// The gateway's state for these peers.
pub fn gateway_state(peers: &Peers) -> anyhow::Result<AppState> {
    let clocks = peers
        .test_clocks
        .iter()
        .map(|u| channel(u).map(TestClockServiceClient::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AppState::new(clients(peers)?).with_test_clocks(clocks))
}

/// The SQLite URL of one of the embedded run's databases under `dir` (also where
/// `kitsuki import` writes without `--database-url`).
pub fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

pub async fn run(cli: Cli, shutdown: Shutdown) -> anyhow::Result<()> {
    let data = cli.data_dir.clone();
    // Rule B2: one calendar for the notifier and the three branch instances; a bad file
    // stops the start before anything is opened.
    let calendars = crate::roles::calendars_from_env()?;
    // The secrets too (admin password, SMTP URL, each maybe from a `_FILE`), before the
    // seeding of a first start.
    let admin_password = crate::roles::admin_password_from_env()?;
    let mut mail_config = NotifierConfig::from_env(&data)?;
    std::fs::create_dir_all(&data).with_context(|| format!("while creating {}", data.display()))?;
    let common = CommonArgs {
        test_clock: cli.test_clock,
        data_dir: data.clone(),
    };
    let clocks = crate::roles::Clocks::new(&common);
    let clock = clocks.shared.clone();
    // The in-process bus keeps its log and consumer positions in a file, so a crash of the
    // one process loses no event between the outbox relay and a consumer.
    let bus: SharedBus = Arc::new(
        MemoryBus::open_journal(&data.join("bus.db"))
            .await
            .context(
                "while opening the event bus journal (is another kitsuki using this data folder?)",
            )?,
    );

    let catalog_db = db::connect(&sqlite_url(&data, CATALOG_DB)).await?;
    let catalog = Catalog::open(
        catalog_db.clone(),
        Some(&data.join("catalog-index")),
        clock.clone(),
    )
    .await?;
    let readings_note =
        kitsuki_catalog::readings::load_into(&catalog, kitsuki_catalog::readings::default_cache())
            .await;
    first_start_seed(&catalog).await?;
    let index_gate = catalog.index_gate();
    let mut consumer_specs = vec![catalog.consumer_spec()];
    shutdown.track([catalog.spawn_consumer(bus.clone(), &shutdown)]);
    // Titles a `kitsuki import` beside this process commits reach the index through the
    // relay below and this follower (before the relay, so that it sees every row).
    shutdown.track([catalog.spawn_embedded_index_follower(bus.clone(), &shutdown)]);

    let patron_db = db::connect(&sqlite_url(&data, "patron.db")).await?;
    let accounts =
        kitsuki_patron::PatronAccounts::open(patron_db.clone(), clock.clone(), cli.patron.config())
            .await?;
    crate::roles::bootstrap_admin(accounts.staff(), admin_password).await?;
    // Retention (ARCHITECTURE.md "Retention"): each database's purges on their schedule.
    for (service, purge) in [
        ("catalog", retention::event_rows_purge(catalog_db.clone())),
        ("patron", accounts.retention()),
    ] {
        shutdown.track([crate::roles::retention_of(
            service, purge, &clocks, &shutdown,
        )]);
    }

    for (db, wake) in [
        (catalog_db.clone(), catalog.relay_wake()),
        (patron_db.clone(), accounts.relay_wake()),
    ] {
        let (bus, s) = (bus.clone(), shutdown.clone());
        // Stops last, after publishing what the other tasks committed while stopping.
        shutdown.track_last([tokio::spawn(async move {
            Relay::new(db, bus, wake)
                .run(async move { s.wait_last_phase().await })
                .await
        })]);
    }

    // The web listener first: its address is the base of the links in mails.
    let (listener, addr) = bind(cli.listen)
        .await
        .with_context(|| format!("while binding {}", cli.listen))?;

    // The services' gRPC on an internal loopback port, as separate roles would serve it.
    let (internal, internal_addr) = bind("127.0.0.1:0".parse()?).await?;
    let url = format!("http://{internal_addr}");

    let notification_db = db::connect(&sqlite_url(&data, "notification.db")).await?;
    mail_config.calendars = calendars.clone();
    if std::env::var("KITSUKI_PUBLIC_BASE_URL").is_err() {
        mail_config.public_base_url = display_url(addr);
    }
    let contacts = Arc::new(GrpcContacts::connect_lazy(&url)?);
    let notifier = Notifier::open(
        notification_db.clone(),
        mail_config,
        clock.clone(),
        contacts,
    )
    .await?
    .with_titles(Arc::new(
        kitsuki_notification::titles::GrpcTitles::connect_lazy(&url)?,
    ));
    consumer_specs.extend(notifier.consumer_specs());
    shutdown.track(notifier.spawn(bus.clone(), &shutdown));
    shutdown.track([crate::roles::retention_of(
        "notification",
        notifier.retention(),
        &clocks,
        &shutdown,
    )]);
    let n = notifier.clone();
    clocks.due_jobs.register(move || {
        let n = n.clone();
        Box::pin(async move {
            let _ = n.send_due_once().await;
        })
    });

    let grpc = clocks
        .serve(Routes::new(CatalogGrpc::new(catalog).into_server()))
        .add_service(kitsuki_patron::grpc::PatronGrpc::new(accounts).into_server())
        .add_service(NotificationGrpc::new(notifier).into_server())
        .into_axum_router();
    let internal_ready = Readiness::new();
    internal_ready.set_ready();
    // Open until the last phase: the mail sender and the gateway's draining requests call
    // it after the signal. The web listener's `serve` ends the process's tasks.
    let s = shutdown.at_last_phase();
    let internal_task = tokio::spawn(async move { serve(internal, grpc, internal_ready, s).await });

    // One circulation instance per branch (rule S1) over one database, each on its own
    // loopback port as separate processes would be.
    let circulation_db = db::connect(&sqlite_url(&data, "circulation.db")).await?;
    let mut circulation_urls = Vec::new();
    for branch in Branch::ALL {
        let patrons = Arc::new(GrpcPatronFacts::connect_lazy(&url)?);
        let circulation = Circulation::open(
            circulation_db.clone(),
            branch,
            clock.clone(),
            CirculationConfig {
                calendars: calendars.clone(),
                ..CirculationConfig::default()
            },
            patrons,
        )
        .await?;
        consumer_specs.extend(circulation.consumer_specs());
        shutdown.track(circulation.spawn(bus.clone(), &shutdown));
        circulation.register_due_jobs(&clocks.due_jobs);
        let (listener, addr) = bind("127.0.0.1:0".parse()?).await?;
        let ready = Readiness::new();
        ready.set_ready();
        let app = Routes::new(CirculationGrpc::new(circulation).into_server()).into_axum_router();
        let s = shutdown.at_last_phase();
        tokio::spawn(async move { serve(listener, app, ready, s).await });
        circulation_urls.push(format!("http://{addr}"));
    }
    // After the instances have created the shared database's tables (its first purge runs
    // at once).
    shutdown.track([crate::roles::retention_of(
        "circulation",
        retention::event_rows_purge(circulation_db.clone()),
        &clocks,
        &shutdown,
    )]);

    // The embedded run is the developer's: its dev page lists the mail outbox (with reset
    // links in it), so only when the web UI listens on loopback.
    let [k, y, o] = [
        &circulation_urls[0],
        &circulation_urls[1],
        &circulation_urls[2],
    ];
    let peers = Peers {
        catalog: url.clone(),
        patron: url.clone(),
        notification: Some(url.clone()),
        circulation: Some([k.clone(), y.clone(), o.clone()]),
        // One process, one clock: moving it once runs every service's due jobs.
        test_clocks: if cli.test_clock {
            vec![url.clone()]
        } else {
            Vec::new()
        },
    };
    let state = gateway_state(&peers)?
        .with_dev_pages(addr.ip().is_loopback())
        .with_outbox_dir(data.join("outbox"))
        .with_trusted_proxies(cli.trusted_proxies.clone())
        .with_secure_cookies(cli.secure_cookies);
    // Ready once every consumer has handled what was committed before the start: the
    // outboxes are published first (the seed's items, a crash's leftovers), then their
    // events are the mark to catch up to (kitsuki_platform::catch_up).
    for db in [&catalog_db, &patron_db, &notification_db, &circulation_db] {
        if let Err(e) = kitsuki_platform::outbox::publish_pending_once(db, &bus).await {
            tracing::warn!(error = %e, "outbox not published before the readiness mark; its relay goes on");
        }
    }
    let caught_up = CatchUp::start(bus.clone(), consumer_specs).await;
    // Not ready while the search index is rebuilt in the background (its reason on
    // `/readyz`); an index that knows its state only caught up in `Catalog::open`.
    let readiness = Readiness::new()
        .after(caught_up)
        .gated_by(index_gate)
        .with_db(catalog_db)
        .with_db(patron_db)
        .with_db(notification_db)
        .with_db(circulation_db)
        .noting(readings_note);
    readiness.set_ready();
    // stdout: this line only (and a generated admin password above it); the rest is logs.
    tracing::info!(url = %display_url(addr), "杵築市立図書館 蔵書検索");
    println!("kitsuki all-in-one listening on {}", display_url(addr));
    serve(
        listener,
        kitsuki_gateway::router(state),
        readiness,
        shutdown,
    )
    .await?;
    internal_task.await??;
    Ok(())
}

/// On the first start (empty catalogue): the real records, items spread over the three
/// branches, and a few magazines and AV titles so that every material type shows.
async fn first_start_seed(catalog: &Catalog) -> anyhow::Result<()> {
    if catalog
        .counts()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .0
        > 0
    {
        return Ok(());
    }
    tracing::info!("first start: loading the seed catalogue");
    let mut ids = Vec::new();
    for (bytes, format) in [
        (SEED_MARC, kitsuki_catalog::marc::Format::Iso2709),
        (SEED_NDL, kitsuki_catalog::marc::Format::NdlJson),
    ] {
        let report = kitsuki_catalog::marc::parse(bytes, format);
        let (summary, created) =
            import::import_report(catalog, &report, import::ImportOptions::default()).await;
        if let Some(e) = &summary.index_error {
            anyhow::bail!("first start: the seed catalogue could not be indexed: {e}");
        }
        // The NDL file's 10 records with status 削除 (deleted) are skipped: withdrawals
        // from the national bibliography, not titles (services/catalog/seed/README.md).
        tracing::info!(
            titles = summary.created,
            bad_records_skipped = summary.parse_errors,
            deleted_records_skipped = summary.skipped,
            "first start: seed records imported"
        );
        ids.extend(created);
    }
    for (title, kind) in crate::demo::EXTRA_TITLES {
        let new = kitsuki_catalog::NewTitle {
            title: title.to_string(),
            title_reading: String::new(),
            author: String::new(),
            responsibility: String::new(),
            ndc: String::new(),
            publisher: "デモ資料".to_string(),
            year: None,
            isbn: None,
            material_type: *kind,
            aliases: Vec::new(),
            source_id: Some(format!("demo:{title}")),
        };
        let (id, _) = catalog
            .create_title(new, false)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    let items = import::spread_items(catalog, &ids, "D").await?;
    tracing::info!(items, "first start: items spread over 杵築・山香・大田");
    Ok(())
}
