//! The distributed system of issue 4 as separate processes, for the cross-process
//! circulation tests and the benches: catalog, patron-account, notification, one
//! circulation instance per branch (kitsuki, yamaga, ota) over one shared PostgreSQL
//! database, and the gateway, over NATS JetStream, with mail going to a real SMTP server
//! and the test clock enabled in every process. Each start takes fresh databases and a
//! fresh subject prefix, so tests run in parallel.
//!
//! Single processes can be stopped, killed and started again on the same databases (the
//! fault tests); the calls the scenarios share live here too: the JSON API, patrons with a
//! verified address, the notification service's delivery log, a process's own test clock.

use std::path::PathBuf;
use std::time::Duration;

use kitsuki_platform::testing;
use kitsuki_proto::notification::Delivery;
use kitsuki_proto::notification::notification_service_client::NotificationServiceClient;
use kitsuki_proto::testclock::test_clock_service_client::TestClockServiceClient;
use serde_json::{Value, json};

use super::{Proc, SmtpSink, eventually, free_port, link_token, start, temp_dir, wait_ready};

/// The branches, in the order of [`System::circulation`].
pub const BRANCHES: [&str; 3] = ["kitsuki", "yamaga", "ota"];

/// The subject of the ready mail (N1, H8), as the delivery log shows it.
pub const READY_SUBJECT: &str = "資料について用意ができました";

/// The ready mail's subject line in a decoded mail ([`super::decode_mail`]). The subject
/// alone is no mark of a ready mail: the confirmation mail announces the ready mail by
/// name in its body.
pub const READY_MAIL: &str = "Subject: 資料について用意ができました";

/// The gateway's JSON API.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    /// One call; the status and the body as JSON (`Null` when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        };
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// What every process of one system is started with: the same bus, folder and databases,
/// so that a process started again continues where its predecessor stopped.
struct Launcher {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    catalog_db: String,
    patron_db: String,
    notification_db: String,
    circulation_db: String,
    smtp_url: String,
    admin_pw: String,
}

