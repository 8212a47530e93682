//! How the notification service is set up: where mail goes (an SMTP server, or `.eml`
//! files in a folder for the embedded run), who sends it, the base of links, the retry
//! schedule (rule N2), and the branches' closed days that the ready mail's keep-until date
//! skips (rules H9, B2).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kitsuki_circulation::domain::calendar::LibraryCalendar;

use crate::domain::delivery::RetryPolicy;

/// The sender address of the guide (P8): carrier-mail users allow it by domain.
pub const DEFAULT_SENDER_ADDRESS: &str = "library@city.kitsuki.lg.jp";
/// The name shown beside the sender address.
pub const DEFAULT_SENDER_NAME: &str = "杵築市立図書館";
/// The embedded run's web address (API.md "Operations and tests").
pub const DEFAULT_PUBLIC_BASE_URL: &str = "http://localhost:8080";

/// Where mail goes.
#[derive(Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// An SMTP server: `smtp://host:port` (plain SMTP, for a relay on a private network or
    /// loopback); other URLs that lettre reads (`smtps://…`, `smtp://…?tls=required`,
    /// with credentials) are passed to it as they are.
    Smtp { url: String },
    /// One `<delivery id>.eml` file per mail in this folder (API.md: `<data dir>/outbox/`).
    Files { dir: PathBuf },
}

/// An SMTP URL may carry credentials: it prints without them.
impl fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailTransport::Smtp { url } => {
                let shown = match url.split_once("://") {
                    Some((scheme, rest)) => match rest.rsplit_once('@') {
                        Some((_, host)) => format!("{scheme}://…@{host}"),
                        None => url.clone(),
                    },
                    None => "(not a URL)".to_string(),
                };
                f.debug_struct("Smtp").field("url", &shown).finish()
            }
            MailTransport::Files { dir } => f.debug_struct("Files").field("dir", dir).finish(),
        }
    }
}

/// Settings of a [`crate::Notifier`].
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub transport: MailTransport,
    pub sender_address: String,
    pub sender_name: String,
    /// Base of the links in mails (`<base>/email/verify?token=…`).
    pub public_base_url: String,
    pub retry: RetryPolicy,
    /// Durable consumers are named `<prefix>-<source>` (and so are their inbox rows).
    pub consumer_prefix: String,
    /// How often the sender looks for due deliveries without being woken.
    pub poll_every: Duration,
    /// Deliveries picked per sender round, and how many of them are sent at once.
    pub batch: u32,
    pub concurrency: usize,
    /// How long a claimed delivery is left to its sender before another may take it (a
    /// sender killed mid-attempt); longer than `smtp_timeout`.
    pub claim_lease: Duration,
    /// Timeout of each SMTP command.
    pub smtp_timeout: Duration,
    /// How long a stopping sender lets the mails in flight finish.
    pub drain: Duration,
    /// Rule B2: each branch's closed days. The ready mail's keep-until date is the
    /// sending date plus 7 days moved to the pickup branch's next open day (H9): this must
    /// be the calendar circulation uses, which computes the same date from `MailSent`.
    /// Default: open every day.
    pub calendars: LibraryCalendar,
    /// How many attempts of a hold mail may wait for a catalog that does not answer
    /// before the mail goes without the title (N2: the mail matters more than its title
    /// line; with the default back-off, 5 attempts wait a little over a minute).
    pub title_lookup_attempts: u32,
}

impl NotifierConfig {
    /// The defaults, with mail going to `transport`.
    pub fn new(transport: MailTransport) -> NotifierConfig {
        NotifierConfig {
            transport,
            sender_address: DEFAULT_SENDER_ADDRESS.to_string(),
            sender_name: DEFAULT_SENDER_NAME.to_string(),
            public_base_url: DEFAULT_PUBLIC_BASE_URL.to_string(),
            retry: RetryPolicy::default(),
            consumer_prefix: "notification".to_string(),
            poll_every: Duration::from_secs(1),
            batch: 20,
            concurrency: 4,
            claim_lease: Duration::from_secs(300),
            smtp_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            calendars: LibraryCalendar::open_every_day(),
            title_lookup_attempts: 5,
        }
    }

    /// From the environment: `KITSUKI_SMTP_URL` (or the file `KITSUKI_SMTP_URL_FILE` names:
    /// the URL may hold the mail server's credentials) when set, otherwise files in
    /// `<data_dir>/outbox/` (API.md); `KITSUKI_PUBLIC_BASE_URL` and `KITSUKI_MAIL_SENDER`
    /// override the defaults. Both SMTP variables set, or an unreadable or empty file, is
    /// an error ([`kitsuki_platform::secrets`]).
    pub fn from_env(
        data_dir: &Path,
    ) -> Result<NotifierConfig, kitsuki_platform::secrets::SecretError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let smtp_url = kitsuki_platform::secrets::from_env("KITSUKI_SMTP_URL")?;
        let transport = match smtp_url.filter(|v| !v.trim().is_empty()) {
            Some(url) => MailTransport::Smtp { url },
            None => MailTransport::Files {
                dir: data_dir.join("outbox"),
            },
        };
        let mut config = NotifierConfig::new(transport);
        if let Some(base) = var("KITSUKI_PUBLIC_BASE_URL") {
            config.public_base_url = base;
        }
        if let Some(sender) = var("KITSUKI_MAIL_SENDER") {
            config.sender_address = sender;
        }
        // Operators shorten or lengthen the back-off (N2); tests use milliseconds.
        let millis = |name: &str| {
            var(name)
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_millis)
        };
        if let Some(base) = millis("KITSUKI_MAIL_RETRY_BASE_MS") {
            config.retry.base = base;
        }
        if let Some(max) = millis("KITSUKI_MAIL_RETRY_MAX_MS") {
            config.retry.max = max;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_credentials_never_print() {
        let t = MailTransport::Smtp {
            url: "smtps://user:s3cret@mail.example.jp:465".into(),
        };
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("mail.example.jp:465"));
        let plain = MailTransport::Smtp {
            url: "smtp://127.0.0.1:2525".into(),
        };
        assert!(format!("{plain:?}").contains("smtp://127.0.0.1:2525"));
    }

    #[test]
    fn without_an_smtp_url_mail_goes_to_the_outbox_folder() {
        // Reads the process environment, which the suite leaves alone; when a developer's
        // sets these, this test says nothing.
        let set = |v: &str| std::env::var(v).is_ok();
        if set("KITSUKI_SMTP_URL") || set("KITSUKI_SMTP_URL_FILE") || set("KITSUKI_MAIL_SENDER") {
            return;
        }
        let c = NotifierConfig::from_env(Path::new("/data")).unwrap();
        assert_eq!(
            c.transport,
            MailTransport::Files {
                dir: PathBuf::from("/data/outbox")
            }
        );
        assert_eq!(c.sender_address, DEFAULT_SENDER_ADDRESS);
        assert_eq!(c.sender_name, "杵築市立図書館");
    }
}
