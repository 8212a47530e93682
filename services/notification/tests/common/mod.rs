//! Helpers of the notification tests: the Python SMTP sink as a child process on a free
//! port, a fixed contact directory, the real catalog service (SQLite, gRPC on a loopback
//! port) for the titles of hold mails, hold events, a small MIME reader (lettre encodes
//! non-ASCII headers as RFC 2047 encoded words and Japanese bodies as base64), a notifier
//! on a fresh PostgreSQL database or SQLite file, and waits with deadlines instead of
//! sleeps.

#![allow(dead_code)]

pub mod mime;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_notification::{
    Contact, ContactDirectory, MailTransport, Notifier, NotifierConfig, RetryPolicy,
};
use kitsuki_platform::bus::{Event, SharedBus};
use kitsuki_platform::clock::{Clock, SharedClock, SystemClock, format_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::events;
use kitsuki_platform::shutdown::Shutdown;
use kitsuki_platform::testing;
use kitsuki_proto::events as ev;
use kitsuki_proto::{ErrorCode, ServiceError};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub const DEADLINE: Duration = Duration::from_secs(20);

// Not every test file of the crate runs on both backends.
#[allow(unused_imports)]
pub use kitsuki_platform::on_both_backends;
pub use kitsuki_platform::testing::{Backend, free_port, fresh_db};

/// A fresh temporary folder.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kitsuki-{what}-{}", testing::unique_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A config for tests: fast back-off and polling.
pub fn config(transport: MailTransport) -> NotifierConfig {
    let mut c = NotifierConfig::new(transport);
    c.retry = RetryPolicy {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    c.poll_every = Duration::from_millis(100);
    c.smtp_timeout = Duration::from_secs(5);
    c.consumer_prefix = format!("notification-{}", testing::unique_id());
    c
}

pub async fn notifier(db: Db, config: NotifierConfig, contacts: Arc<FixedContacts>) -> Notifier {
    notifier_with_clock(db, config, contacts, Arc::new(SystemClock)).await
}

pub async fn notifier_with_clock(
    db: Db,
    config: NotifierConfig,
    contacts: Arc<FixedContacts>,
    clock: SharedClock,
) -> Notifier {
    Notifier::open(db, config, clock, contacts)
        .await
        .expect("open the notifier")
}

/// Runs the consumers, the sender and the relay until the returned shutdown is triggered.
pub fn run(notifier: &Notifier, bus: SharedBus) -> Shutdown {
    let shutdown = Shutdown::new();
    notifier.spawn(bus, &shutdown);
    shutdown
}

/// Polls `check` until it gives `Some`, failing the test at the deadline.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- events ---------------------------------------------------------------------------

fn meta(id: &str) -> Option<ev::EventMeta> {
    Some(ev::EventMeta {
        event_id: id.to_string(),
        occurred_at: format_instant(SystemClock.now()),
    })
}

pub fn verification_requested(
    card: &str,
    verification_id: &str,
    token: &str,
    expires_at: &str,
) -> Event {
    let id = events::new_event_id();
    events::build(
        "patron.email.verification_requested",
        id.clone(),
        &format_instant(SystemClock.now()),
        &ev::EmailVerificationRequested {
            meta: meta(&id),
            card_number: card.to_string(),
            verification_id: verification_id.to_string(),
            token: token.to_string(),
            expires_at: expires_at.to_string(),
        },
    )
}

pub fn email_changed(card: &str) -> Event {
    let id = events::new_event_id();
    events::build(
        "patron.email.changed",
        id.clone(),
        &format_instant(SystemClock.now()),
        &ev::EmailChanged {
            meta: meta(&id),
            card_number: card.to_string(),
        },
    )
}

pub fn reset_requested(card: &str, token: &str, expires_at: &str) -> Event {
    let id = events::new_event_id();
    events::build(
        "patron.password.reset_requested",
        id.clone(),
        &format_instant(SystemClock.now()),
        &ev::PasswordResetRequested {
            meta: meta(&id),
            card_number: card.to_string(),
            token: token.to_string(),
            expires_at: expires_at.to_string(),
        },
    )
}

// ---- contacts -------------------------------------------------------------------------

/// A contact directory with fixed answers, standing in for patron-account in this
/// crate's tests: the address in force per card, the address under verification per
/// verification id, and a number of calls to fail first (a peer that is down).
#[derive(Debug, Default)]
pub struct FixedContacts {
    in_force: Mutex<HashMap<String, Contact>>,
    verifying: Mutex<HashMap<String, Contact>>,
    fail_next: AtomicUsize,
    pub calls: AtomicUsize,
}

impl FixedContacts {
    pub fn new() -> Arc<FixedContacts> {
        Arc::new(FixedContacts::default())
    }

    pub fn with(self: Arc<Self>, card: &str, email: &str) -> Arc<Self> {
        self.in_force
            .lock()
            .unwrap()
            .insert(card.to_string(), contact(card, email));
        self
    }

    pub fn verifying(self: Arc<Self>, verification_id: &str, card: &str, email: &str) -> Arc<Self> {
        self.verifying
            .lock()
            .unwrap()
            .insert(verification_id.to_string(), contact(card, email));
        self
    }

    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

fn contact(card: &str, email: &str) -> Contact {
    Contact {
        card_number: card.to_string(),
        name: "杵築 花子".to_string(),
        email: email.to_string(),
    }
}

#[async_trait]
impl ContactDirectory for FixedContacts {
    async fn contact(
        &self,
        card_number: &str,
        verification_id: Option<&str>,
    ) -> Result<Option<Contact>, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ServiceError::new(ErrorCode::Unavailable));
        }
        Ok(match verification_id {
            Some(v) => self
                .verifying
                .lock()
                .unwrap()
                .get(v)
                .filter(|c| c.card_number == card_number)
                .cloned(),
            None => self.in_force.lock().unwrap().get(card_number).cloned(),
        })
    }
}