impl Launcher {
    fn run(&self, name: &str, args: &[&str], extra: &[(&'static str, String)]) -> Proc {
        let mut envs = self.env.clone();
        envs.extend_from_slice(extra);
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start(name, args, &envs, &self.dir)
    }
}

/// The running system. Field order is drop order: the gateway stops first, the SMTP
/// server last.
pub struct System {
    pub gateway: Proc,
    /// kitsuki, yamaga, ota (as [`BRANCHES`]).
    pub circulation: Vec<Proc>,
    pub notification: Proc,
    pub patron: Proc,
    pub catalog: Proc,
    pub sink: SmtpSink,
    pub api: Api,
    pub dir: PathBuf,
    pub admin_pw: String,
    launcher: Launcher,
}

impl System {
    /// Starts every role on fresh databases and a fresh subject prefix and waits until each
    /// is ready. `tag` names the temporary folder.
    pub async fn start(tag: &str) -> System {
        System::start_with(tag, &[]).await
    }

    /// [`System::start`] with `env` added to the environment of every process it starts
    /// (now and on restarts), e.g. an OTLP endpoint.
    pub async fn start_with(tag: &str, env: &[(&'static str, String)]) -> System {
        let dir = temp_dir(tag);
        let sink = SmtpSink::start(free_port(), &dir.join("smtp"));
        let admin_pw = super::random_password();
        let mut common_env = vec![
            ("KITSUKI_NATS_URL", testing::nats_url()),
            ("KITSUKI_BUS_PREFIX", testing::unique_prefix()),
            ("KITSUKI_DATA_DIR", dir.to_string_lossy().to_string()),
            ("KITSUKI_TEST_CLOCK", "true".to_string()),
        ];
        common_env.extend_from_slice(env);
        let launcher = Launcher {
            env: common_env,
            dir: dir.clone(),
            catalog_db: testing::fresh_pg_database().await.unwrap(),
            patron_db: testing::fresh_pg_database().await.unwrap(),
            notification_db: testing::fresh_pg_database().await.unwrap(),
            circulation_db: testing::fresh_pg_database().await.unwrap(),
            smtp_url: sink.url(),
            admin_pw: admin_pw.clone(),
        };
        let catalog = launcher.run(
            "catalog",
            &["catalog", "--listen", "127.0.0.1:0"],
            &[("KITSUKI_DATABASE_URL", launcher.catalog_db.clone())],
        );
        let patron = launcher.run(
            "patron",
            &["patron", "--listen", "127.0.0.1:0"],
            &[
                ("KITSUKI_DATABASE_URL", launcher.patron_db.clone()),
                ("KITSUKI_ADMIN_PASSWORD", launcher.admin_pw.clone()),
            ],
        );
        let notification = start_notification(&launcher, &patron.url, &catalog.url);
        let circulation: Vec<Proc> = BRANCHES
            .iter()
            .map(|b| start_circulation(&launcher, b, "127.0.0.1:0", &patron.url))
            .collect();
        let mut peers = vec![
            catalog.url.clone(),
            patron.url.clone(),
            notification.url.clone(),
        ];
        peers.extend(circulation.iter().map(|p| p.url.clone()));
        let gateway = start_gateway(&launcher, &catalog, &patron, &circulation, &peers);
        let api = Api {
            http: reqwest::Client::new(),
            base: gateway.url.clone(),
        };
        let sys = System {
            gateway,
            circulation,
            notification,
            patron,
            catalog,
            sink,
            api,
            dir,
            admin_pw,
            launcher,
        };
        for p in sys.processes() {
            wait_ready(&sys.api.http, &p.url).await;
        }
        sys
    }

    /// Every process of the system (whether it still runs or not).
    pub fn processes(&self) -> Vec<&Proc> {
        let mut all = vec![&self.catalog, &self.patron, &self.notification];
        all.extend(self.circulation.iter());
        all.push(&self.gateway);
        all
    }

    /// The circulation instance of `branch`.
    pub fn circulation_of(&mut self, branch: &str) -> &mut Proc {
        let i = BRANCHES
            .iter()
            .position(|b| *b == branch)
            .expect("kitsuki, yamaga or ota");
        &mut self.circulation[i]
    }

    /// `kitsuki circulation --branch BRANCH` on the system's circulation database,
    /// listening on `listen` (`127.0.0.1:0`, or a predecessor's address).
    pub fn start_circulation(&self, branch: &str, listen: &str) -> Proc {
        start_circulation(&self.launcher, branch, listen, &self.patron.url)
    }

    /// `kitsuki notification` on the system's notification database (a new port).
    pub fn start_notification(&self) -> Proc {
        start_notification(&self.launcher, &self.patron.url, &self.catalog.url)
    }

    /// Stops the gateway (if it runs) and starts a new one with the current addresses of
    /// the peers. Its test clock peers are the processes running now: the gateway walks
    /// them one after the other and stops at one that does not answer, so a stopped
    /// process must not be among them. Sessions live in patron-account and survive.
    pub async fn restart_gateway(&mut self) {
        if self.gateway.is_running() {
            self.gateway.terminate();
        }
        let mut running = Vec::new();
        for p in [&mut self.catalog, &mut self.patron, &mut self.notification] {
            if p.is_running() {
                running.push(p.url.clone());
            }
        }
        for p in self.circulation.iter_mut() {
            if p.is_running() {
                running.push(p.url.clone());
            }
        }
        self.gateway = start_gateway(
            &self.launcher,
            &self.catalog,
            &self.patron,
            &self.circulation,
            &running,
        );
        self.api.base = self.gateway.url.clone();
        wait_ready(&self.api.http, &self.gateway.url).await;
    }

    /// A session of the bootstrap staff account `admin` (all branches).
    pub async fn staff(&self) -> String {
        login(
            &self.api,
            "/api/v1/staff/session",
            json!({"username": "admin", "password": self.admin_pw}),
        )
        .await
    }

    /// The notification service's delivery log (its gRPC), newest first, up to 500.
    pub async fn deliveries(&self) -> Vec<Delivery> {
        deliveries(&self.notification.url).await
    }

    /// Waits until no delivery of the notification service is pending — every mail it was
    /// asked for has been handed to the SMTP server or given up — and returns the log.
    pub async fn settled_deliveries(&self) -> Vec<Delivery> {
        eventually(
            "every delivery settled",
            Duration::from_secs(60),
            || async {
                let log = self.deliveries().await;
                log.iter().all(|d| d.status != "pending").then_some(log)
            },
        )
        .await
    }
}

/// `kitsuki gateway` in front of these peers, moving the test clocks of `clock_peers`.
fn start_gateway(
    launcher: &Launcher,
    catalog: &Proc,
    patron: &Proc,
    circulation: &[Proc],
    clock_peers: &[String],
) -> Proc {
    launcher.run(
        "gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--catalog-url",
            &catalog.url,
            "--patron-url",
            &patron.url,
            "--circulation-kitsuki-url",
            &circulation[0].url,
            "--circulation-yamaga-url",
            &circulation[1].url,
            "--circulation-ota-url",
            &circulation[2].url,
            "--test-clock-peers",
            &clock_peers.join(","),
        ],
        &[],
    )
}

fn start_circulation(launcher: &Launcher, branch: &str, listen: &str, patron_url: &str) -> Proc {
    launcher.run(
        &format!("circulation {branch}"),
        &[
            "circulation",
            "--branch",
            branch,
            "--listen",
            listen,
            "--patron-url",
            patron_url,
        ],
        &[("KITSUKI_DATABASE_URL", launcher.circulation_db.clone())],
    )
}

fn start_notification(launcher: &Launcher, patron_url: &str, catalog_url: &str) -> Proc {
    launcher.run(
        "notification",
        &[
            "notification",
            "--listen",
            "127.0.0.1:0",
            "--patron-url",
            patron_url,
            "--catalog-url",
            catalog_url,
        ],
        &[
            ("KITSUKI_DATABASE_URL", launcher.notification_db.clone()),
            ("KITSUKI_SMTP_URL", launcher.smtp_url.clone()),
            ("KITSUKI_MAIL_RETRY_BASE_MS", "200".to_string()),
            ("KITSUKI_MAIL_RETRY_MAX_MS", "1000".to_string()),
        ],
    )
}

/// A notification service's delivery log (its gRPC), newest first, up to 500.
pub async fn deliveries(url: &str) -> Vec<Delivery> {
    let mut c = NotificationServiceClient::connect(url.to_string())
        .await
        .unwrap();
    c.list_deliveries(kitsuki_proto::notification::ListDeliveriesRequest { limit: 500 })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// The test clock of one process (RFC 3339 UTC), asked over its own gRPC.
pub async fn clock_now(url: &str) -> String {
    let mut c = TestClockServiceClient::connect(url.to_string())
        .await
        .unwrap();
    c.now(kitsuki_proto::testclock::NowRequest {})
        .await
        .unwrap()
        .into_inner()
        .now
}

/// Moves the test clock of one process by `days`, as the gateway's
/// `POST /api/v1/test/clock` does for each of its peers; returns the new time.
pub async fn advance_clock(url: &str, days: u32) -> String {
    let mut c = TestClockServiceClient::connect(url.to_string())
        .await
        .unwrap();
    c.r#move(kitsuki_proto::testclock::MoveClockRequest {
        advance_days: days,
        now: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .now
}

/// Waits until the sink has received `n` mails containing `needle`, and returns them.
pub async fn mails_matching(sink: &SmtpSink, needle: &str, n: usize) -> Vec<String> {
    eventually(
        &format!("{n} mails containing {needle}"),
        Duration::from_secs(60),
        || async {
            let m: Vec<String> = sink
                .mails()
                .into_iter()
                .filter(|m| m.contains(needle))
                .collect();
            (m.len() >= n).then_some(m)
        },
    )
    .await
}

/// A patron registered at the counter, web-enabled, logged in, with a verified address:
/// the card number, a session token and the (temporary) password.
pub async fn web_patron(
    api: &Api,
    sink: &SmtpSink,
    staff: &str,
    name: &str,
    email: &str,
) -> (String, String, String) {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/kitsuki/patrons",
            Some(staff),
            Some(json!({"name": name, "name_reading": "てすと", "birth_date": "1985-07-07", "id_document": "driving_licence"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let card = v["card_number"].as_str().unwrap().to_string();
    let (_, v) = api
        .call(
            "POST",
            &format!("/api/v1/branches/kitsuki/patrons/{card}/web-service"),
            Some(staff),
            Some(json!({})),
        )
        .await;
    let temporary = v["temporary_password"].as_str().unwrap().to_string();
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"card_number": card, "password": temporary})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&token),
            Some(json!({"email": email})),
        )
        .await;
    assert_eq!(s, 202);
    verify_address(api, sink, email).await;
    (card, token, temporary)
}

/// A patron registered at the counter with an address, verified by the link of the
/// verification mail (P9), without the web service: enough to receive hold mails of
/// counter holds, and quicker than [`web_patron`] (no password hashing).
pub async fn patron_with_address(
    api: &Api,
    sink: &SmtpSink,
    staff: &str,
    name: &str,
    email: &str,
) -> String {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/kitsuki/patrons",
            Some(staff),
            Some(json!({"name": name, "name_reading": "てすと", "birth_date": "1985-07-07", "id_document": "driving_licence", "email": email})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    verify_address(api, sink, email).await;
    v["card_number"].as_str().unwrap().to_string()
}

/// Opens the link of the verification mail sent to `email`.
async fn verify_address(api: &Api, sink: &SmtpSink, email: &str) {
    let mail = mails_matching(sink, email, 1).await;
    let verify = link_token(&mail[0], "/email/verify").unwrap();
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/email-verifications",
            None,
            Some(json!({"token": verify})),
        )
        .await;
    assert_eq!(s, 204);
}

/// A patron without web service or address (a borrower at the desk).
pub async fn counter_patron(api: &Api, staff: &str, name: &str) -> String {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/branches/kitsuki/patrons",
            Some(staff),
            Some(json!({"name": name, "name_reading": "てすと", "birth_date": "1985-07-07", "id_document": "driving_licence"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["card_number"].as_str().unwrap().to_string()
}

/// Logs in at `path` (patron or staff session) and returns the token.
pub async fn login(api: &Api, path: &str, body: Value) -> String {
    let (s, v) = api.call("POST", path, None, Some(body)).await;
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// The first of the patron's holds (`Null` when there is none).
pub async fn hold_of(api: &Api, token: &str) -> Value {
    let (s, v) = api.call("GET", "/api/v1/me/holds", Some(token), None).await;
    assert_eq!(s, 200, "{v}");
    v.as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or(Value::Null)
}

/// Sends SIGTERM to `p` and returns at once, so that the caller can watch what the
/// process does while it drains ([`Proc::terminate`] blocks until it is gone).
pub fn sigterm(p: &Proc) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(p.pid().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success(), "SIGTERM to {}", p.name);
}

/// Waits (without blocking the runtime) until `p` has exited and returns its status;
/// panics if it still runs after `within` — a process that outlives its grace period is
/// killed by the orchestrator (Kubernetes: `terminationGracePeriodSeconds`, less the
/// preStop sleep), in the middle of whatever it was doing.
pub async fn exit_status(p: &mut Proc, within: Duration) -> std::process::ExitStatus {
    let name = p.name.clone();
    eventually(&format!("{name} to exit"), within, || {
        let done = p.child.try_wait().ok().flatten();
        async move { done }
    })
    .await
}

impl System {
    /// `kitsuki gateway` again on `listen` (its predecessor's address once that one has
    /// stopped), with the current peers; every running process is a test clock peer.
    pub fn start_gateway_at(&mut self, listen: &str) -> Proc {
        let mut running = Vec::new();
        for p in [&mut self.catalog, &mut self.patron, &mut self.notification] {
            if p.is_running() {
                running.push(p.url.clone());
            }
        }
        for p in self.circulation.iter_mut() {
            if p.is_running() {
                running.push(p.url.clone());
            }
        }
        self.launcher.run(
            "gateway",
            &[
                "gateway",
                "--listen",
                listen,
                "--catalog-url",
                &self.catalog.url,
                "--patron-url",
                &self.patron.url,
                "--circulation-kitsuki-url",
                &self.circulation[0].url,
                "--circulation-yamaga-url",
                &self.circulation[1].url,
                "--circulation-ota-url",
                &self.circulation[2].url,
                "--test-clock-peers",
                &running.join(","),
            ],
            &[],
        )
    }

    /// How many events of the circulation database's outbox are not yet published.
    pub async fn circulation_outbox_pending(&self) -> i64 {
        let db = kitsuki_platform::db::connect(&self.launcher.circulation_db)
            .await
            .unwrap();
        kitsuki_platform::outbox::pending_count(&db).await.unwrap()
    }
}

/// The notification service's database, read directly: for a process that has stopped
/// and is not started again (the shutdown-order test), whose gRPC is gone with it.
impl System {
    /// `kitsuki notification` on the system's notification database (a new port), sending
    /// its mail to `smtp_url` instead of the system's sink (e.g. a slow link to it).
    pub fn start_notification_via(&self, smtp_url: &str) -> Proc {
        self.launcher.run(
            "notification",
            &[
                "notification",
                "--listen",
                "127.0.0.1:0",
                "--patron-url",
                &self.patron.url,
                "--catalog-url",
                &self.catalog.url,
            ],
            &[
                (
                    "KITSUKI_DATABASE_URL",
                    self.launcher.notification_db.clone(),
                ),
                ("KITSUKI_SMTP_URL", smtp_url.to_string()),
                ("KITSUKI_MAIL_RETRY_BASE_MS", "200".to_string()),
                ("KITSUKI_MAIL_RETRY_MAX_MS", "1000".to_string()),
            ],
        )
    }

    /// How many events of the notification database's outbox (`MailSent`) are not yet
    /// published.
    pub async fn notification_outbox_pending(&self) -> i64 {
        let db = kitsuki_platform::db::connect(&self.launcher.notification_db)
            .await
            .unwrap();
        kitsuki_platform::outbox::pending_count(&db).await.unwrap()
    }

    /// The ready mails (template `hold_ready`) in the notification service's delivery log,
    /// oldest first.
    pub async fn ready_deliveries_in_db(&self) -> Vec<ReadyDelivery> {
        let db = kitsuki_platform::db::connect(&self.launcher.notification_db)
            .await
            .unwrap();
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT params, status, attempts FROM deliveries WHERE template = 'hold_ready' \
             ORDER BY created_at",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(params, status, attempts)| {
                let params: Value = serde_json::from_str(&params).unwrap_or(Value::Null);
                ReadyDelivery {
                    hold_id: params["hold_id"].as_str().unwrap_or("").to_string(),
                    status,
                    attempts,
                }
            })
            .collect()
    }
}

/// A ready mail as the notification database records it.
#[derive(Debug, Clone)]
pub struct ReadyDelivery {
    pub hold_id: String,
    /// `sent` once the mail server took the mail and the mark and its `MailSent` were
    /// committed together; `pending` before.
    pub status: String,
    /// Attempts begun: a `pending` delivery with attempts is being sent (claimed).
    pub attempts: i64,
}

/// Creates a title (a book by `author`) with copies `(barcode, home branch)` through the
/// admin API and returns its id.
pub async fn title_with_copies(
    api: &Api,
    staff: &str,
    title: &str,
    author: &str,
    copies: &[(&str, &str)],
) -> String {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(staff),
            Some(json!({"title": title, "author": author, "type": "book"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let title_id = v["title_id"].as_str().unwrap().to_string();
    for (barcode, branch) in copies {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/admin/items",
                Some(staff),
                Some(json!({"title_id": title_id, "barcode": barcode, "branch": branch})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    title_id
}

/// Lends `barcode` to `card` at `branch`'s desk once circulation knows the item; asserts
/// the loan was made and returns the answer. An item registered through the admin API is
/// known at once (read-your-writes, ARCHITECTURE.md "Data"); one that comes by events only
/// (an import, a restart's backlog) may take a moment.
pub async fn checkout_when_known(
    api: &Api,
    staff: &str,
    branch: &str,
    card: &str,
    barcode: &str,
) -> Value {
    let (s, v) = super::eventually(
        "the item known to circulation",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call(
                    "POST",
                    &format!("/api/v1/branches/{branch}/checkouts"),
                    Some(staff),
                    Some(json!({"card_number": card, "barcode": barcode})),
                )
                .await;
            (s != 404).then_some((s, v))
        },
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}
