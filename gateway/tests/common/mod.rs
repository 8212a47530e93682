//! The gateway's integration tests run against the real services: catalog and
//! patron-account serve gRPC on a loopback port (127.0.0.1:0) as their roles do, each on
//! its own fresh database (SQLite by default, PostgreSQL on request), the gateway serves
//! HTTP on another, and the tests speak HTTP to it. Every record a test needs is made
//! through the API itself; the only step that is not is the first admin account, which
//! the binary also makes at its first start (`ensure_admin`).
//!
//! The mails patron-account asks for (verification and reset links) are read where the
//! notification service reads them: the events its outbox publishes on a bus. With
//! [`Options::mail`] the real notification service runs too, as in the embedded run:
//! patron-account's outbox is relayed to it over an in-memory bus and it writes each mail
//! as a file in an outbox folder, which the dev pages ([`Options::dev_pages`]) show.
//!
//! With [`Options::circulation`] the three circulation instances (kitsuki, yamaga, ota)
//! run as well, each on its own gRPC port as the roles do, on ONE database between them,
//! asking patron-account for the patrons' facts. They learn the catalogue's items the way
//! a deployment does: the catalog's outbox relay publishes each new item on the bus and
//! circulation's consumers project it; the catalog consumes circulation's item status
//! events back (live availability, rule H1). With [`Options::test_clock`] each instance
//! has its own test clock (as separate processes do) beside the other services' one, and
//! the gateway moves all four through `POST /api/v1/test/clock`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kitsuki_catalog::Catalog;
use kitsuki_catalog::grpc::CatalogGrpc;
use kitsuki_circulation::domain::holdability::HoldPolicy;
use kitsuki_circulation::{Circulation, CirculationConfig, CirculationGrpc, GrpcPatronFacts};
use kitsuki_gateway::{AppState, CirculationClients, Clients};
use kitsuki_notification::{
    GrpcContacts, MailTransport, NotificationGrpc, Notifier, NotifierConfig,
};
use kitsuki_patron::grpc::PatronGrpc;
use kitsuki_patron::{PatronAccounts, PatronConfig};
use kitsuki_platform::bus::memory::MemoryBus;
use kitsuki_platform::bus::{ConsumerSpec, SharedBus, Subscription};
use kitsuki_platform::clock::{SharedClock, TestClock};
use kitsuki_platform::db::Db;
use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_platform::outbox::{Relay, publish_pending_once};
use kitsuki_platform::server::{Readiness, bind, serve};
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testclock::{DueJobs, TestClockGrpc};
use kitsuki_platform::testing::unique_id;
use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use kitsuki_proto::circulation::circulation_service_client::CirculationServiceClient;
use kitsuki_proto::notification::notification_service_client::NotificationServiceClient;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use kitsuki_proto::testclock::test_clock_service_client::TestClockServiceClient;
use kitsuki_proto::{Branch, TitleId};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::service::Routes;
use tonic::transport::Endpoint;

/// The first admin's password in these tests (the binary takes it from
/// `KITSUKI_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "admin-password-of-the-tests";

/// A password that passes rule P10.
pub const NEW_PASSWORD: &str = "hoshi-no-kitsuki-2025";

/// A birth date well past rule P4's age.
pub const ADULT: &str = "1985-06-15";

