//! What every handler shares: the gRPC clients of the services behind the gateway and the
//! few settings of the site itself.
//!
//! Circulation runs as one instance per branch (rule S1), so the gateway holds three
//! clients and [`crate::circulation`] says which one each call goes to. A deployment
//! without circulation (catalogue only) has none, and the loan and hold paths answer 503.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use kitsuki_proto::circulation::circulation_service_client::CirculationServiceClient;
use kitsuki_proto::notification::notification_service_client::NotificationServiceClient;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use kitsuki_proto::testclock::test_clock_service_client::TestClockServiceClient;
use kitsuki_proto::{Branch, ErrorCode};

use crate::web::client_addr::TrustedProxies;
use crate::web::error::ApiError;

/// The services the gateway asks. A tonic client over a channel is cheap to clone, and a
/// clone is what each call uses (the client methods take `&mut self`).
#[derive(Clone)]
pub struct Clients {
    pub catalog: CatalogServiceClient<TracedChannel>,
    pub patron: PatronServiceClient<TracedChannel>,
    /// The notification service's delivery log, read only by the dev pages of the embedded
    /// run; a deployed gateway has none (`None`) and never asks it.
    pub notification: Option<NotificationServiceClient<TracedChannel>>,
    /// The three circulation instances; `None` where circulation is not deployed (the loan
    /// and hold paths then answer 503 `unavailable`, the catalogue keeps working).
    pub circulation: Option<CirculationClients>,
}

/// One client per branch instance of circulation (rule S1: each desk works through its own
/// instance). The three share one database, so any of them can answer for a patron.
#[derive(Clone)]
pub struct CirculationClients {
    pub kitsuki: CirculationServiceClient<TracedChannel>,
    pub yamaga: CirculationServiceClient<TracedChannel>,
    pub ota: CirculationServiceClient<TracedChannel>,
}

impl CirculationClients {
    /// The client of `branch`'s instance (a clone: calls take `&mut self`).
    pub fn for_branch(&self, branch: Branch) -> CirculationServiceClient<TracedChannel> {
        match branch {
            Branch::Kitsuki => self.kitsuki.clone(),
            Branch::Yamaga => self.yamaga.clone(),
            Branch::Ota => self.ota.clone(),
        }
    }
}

/// Shared state of the router. Cloned per request, so everything sits behind one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    clients: Clients,
    secure_cookies: bool,
    rpc_timeout: Duration,
    dev_pages: bool,
    outbox_dir: Option<PathBuf>,
    test_clocks: Vec<TestClockServiceClient<TracedChannel>>,
    trusted_proxies: TrustedProxies,
}

/// How long one gRPC call may take before the page or API answers 503: long enough for a
/// busy search, short enough that a hung service does not hold a patron's browser.
const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

impl AppState {
    pub fn new(clients: Clients) -> Self {
        AppState {
            inner: Arc::new(Inner {
                clients,
                secure_cookies: false,
                rpc_timeout: DEFAULT_RPC_TIMEOUT,
                dev_pages: false,
                outbox_dir: None,
                test_clocks: Vec::new(),
                trusted_proxies: TrustedProxies::default(),
            }),
        }
    }

    /// Marks session cookies `Secure`: set it when the site is served over https (a cookie
    /// marked so is not sent over plain http, which would break a local `http://` run).
    pub fn with_secure_cookies(self, secure: bool) -> Self {
        self.rebuild(|inner| inner.secure_cookies = secure)
    }

    /// Overrides the deadline of each gRPC call (default 10 s).
    pub fn with_rpc_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|inner| inner.rpc_timeout = timeout)
    }

    /// Serves the developer's pages under `/dev/` (the outbox of the embedded run). Off by
    /// default: they show every mail, links with their secrets included, to anyone who can
    /// reach the site, so only the one-process developer run turns them on. They are served
    /// only when the notification client is present too.
    pub fn with_dev_pages(self, on: bool) -> Self {
        self.rebuild(|inner| inner.dev_pages = on)
    }

    /// The folder the notification service writes its `<delivery id>.eml` files to (the
    /// embedded run's `<data dir>/outbox/`), which the dev pages read mails from.
    pub fn with_outbox_dir(self, dir: PathBuf) -> Self {
        self.rebuild(|inner| inner.outbox_dir = Some(dir))
    }

    /// The test clocks of the services (API.md "Operations and tests"): when there is at
    /// least one, `POST /api/v1/test/clock` is served and moves each of them; otherwise the
    /// path does not exist (404). Only a run started with `KITSUKI_TEST_CLOCK=1` passes
    /// any. Give one client per distinct clock: a clock shared by several services (the
    /// embedded run) listed twice would be moved twice.
    pub fn with_test_clocks(self, clocks: Vec<TestClockServiceClient<TracedChannel>>) -> Self {
        self.rebuild(|inner| inner.test_clocks = clocks)
    }

    /// The reverse proxies whose `X-Forwarded-For` names the client (rule P13's
    /// per-address throttle; see [`crate::web::client_addr`]). None by default.
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.rebuild(|inner| inner.trusted_proxies = proxies)
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = (*self.inner).clone();
        change(&mut inner);
        AppState {
            inner: Arc::new(inner),
        }
    }

    pub fn catalog(&self) -> CatalogServiceClient<TracedChannel> {
        self.inner.clients.catalog.clone()
    }

    pub fn patron(&self) -> PatronServiceClient<TracedChannel> {
        self.inner.clients.patron.clone()
    }

    /// The notification client, when the dev pages are to be served (see
    /// [`AppState::serves_dev_pages`]).
    pub fn notification(&self) -> Option<NotificationServiceClient<TracedChannel>> {
        self.inner.clients.notification.clone()
    }

    /// Whether the `/dev/` pages exist: turned on and with a notification service to ask.
    pub fn serves_dev_pages(&self) -> bool {
        self.inner.dev_pages && self.inner.clients.notification.is_some()
    }

    /// The circulation instance of `branch`, or 503 `unavailable` where circulation is not
    /// deployed.
    pub fn circulation(
        &self,
        branch: Branch,
    ) -> Result<CirculationServiceClient<TracedChannel>, ApiError> {
        self.inner
            .clients
            .circulation
            .as_ref()
            .map(|c| c.for_branch(branch))
            .ok_or_else(|| ApiError::new(ErrorCode::Unavailable))
    }

    /// Whether circulation is deployed behind this gateway.
    pub fn has_circulation(&self) -> bool {
        self.inner.clients.circulation.is_some()
    }

    /// The test clocks to move (empty: the test clock path is not served).
    pub fn test_clocks(&self) -> &[TestClockServiceClient<TracedChannel>] {
        &self.inner.test_clocks
    }

    pub fn outbox_dir(&self) -> Option<&Path> {
        self.inner.outbox_dir.as_deref()
    }

    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// Wraps a message in a gRPC request with the gateway's deadline.
    pub fn rpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.inner.rpc_timeout);
        request
    }
}
