//! Putting a rendered mail on its way: the message (UTF-8 plain text, MIME-encoded
//! headers, a `Message-ID` made of the delivery id so that a mail sent twice after a crash
//! is recognisable as one), and the two ways out — an SMTP server through lettre, or a
//! `.eml` file per mail in a folder (the embedded run), written atomically.
//!
//! Failures are described in our own words only: an SMTP answer's text can quote the
//! recipient's address, and what is recorded or logged must not (no address in logs).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use time::OffsetDateTime;

use crate::config::MailTransport;
use crate::domain::delivery::FailureKind;

/// Why a mail did not go, fit for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub kind: FailureKind,
    pub reason: String,
}

impl SendFailure {
    fn transient(reason: impl Into<String>) -> SendFailure {
        SendFailure {
            kind: FailureKind::Transient,
            reason: reason.into(),
        }
    }
    fn refused(reason: impl Into<String>) -> SendFailure {
        SendFailure {
            kind: FailureKind::Refused,
            reason: reason.into(),
        }
    }
}

/// One addressed mail.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub from_name: &'a str,
    pub from_address: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub date: OffsetDateTime,
}

/// `<delivery id@sender's domain>`: the same delivery always carries the same id.
pub fn message_id(delivery_id: &str, sender_address: &str) -> String {
    let domain = sender_address
        .rsplit_once('@')
        .map_or("kitsuki.invalid", |(_, d)| d);
    format!("<{delivery_id}@{domain}>")
}

/// Builds the message; a sender or recipient address that does not parse is refused.
pub fn build_message(m: &Outgoing<'_>) -> Result<Message, SendFailure> {
    let from = m
        .from_address
        .parse()
        .map_err(|_| SendFailure::refused("the sender address is not valid"))?;
    let to =
        m.to.parse()
            .map_err(|_| SendFailure::refused("the recipient address is not valid"))?;
    // RFC 3834: an automatic mail, so that auto-responders do not answer it.
    let auto_submitted = HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_string(),
    );
    Message::builder()
        .from(Mailbox::new(Some(m.from_name.to_string()), from))
        .to(Mailbox::new(None, to))
        .subject(m.subject)
        .message_id(Some(message_id(m.delivery_id, m.from_address)))
        .date(SystemTime::from(m.date))
        .raw_header(auto_submitted)
        .header(ContentType::TEXT_PLAIN)
        // Text lines end in CRLF on the wire (RFC 2046), whatever the templates use.
        .body(m.body.replace("\r\n", "\n").replace('\n', "\r\n"))
        .map_err(|_| SendFailure::refused("the message could not be built"))
}

/// The way out, built once from the configuration.
#[derive(Debug, Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Mailer {
    pub fn new(transport: &MailTransport, timeout: Duration) -> anyhow::Result<Mailer> {
        match transport {
            MailTransport::Smtp { url } => Ok(Mailer::Smtp(smtp(url, timeout)?)),
            MailTransport::Files { dir } => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("while creating the mail folder {}", dir.display()))?;
                Ok(Mailer::Files(dir.clone()))
            }
        }
    }

    /// Sends one message; `Ok` once the server accepted it or the file is in place.
    pub async fn send(&self, delivery_id: &str, message: Message) -> Result<(), SendFailure> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(smtp_failure),
            Mailer::Files(dir) => write_file(dir, delivery_id, &message.formatted())
                .await
                .map_err(|e| {
                    SendFailure::transient(format!("writing the mail file failed: {:?}", e.kind()))
                }),
        }
    }
}

/// `smtp://host:port` → plain SMTP to that host; anything else as lettre reads URLs.
fn smtp(url: &str, timeout: Duration) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let plain = url
        .strip_prefix("smtp://")
        .filter(|rest| !rest.contains(['@', '?', '/']));
    let builder = match plain {
        Some(authority) => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') => (
                    h,
                    p.parse::<u16>()
                        .context("the port of KITSUKI_SMTP_URL is not a number")?,
                ),
                _ => (authority, 25),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            anyhow::ensure!(!host.is_empty(), "KITSUKI_SMTP_URL has no host");
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port)
        }
        // The URL may hold credentials: never repeat it in an error.
        None => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| anyhow::anyhow!("KITSUKI_SMTP_URL is not an SMTP URL lettre reads"))?,
    };
    Ok(builder.timeout(Some(timeout)).build())
}

fn smtp_failure(e: lettre::transport::smtp::Error) -> SendFailure {
    if e.is_permanent() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        SendFailure::refused(format!("the mail server refused the mail ({code})"))
    } else if e.is_transient() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        SendFailure::transient(format!("the mail server deferred the mail ({code})"))
    } else if e.is_timeout() {
        SendFailure::transient("the mail server did not answer in time")
    } else if e.is_tls() {
        SendFailure::transient("TLS with the mail server failed")
    } else {
        SendFailure::transient("the mail server could not be reached")
    }
}

/// Writes `<dir>/<delivery id>.eml` through a temporary file and a rename, so that a reader
/// of the folder never sees half a mail, and a mail written again replaces itself.
async fn write_file(dir: &std::path::Path, delivery_id: &str, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let target = dir.join(format!("{delivery_id}.eml"));
    let temp = dir.join(format!(".{delivery_id}.eml.tmp"));
    let mut file = tokio::fs::File::create(&temp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&temp, &target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing<'a>(to: &'a str) -> Outgoing<'a> {
        Outgoing {
            delivery_id: "0190-abc",
            from_name: "杵築市立図書館",
            from_address: "library@city.kitsuki.lg.jp",
            to,
            subject: "メールアドレス変更完了のお知らせ",
            body: "一行目\n二行目\n",
            date: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_message_id_comes_from_the_delivery_and_headers_are_encoded() {
        let m = build_message(&outgoing("patron@example.jp")).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <0190-abc@city.kitsuki.lg.jp>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Subject: =?utf-8?"),
            "non-ASCII subjects are encoded: {text}"
        );
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(text.contains("To: patron@example.jp\r\n"));
        assert!(text.contains("<library@city.kitsuki.lg.jp>"));
    }

    #[test]
    fn a_bad_address_is_refused_without_being_quoted() {
        let f = build_message(&outgoing("not an address")).unwrap_err();
        assert_eq!(f.kind, FailureKind::Refused);
        assert!(!f.reason.contains("not an address"));
    }

    // The pooled transport starts its pool on the runtime.
    #[tokio::test]
    async fn smtp_urls_are_read() {
        let t = Duration::from_secs(5);
        assert!(smtp("smtp://127.0.0.1:2525", t).is_ok());
        assert!(smtp("smtp://mail.example.jp", t).is_ok());
        assert!(smtp("smtp://[::1]:2525", t).is_ok());
        assert!(smtp("smtp://127.0.0.1:notaport", t).is_err());
        assert!(smtp("http://x", t).is_err());
    }
}