// ---- the SMTP sink --------------------------------------------------------------------

/// `tests/smtp_sink.py` running on a port, killed when dropped.
pub struct Sink {
    pub port: u16,
    pub dir: PathBuf,
    _child: Child,
    _stdin: ChildStdin,
}

impl Sink {
    /// Starts the sink on `port`, writing into `dir`, and waits for its "ready". When the
    /// port was taken meanwhile (a free port is only free when probed; tests run in
    /// parallel), the sink exits at once and another free port is tried.
    pub async fn start(port: u16, dir: &Path) -> Sink {
        let mut port = port;
        for _ in 0..4 {
            match Self::try_start(port, dir).await {
                Ok(sink) => return sink,
                Err(()) => port = free_port(),
            }
        }
        Self::try_start(port, dir)
            .await
            .unwrap_or_else(|()| panic!("the SMTP sink exited before it got ready"))
    }

    /// One start; `Err` when the sink exited without "ready" (its port in use).
    async fn try_start(port: u16, dir: &Path) -> Result<Sink, ()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(DEADLINE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        match ready {
            Ok(true) => Ok(Sink {
                port,
                dir: dir.to_path_buf(),
                _child: child,
                _stdin: stdin,
            }),
            Ok(false) => Err(()),
            Err(_) => panic!("the SMTP sink did not get ready within {DEADLINE:?}"),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// The complete mails in a folder (`*.eml`, temporary files excluded), by name.
pub fn mails_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    (name.ends_with(".eml") && !name.starts_with('.'))
                        .then(|| std::fs::read(e.path()).ok().map(|b| (name, b)))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The envelope recipients the sink recorded beside mail `name` (`000001.eml`).
pub fn envelope_recipients(dir: &Path, name: &str) -> Vec<String> {
    let json = std::fs::read(dir.join(name.replace(".eml", ".json"))).expect("envelope");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("envelope json");
    v["rcpt_tos"]
        .as_array()
        .expect("rcpt_tos")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect()
}

// ---- hold events ----------------------------------------------------------------------

/// A hold event of `kind` on `circulation.<pickup>.hold.<kind>` (published, as circulation
/// does, by the instance of the branch that made the change: here the pickup branch).
pub fn hold_event(kind: &str, hold: ev::HoldEvent) -> Event {
    let id = events::new_event_id();
    let subject = format!("circulation.{}.hold.{kind}", hold.pickup_branch);
    events::build(
        subject,
        id.clone(),
        &format_instant(SystemClock.now()),
        &ev::HoldEvent {
            meta: meta(&id),
            kind: kind.to_string(),
            ..hold
        },
    )
}

/// The facts of a hold, for [`hold_event`]: a fresh hold id.
pub fn hold(card: &str, title_id: &str, pickup: &str) -> ev::HoldEvent {
    ev::HoldEvent {
        hold_id: format!("hold-{}", testing::unique_id()),
        card_number: card.to_string(),
        title_id: title_id.to_string(),
        pickup_branch: pickup.to_string(),
        ..ev::HoldEvent::default()
    }
}

// ---- the catalog ----------------------------------------------------------------------

/// The real catalog service: `kitsuki_catalog::Catalog` on a fresh SQLite file with an
/// in-memory index, its gRPC served on a loopback port until the test ends.
pub struct CatalogServer {
    pub url: String,
}

impl CatalogServer {
    pub async fn start() -> CatalogServer {
        let db = db::connect(&testing::fresh_sqlite_url())
            .await
            .expect("catalog database");
        let catalog = kitsuki_catalog::Catalog::open(db, None, Arc::new(SystemClock))
            .await
            .expect("open the catalog");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(kitsuki_catalog::grpc::CatalogGrpc::new(catalog).into_server())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        CatalogServer {
            url: format!("http://{addr}"),
        }
    }

    /// Creates a book through the catalog's gRPC; returns its title id.
    pub async fn add_book(&self, title: &str, author: &str) -> String {
        self.add_book_by(title, author, "").await
    }

    /// [`CatalogServer::add_book`] with a statement of responsibility (`村上春樹 著`).
    pub async fn add_book_by(&self, title: &str, author: &str, responsibility: &str) -> String {
        use kitsuki_proto::catalog as pb;
        let mut client =
            pb::catalog_service_client::CatalogServiceClient::connect(self.url.clone())
                .await
                .expect("connect to the catalog");
        client
            .create_title(pb::CreateTitleRequest {
                title: Some(pb::NewTitle {
                    title: title.to_string(),
                    author: author.to_string(),
                    responsibility: responsibility.to_string(),
                    r#type: pb::MaterialType::Book as i32,
                    ..pb::NewTitle::default()
                }),
            })
            .await
            .expect("create a title")
            .into_inner()
            .title_id
    }

    pub fn titles(&self) -> Arc<kitsuki_notification::GrpcTitles> {
        Arc::new(kitsuki_notification::GrpcTitles::connect_lazy(&self.url).expect("catalog URL"))
    }
}

// ---- the outbox -----------------------------------------------------------------------

/// The `MailSent` events in the notifier's outbox, oldest first.
pub async fn mail_sent_in_outbox(db: &Db) -> Vec<ev::MailSent> {
    use prost::Message;
    use sqlx::Row;
    let rows = sqlx::query("SELECT payload FROM outbox WHERE subject = $1 ORDER BY event_id")
        .bind(kitsuki_notification::MAIL_SENT_SUBJECT)
        .fetch_all(&db.pool)
        .await
        .expect("read the outbox");
    rows.iter()
        .map(|r| {
            let payload: Vec<u8> = r.try_get("payload").expect("payload");
            ev::MailSent::decode(payload.as_slice()).expect("MailSent")
        })
        .collect()
}