pub use kitsuki_platform::testing::Backend;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub backend: Backend,
    /// Point the gateway's patron client at a closed port instead.
    pub patron_down: bool,
    /// Point the gateway's catalog client at a closed port instead.
    pub catalog_down: bool,
    pub secure_cookies: bool,
    /// Run the notification service too, writing mails to [`TestApp::outbox`], and give
    /// the gateway its client.
    pub mail: bool,
    /// Serve the dev pages (`/dev/outbox`); they exist only with `mail` on as well.
    pub dev_pages: bool,
    /// Run the three circulation instances and give the gateway their clients.
    pub circulation: bool,
    /// Rule H5's staff review instead of automatic confirmation (with `circulation`).
    pub staff_review: bool,
    /// Serve the test clocks and give the gateway their clients (`POST /api/v1/test/clock`).
    pub test_clock: bool,
    /// The gateway's `--trusted-proxies` (rule P13's client address); "" for none.
    pub trusted_proxies: &'static str,
    /// Run the catalogue's outbox relay (with `circulation`): off, its events never reach
    /// circulation, so what circulation knows came by the gateway's calls alone.
    pub catalog_relay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Sqlite,
            patron_down: false,
            catalog_down: false,
            secure_cookies: false,
            mail: false,
            dev_pages: false,
            circulation: false,
            staff_review: false,
            test_clock: false,
            trusted_proxies: "",
            catalog_relay: true,
        }
    }
}

impl Options {
    /// Catalog, patron-account and the three circulation instances on SQLite.
    pub fn circulation() -> Options {
        Options {
            circulation: true,
            ..Options::default()
        }
    }
}

/// The gateway and the services behind it, stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The clock of the services (tests move it instead of waiting).
    pub clock: Arc<TestClock>,
    /// The folder the notification service writes mails to, with [`Options::mail`].
    pub outbox: Option<PathBuf>,
    /// The circulation instances, with [`Options::circulation`]: read only to wait until
    /// they have seen the catalogue's items (the tests act through HTTP).
    pub circulation: Vec<Circulation>,
    /// The clock of each circulation instance (with [`Options::test_clock`] their own;
    /// otherwise [`TestApp::clock`]).
    pub circulation_clocks: Vec<Arc<TestClock>>,
    /// What stops each circulation instance's listener (kitsuki, yamaga, ota), for
    /// [`TestApp::stop_circulation`].
    circulation_stops: Vec<Shutdown>,
    patron_db: Db,
    bus: SharedBus,
    subscriptions: tokio::sync::Mutex<HashMap<String, Box<dyn Subscription>>>,
    shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
        for stop in &self.circulation_stops {
            stop.trigger();
        }
    }
}

async fn database(backend: Backend) -> Db {
    kitsuki_platform::testing::fresh_db(backend).await
}

/// An address nobody listens on: a port bound and let go again.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn client(url: &str) -> TracedChannel {
    Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
        .into()
}

/// The three branch instances of circulation on one fresh database, each serving gRPC on
/// its own port (with its own test clock when `clocks` is given, added to it), fed by the
/// bus. Answers the instances, their clocks and the gateway's clients.
async fn spawn_circulation(
    options: Options,
    services: &str,
    bus: &SharedBus,
    shutdown: &Shutdown,
    mut clocks: Option<&mut Vec<TestClockServiceClient<TracedChannel>>>,
    shared_clock: Arc<TestClock>,
) -> (
    Vec<Circulation>,
    Vec<Arc<TestClock>>,
    Option<CirculationClients>,
    Vec<Shutdown>,
) {
    let db = database(options.backend).await;
    let config = CirculationConfig {
        // Fresh durable consumers per test: each instance set projects from the start.
        consumer_prefix: format!("circulation-{}", unique_id()),
        holds: HoldPolicy {
            auto_confirm: !options.staff_review,
            ..HoldPolicy::default()
        },
        ..CirculationConfig::default()
    };
    let patrons = Arc::new(GrpcPatronFacts::new(PatronServiceClient::new(client(
        services,
    ))));
    let mut instances = Vec::new();
    let mut instance_clocks = Vec::new();
    let mut urls = Vec::new();
    let mut stops = Vec::new();
    for branch in Branch::ALL {
        let own_clock = if clocks.is_some() {
            Arc::new(TestClock::new())
        } else {
            shared_clock.clone()
        };
        let circulation = Circulation::open(
            db.clone(),
            branch,
            own_clock.clone(),
            config.clone(),
            patrons.clone(),
        )
        .await
        .expect("open a circulation instance");
        circulation.spawn(bus.clone(), shutdown);
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = format!("http://{addr}");
        let mut routes = Routes::new(CirculationGrpc::new(circulation.clone()).into_server());
        if let Some(clocks) = clocks.as_deref_mut() {
            // As `kitsuki circulation --branch …` with KITSUKI_TEST_CLOCK=1: the instance's
            // own clock, whose move runs its expiry job (rule H9).
            let jobs = DueJobs::default();
            circulation.register_due_jobs(&jobs);
            routes = routes.add_service(TestClockGrpc::new(own_clock.clone(), jobs).into_server());
            clocks.push(TestClockServiceClient::new(client(&url)));
        }
        // Its own stop, so that a test can take one instance down (its consumers keep
        // to the app's).
        let stop = Shutdown::new();
        tokio::spawn(serve(
            listener,
            routes.into_axum_router(),
            Readiness::new(),
            stop.clone(),
        ));
        stops.push(stop);
        instances.push(circulation);
        instance_clocks.push(own_clock);
        urls.push(url);
    }
    let at = |i: usize| CirculationServiceClient::new(client(&urls[i]));
    let clients = CirculationClients {
        kitsuki: at(0),
        yamaga: at(1),
        ota: at(2),
    };
    (instances, instance_clocks, Some(clients), stops)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let shutdown = Shutdown::new();
        let clock = Arc::new(TestClock::new());
        let shared: SharedClock = clock.clone();

        let catalog = Catalog::open(database(options.backend).await, None, shared.clone())
            .await
            .expect("open the catalog");
        // Jobs the services' own test clock runs after it moved (notification's retries).
        let due_jobs = DueJobs::default();
        let patron_db = database(options.backend).await;
        let accounts =
            PatronAccounts::open(patron_db.clone(), shared.clone(), PatronConfig::default())
                .await
                .expect("open patron-account");
        accounts
            .staff()
            .ensure_admin(Some(ADMIN_PASSWORD.to_string()))
            .await
            .expect("create the first admin");

        // One bus for everything, as in the embedded run: patron-account's relay publishes
        // on it, the notification service consumes from it, and `next_event` reads it.
        let bus: SharedBus = Arc::new(MemoryBus::new());
        // Both listeners first: the notification service asks patron-account at the gRPC
        // address, and its links point at the gateway's.
        let (grpc_listener, grpc_addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let services = format!("http://{grpc_addr}");
        let (web_listener, web_addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{web_addr}");

        let mut routes = Routes::default();
        let mut outbox = None;
        if options.mail {
            let dir = std::env::temp_dir().join(format!("kitsuki-test-outbox-{}", unique_id()));
            let mut config = NotifierConfig::new(MailTransport::Files { dir: dir.clone() });
            config.public_base_url = base.clone();
            let contacts = GrpcContacts::new(PatronServiceClient::new(client(&services)));
            let mut notifier = Notifier::open(
                database(options.backend).await,
                config,
                shared.clone(),
                Arc::new(contacts),
            )
            .await
            .expect("open the notification service");
            if options.circulation {
                // The hold mails name their titles (rule N1).
                notifier =
                    notifier.with_titles(Arc::new(kitsuki_notification::titles::GrpcTitles::new(
                        CatalogServiceClient::new(client(&services)),
                    )));
            }
            let n = notifier.clone();
            due_jobs.register(move || {
                let n = n.clone();
                Box::pin(async move {
                    let _ = n.send_due_once().await;
                })
            });
            notifier.spawn(bus.clone(), &shutdown);
            let stop = shutdown.clone();
            tokio::spawn(
                Relay::new(patron_db.clone(), bus.clone(), accounts.relay_wake())
                    .run(async move { stop.wait().await }),
            );
            routes = routes.add_service(NotificationGrpc::new(notifier).into_server());
            outbox = Some(dir);
        }
        if options.circulation {
            // The catalogue's new items reach circulation as in a deployment (by events),
            // and circulation's item status comes back for live availability (rule H1).
            if options.catalog_relay {
                let stop = shutdown.clone();
                tokio::spawn(
                    Relay::new(catalog.db().clone(), bus.clone(), catalog.relay_wake())
                        .run(async move { stop.wait().await }),
                );
            }
            catalog.spawn_consumer(bus.clone(), &shutdown);
        }
        if options.test_clock {
            routes = routes.add_service(TestClockGrpc::new(clock.clone(), due_jobs).into_server());
        }
        let grpc = routes
            .add_service(CatalogGrpc::new(catalog).into_server())
            .add_service(PatronGrpc::new(accounts).into_server())
            .into_axum_router();
        tokio::spawn(serve(
            grpc_listener,
            grpc,
            Readiness::new(),
            shutdown.clone(),
        ));

        let catalog_url = if options.catalog_down {
            closed_port().await
        } else {
            services.clone()
        };
        let patron_url = if options.patron_down {
            closed_port().await
        } else {
            services.clone()
        };
        let notification = options
            .mail
            .then(|| NotificationServiceClient::new(client(&services)));
        let mut test_clocks = Vec::new();
        if options.test_clock {
            test_clocks.push(TestClockServiceClient::new(client(&services)));
        }
        let (circulation, circulation_clocks, circulation_clients, circulation_stops) =
            if options.circulation {
                spawn_circulation(
                    options,
                    &services,
                    &bus,
                    &shutdown,
                    options.test_clock.then_some(&mut test_clocks),
                    clock.clone(),
                )
                .await
            } else {
                (Vec::new(), Vec::new(), None, Vec::new())
            };
        let mut state = AppState::new(Clients {
            catalog: CatalogServiceClient::new(client(&catalog_url)),
            patron: PatronServiceClient::new(client(&patron_url)),
            notification,
            circulation: circulation_clients,
        })
        .with_test_clocks(test_clocks)
        .with_secure_cookies(options.secure_cookies)
        .with_rpc_timeout(Duration::from_secs(10))
        .with_dev_pages(options.dev_pages)
        .with_trusted_proxies(options.trusted_proxies.parse().expect("trusted proxies"));
        if let Some(dir) = &outbox {
            state = state.with_outbox_dir(dir.clone());
        }
        tokio::spawn(serve(
            web_listener,
            kitsuki_gateway::router(state),
            Readiness::new(),
            shutdown.clone(),
        ));

        TestApp {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            outbox,
            circulation,
            circulation_clocks,
            circulation_stops,
            patron_db,
            bus,
            subscriptions: tokio::sync::Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Stops the gRPC listener of `branch`'s circulation instance, as if its process were
    /// gone: its port refuses connections from then on.
    pub async fn stop_circulation(&self, branch: Branch) {
        let i = Branch::ALL.iter().position(|b| *b == branch).unwrap();
        self.circulation_stops[i].trigger();
        // The listener closes at once; give the server a moment to drop its connections.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One JSON API call: `bearer` as `Authorization`, `body` as JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request(method, path, |mut r| {
            if let Some(token) = bearer {
                r = r.bearer_auth(token);
            }
            if let Some(body) = &body {
                r = r.json(body);
            }
            r
        })
        .await
    }

    /// Any request, shaped by `build`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = build(self.http.request(method, self.url(path)))
            .send()
            .await
            .expect("the gateway answers");
        Reply::read(response).await
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: self.http.clone(),
            base: self.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    /// The next event of `subject` that patron-account's outbox published: what the
    /// notification service would make a mail of. One per call, in order.
    pub async fn next_event<M: prost::Message + Default>(&self, subject: &str) -> M {
        publish_pending_once(&self.patron_db, &self.bus)
            .await
            .expect("publish patron-account's outbox");
        let mut subscriptions = self.subscriptions.lock().await;
        if !subscriptions.contains_key(subject) {
            let durable = format!("test-{}", subject.replace('.', "-"));
            let subscription = self
                .bus
                .subscribe(&ConsumerSpec::new(durable, subject))
                .await
                .unwrap();
            subscriptions.insert(subject.to_string(), subscription);
        }
        let subscription = subscriptions.get_mut(subject).unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("no {subject} event within 10 s"))
            .expect("subscription open")
            .expect("bus delivery");
        let message = M::decode(delivery.event.payload.as_slice()).expect("event decodes");
        delivery.ack().await.unwrap();
        message
    }

    /// The token of the next verification link mailed (rule P9).
    pub async fn verification_token(&self) -> String {
        self.next_event::<kitsuki_proto::events::EmailVerificationRequested>(
            "patron.email.verification_requested",
        )
        .await
        .token
    }

    /// The token of the next password-reset link mailed (rule P11).
    pub async fn reset_token(&self) -> String {
        self.next_event::<kitsuki_proto::events::PasswordResetRequested>(
            "patron.password.reset_requested",
        )
        .await
        .token
    }

    /// The page of the newest sent mail of `subject`, as `/dev/outbox` links it. The
    /// notification service works in the background, so the list is asked again until the
    /// mail is there.
    pub async fn sent_mail_page(&self, subject: &str) -> String {
        let marker = format!("\">{subject}</a>");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.request("GET", "/dev/outbox", |r| r).await;
            assert_eq!(list.status, StatusCode::OK, "{}", list.text);
            // Newest first: the first row of that subject is the newest mail.
            if let Some(end) = list.text.find(&marker) {
                let start = list.text[..end].rfind("href=\"").unwrap() + "href=\"".len();
                return list.text[start..end].to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no sent mail 「{subject}」 listed within 20 s: {}",
                list.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The delivery ids of the mail files in the outbox folder, once there are `count`.
    pub async fn outbox_files(&self, count: usize) -> Vec<String> {
        let dir = self
            .outbox
            .as_ref()
            .expect("the app runs with Options::mail");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ids: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter_map(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            name.strip_suffix(".eml")
                                .filter(|id| !id.starts_with('.'))
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if ids.len() >= count {
                return ids;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} mail files within 20 s",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A staff (or admin) session token through `POST /api/v1/staff/session`.
    pub async fn staff_login(&self, username: &str, password: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/api/v1/staff/session",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "staff login: {}", reply.text);
        reply.json()["token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.staff_login("admin", ADMIN_PASSWORD).await
    }

    /// A new staff account assigned to `branches`, logged in.
    pub async fn staff_of(&self, username: &str, branches: &[&str]) -> String {
        let admin = self.admin_token().await;
        let password = format!("{username}-password-123");
        let reply = self
            .call(
                "POST",
                "/api/v1/admin/staff",
                Some(&admin),
                Some(json!({"username": username, "password": password, "branches": branches, "role": "staff"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        self.staff_login(username, &password).await
    }

    /// Registers a patron at `branch` (rule P2) and answers the card number.
    pub async fn register_patron(
        &self,
        staff: &str,
        branch: &str,
        name: &str,
        birth_date: &str,
        email: Option<&str>,
    ) -> String {
        let mut body = json!({
            "name": name, "name_reading": "キツキ タロウ", "birth_date": birth_date,
            "id_document": "driving_licence",
        });
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let reply = self
            .call(
                "POST",
                &format!("/api/v1/branches/{branch}/patrons"),
                Some(staff),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["card_number"].as_str().unwrap().to_string()
    }

    /// Enables web service (rule P3) and answers the temporary password.
    pub async fn enable_web_service(&self, staff: &str, branch: &str, card: &str) -> String {
        let reply = self
            .call(
                "POST",
                &format!("/api/v1/branches/{branch}/patrons/{card}/web-service"),
                Some(staff),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["temporary_password"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A patron registered at the main library with web service enabled: (card number,
    /// temporary password).
    pub async fn web_patron(&self, name: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let card = self
            .register_patron(&admin, "kitsuki", name, ADULT, None)
            .await;
        let password = self.enable_web_service(&admin, "kitsuki", &card).await;
        (card, password)
    }

    /// `POST /api/v1/session`: the whole reply.
    pub async fn patron_login(&self, card: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"card_number": card, "password": password})),
        )
        .await
    }

    /// A patron session token.
    pub async fn patron_token(&self, card: &str, password: &str) -> String {
        let reply = self.patron_login(card, password).await;
        assert_eq!(reply.status, StatusCode::OK, "patron login: {}", reply.text);
        reply.json()["token"].as_str().unwrap().to_string()
    }

    /// Registers `email` for the patron of `token` and opens its link (rule P9).
    pub async fn verify_email(&self, token: &str, email: &str) {
        let reply = self
            .call(
                "POST",
                "/api/v1/me/email",
                Some(token),
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
        let link = self.verification_token().await;
        let reply = self
            .call(
                "POST",
                "/api/v1/email-verifications",
                None,
                Some(json!({"token": link})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    }
}

// ---------------------------------------------------------------------------------------
// Circulation (with [`Options::circulation`]).

/// How long a test waits for what the services do in the background (events).
pub const EVENTUALLY: Duration = Duration::from_secs(20);

impl TestApp {
    /// A title through the admin API: its id.
    pub async fn new_title(&self, admin: &str, title: &str, kind: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/api/v1/admin/titles",
                Some(admin),
                Some(json!({"title": title, "author": "夏目漱石", "type": kind})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["title_id"].as_str().unwrap().to_string()
    }

    /// A copy of `title_id` at `branch` through the admin API.
    pub async fn new_item(&self, admin: &str, title_id: &str, barcode: &str, branch: &str) {
        let reply = self
            .call(
                "POST",
                "/api/v1/admin/items",
                Some(admin),
                Some(json!({"title_id": title_id, "barcode": barcode, "branch": branch, "call_number": "913.6/ナ"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    /// A title of `kind` with copies `(barcode, branch)`, once circulation has projected
    /// every copy from the catalogue's events (the instances share one database, so one
    /// of them is asked).
    pub async fn title_with_copies(
        &self,
        admin: &str,
        title: &str,
        kind: &str,
        copies: &[(&str, &str)],
    ) -> String {
        let id = self.new_title(admin, title, kind).await;
        for (barcode, branch) in copies {
            self.new_item(admin, &id, barcode, branch).await;
        }
        let title_id = TitleId::parse(&id).unwrap();
        let circulation = self
            .circulation
            .first()
            .expect("the app runs with Options::circulation");
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let known = circulation
                .title_holdability(std::slice::from_ref(&title_id))
                .await
                .unwrap();
            if known.first().map(|t| t.copies as usize) == Some(copies.len()) {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "circulation did not project the copies of {title} within {EVENTUALLY:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /api/v1/titles/{id}` once `ready` holds of it: the catalogue follows
    /// circulation's item status events.
    pub async fn title_when(
        &self,
        title_id: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let reply = self
                .call("GET", &format!("/api/v1/titles/{title_id}"), None, None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let title = reply.json();
            if ready(&title) {
                return title;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the catalogue did not show {what} within {EVENTUALLY:?}: {title}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every copy of the title is off the shelf in the catalogue (rule H1's
    /// button then shows).
    pub async fn title_all_out(&self, title_id: &str) -> Value {
        self.title_when(title_id, "holdable", |t| t["holdable"] == true)
            .await
    }

    /// A patron with web service and a verified address (rules P3, H3), logged in:
    /// (card number, password, token).
    pub async fn hold_patron(&self, name: &str, email: &str) -> (String, String, String) {
        let (card, password) = self.web_patron(name).await;
        let token = self.patron_token(&card, &password).await;
        self.verify_email(&token, email).await;
        (card, password, token)
    }

    /// `GET /api/v1/me/holds` of `token`, once `ready` holds (holds move by events).
    pub async fn holds_when(
        &self,
        token: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let reply = self
                .call("GET", "/api/v1/me/holds", Some(token), None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let holds = reply.json();
            if ready(&holds) {
                return holds;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the holds did not show {what} within {EVENTUALLY:?}: {holds}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A desk call of `staff` at `branch`: `POST /api/v1/branches/{branch}/{what}`.
    pub async fn desk(&self, staff: &str, branch: &str, what: &str, body: Value) -> Reply {
        self.call(
            "POST",
            &format!("/api/v1/branches/{branch}/{what}"),
            Some(staff),
            Some(body),
        )
        .await
    }

    /// Lends `barcode` to `card` at `branch`'s desk: the loan.
    pub async fn lend(&self, staff: &str, branch: &str, card: &str, barcode: &str) -> Value {
        let reply = self
            .desk(
                staff,
                branch,
                "checkouts",
                json!({"card_number": card, "barcode": barcode}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "checkout: {}",
            reply.text
        );
        reply.json()
    }

    /// A patron who only borrows (no web service needed): registered at the main library.
    pub async fn borrower(&self, name: &str) -> String {
        let admin = self.admin_token().await;
        self.register_patron(&admin, "kitsuki", name, ADULT, None)
            .await
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `code` of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text))
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or_default()
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the hidden `csrf` field of the page's (first) form.
    pub fn csrf_field(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .text
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf field in {}", self.text))
            + marker.len();
        let end = self.text[start..].find('"').unwrap() + start;
        self.text[start..end].to_string()
    }
}

/// A browser without JavaScript: it keeps cookies as a browser would (the tests check
/// their attributes on the `Set-Cookie` lines) and follows no redirect by itself.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, reply: &Reply) {
        for line in reply.headers.get_all(header::SET_COOKIE) {
            let line = line.to_str().unwrap();
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || line.contains("Max-Age=0");
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let reply = Reply::read(request.send().await.expect("the gateway answers")).await;
        self.absorb(&reply);
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// POSTs a form exactly as given (no token added).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let request = self.http.post(format!("{}{path}", self.base)).form(fields);
        self.send(request).await
    }

    /// Submits a form of `page`: its `csrf` field plus `fields`.
    pub async fn submit(&mut self, page: &Reply, path: &str, fields: &[(&str, &str)]) -> Reply {
        let token = page.csrf_field();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// Opens `form_page`, then submits its form to `path` with `fields`.
    pub async fn fill(&mut self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(form_page).await;
        assert_eq!(page.status, StatusCode::OK, "{form_page}: {}", page.text);
        self.submit(&page, path, fields).await
    }

    /// Logs a patron in through the login page.
    pub async fn log_in(&mut self, card: &str, password: &str) -> Reply {
        let reply = self
            .fill(
                "/login",
                "/login",
                &[("card_number", card), ("password", password)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "login: {}", reply.text);
        reply
    }

    /// Logs a staff member in through the staff login page.
    pub async fn staff_log_in(&mut self, username: &str, password: &str) -> Reply {
        let reply = self
            .fill(
                "/staff/login",
                "/staff/login",
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "staff login: {}",
            reply.text
        );
        reply
    }
}

/// The security headers every response must carry (pages, API, errors, redirects).
pub fn assert_security_headers(reply: &Reply, what: &str) {
    assert_eq!(
        reply.header("content-security-policy"),
        Some(kitsuki_gateway::web::security::CONTENT_SECURITY_POLICY),
        "{what}"
    );
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header("referrer-policy"),
        Some("same-origin"),
        "{what}"
    );
}
